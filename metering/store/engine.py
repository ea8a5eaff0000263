"""Runs the stages' SQL over spooled Parquet inputs, inside the warehouse connection.

DuckDB streams the inputs and spills to disk beyond ``memory_limit``, so a month of 10^8
calls is billed in flat memory; only small results (per tenant, per day) come back to
Python as polars frames.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from metering.sql import literal
from metering.store.frames import polars

DEFAULT_MEMORY_LIMIT = "512MB"  # METER_MEMORY_LIMIT overrides: DuckDB spills beyond it

_SQL_TYPES = {pl.Utf8: "VARCHAR", pl.Int64: "BIGINT", pl.Boolean: "BOOLEAN"}


def _sql_type(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMPTZ"
    return _SQL_TYPES[type(dtype)]


@contextmanager
def trace(what: str) -> Iterator[None]:
    """With METER_TRACE=1, say on stderr how long ``what`` took (for profiling a run)."""
    if not os.environ.get("METER_TRACE"):
        yield
        return
    started = time.perf_counter()
    yield
    print(f"[meter] {time.perf_counter() - started:7.3f} s  {what}", file=sys.stderr)


def _text(path: Path) -> str:
    return literal(str(path))


class Engine:
    """Named temporary relations on one connection, built by SQL the stages write."""

    def __init__(self, con: duckdb.DuckDBPyConnection, scratch: Path) -> None:
        self.con = con
        scratch.mkdir(parents=True, exist_ok=True)
        memory = os.environ.get("METER_MEMORY_LIMIT", DEFAULT_MEMORY_LIMIT)
        con.execute(f"SET memory_limit = '{memory}'")
        con.execute(f"SET temp_directory = {_text(scratch)}")
        con.execute("SET preserve_insertion_order = false")

    def load(self, name: str, files: Sequence[Path], schema: dict[str, pl.DataType]) -> None:
        """A view ``name`` over Parquet ``files`` (the given columns, even with no files)."""
        columns = ", ".join(schema)
        if files:
            listed = ", ".join(_text(f) for f in files)
            source = f"SELECT {columns} FROM read_parquet([{listed}])"
        else:
            typed = ", ".join(f"NULL::{_sql_type(t)} AS {c}" for c, t in schema.items())
            source = f"SELECT {typed} WHERE false"
        self.view(name, source)

    def create(self, name: str, sql: str) -> int:
        """A temporary table ``name`` from ``sql``; returns its row count."""
        with trace(f"create {name}"):
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
        return int(self.con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0])

    def insert(self, table: str, sql: str) -> int:
        """Add the rows of ``sql`` to ``table``; returns how many."""
        with trace(f"insert {table}"):
            return int(self.con.execute(f"INSERT INTO {table} {sql}").fetchall()[0][0])

    def define(self, **values: Any) -> None:
        """Set the run's constants, which SQL reads as ``getvariable('name')`` (views, unlike
        statements, cannot take parameters)."""
        for name, value in values.items():
            self.con.execute(f"SET VARIABLE {name} = $value", {"value": value})

    def view(self, name: str, sql: str) -> None:
        """A temporary view ``name`` of ``sql``: computed again wherever it is read."""
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")

    def keep(self, name: str, sql: str, path: Path) -> int:
        """Write the rows of ``sql`` to the Parquet file ``path`` and make ``name`` a view of
        it; returns the row count. For a result the size of the month that is read a few
        times and kept after the run: written once, streaming, instead of held in memory.
        Uncompressed: lz4 takes half as long again for a tenth less disk."""
        with trace(f"keep {name}"):
            written = self.save(f"({sql})", path)
        self.view(name, f"SELECT * FROM read_parquet({_text(path)})")
        return written

    def save(self, relation: str, path: Path) -> int:
        """Write ``relation`` (a name, or a query in parentheses) to the Parquet file
        ``path``, uncompressed; returns the row count."""
        written = self.con.execute(
            f"COPY {relation} TO {_text(path)} (FORMAT parquet, COMPRESSION uncompressed)"
        ).fetchall()
        return int(written[0][0])

    def frame(self, sql: str) -> pl.DataFrame:
        """A (small) result as a polars frame."""
        with trace(f"query {' '.join(sql.split())[:70]}"):
            return polars(self.con.sql(sql))

    def refusal(self, expression: str) -> str | None:
        """Why the engine cannot evaluate a constant ``expression``, or None if it can."""
        try:
            self.con.execute(f"SELECT {expression}").fetchall()
        except duckdb.Error as exc:
            return str(exc).removeprefix("Invalid Input Error: ")
        return None

    def count(self, table: str) -> int:
        return int(self.con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
