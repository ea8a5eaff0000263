"""Rule ``metering_record``: the call's own metering record names its tenant."""

from __future__ import annotations

from metering.config import MeteringRecordRule
from metering.sql import DUCKDB, Dialect


def metering_record(rule: MeteringRecordRule, dialect: Dialect = DUCKDB) -> str:
    return "record_tenant_id"
