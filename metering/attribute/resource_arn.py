"""Rule ``resource_arn``: one Aurora cluster per tenant."""

from __future__ import annotations

import polars as pl

from metering.config import ResourceArnRule


def resource_arn(rule: ResourceArnRule) -> pl.Expr:
    return pl.col("resource_arn").replace_strict(rule.map, default=None, return_dtype=pl.Utf8)
