"""The DuckDB warehouse: the only package that imports duckdb.

One explicit connection per command, parameterised SQL, and one transaction per run: a
run's rows appear all at once or not at all.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from metering import __version__
from metering.errors import (
    ConfigError,
    MonthClosedError,
    UsageError,
    WarehouseBusyError,
    WarehouseError,
)
from metering.month import Month
from metering.schemas import (
    RATED,
    BillResult,
    Progress,
    QuarantineEntry,
    Relation,
    call_key,
)
from metering.sql import literal
from metering.store.engine import watched
from metering.store.frames import ArrowStream, polars
from metering.store.schema import (
    AMOUNT,
    COUNTER_COLUMNS,
    MIGRATIONS,
    MONTH_TABLES,
    SCHEMA_VERSION,
    TABLES,
    VIEWS,
    views,
)
from metering.trace import trace

Connection = duckdb.DuckDBPyConnection  # the warehouse, as ``connect`` opens it

__all__ = [
    "COUNTER_COLUMNS",
    "SCHEMA_VERSION",
    "Connection",
    "LastBill",
    "MonthEvent",
    "RunRows",
    "add_calls",
    "connect",
    "diff_runs",
    "drop_calls",
    "ensure_open",
    "last_bill",
    "latest_run",
    "month_calls",
    "month_state",
    "read_month",
    "replace_calls",
    "set_month_state",
    "transaction",
    "write_run",
]


@contextmanager
def connect(path: str | Path, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse (creating it and its tables when writing)."""
    path = Path(path)
    created = not path.exists()
    if read_only and created:
        raise UsageError(f"{path}: no warehouse yet; run `meter bill --month YYYY-MM` first")
    if path.is_dir() or not path.parent.is_dir():
        what = "is a folder" if path.is_dir() else f"is in {path.parent}, which is no folder"
        raise ConfigError(
            f"{path}: the warehouse {what}; fix [warehouse] path (a DuckDB file, made by the "
            "first bill, in a folder that exists)"
        )
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
        try:
            # Days and months are UTC days (SPEC 1.6), whatever the machine's time zone:
            # DuckDB would otherwise cast a TIMESTAMPTZ to the local date (and read times
            # back as local).
            con.execute("SET TimeZone = 'UTC'")
            if not read_only:
                _ensure_schema(con, path)
            else:
                _check_version(con, path)
            yield con
        except (
            duckdb.IOException,
            duckdb.OutOfMemoryException,
            duckdb.TransactionException,
        ) as exc:
            # A full disk (the file, its WAL, or DuckDB's spill files) or too little memory:
            # the run's transaction is rolled back, the warehouse is as it was.
            raise WarehouseError(
                f"{path}: cannot write the warehouse or its temporary files: {exc}; the "
                "warehouse is unchanged (free some disk space, or set METER_MEMORY_LIMIT, "
                "then try again)"
            ) from None
    except BaseException:
        with suppress(duckdb.Error):
            con.close()
        if created:  # a first run that failed leaves no warehouse, as it found none
            for leftover in (path, path.with_name(f"{path.name}.wal")):
                leftover.unlink(missing_ok=True)
        raise
    finally:
        # (closing checkpoints what the run wrote from the WAL into the file)
        with trace("close the warehouse"):
            if not read_only:
                with suppress(duckdb.Error):  # (a connection closed above)
                    con.execute("SET max_vacuum_tasks = ?", [_vacuum_tasks(con)])
            with suppress(duckdb.Error):
                con.close()  # a close that cannot checkpoint leaves the WAL: fine


# DuckDB's closing checkpoint may "vacuum" a table: rewrite its row groups to drop deleted
# rows and to merge row groups that are not full. After a bill that only added a day of
# calls, it rewrote ~400,000 calls to save one row group: 0.6 s of a 2 s re-bill. It is let
# vacuum only when a table holds at least a row group's worth of deleted rows, and they
# are at least a tenth of what it stores; until then they cost a little space, no more.
VACUUM_ROWS = 122_880  # DuckDB's row group
VACUUM_SHARE = 0.1


def _vacuum_tasks(con: duckdb.DuckDBPyConnection) -> int:
    """DuckDB's ``max_vacuum_tasks`` for the closing checkpoint: 0 (none) unless worth it.
    (DuckDB vacuums no table that has a key or an index; ``estimated_size`` counts the
    rows a table stores, deleted ones included.)"""
    tables = con.execute(
        "SELECT table_name, estimated_size FROM duckdb_tables() "
        "WHERE database_name = current_database() AND schema_name = current_schema() "
        "AND NOT temporary AND NOT has_primary_key AND index_count = 0"
    ).fetchall()
    for table, stored in tables:
        name = '"' + table.replace('"', '""') + '"'  # a name, as query_table parses it
        live = con.execute("SELECT count(*) FROM query_table(?)", [name]).fetchall()[0][0]
        if stored - live >= max(VACUUM_ROWS, VACUUM_SHARE * stored):
            return 100  # DuckDB's default
    return 0


def _check_version(con: duckdb.DuckDBPyConnection, path: Path) -> int | None:
    """The warehouse's schema version (None for an empty file); refuse newer ones."""
    tables = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if "meter_meta" not in tables:
        return None
    rows = con.execute("SELECT value FROM meter_meta WHERE key = 'schema_version'").fetchall()
    version = int(rows[0][0]) if rows else 1
    if version > SCHEMA_VERSION:
        raise WarehouseError(
            f"{path}: the warehouse has schema version {version}, newer than this meter's "
            f"{SCHEMA_VERSION} (meter {__version__}); upgrade meter to use it"
        )
    return version


def _ensure_schema(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Create the tables of a new warehouse, or migrate an older one, in one transaction."""
    version = _check_version(con, path)
    if version == SCHEMA_VERSION:
        return
    con.execute("BEGIN TRANSACTION")
    try:
        if version is None:
            for ddl in (*TABLES.values(), *VIEWS):
                con.execute(ddl)
        else:
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[step]:
                    con.execute(statement)
        con.execute(
            "INSERT OR REPLACE INTO meter_meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
        )
        con.execute("COMMIT")
    except duckdb.Error as exc:
        con.execute("ROLLBACK")
        raise WarehouseError(
            f"{path}: cannot migrate the warehouse from schema version {version} to "
            f"{SCHEMA_VERSION}: {exc}; it is unchanged - restore a backup or bill into a new one"
        ) from None


@dataclass(frozen=True, slots=True)
class RunRows:
    """What one billing run writes besides its calls (``replace_calls``)."""

    run: dict[str, object]  # the bill_runs row
    tenant_month: pl.DataFrame
    tenant_day: pl.DataFrame
    reconciliation: pl.DataFrame
    quarantine: Sequence[QuarantineEntry]
    recipe: str  # what the calls were joined and rated by (see ``LastBill``)
    inputs: dict[str, list[Path]]  # per source, the spooled files they were joined from
    invoice: pl.DataFrame | None = None  # the tie-out with the AWS invoice (schemas.INVOICE)
    charges: pl.DataFrame | None = None  # each tenant's charges (schemas.TENANT_CHARGES)
    shared_costs: pl.DataFrame | None = None  # each shared cost's totals (SHARED_COSTS)
    calls_at: str | None = None  # the folder of the month's Parquet calls (a Spark bill)

    @classmethod
    def of(
        cls,
        result: BillResult,
        run: dict[str, object],
        recipe: str,
        inputs: dict[str, list[Path]],
        calls_at: str | None = None,
    ) -> RunRows:
        """The rows of a bill's ``result``; ``run``: the bill_runs columns it does not hold
        (when, who, the config's and inputs' fingerprints)."""
        bill = result.bill
        row = {
            "run_id": result.run_id,
            "month": str(result.month),
            "status": "billed",
            **run,
            "total_calls": result.counters.calls_billed,
            "total_units": bill.total_units,
            "account_cost": bill.account_cost,
            "amount": bill.amount,
            "currency": bill.currency,
            **result.counters.as_dict(),
            "unregistered_tenants": result.unregistered,
            "meter_version": __version__,
            **(result.overhead.columns() if result.overhead is not None else {}),
        }
        return cls(
            row,
            result.tenant_month,
            result.tenant_day,
            result.reconciliation,
            result.quarantine,
            recipe,
            inputs,
            result.invoice,
            result.charges,
            result.shared_costs,
            calls_at,
        )


@dataclass(frozen=True, slots=True)
class LastBill:
    """What the month's last bill left for the next one: its calls (``month_calls``) were
    joined and rated by ``recipe`` from ``inputs`` (per source, the spooled files, each
    with its size and modification time)."""

    run_id: str
    recipe: str
    inputs: dict[str, dict[str, tuple[int, int]]]

    def added(self, read: dict[str, list[Path]]) -> dict[str, list[Path]] | None:
        """Per source, the spooled files of ``read`` the last bill did not read; None if a
        file it read is not among them any more, or has changed since (its calls must then
        be joined whole)."""
        added = {}
        for source, paths in read.items():
            now, before = _stamps(paths), self.inputs.get(source, {})
            if any(now.get(path) != stamp for path, stamp in before.items()):
                return None
            added[source] = [path for path in paths if str(path) not in before]
        return added


def _stamps(paths: Sequence[Path]) -> dict[str, tuple[int, int]]:
    """Size and modification time of each file (a file decoded again is a changed file)."""
    stamps = {}
    for path in paths:
        stat = path.stat()
        stamps[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return stamps


def _inputs(read: dict[str, list[Path]]) -> pl.DataFrame:
    """The month_inputs rows of the files a month's calls were joined from."""
    rows = [
        (source, path, size, mtime)
        for source, paths in sorted(read.items())
        for path, (size, mtime) in _stamps(paths).items()
    ]
    schema = {"source": pl.Utf8, "path": pl.Utf8, "size": pl.Int64, "mtime_ns": pl.Int64}
    return pl.DataFrame(rows, schema=schema, orient="row")


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """One transaction: everything in it is written at once, or not at all."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        with trace("  commit"):
            con.execute("COMMIT")
    except BaseException:
        # A failed COMMIT has ended the transaction already: ROLLBACK then has nothing to
        # undo, and its own error must not hide the one that matters.
        with suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise


def last_bill(con: duckdb.DuckDBPyConnection, month: Month) -> LastBill | None:
    """What ``month``'s last bill left for the next, if it left its state (a bill of this
    meter, or of one since schema 4)."""
    runs = con.execute(
        "SELECT run_id, recipe FROM month_runs WHERE month = ? AND recipe IS NOT NULL",
        [str(month)],
    ).fetchall()
    if not runs:
        return None
    inputs: dict[str, dict[str, tuple[int, int]]] = {}
    for source, path, size, mtime in con.execute(
        "SELECT source, path, size, mtime_ns FROM month_inputs WHERE month = ?", [str(month)]
    ).fetchall():
        inputs.setdefault(source, {})[path] = (int(size), int(mtime))
    return LastBill(str(runs[0][0]), str(runs[0][1]), inputs)


def month_calls(month: Month) -> Relation:
    """The rated calls the warehouse holds for ``month`` (RATED)."""
    sql = f"SELECT * EXCLUDE (month) FROM call_rows WHERE month = {literal(str(month))}"
    return Relation.query(sql, RATED)


def replace_calls(
    con: duckdb.DuckDBPyConnection,
    month: Month,
    calls: Relation,
    replacing: Relation | None,
    progress: Progress | None = None,
) -> None:
    """Put ``calls`` (RATED) in ``month``'s calls: in place of those whose key
    (``schemas.call_key``) is in ``replacing`` (a relation of ``key``), or of all of them
    when it is None. Call it inside the run's ``transaction``."""
    where = "" if replacing is None else f" AND {call_key()} IN (SELECT key FROM {replacing})"
    with trace("  delete the calls replaced"):
        con.execute(f"DELETE FROM call_rows WHERE month = ?{where}", [str(month)])
    add_calls(con, month, calls, progress)


def drop_calls(con: duckdb.DuckDBPyConnection, month: Month) -> None:
    """Remove ``month``'s calls from the warehouse (a Spark bill keeps them in Parquet)."""
    con.execute("DELETE FROM call_rows WHERE month = ?", [str(month)])


def _refresh_views(con: duckdb.DuckDBPyConnection) -> None:
    """`calls` and `conflicts` over call_rows and every month's Parquet of calls."""
    files = con.execute("SELECT month, uri FROM month_call_files ORDER BY month").fetchall()
    for ddl in views([(str(month), str(uri)) for month, uri in files]):
        con.execute(ddl)


def add_calls(
    con: duckdb.DuckDBPyConnection,
    month: Month,
    calls: Relation,
    progress: Progress | None = None,
) -> None:
    """Add ``calls`` (RATED, none of which the month holds) to ``month``'s calls (joined and
    rated as they are written: ``progress`` hears how far that got, as ``joining calls``)."""
    names = ", ".join(RATED)
    with trace("  insert calls"), watched(con, "joining calls", progress):
        con.execute(
            f"INSERT INTO call_rows (month, {names}) SELECT ?, {names} FROM {calls}",
            [str(month)],
        )


@dataclass(frozen=True, slots=True)
class MonthEvent:
    """The newest close/reopen event of a month."""

    event: str  # closed | reopened
    at: datetime
    by: str
    reason: str


def month_state(con: duckdb.DuckDBPyConnection, month: Month) -> MonthEvent | None:
    """The newest close/reopen event of ``month``, if any."""
    rows = con.execute(
        "SELECT event, make_timestamp(epoch_us(changed_at)) AS changed_at, changed_by, reason "
        "FROM month_events WHERE month = ? "
        "ORDER BY changed_at DESC LIMIT 1",
        [str(month)],
    ).fetchall()
    if not rows:
        return None
    event, at, by, reason = rows[0]
    return MonthEvent(event, at.replace(tzinfo=UTC), by, reason)


def latest_run(con: duckdb.DuckDBPyConnection, month: Month) -> str | None:
    """The run_id of ``month``'s newest bill, or None if it was never billed."""
    runs = con.execute(
        "SELECT run_id FROM bill_runs WHERE month = ? ORDER BY run_seq DESC LIMIT 1", [str(month)]
    ).fetchall()
    return str(runs[0][0]) if runs else None


def ensure_open(con: duckdb.DuckDBPyConnection, month: Month) -> None:
    """Refuse to touch a closed month, saying who closed it and how to reopen it."""
    state = month_state(con, month)
    if state is not None and state.event == "closed":
        raise MonthClosedError(
            f"{month} was closed by {state.by} at {state.at:%Y-%m-%d %H:%M} UTC"
            + (f" ({state.reason})" if state.reason else "")
            + f"; its bill may have been sent. To bill it again: "
            f'meter reopen --month {month} --reason "why it must change"'
        )


def write_run(
    con: duckdb.DuckDBPyConnection,
    month: Month,
    rows: RunRows,
    progress: Progress | None = None,
) -> int:
    """Replace ``month``'s lines, days, reconciliation, quarantine, tie-out and charges with
    ``rows``, and record the run; returns its sequence number. Call it inside the run's
    ``transaction``, after its calls."""
    run_id = rows.run["run_id"]
    quarantine = pl.DataFrame(
        {
            "run_id": [run_id] * len(rows.quarantine),
            "month": [str(month)] * len(rows.quarantine),
            "source_uri": [q.source_uri for q in rows.quarantine],
            "locator": [q.locator for q in rows.quarantine],
            "reason": [q.reason for q in rows.quarantine],
        },
        schema=dict.fromkeys(("run_id", "month", "source_uri", "locator", "reason"), pl.Utf8),
    )
    optional = (
        ("invoice", rows.invoice),
        ("tenant_charges", rows.charges),
        ("shared_costs", rows.shared_costs),
        (
            "month_call_files",
            None
            if rows.calls_at is None
            else pl.DataFrame({"month": [str(month)], "uri": [rows.calls_at]}),
        ),
    )
    tables = (
        ("tenant_month", rows.tenant_month),
        ("tenant_day", rows.tenant_day),
        ("reconciliation", rows.reconciliation),
        ("quarantine", quarantine),
        ("month_inputs", _inputs(rows.inputs).with_columns(month=pl.lit(str(month)))),
        (
            "month_runs",
            pl.DataFrame({"month": [str(month)], "run_id": [run_id], "recipe": [rows.recipe]}),
        ),
        *((table, frame) for table, frame in optional if frame is not None and frame.height),
    )
    ensure_open(con, month)  # checked again inside the transaction
    seq = con.execute("SELECT coalesce(max(run_seq), 0) + 1 FROM bill_runs").fetchall()[0][0]
    with trace("  delete the month"):
        for table in MONTH_TABLES:
            con.execute(f"DELETE FROM {table} WHERE month = ?", [str(month)])
    for done, (table, frame) in enumerate(tables, start=1):
        con.register("_frame", ArrowStream(frame))
        names = ", ".join(frame.columns)
        con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM _frame")
        con.unregister("_frame")
        if progress is not None:
            progress("writing warehouse", done, len(tables) + 1)
    _refresh_views(con)
    con.execute(
        "INSERT INTO run_lines SELECT ?, month, tenant_id, calls, units, amount "
        "FROM tenant_month WHERE month = ?",
        [seq, str(month)],
    )
    run = {**rows.run, "run_seq": seq}
    columns = list(run)
    con.execute(
        f"INSERT INTO bill_runs ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
        [run[c] for c in columns],
    )
    if progress is not None:
        progress("writing warehouse", len(tables) + 1, len(tables) + 1)
    return int(seq)


def set_month_state(path: str | Path, month: Month, event: str, by: str, reason: str) -> MonthEvent:
    """Record a close or reopen of ``month``."""
    with connect(path) as con:
        state = month_state(con, month)
        current = state.event if state else "open"
        if event == "closed":
            run_id = latest_run(con, month)
            if run_id is None:
                raise MonthClosedError(
                    f"{month} has never been billed; "
                    f"run `meter bill --month {month}` before closing it"
                )
            if state is not None and state.event == "closed":
                raise MonthClosedError(
                    f"{month} is already closed (by {state.by} at {state.at:%Y-%m-%d %H:%M} UTC)"
                )
        else:
            if current != "closed":
                raise MonthClosedError(f"{month} is not closed; there is nothing to reopen")
            run_id = None
        at = datetime.now(UTC)
        con.execute(
            "INSERT INTO month_events VALUES (?, ?, ?, ?, ?, ?)",
            [str(month), event, at, by, reason, run_id],
        )
        return MonthEvent(event, at, by, reason)


def diff_runs(path: str | Path, month: Month) -> tuple[list[int], pl.DataFrame]:
    """Per tenant, the last two runs of ``month`` side by side; (their run_seqs, rows). The
    rows' ``currency`` is the newer run's."""
    with connect(path, read_only=True) as con:
        seqs = [
            row[0]
            for row in con.execute(
                "SELECT run_seq FROM bill_runs WHERE month = ? AND run_seq IS NOT NULL "
                "ORDER BY run_seq DESC LIMIT 2",
                [str(month)],
            ).fetchall()
        ]
        if len(seqs) < 2:
            return seqs, pl.DataFrame()
        new, old = seqs
        lines = con.sql(
            f"""
            SELECT coalesce(n.tenant_id, o.tenant_id) AS tenant_id,
                   coalesce(o.calls, 0) AS calls_before, coalesce(n.calls, 0) AS calls_after,
                   coalesce(o.units, 0) AS units_before, coalesce(n.units, 0) AS units_after,
                   coalesce(o.amount, 0)::{AMOUNT} AS amount_before,
                   coalesce(n.amount, 0)::{AMOUNT} AS amount_after,
                   (SELECT any_value(currency) FROM bill_runs WHERE run_seq = $new) AS currency
            FROM (SELECT * FROM run_lines WHERE run_seq = $new) n
            FULL OUTER JOIN (SELECT * FROM run_lines WHERE run_seq = $old) o USING (tenant_id)
            ORDER BY tenant_id
            """,
            params={"new": new, "old": old},
        )
        return [old, new], polars(lines)


def read_month(path: str | Path, table: str, month: Month, order_by: str) -> pl.DataFrame:
    """All of ``table``'s rows for ``month``; ``order_by`` is a column name from meter's
    own code, written into the SQL as it is."""
    if table not in TABLES and table not in ("calls", "conflicts"):
        raise WarehouseError(f"no table {table!r} in the warehouse")
    with connect(path, read_only=True) as con:
        return polars(
            con.sql(
                f"SELECT * FROM {table} WHERE month = $month ORDER BY {order_by}",
                params={"month": str(month)},
            )
        )
