"""Which calls are billed, and for how many units (SPEC 1.1, 1.2, 1.6, 5).

``rated`` is the step: every joined call with its units and whether it is in the month
(its ``eventTime``, or its record's ``ts``, in UTC) and billed (in the month, a billable
operation, and not rejected by AWS unless ``bill_errors``: a call erred when either source
says so, whichever saw it). ``counts`` gives the counters
of SPEC 5 that the join and this selection decide.
"""

from __future__ import annotations

from collections.abc import Collection

import polars as pl

from metering.config import PricingConfig
from metering.month import Month
from metering.rate.units import call_units, measured_of, units_of
from metering.schemas import RATED, QuarantineEntry, Relation
from metering.sql import DUCKDB, Dialect, timestamp

# What ``counts`` gives.
COUNTS: dict[str, pl.DataType] = {
    name: pl.Int64()
    for name in (
        "joined",
        "unique_events",
        "unique_records",
        "out_of_month",
        "skipped_operations",
        "errored_calls",
        "conflicting_duplicates",
        "error_disagreements",
        "in_month",
    )
}


# SQL condition: a call both sources saw, only one of them failing (SPEC 1.1: it erred).
DISAGREE = "source = 'both' AND error_seen_by IN ('cloudtrail', 'metering')"


def _billable(operations: Collection[str], dialect: Dialect = DUCKDB) -> str:
    """SQL condition: a billable operation."""
    return f"operation IN ({', '.join(dialect.literal(op) for op in sorted(operations))})"


def rated(
    joined: Relation, pricing: PricingConfig, month: Month, dialect: Dialect = DUCKDB
) -> Relation:
    """Every call of ``joined`` (JOINED), rated (RATED)."""
    units = call_units(pricing.measure, pricing.block_bytes, pricing.unknown_size_units, dialect)
    start, end = timestamp(month.start, dialect), timestamp(month.end, dialect)
    in_month = f"call_time >= {start} AND call_time < {end}"
    billed = f"{in_month} AND {_billable(pricing.operations, dialect)}"
    if not pricing.bill_errors:
        billed += " AND error_code IS NULL"
    sql = f"""
        SELECT request_id, event_id, call_time AS event_time, tenant_id, operation,
               error_code, error_seen_by, request_bytes, response_bytes, {units} AS units,
               attribution,
               source, source = 'cloudtrail' AS size_estimated, conflict,
               {in_month} AS in_month, {billed} AS billed, resource_arn
        FROM {joined}
    """
    return Relation.query(sql, RATED)


def counts(calls: Relation, operations: Collection[str], dialect: Dialect = DUCKDB) -> Relation:
    """The counters of SPEC 5 that the join and the month's selection decide, over
    ``calls`` (RATED), in one row (COUNTS)."""
    ok = _billable(operations, dialect)
    sql = f"""
        SELECT
            count(*) FILTER (WHERE source = 'both') AS joined,
            count(*) FILTER (WHERE source <> 'metering') AS unique_events,
            count(*) FILTER (WHERE source <> 'cloudtrail') AS unique_records,
            count(*) FILTER (WHERE NOT in_month) AS out_of_month,
            count(*) FILTER (WHERE in_month AND NOT ({ok})) AS skipped_operations,
            count(*) FILTER (WHERE in_month AND {ok} AND error_code IS NOT NULL)
                AS errored_calls,
            count(*) FILTER (WHERE in_month AND conflict IS NOT NULL) AS conflicting_duplicates,
            count(*) FILTER (WHERE in_month AND {DISAGREE}) AS error_disagreements,
            count(*) FILTER (WHERE in_month) AS in_month
        FROM {calls}
    """
    return Relation.query(sql, COUNTS)


def conflicts(calls: Relation) -> Relation:
    """The month's calls whose copies disagree, and how: request_id, event_id, reason."""
    sql = f"""
        SELECT request_id, event_id, conflict AS reason FROM {calls}
        WHERE in_month AND conflict IS NOT NULL ORDER BY request_id, event_id
    """
    return Relation.query(
        sql, {"request_id": pl.Utf8(), "event_id": pl.Utf8(), "reason": pl.Utf8()}
    )


def withheld_units(
    quarantine: Collection[QuarantineEntry], pricing: PricingConfig, month: Month
) -> int:
    """Units the month's metering records quarantined for a size past its bound would
    have billed (of those the quarantine lists: ``limits.MAX_LISTED_PER_FILE`` per file)."""
    billable = set(pricing.operations)
    return sum(
        units_of(
            measured_of(pricing.measure, w.request_bytes, w.response_bytes), pricing.block_bytes
        )
        for q in quarantine
        if (w := q.withheld) is not None and w.ts[:7] == str(month) and w.operation in billable
    )
