"""Runs the stages' SQL over spooled Parquet inputs, inside the warehouse connection.

DuckDB streams the inputs and spills to disk beyond ``memory_limit``, so a month of 10^8
calls is billed in flat memory; only small results (per tenant, per day) come back to
Python as polars frames.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl

from metering.errors import ConfigError
from metering.schemas import PERCENT, Progress, Relation, Schema
from metering.sql import literal
from metering.store.frames import polars
from metering.trace import trace

DEFAULT_MEMORY_LIMIT = "512MB"  # METER_MEMORY_LIMIT overrides: DuckDB spills beyond it
# METER_MEMORY_LIMIT is a number and a unit, as DuckDB reads them, checked (memory_limit)
# and bound as a parameter: never SQL text.
_MEMORY = re.compile(r"(?P<number>\d{1,6}(?:\.\d{1,3})?) ?(?P<unit>[kmgt]i?b)", re.IGNORECASE)
_MEMORY_UNITS = {
    unit.lower(): (unit, size)
    for unit, size in (
        ("KB", 10**3),
        ("MB", 10**6),
        ("GB", 10**9),
        ("TB", 10**12),
        ("KiB", 2**10),
        ("MiB", 2**20),
        ("GiB", 2**30),
        ("TiB", 2**40),
    )
}
# Below 64MB DuckDB runs out of memory even on the small sample month (at 16MB it does).
MIN_MEMORY, MAX_MEMORY = 64 * 10**6, 1024 * 2**40  # 64MB to 1024TiB

POLL_SECONDS = 0.5  # how often a watched statement's progress is read

_SQL_TYPES = {pl.Utf8: "VARCHAR", pl.Int64: "BIGINT", pl.Boolean: "BOOLEAN"}


def _sql_type(dtype: pl.DataType) -> str:
    """The DuckDB type of a column of ``dtype``."""
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMPTZ"
    return _SQL_TYPES[type(dtype)]


def _text(path: Path) -> str:
    return literal(str(path))


def memory_limit(value: str | None = None) -> str:
    """DuckDB's memory limit: ``value``, else METER_MEMORY_LIMIT, else 512MB; checked and
    spelled as DuckDB reads it (``1.5 gib`` -> ``1.5GiB``), or ConfigError."""
    given = os.environ.get("METER_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT) if value is None else value
    if found := _MEMORY.fullmatch(given.strip()):
        unit, size = _MEMORY_UNITS[found["unit"].lower()]
        if MIN_MEMORY <= Decimal(found["number"]) * size <= MAX_MEMORY:
            return f"{found['number']}{unit}"
    raise ConfigError(
        f"METER_MEMORY_LIMIT={given!r}: give the memory DuckDB may use as a number and a unit "
        f"({', '.join(unit for unit, _ in _MEMORY_UNITS.values())}) from 64MB to 1024TiB, "
        "e.g. 512MB, 2GB or 1.5GiB; or unset it for 512MB"
    )


class Engine:
    """Temporary relations on one connection, made of the ``Relation``s the steps write.

    Relation names and SQL text come from meter's own code; a value from outside (config,
    environment, input) reaches SQL only as a bound parameter or through ``sql.literal``.
    """

    def __init__(
        self, con: duckdb.DuckDBPyConnection, scratch: Path, memory: str | None = None
    ) -> None:
        """``memory``: DuckDB's memory limit (default: METER_MEMORY_LIMIT, or 512MB)."""
        self.con = con
        scratch.mkdir(parents=True, exist_ok=True)
        con.execute("SET memory_limit = ?", [memory_limit(memory)])
        con.execute(f"SET temp_directory = {_text(scratch)}")
        con.execute("SET preserve_insertion_order = false")

    def parquet(self, name: str, files: Sequence[Path], columns: Schema) -> Relation:
        """A view ``name`` over Parquet ``files`` (the given columns, even with no files)."""
        names = ", ".join(columns)
        if files:
            listed = ", ".join(_text(f) for f in files)
            source = f"SELECT {names} FROM read_parquet([{listed}])"
        else:
            typed = ", ".join(f"NULL::{_sql_type(t)} AS {c}" for c, t in columns.items())
            source = f"SELECT {typed} WHERE false"
        return self.view(name, Relation.query(source, columns))

    def view(self, name: str, relation: Relation) -> Relation:
        """A temporary view ``name`` of ``relation``: computed again wherever it is read."""
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS FROM {relation}")
        return Relation(name, relation.columns)

    def table(self, name: str, relation: Relation) -> tuple[Relation, int]:
        """A temporary table ``name`` of ``relation``'s rows, and how many there are."""
        with trace(f"create {name}"):
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS FROM {relation}")
        made = Relation(name, relation.columns)
        return made, self.count(made)

    def insert(self, table: Relation, relation: Relation) -> int:
        """Add ``relation``'s rows to ``table``; returns how many."""
        with trace(f"insert {table}"):
            added = self.con.execute(f"INSERT INTO {table} BY NAME FROM {relation}").fetchall()
        return int(added[0][0])

    def frame(self, relation: Relation) -> pl.DataFrame:
        """A (small) relation's rows as a polars frame."""
        with trace(f"query {' '.join(relation.sql.split())[:70]}"):
            return polars(self.con.sql(f"FROM {relation}"))

    def count(self, relation: Relation) -> int:
        return int(self.con.execute(f"SELECT count(*) FROM {relation}").fetchall()[0][0])

    def refusal(self, expression: str) -> str | None:
        """Why the engine cannot evaluate a constant ``expression``, or None if it can."""
        try:
            self.con.execute(f"SELECT {expression}").fetchall()
        except duckdb.Error as exc:
            return str(exc).removeprefix("Invalid Input Error: ")
        return None


@contextmanager
def watched(
    con: duckdb.DuckDBPyConnection,
    stage: str,
    progress: Progress | None,
    every: float = POLL_SECONDS,
) -> Iterator[None]:
    """While the block runs a long statement on ``con``, how far it got goes to ``progress``
    as ``stage``, in per cent of ``PERCENT`` (DuckDB's estimate, read every ``every``
    seconds from another thread): 0 at once, 100 when the block ends without an error.

    A bill of 10^7 calls joins them for half a minute; without this, nothing moved.
    """
    if progress is None:
        yield
        return
    con.execute("SET enable_progress_bar = true")  # DuckDB then tracks how far a query got,
    con.execute("SET enable_progress_bar_print = false")  # and prints nothing of it itself
    stop = threading.Event()

    def poll() -> None:
        shown = 0
        while not stop.wait(every):
            try:
                share = int(con.query_progress())  # -1: no statement is running
            except duckdb.Error:
                return
            if shown < share < PERCENT:  # (the estimate can fall back; the bar does not)
                shown = share
                progress(stage, share, PERCENT)

    progress(stage, 0, PERCENT)
    poller = threading.Thread(target=poll, name="meter-progress", daemon=True)
    poller.start()
    try:
        yield
    finally:
        stop.set()
        poller.join()
    progress(stage, PERCENT, PERCENT)
