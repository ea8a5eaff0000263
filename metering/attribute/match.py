"""Join the two sources into calls, and keep the month's billable ones (SPEC 2, 3, 5).

A call counts once if either source has it: CloudTrail events are unique by ``eventID``
(duplicate deliveries) and by ``requestID``; metering records by ``request_id``. Which
duplicate survives never depends on input order, so shuffled or re-split inputs bill the
same.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import polars as pl

from metering.schemas import EVENTS, RECORDS, TS, Counters, empty


def _unique(frame: pl.DataFrame, key: str) -> pl.DataFrame:
    """One row per non-null ``key`` (the smallest row wins); rows with a null key kept."""
    keyed = frame.filter(pl.col(key).is_not_null())
    canonical = keyed.sort(keyed.columns, nulls_last=True).unique(subset=key, keep="first")
    return pl.concat([canonical, frame.filter(pl.col(key).is_null())])


def match(
    records: pl.DataFrame | None, events: pl.DataFrame | None
) -> tuple[pl.DataFrame, Counters]:
    """One row per distinct call, from either source or both.

    Columns: the EVENTS columns, ``ts``/``tenant_id``/sizes/``principal_arn`` of the
    record (prefixed ``record_`` where names clash), ``call_time`` and ``source``.
    """
    counters = Counters()
    records = empty(RECORDS) if records is None else records
    events = empty(EVENTS) if events is None else events

    unique_records = _unique(records, "request_id")
    unique_events = _unique(_unique(events, "event_id"), "request_id")
    counters.duplicates = (len(records) - len(unique_records)) + (len(events) - len(unique_events))

    calls = unique_events.with_columns(pl.lit(True).alias("_in_trail")).join(
        unique_records.rename(
            {
                "tenant_id": "record_tenant_id",
                "operation": "record_operation",
                "resource_arn": "record_resource_arn",
            }
        ).with_columns(pl.lit(True).alias("_in_records")),
        on="request_id",
        how="full",
        coalesce=True,
        nulls_equal=False,
    )
    in_trail = pl.col("_in_trail").fill_null(False)
    in_records = pl.col("_in_records").fill_null(False)
    calls = calls.with_columns(
        call_time=pl.coalesce("event_time", "ts").cast(TS),
        operation=pl.coalesce("operation", "record_operation"),
        resource_arn=pl.coalesce("resource_arn", "record_resource_arn"),
        source=pl.when(in_trail & in_records)
        .then(pl.lit("both"))
        .when(in_trail)
        .then(pl.lit("cloudtrail"))
        .otherwise(pl.lit("metering")),
    ).drop("_in_trail", "_in_records", "record_operation", "record_resource_arn")
    counters.joined = calls.filter(pl.col("source") == "both").height
    return calls, counters


def select_month(
    calls: pl.DataFrame,
    start: datetime,
    end: datetime,
    operations: Collection[str],
    bill_errors: bool,
) -> tuple[pl.DataFrame, Counters]:
    """The calls to bill: in [start, end), a billable operation, and not rejected by AWS
    (unless ``bill_errors``). Each call left out is counted in one bucket."""
    counters = Counters()
    in_month = pl.col("call_time").is_between(
        pl.lit(start).cast(TS), pl.lit(end).cast(TS), closed="left"
    )
    month_calls = calls.filter(in_month)
    counters.out_of_month = calls.height - month_calls.height

    billable = month_calls.filter(pl.col("operation").is_in(list(operations)))
    counters.skipped_operations = month_calls.height - billable.height

    errored = pl.col("error_code").is_not_null()
    counters.errored_calls = billable.filter(errored).height
    kept = billable if bill_errors else billable.filter(~errored)
    counters.calls_billed = kept.height
    return kept, counters


def reconcile(calls: pl.DataFrame, start: datetime, end: datetime) -> pl.DataFrame:
    """Per day of the month: calls seen in both sources, only in CloudTrail, only in records."""
    in_month = calls.filter(
        pl.col("call_time").is_between(pl.lit(start).cast(TS), pl.lit(end).cast(TS), closed="left")
    )
    return (
        in_month.group_by(day=pl.col("call_time").dt.date())
        .agg(
            matched=(pl.col("source") == "both").sum(),
            cloudtrail_only=(pl.col("source") == "cloudtrail").sum(),
            metering_only=(pl.col("source") == "metering").sum(),
        )
        .sort("day")
    )
