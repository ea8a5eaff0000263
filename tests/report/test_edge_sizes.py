"""The payload-size SQL of the edge charts applies the billing rule exactly."""

from __future__ import annotations

import polars as pl
import pytest

from metering.config import Config
from metering.rate.units import measured_bytes
from metering.store import connect
from metering.store.queries import MEASURED_BYTES, payload_sizes


@pytest.mark.parametrize("measure", ["request", "response", "request+response", "max"])
def test_the_sql_size_is_the_billing_rule(small: Config, measure: str) -> None:
    """payload_sizes measures calls in SQL exactly as metering.rate.units does in polars."""
    with connect(small.warehouse.path, read_only=True) as con:
        calls = con.sql(
            "SELECT tenant_id, request_bytes, response_bytes FROM calls WHERE month = '2026-10'"
        ).pl()
    expected = (
        calls.select("tenant_id", bytes=measured_bytes(measure))
        .group_by("tenant_id", "bytes")
        .agg(calls=pl.len().cast(pl.Int64))
        .sort("tenant_id", "bytes")
    )
    assert set(MEASURED_BYTES) == {"request", "response", "request+response", "max"}
    assert payload_sizes(small.warehouse.path, "2026-10", measure).equals(expected)
