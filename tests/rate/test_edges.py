"""Payload-edge savings: which calls are just past a block edge, and what trimming saves."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from metering.errors import UsageError
from metering.rate.edges import EDGE_SAVINGS, default_margin, edge_savings
from metering.rate.units import units_of

BLOCK = 32768


def test_boundaries_of_just_past_an_edge() -> None:
    sizes = [
        0,
        1,
        BLOCK,
        BLOCK + 1,
        BLOCK + 3276,
        BLOCK + 3277,
        2 * BLOCK,
        2 * BLOCK + 1,
        3 * BLOCK - 1,
    ]
    got = edge_savings(pl.DataFrame({"tenant_id": ["t"] * len(sizes), "bytes": sizes}), BLOCK)
    # near the edge: BLOCK+1, BLOCK+3276, 2*BLOCK+1 (2, 2 and 3 units)
    assert got.rows() == [("t", 9, 1 + 1 + 1 + 2 + 2 + 2 + 2 + 3 + 3, 3, 7, 3)]
    assert got.schema == pl.Schema(EDGE_SAVINGS)


def test_default_margin_is_a_tenth_of_a_block() -> None:
    assert default_margin(BLOCK) == 3276
    assert default_margin(10) == 1


def test_weights_and_sorting() -> None:
    sizes = pl.DataFrame(
        {
            "tenant_id": ["b", "b", "a", "c", "c"],
            "bytes": [BLOCK + 10, 100, BLOCK + 10, BLOCK + 10, 5 * BLOCK + 1],
            "calls": [3, 7, 3, 1, 2],
        }
    )
    assert edge_savings(sizes, BLOCK).rows() == [
        # most units saved first, ties by tenant
        ("a", 3, 6, 3, 6, 3),
        ("b", 10, 13, 3, 6, 3),
        ("c", 3, 14, 3, 14, 3),
    ]


def test_a_wider_margin_catches_more_and_zero_catches_none() -> None:
    sizes = pl.DataFrame({"tenant_id": ["t", "t"], "bytes": [BLOCK + 100, BLOCK + 5000]})
    assert edge_savings(sizes, BLOCK, margin_bytes=0)["units_saved"].to_list() == [0]
    assert edge_savings(sizes, BLOCK, margin_bytes=5000)["units_saved"].to_list() == [2]


@pytest.mark.parametrize(("block", "margin"), [(0, None), (-1, None), (BLOCK, BLOCK), (BLOCK, -1)])
def test_bad_parameters_are_refused(block: int, margin: int | None) -> None:
    sizes = pl.DataFrame({"tenant_id": ["t"], "bytes": [1]})
    with pytest.raises(UsageError, match="must be"):
        edge_savings(sizes, block, margin)


@given(
    st.lists(st.integers(min_value=0, max_value=10 * BLOCK), min_size=1, max_size=60),
    st.integers(min_value=1, max_value=BLOCK),
    st.integers(min_value=0, max_value=BLOCK - 1),
)
def test_trimming_saves_one_unit_per_call_just_past_an_edge(
    sizes: list[int], block: int, margin: int
) -> None:
    margin = min(margin, block - 1)
    got = edge_savings(
        pl.DataFrame({"tenant_id": ["t"] * len(sizes), "bytes": sizes}), block, margin
    )
    near = [
        s
        for s in sizes
        if any(k * block < s <= k * block + margin for k in range(1, s // block + 1))
    ]
    # Trimmed to the edge below it, a near-edge call loses exactly one unit; others keep theirs.
    trimmed = [((s - 1) // block) * block if s in near else s for s in sizes]
    before = sum(units_of(s, block) for s in sizes)
    after = sum(units_of(s, block) for s in trimmed)
    assert got.rows() == [
        ("t", len(sizes), before, len(near), sum(units_of(s, block) for s in near), before - after)
    ]
    assert before - after == len(near)


@given(
    st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 4 * BLOCK)), min_size=1, max_size=40)
)
def test_aggregated_sizes_give_the_same_answer_as_one_row_per_call(
    calls: list[tuple[str, int]],
) -> None:
    rows = pl.DataFrame({"tenant_id": [t for t, _ in calls], "bytes": [b for _, b in calls]})
    grouped = rows.group_by("tenant_id", "bytes").agg(calls=pl.len().cast(pl.Int64))
    assert edge_savings(grouped, BLOCK).equals(edge_savings(rows, BLOCK))
