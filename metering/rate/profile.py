"""Monthly and daily cost profiles of the rated calls: their totals (SQL over a RATED
relation), then the money, priced exactly in Python (``cost_profile``, ``day_costs``)."""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from metering.rate import Bill
from metering.rate.select import DISAGREE
from metering.schemas import AMOUNT_DIGITS, UNATTRIBUTED, Relation, decimal_column
from metering.sql import DUCKDB, Dialect, utc_day, utc_second

UNATTRIBUTED_NAME = "Unattributed calls"


def tenant_totals(calls: Relation, dialect: Dialect = DUCKDB) -> Relation:
    """Per tenant, of its billed calls: calls, units, bytes, estimated-size calls and peak
    calls per second."""
    big = dialect.cast
    sql = f"""
        WITH billed AS (SELECT * FROM {calls} WHERE billed),
        per_second AS (
            SELECT tenant_id, {utc_second("event_time", dialect)} AS second, count(*) AS n
            FROM billed GROUP BY ALL
        ),
        peak AS (SELECT tenant_id, max(n) AS peak_rps FROM per_second GROUP BY ALL)
        SELECT tenant_id,
               count(*) AS calls,
               {big("sum(units)", "BIGINT")} AS units,
               {big("coalesce(sum(request_bytes), 0)", "BIGINT")} AS request_bytes,
               {big("coalesce(sum(response_bytes), 0)", "BIGINT")} AS response_bytes,
               count(*) FILTER (WHERE size_estimated) AS size_estimated_calls,
               any_value(peak.peak_rps) AS peak_rps
        FROM billed JOIN peak USING (tenant_id)
        GROUP BY tenant_id ORDER BY tenant_id
    """
    columns = ("calls", "units", "request_bytes", "response_bytes", "size_estimated_calls")
    return Relation.query(
        sql,
        {"tenant_id": pl.Utf8(), **{c: pl.Int64() for c in columns}, "peak_rps": pl.Int64()},
    )


def tenant_days(calls: Relation, dialect: Dialect = DUCKDB) -> Relation:
    """Per tenant and day, of its billed calls: calls and units (their cost is priced in
    Python)."""
    sql = f"""
        SELECT {utc_day("event_time", dialect)} AS day, tenant_id, count(*) AS calls,
               {dialect.cast("sum(units)", "BIGINT")} AS units
        FROM {calls} WHERE billed GROUP BY ALL ORDER BY day, tenant_id
    """
    return Relation.query(
        sql, {"day": pl.Date(), "tenant_id": pl.Utf8(), "calls": pl.Int64(), "units": pl.Int64()}
    )


def reconciliation(calls: Relation, dialect: Dialect = DUCKDB) -> Relation:
    """Per day of the month: calls in both sources, only in CloudTrail, only in records,
    and calls in both that only one source saw fail (``select.DISAGREE``)."""
    sql = f"""
        SELECT {utc_day("event_time", dialect)} AS day,
               count(*) FILTER (WHERE source = 'both') AS matched,
               count(*) FILTER (WHERE source = 'cloudtrail') AS cloudtrail_only,
               count(*) FILTER (WHERE source = 'metering') AS metering_only,
               count(*) FILTER (WHERE {DISAGREE}) AS error_disagreements
        FROM {calls} WHERE in_month
        GROUP BY day ORDER BY day
    """
    counts = ("matched", "cloudtrail_only", "metering_only", "error_disagreements")
    return Relation.query(sql, {"day": pl.Date(), **{c: pl.Int64() for c in counts}})


def cost_profile(
    totals: pl.DataFrame, bill: Bill, registry: pl.DataFrame
) -> tuple[pl.DataFrame, list[str]]:
    """The tenant lines (``tenant_totals`` with their money), named from the registry; and
    the tenants billed that the registry lacks."""
    names = registry.select("tenant_id", "tenant_name", "cost_center", registered=pl.lit(True))
    rows = totals.join(names, on="tenant_id", how="left")
    unregistered = sorted(
        t for t in rows.filter(pl.col("registered").is_null())["tenant_id"] if t != UNATTRIBUTED
    )
    zero = Decimal(0)
    lines = [bill.lines.get(t) for t in rows["tenant_id"]]
    rows = rows.with_columns(
        currency=pl.lit(bill.currency),
        tenant_name=pl.when(pl.col("tenant_id") == UNATTRIBUTED)
        .then(pl.lit(UNATTRIBUTED_NAME))
        .otherwise(pl.col("tenant_name").fill_null("")),
        cost_center=pl.col("cost_center").fill_null(""),
        registered=pl.col("registered").fill_null(False),
        cost_exact=decimal_column([x.cost_exact if x else zero for x in lines], 38, 12),
        amount=decimal_column([x.amount if x else zero for x in lines], *AMOUNT_DIGITS),
        share=decimal_column([bill.share(t) for t in rows["tenant_id"]], 18, 12),
    )
    return rows.sort("tenant_id"), unregistered


def day_costs(days: pl.DataFrame, bill: Bill) -> pl.DataFrame:
    """``tenant_days`` with each day's exact cost."""
    costs = [bill.day_cost(t, u) for t, u in days.select("tenant_id", "units").iter_rows()]
    return days.with_columns(cost_exact=decimal_column(costs, 38, 12))
