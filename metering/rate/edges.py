"""Payload-edge savings: units billed only because a call went just past a block edge.

A call of ``b`` bytes is billed ``max(1, ceil(b / block))`` units (SPEC 1.2), so a call of
``block + 1`` bytes costs twice a call of ``block`` bytes. A call is *just past an edge*
when it is over at least one block and its last, partly filled block holds at most
``margin_bytes`` (default a tenth of a block: 3,276 bytes of a 32 KiB block). Trimming
such a call under the edge saves exactly one unit.
"""

from __future__ import annotations

import polars as pl

from metering.errors import UsageError

__all__ = ["EDGE_SAVINGS", "default_margin", "edge_savings", "near_edge"]

# Columns of ``edge_savings``.
EDGE_SAVINGS: dict[str, pl.DataType] = {
    "tenant_id": pl.Utf8(),
    "calls": pl.Int64(),  # calls of known size
    "units": pl.Int64(),  # their billed units
    "near_edge_calls": pl.Int64(),  # calls just past an edge
    "near_edge_units": pl.Int64(),  # the units those calls are billed
    "units_saved": pl.Int64(),  # units saved if they were trimmed under the edge
}


def default_margin(block_bytes: int) -> int:
    """How far past an edge still counts as *just past*: a tenth of a block, in bytes."""
    return block_bytes // 10


def near_edge(size: pl.Expr, block_bytes: int, margin_bytes: int) -> pl.Expr:
    """True for sizes over at least one block that overshoot their last edge by at most
    ``margin_bytes`` bytes (1 <= size - k * block <= margin for some k >= 1)."""
    overshoot = (size - 1) % block_bytes + 1  # bytes in the last, partly filled block
    return (size > block_bytes) & (overshoot <= margin_bytes)


def edge_savings(
    sizes: pl.DataFrame, block_bytes: int, margin_bytes: int | None = None
) -> pl.DataFrame:
    """Per tenant: calls just past a block edge and the units trimming them would save.

    ``sizes`` holds ``tenant_id``, ``bytes`` (the measured size of a call) and optionally
    ``calls`` (how many calls had that size; 1 per row when absent). Returns the
    ``EDGE_SAVINGS`` columns, one row per tenant, most units saved first (ties by tenant).
    """
    if block_bytes <= 0:
        raise UsageError(f"block_bytes must be > 0, not {block_bytes}")
    margin = default_margin(block_bytes) if margin_bytes is None else margin_bytes
    if not 0 <= margin < block_bytes:
        raise UsageError(f"margin_bytes must be in [0, {block_bytes}), not {margin}")
    if "calls" not in sizes.columns:
        sizes = sizes.with_columns(calls=pl.lit(1, pl.Int64))
    weight = pl.col("calls")
    size = pl.col("bytes")
    units = ((size + (block_bytes - 1)) // block_bytes).clip(lower_bound=1)
    near = near_edge(size, block_bytes, margin)
    out = (
        sizes.lazy()
        .group_by("tenant_id")
        .agg(
            calls=weight.sum(),
            units=(units * weight).sum(),
            near_edge_calls=weight.filter(near).sum(),
            near_edge_units=(units * weight).filter(near).sum(),
        )
        .with_columns(units_saved=pl.col("near_edge_calls"))
        .sort(["units_saved", "tenant_id"], descending=[True, False])
        .collect()
    )
    return out.cast(EDGE_SAVINGS).select(list(EDGE_SAVINGS))  # type: ignore[arg-type]
