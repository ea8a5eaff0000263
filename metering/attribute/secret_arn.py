"""Rule ``secret_arn``: one Secrets Manager secret per tenant."""

from __future__ import annotations

import polars as pl

from metering.config import SecretArnRule


def secret_arn(rule: SecretArnRule) -> pl.Expr:
    return pl.col("secret_arn").replace_strict(rule.map, default=None, return_dtype=pl.Utf8)
