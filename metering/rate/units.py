"""Per-call units (SPEC 1.2): ``max(1, ceil(bytes / block_bytes))``, rounded per call."""

from __future__ import annotations

import polars as pl

from metering.config import Measure


def measured_bytes(measure: Measure) -> pl.Expr:
    """The bytes a call is billed on, from its request and response sizes."""
    request, response = pl.col("request_bytes"), pl.col("response_bytes")
    match measure:
        case "request":
            return request
        case "response":
            return response
        case "request+response":
            return request + response
        case "max":
            return pl.max_horizontal(request, response)


def call_units(measure: Measure, block_bytes: int, unknown_size_units: int) -> pl.Expr:
    """Units of each call; calls of unknown size get ``unknown_size_units``.

    Integer arithmetic only: ceil(b / k) == (b + k - 1) // k for b >= 0.
    """
    size = measured_bytes(measure)
    blocks = ((size + (block_bytes - 1)) // block_bytes).clip(lower_bound=1)
    return pl.when(size.is_null()).then(pl.lit(unknown_size_units)).otherwise(blocks).cast(pl.Int64)


def units_of(nbytes: int, block_bytes: int) -> int:
    """The same rule for one size, for explanations and tests."""
    return max(1, -(-nbytes // block_bytes))
