"""The DuckDB warehouse: the only package that imports duckdb.

One explicit connection per command, parameterised SQL, and one transaction per run: a
run's rows appear all at once or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl

from metering.errors import WarehouseBusyError, WarehouseError
from metering.schemas import QuarantineEntry
from metering.store.schema import COUNTER_COLUMNS, MONTH_TABLES, SCHEMA_VERSION, TABLES

__all__ = ["COUNTER_COLUMNS", "SCHEMA_VERSION", "RunRows", "connect", "read_month", "write_run"]


@contextmanager
def connect(path: str | Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse (creating it and its tables when writing)."""
    path = Path(path)
    if read_only and not path.exists():
        raise WarehouseError(f"{path}: no warehouse yet; run `meter bill --month YYYY-MM` first")
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise WarehouseBusyError(
                f"{path}: the warehouse is busy: another meter process is using it; "
                "wait for it to finish and try again"
            ) from None
        raise WarehouseError(f"{path}: cannot open the warehouse: {exc}") from None
    except duckdb.Error as exc:
        raise WarehouseError(f"{path}: not a usable DuckDB warehouse: {exc}") from None
    try:
        if not read_only:
            _ensure_schema(con, path)
        else:
            _check_version(con, path)
        yield con
    finally:
        con.close()


def _check_version(con: duckdb.DuckDBPyConnection, path: Path) -> int | None:
    tables = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if "meter_meta" not in tables:
        return None
    rows = con.execute("SELECT value FROM meter_meta WHERE key = 'schema_version'").fetchall()
    version = int(rows[0][0]) if rows else None
    if version is not None and version > SCHEMA_VERSION:
        raise WarehouseError(
            f"{path}: the warehouse has schema version {version}, newer than this meter's "
            f"{SCHEMA_VERSION}; upgrade meter (pip install -U meter) to use it"
        )
    return version


def _ensure_schema(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    _check_version(con, path)
    con.execute("BEGIN TRANSACTION")
    for ddl in TABLES.values():
        con.execute(ddl)
    con.execute(
        "INSERT OR REPLACE INTO meter_meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
    )
    con.execute("COMMIT")


@dataclass(frozen=True, slots=True)
class RunRows:
    """Everything one billing run writes."""

    run: dict[str, object]  # the bill_runs row
    calls: pl.DataFrame
    tenant_month: pl.DataFrame
    tenant_day: pl.DataFrame
    reconciliation: pl.DataFrame
    quarantine: Sequence[QuarantineEntry]


def write_run(path: str | Path, month: str, rows: RunRows) -> None:
    """Replace ``month`` in the warehouse with ``rows``, in one transaction."""
    with connect(path) as con:
        try:
            con.execute("BEGIN TRANSACTION")
            for table in MONTH_TABLES:
                con.execute(f"DELETE FROM {table} WHERE month = ?", [month])
            quarantine = pl.DataFrame(
                {
                    "run_id": [rows.run["run_id"]] * len(rows.quarantine),
                    "month": [month] * len(rows.quarantine),
                    "source_uri": [q.source_uri for q in rows.quarantine],
                    "locator": [q.locator for q in rows.quarantine],
                    "reason": [q.reason for q in rows.quarantine],
                },
                schema=dict.fromkeys(
                    ("run_id", "month", "source_uri", "locator", "reason"), pl.Utf8
                ),
            )
            for table, frame in (
                ("calls", rows.calls),
                ("tenant_month", rows.tenant_month),
                ("tenant_day", rows.tenant_day),
                ("reconciliation", rows.reconciliation),
                ("quarantine", quarantine),
            ):
                con.register("_frame", frame.to_arrow())
                names = ", ".join(frame.columns)
                con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM _frame")
                con.unregister("_frame")
            columns = list(rows.run)
            con.execute(
                f"INSERT INTO bill_runs ({', '.join(columns)}) "
                f"VALUES ({', '.join('?' for _ in columns)})",
                [rows.run[c] for c in columns],
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


def read_month(path: str | Path, table: str, month: str, order_by: str) -> pl.DataFrame:
    """All of ``table``'s rows for ``month``."""
    if table not in TABLES:
        raise WarehouseError(f"no table {table!r} in the warehouse")
    with connect(path, read_only=True) as con:
        frame: pl.DataFrame = con.sql(
            f"SELECT * FROM {table} WHERE month = $month ORDER BY {order_by}",
            params={"month": month},
        ).pl()
        return frame


def latest_run(path: str | Path, month: str) -> dict[str, object] | None:
    """The newest ``bill_runs`` row of ``month``, or None."""
    with connect(path, read_only=True) as con:
        result = con.execute(
            "SELECT * FROM bill_runs WHERE month = ? ORDER BY finished_at DESC LIMIT 1", [month]
        )
        found = result.fetchall()
        if not found:
            return None
        row = found[0]
        names = [d[0] for d in result.description]
        return dict(zip(names, row, strict=True))


def amount_total(frame: pl.DataFrame) -> Decimal:
    """Sum of a frame's ``amount`` column, exactly."""
    return sum((Decimal(str(v)) for v in frame["amount"].to_list()), Decimal(0))
