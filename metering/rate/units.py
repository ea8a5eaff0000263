"""Per-call units (SPEC 1.2): ``max(1, ceil(bytes / block_bytes))``, rounded per call.

The rule is SQL, run by the warehouse engine over every call; ``units_of`` is the same rule
for one size, for explanations and tests.
"""

from __future__ import annotations

from metering.config import Measure
from metering.sql import DUCKDB, Dialect

MEASURED_BYTES: dict[str, str] = {
    "request": "request_bytes",
    "response": "response_bytes",
    "request+response": "(request_bytes + response_bytes)",
    "max": "greatest(request_bytes, response_bytes)",
}


def measured_bytes(measure: Measure) -> str:
    """SQL: the bytes a call is billed on (NULL when its size is unknown)."""
    return MEASURED_BYTES[measure]


def call_units(
    measure: Measure, block_bytes: int, unknown_size_units: int, dialect: Dialect = DUCKDB
) -> str:
    """SQL: units of each call; calls of unknown size get ``unknown_size_units``.

    Integer arithmetic only: ceil(b / k) == (b + k - 1) // k for b >= 0.
    """
    size = measured_bytes(measure)
    blocks = dialect.div(f"({size} + {int(block_bytes) - 1})", str(int(block_bytes)))
    return (
        f"CASE WHEN {size} IS NULL THEN {dialect.cast(str(int(unknown_size_units)), 'BIGINT')} "
        f"ELSE {dialect.cast(f'greatest(1, {blocks})', 'BIGINT')} END"
    )


def units_of(nbytes: int, block_bytes: int) -> int:
    """The same rule for one size."""
    return max(1, -(-nbytes // block_bytes))


def measured_of(measure: Measure, request_bytes: int, response_bytes: int) -> int:
    """``measured_bytes`` for one call."""
    return {
        "request": request_bytes,
        "response": response_bytes,
        "request+response": request_bytes + response_bytes,
        "max": max(request_bytes, response_bytes),
    }[measure]
