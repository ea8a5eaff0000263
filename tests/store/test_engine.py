"""The warehouse engine's settings: METER_MEMORY_LIMIT is checked, never pasted into SQL."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from metering.errors import ConfigError
from metering.store.engine import Engine, memory_limit


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
