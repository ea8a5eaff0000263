"""The payload sizes behind the edge charts are the sizes calls are billed on."""

from __future__ import annotations

import pytest

from metering.config import Config
from metering.rate.units import MEASURED_BYTES, measured_bytes, units_of
from metering.store import connect
from metering.store.queries import payload_sizes

PYTHON_SIZE = {
    "request": lambda req, resp: req,
    "response": lambda req, resp: resp,
    "request+response": lambda req, resp: req + resp,
    "max": max,
}


@pytest.mark.parametrize("measure", sorted(MEASURED_BYTES))
def test_the_sql_size_is_the_billing_rule(small: Config, measure: str) -> None:
    with connect(small.warehouse.path, read_only=True) as con:
        calls = con.execute(
            "SELECT tenant_id, request_bytes, response_bytes, units FROM calls "
            "WHERE month = '2026-10' AND request_bytes IS NOT NULL"
        ).fetchall()
    expected: dict[tuple[str, int], int] = {}
    for tenant, req, resp, units in calls:
        size = PYTHON_SIZE[measure](req, resp)
        expected[(tenant, size)] = expected.get((tenant, size), 0) + 1
        if measure == small.pricing.measure:
            assert units == units_of(size, small.pricing.block_bytes)
    got = payload_sizes(small.warehouse.path, "2026-10", measured_bytes(measure))  # type: ignore[arg-type]
    assert {(t, b): n for t, b, n in got.iter_rows()} == expected
    assert got.select("tenant_id", "bytes").rows() == sorted(expected)
