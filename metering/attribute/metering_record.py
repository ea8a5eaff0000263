"""Rule ``metering_record``: the call's own metering record names its tenant."""

from __future__ import annotations

import polars as pl

from metering.config import MeteringRecordRule


def metering_record(rule: MeteringRecordRule) -> pl.Expr:
    return pl.col("record_tenant_id")
