"""Rule ``metering_record``: the call's own metering record names its tenant."""

from __future__ import annotations

from metering.config import MeteringRecordRule


def metering_record(rule: MeteringRecordRule) -> str:
    return "record_tenant_id"
