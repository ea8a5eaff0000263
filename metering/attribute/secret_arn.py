"""Rule ``secret_arn``: one Secrets Manager secret per tenant."""

from __future__ import annotations

from metering.config import SecretArnRule
from metering.sql import DUCKDB, Dialect, lookup


def secret_arn(rule: SecretArnRule, dialect: Dialect = DUCKDB) -> str:
    return lookup("secret_arn", rule.map, dialect)
