"""Processes that leave without tearing their interpreter down keep their exit status."""

from __future__ import annotations

import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from metering.leave import workers


def _write_and_end(path: str, code: int | None) -> None:
    with open(path, "w") as f:
        f.write("done")
    if code is not None:
        sys.exit(code)


def _fail() -> None:
    raise ValueError("boom")


@pytest.mark.parametrize("code", [None, 0, 7])
def test_a_worker_keeps_its_exit_status_and_what_it_wrote(tmp_path: Path, code: int | None) -> None:
    out = tmp_path / "out.txt"
    process = workers().Process(target=_write_and_end, args=(str(out), code))
    process.start()
    process.join(60)
    assert process.exitcode == (code or 0)
    assert out.read_text() == "done"


def test_a_worker_that_fails_ends_with_status_1() -> None:
    process = workers().Process(target=_fail)
    process.start()
    process.join(60)
    assert process.exitcode == 1


def test_a_pool_of_them_returns_results_and_shuts_down() -> None:
    with ProcessPoolExecutor(2, mp_context=workers()) as pool:
        assert sorted(pool.map(abs, [-3, -1, 2])) == [1, 2, 3]
