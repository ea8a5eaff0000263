"""How the Spark engine cuts a month's files into tasks (no Spark needed)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from metering.collect.files import InputObject
from metering.collect.spool import Job
from metering.spark.decode import MIN_PIECE_BYTES, pieces

MIB = 1024 * 1024


def _groups(sizes: list[list[int]]) -> list[list[Job[str]]]:
    return [
        [
            Job(InputObject(f"/g{g}/f{f}", f"g{g}/f{f}", size), f"g{g}/f{f}")
            for f, size in enumerate(group)
        ]
        for g, group in enumerate(sizes)
    ]


@given(
    st.lists(st.lists(st.integers(0, 40 * MIB), min_size=1, max_size=30), max_size=12),
    st.integers(1, 64),
)
def test_pieces_keep_every_file_once_in_order(sizes: list[list[int]], tasks: int) -> None:
    groups = _groups(sizes)
    cut = pieces(groups, tasks)
    assert [j.task for p in cut for j in p] == [j.task for g in groups for j in g]
    total = sum(map(sum, sizes))
    most = max(MIN_PIECE_BYTES, total // tasks)
    for piece in cut:
        assert len(piece) == 1 or sum(j.obj.size for j in piece) <= most
        assert len({j.task.split("/")[0] for j in piece}) == 1  # never across groups


def test_a_few_big_day_folders_become_a_task_per_core() -> None:
    days = _groups([[MIB] * 288] * 3)  # three days of 5-minute files, 288 MiB each
    assert len(pieces(days, 4 * 16)) == 3 * 23  # 16 cores: pieces of 13 MiB, all busy
    assert len(pieces(days, 4 * 2)) == 3 * 3  # 2 cores: pieces of 108 MiB
    assert pieces(_groups([[MIB] * 4]), 64) == _groups([[MIB] * 4])  # 8 MiB at least
