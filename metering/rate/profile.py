"""Monthly and daily cost profiles from rated calls."""

from __future__ import annotations

import polars as pl

from metering.rate import Bill


def tenant_totals(calls: pl.DataFrame) -> pl.DataFrame:
    """Per tenant: calls, units, bytes, estimated-size calls and peak calls per second."""
    peak = (
        calls.group_by("tenant_id", pl.col("call_time").dt.truncate("1s"))
        .len()
        .group_by("tenant_id")
        .agg(peak_rps=pl.col("len").max())
    )
    totals = calls.group_by("tenant_id").agg(
        calls=pl.len(),
        units=pl.col("units").sum(),
        request_bytes=pl.col("request_bytes").fill_null(0).sum(),
        response_bytes=pl.col("response_bytes").fill_null(0).sum(),
        size_estimated_calls=pl.col("size_estimated").sum(),
    )
    return totals.join(peak, on="tenant_id").sort("tenant_id")


def tenant_days(calls: pl.DataFrame, bill: Bill) -> pl.DataFrame:
    """Per tenant and day: calls, units, and the exact cost at the line's blended rate.

    Under ``share_pro_rata`` the unattributed units carry no cost of their own (it is in
    the tenants' rate), so their days show cost 0.
    """
    days = (
        calls.group_by("tenant_id", day=pl.col("call_time").dt.date())
        .agg(calls=pl.len(), units=pl.col("units").sum())
        .sort("day", "tenant_id")
    )
    costs = [
        bill.day_cost(tenant, units)
        for tenant, units in days.select("tenant_id", "units").iter_rows()
    ]
    return days.with_columns(cost_exact=pl.Series(costs, dtype=pl.Decimal(38, 12)))
