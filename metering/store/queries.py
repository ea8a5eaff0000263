"""Read helpers for reports, charts and notebooks: small aggregates, computed in DuckDB.

Every function opens the warehouse read-only, runs parameterised SQL and returns a polars
frame whose columns are fixed here. Nothing here loads the ``calls`` table into Python:
calls are aggregated in DuckDB first, so a month of 10^8 calls stays cheap to look at.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from metering.month import Month
from metering.store import connect, month_state
from metering.store.frames import polars
from metering.store.schema import AMOUNT

__all__ = [
    "PARQUET_TABLES",
    "MonthUsage",
    "billed_months",
    "billed_run",
    "call_rates",
    "charge_rows",
    "invoice_rows",
    "month_changes",
    "month_trend",
    "month_usage",
    "payload_sizes",
    "tenant_attribution",
    "tenant_days",
    "tenant_operations",
    "write_parquet",
]


def _frame(path: str | Path, sql: str, params: dict[str, Any]) -> pl.DataFrame:
    with connect(path, read_only=True) as con:
        return polars(con.sql(sql, params=params))


def billed_months(path: str | Path) -> list[Month]:
    """The months with tenant lines in the warehouse, oldest first."""
    frame = _frame(path, "SELECT DISTINCT month FROM tenant_month ORDER BY month", {})
    return [Month.parse(m) for m in frame["month"]]


def billed_run(path: str | Path, month: Month) -> dict[str, Any] | None:
    """The ``bill_runs`` row of the run that wrote ``month``'s lines (the newest), or None.

    Read through Arrow: timestamps come back as timezone-aware datetimes without pytz.
    """
    frame = _frame(
        path,
        "SELECT * FROM bill_runs WHERE month = $month ORDER BY finished_at DESC LIMIT 1",
        {"month": str(month)},
    )
    return frame.to_dicts()[0] if frame.height else None


def invoice_rows(path: str | Path, month: Month) -> pl.DataFrame:
    """The month's tie-out with the AWS invoice (the ``invoice`` table: regions by name,
    the month's own row last); no rows when it has none, or a warehouse older than the
    table (a bill migrates it)."""
    with connect(path, read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        if "invoice" not in tables:
            return pl.DataFrame()
        return polars(
            con.sql(
                "SELECT * FROM invoice WHERE month = $month ORDER BY region = 'all', region",
                params={"month": str(month)},
            )
        )


def charge_rows(path: str | Path, month: Month) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The month's charges: ``tenant_charges`` (by tenant and charge) and ``shared_costs``
    (by charge); no rows when it has none, or a warehouse older than the tables (a bill
    migrates it)."""
    with connect(path, read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        if "tenant_charges" not in tables:
            return pl.DataFrame(), pl.DataFrame()
        params = {"month": str(month)}
        charges = "SELECT * FROM tenant_charges WHERE month = $month ORDER BY tenant_id, charge"
        shared = "SELECT * FROM shared_costs WHERE month = $month ORDER BY charge"
        return (
            polars(con.sql(charges, params=params)),
            polars(con.sql(shared, params=params)),
        )


def month_trend(path: str | Path, through: Month, months: int = 12) -> pl.DataFrame:
    """Tenant lines of the ``months`` billed months up to ``through`` (YYYY-MM).

    Columns: month, tenant_id, tenant_name, calls, units, cost_exact, amount, currency;
    sorted by month and tenant.
    """
    return _frame(
        path,
        """
        WITH chosen AS (
            SELECT DISTINCT month FROM tenant_month WHERE month <= $through
            ORDER BY month DESC LIMIT $months
        )
        SELECT month, tenant_id, tenant_name, calls, units, cost_exact, amount, currency
        FROM tenant_month WHERE month IN (SELECT month FROM chosen)
        ORDER BY month, tenant_id
        """,
        {"through": str(through), "months": months},
    )


def month_changes(path: str | Path, month: Month) -> pl.DataFrame:
    """Each tenant's change from the calendar month before ``month`` to ``month``.

    Empty when the month before was not billed. A tenant billed in only one of the two
    months counts 0 in the other (``new`` / ``gone`` say which). Money stays DECIMAL:
    columns tenant_id, tenant_name, registered (this month's, else last month's),
    previous_amount,
    amount, change (billed amounts), previous_cost_exact, cost_exact, change_exact,
    change_pct (of last month's billed amount, as two invoices show it; NULL when that was
    0.00), new, gone; the biggest exact change (either way) first, ties by tenant.
    """
    return _frame(
        path,
        f"""
        WITH cur AS (
            SELECT tenant_id, tenant_name, registered, amount, cost_exact FROM tenant_month
            WHERE month = $month
        ), prev AS (
            SELECT tenant_id, tenant_name, registered, amount, cost_exact FROM tenant_month
            WHERE month = $previous
        ), joined AS (
            SELECT coalesce(cur.tenant_id, prev.tenant_id) AS tenant_id,
                   coalesce(cur.tenant_name, prev.tenant_name) AS tenant_name,
                   coalesce(cur.registered, prev.registered) AS registered,
                   coalesce(prev.amount, 0)::{AMOUNT} AS previous_amount,
                   coalesce(cur.amount, 0)::{AMOUNT} AS amount,
                   coalesce(prev.cost_exact, 0)::DECIMAL(38, 12) AS previous_cost_exact,
                   coalesce(cur.cost_exact, 0)::DECIMAL(38, 12) AS cost_exact,
                   prev.tenant_id IS NULL AS new,
                   cur.tenant_id IS NULL AS gone
            FROM cur FULL OUTER JOIN prev ON cur.tenant_id = prev.tenant_id
            WHERE EXISTS (SELECT 1 FROM prev)
        )
        SELECT tenant_id, tenant_name, registered, previous_amount, amount,
               (amount - previous_amount)::{AMOUNT} AS change,
               previous_cost_exact, cost_exact,
               (cost_exact - previous_cost_exact)::DECIMAL(38, 12) AS change_exact,
               CASE WHEN previous_amount > 0
                    THEN 100 * (amount - previous_amount)::DOUBLE / previous_amount::DOUBLE
               END AS change_pct,
               new, gone
        FROM joined
        ORDER BY abs(cost_exact - previous_cost_exact) DESC, tenant_id
        """,
        {"month": str(month), "previous": str(month.previous())},
    )


def tenant_days(path: str | Path, month: Month, tenant_id: str | None = None) -> pl.DataFrame:
    """Daily calls, units and exact cost per tenant (one tenant, or all when None).

    Columns: day, tenant_id, calls, units, cost_exact; sorted by day and tenant.
    """
    return _frame(
        path,
        """
        SELECT day, tenant_id, calls, units, cost_exact FROM tenant_day
        WHERE month = $month AND ($tenant IS NULL OR tenant_id = $tenant)
        ORDER BY day, tenant_id
        """,
        {"month": str(month), "tenant": tenant_id},
    )


def tenant_operations(path: str | Path, month: Month, tenant_id: str) -> pl.DataFrame:
    """One tenant's calls by operation.

    Columns: operation, calls, units, request_bytes, response_bytes (sums; unknown sizes
    count 0), size_estimated_calls; most units first.
    """
    return _frame(
        path,
        """
        SELECT operation,
               count(*) AS calls,
               sum(units)::BIGINT AS units,
               coalesce(sum(request_bytes), 0)::BIGINT AS request_bytes,
               coalesce(sum(response_bytes), 0)::BIGINT AS response_bytes,
               count(*) FILTER (WHERE size_estimated) AS size_estimated_calls
        FROM calls WHERE month = $month AND tenant_id = $tenant
        GROUP BY operation ORDER BY units DESC, operation
        """,
        {"month": str(month), "tenant": tenant_id},
    )


def tenant_attribution(path: str | Path, month: Month) -> pl.DataFrame:
    """How each tenant's calls were attributed: the winning rule's name and its calls.

    Columns: tenant_id, attribution, calls, units; sorted by tenant and rule.
    """
    return _frame(
        path,
        """
        SELECT tenant_id, attribution, count(*) AS calls, sum(units)::BIGINT AS units
        FROM calls WHERE month = $month
        GROUP BY tenant_id, attribution ORDER BY tenant_id, attribution
        """,
        {"month": str(month)},
    )


def payload_sizes(path: str | Path, month: Month, size: str) -> pl.DataFrame:
    """How many calls of each tenant were billed on each exact size in bytes.

    Calls of unknown size (seen only in CloudTrail) are left out. Columns: tenant_id,
    bytes, calls; sorted by tenant and bytes. ``size`` is SQL, written in as it is: the
    expression ``rate.measured_bytes`` gives for the configured measure.
    """
    return _frame(
        path,
        f"""
        SELECT tenant_id, ({size})::BIGINT AS bytes, count(*) AS calls
        FROM calls WHERE month = $month AND ({size}) IS NOT NULL
        GROUP BY ALL ORDER BY tenant_id, bytes
        """,
        {"month": str(month)},
    )


def call_rates(path: str | Path, month: Month) -> pl.DataFrame:
    """Calls per second per tenant, over the seconds in which the tenant made calls.

    A guide for API rate limits: ``peak_rps`` is the busiest second of the month,
    ``p99_rps`` / ``p95_rps`` the busiest second after the top 1 % / 5 % of active
    seconds (nearest rank), ``busiest_second`` when the peak first happened (UTC, naive).
    Columns: tenant_id, active_seconds, peak_rps, p99_rps, p95_rps, busiest_second;
    busiest tenant first.
    """
    return _frame(
        path,
        """
        WITH seconds AS (
            SELECT tenant_id,
                   date_trunc('second', timezone('UTC', event_time)) AS second,
                   count(*) AS calls
            FROM calls WHERE month = $month GROUP BY ALL
        ), ranked AS (
            SELECT *, row_number() OVER (
                PARTITION BY tenant_id ORDER BY calls DESC, second
            ) AS rank
            FROM seconds
        )
        SELECT tenant_id,
               count(*) AS active_seconds,
               max(calls) AS peak_rps,
               quantile_disc(calls, 0.99) AS p99_rps,
               quantile_disc(calls, 0.95) AS p95_rps,
               max(second) FILTER (WHERE rank = 1) AS busiest_second
        FROM ranked GROUP BY tenant_id ORDER BY peak_rps DESC, tenant_id
        """,
        {"month": str(month)},
    )


@dataclass(frozen=True, slots=True)
class MonthUsage:
    """A billed month's per-tenant usage, as tenants may see it (``metering.publish``).

    ``tenants``: tenant_id, tenant_name, calls, units, request_bytes, response_bytes, amount,
    currency, share, peak_rps; ``days``: day, tenant_id, calls, units, cost_exact;
    ``operations``: tenant_id, operation, calls, units. ``closed``: the month is closed (else
    its figures are provisional: a later bill may change them).
    """

    month: Month
    run_id: str
    closed: bool
    tenants: pl.DataFrame
    days: pl.DataFrame
    operations: pl.DataFrame


def month_usage(path: str | Path, month: Month) -> MonthUsage | None:
    """``month``'s usage per tenant from its newest bill, or None if it was never billed."""
    params = {"month": str(month)}
    with connect(path, read_only=True) as con:
        tenants = polars(
            con.sql(
                """
                SELECT tenant_id, tenant_name, calls, units, request_bytes, response_bytes,
                       amount, currency, share, peak_rps, run_id
                FROM tenant_month WHERE month = $month ORDER BY tenant_id
                """,
                params=params,
            )
        )
        if not tenants.height:
            return None
        days = polars(
            con.sql(
                "SELECT day, tenant_id, calls, units, cost_exact FROM tenant_day "
                "WHERE month = $month ORDER BY day, tenant_id",
                params=params,
            )
        )
        operations = polars(
            con.sql(
                """
                SELECT tenant_id, operation, count(*) AS calls, sum(units)::BIGINT AS units
                FROM calls WHERE month = $month GROUP BY ALL ORDER BY tenant_id, operation
                """,
                params=params,
            )
        )
        state = month_state(con, month)
    run_id = str(tenants["run_id"][0])
    closed = state is not None and state.event == "closed"
    return MonthUsage(month, run_id, closed, tenants.drop("run_id"), days, operations)


# What ``meter export --format parquet`` writes, one file each, with the warehouse's own
# column types (amounts stay DECIMAL).
PARQUET_TABLES = ("tenant_month", "tenant_day", "calls")


def write_parquet(path: str | Path, month: Month, folder: Path) -> list[Path]:
    """``month``'s rows of ``PARQUET_TABLES`` as Parquet files in ``folder``, streamed by
    DuckDB (a month of 10^8 calls is never held), each written whole or not at all."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with connect(path, read_only=True) as con:
        for table in PARQUET_TABLES:
            target = folder / f"{table}.parquet"
            partial = folder / f".{table}.parquet.partial"
            con.execute(
                f"COPY (SELECT * FROM {table} WHERE month = $month) TO '{_quoted(partial)}' "
                "(FORMAT parquet, COMPRESSION zstd)",
                {"month": str(month)},
            )
            partial.replace(target)
            written.append(target)
    return written


def _quoted(path: Path) -> str:
    """A path inside a SQL string literal (COPY takes no parameter for it)."""
    return str(path).replace("'", "''")
