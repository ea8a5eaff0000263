"""The warehouse engine: METER_MEMORY_LIMIT is checked, never pasted into SQL; a long
statement says how far it got."""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb
import pytest

from metering.errors import ConfigError
from metering.schemas import PERCENT
from metering.store.engine import Engine, memory_limit, watched


@pytest.mark.parametrize(
    ("given", "duckdb_says"),
    [
        (None, "488.2 MiB"),  # unset: 512MB
        ("2GB", "1.8 GiB"),
        ("1.5gib", "1.5 GiB"),
        (" 512 mb ", "488.2 MiB"),
        ("64MB", "61.0 MiB"),
        ("1024TiB", "1.0 PiB"),
    ],
)
def test_a_memory_limit_is_set_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str | None, duckdb_says: str
) -> None:
    if given is None:
        monkeypatch.delenv("METER_MEMORY_LIMIT", raising=False)
    else:
        monkeypatch.setenv("METER_MEMORY_LIMIT", given)
    con = duckdb.connect()
    Engine(con, tmp_path / "scratch")
    assert con.execute("SELECT current_setting('memory_limit')").fetchone() == (duckdb_says,)


@pytest.mark.parametrize(
    "given",
    [
        "2GB'; SET threads = 1; --",  # would have been SQL
        "2GB' ",
        "512",
        "lots",
        "",
        "none",
        "-1",
        "80%",
        "1e3MB",
        "0MB",
        "63MB",  # too little for DuckDB to run a bill
        "1025TiB",
        "99999999999999999999TB",
        "2 PB",
    ],
)
def test_any_other_memory_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str
) -> None:
    monkeypatch.setenv("METER_MEMORY_LIMIT", given)
    con = duckdb.connect()
    with pytest.raises(ConfigError) as caught:
        Engine(con, tmp_path / "scratch")
    assert str(caught.value).startswith(f"METER_MEMORY_LIMIT={given!r}: give the memory")
    assert "e.g. 512MB, 2GB or 1.5GiB" in str(caught.value)
    assert con.execute("SELECT current_setting('threads')").fetchone() != (1,)


def test_the_limit_is_spelled_as_duckdb_reads_it() -> None:
    assert memory_limit("1.5 gib") == "1.5GiB"
    assert memory_limit("2048mb") == "2048MB"


ROWS = 1_000_000


def _gated(con: duckdb.DuckDBPyConnection, passes: threading.Event) -> None:
    """``gate(x)``: x, but at the middle row it waits until ``passes`` is set (a minute at
    most), so a statement over range(ROWS) cannot end before then."""

    def gate(x: int) -> int:
        if x == ROWS // 2 and not passes.wait(60):
            raise TimeoutError("no share between 0 and 100 % was reported")
        return x

    con.create_function("gate", gate, ["BIGINT"], "BIGINT")


def test_a_long_statement_says_how_far_it_got() -> None:
    con = duckdb.connect()
    heard: list[tuple[str, int, int]] = []
    midway = threading.Event()

    def progress(stage: str, done: int, total: int) -> None:
        heard.append((stage, done, total))
        if 0 < done < total:
            midway.set()

    _gated(con, midway)
    with watched(con, "summing", progress, every=0.01):
        # (It cannot end before a share between 0 and 100 % was heard: no timing involved.)
        assert con.execute("SELECT sum(gate(range)) FROM range(?)", [ROWS]).fetchone() == (
            ROWS * (ROWS - 1) // 2,
        )
    assert heard[0] == ("summing", 0, PERCENT)  # at once: the stage shows before it moves
    assert heard[-1] == ("summing", PERCENT, PERCENT)
    shares = [done for _, done, _ in heard]
    assert shares == sorted(shares)  # never backwards
    assert not [t for t in threading.enumerate() if t.name == "meter-progress"]


def test_a_statement_that_fails_is_never_done() -> None:
    con = duckdb.connect()
    heard: list[int] = []
    with pytest.raises(duckdb.Error), watched(con, "x", lambda _, done, __: heard.append(done)):
        con.execute("SELECT error('the statement fails') FROM range(10)").fetchall()
    assert heard == [0]
    assert not [t for t in threading.enumerate() if t.name == "meter-progress"]


def test_without_a_listener_nothing_is_polled() -> None:
    con = duckdb.connect()
    with watched(con, "x", None):
        assert con.execute("SELECT 1").fetchone() == (1,)
    assert con.execute("SELECT current_setting('enable_progress_bar')").fetchone() == (False,)
