"""Rule ``resource_arn``: one Aurora cluster per tenant."""

from __future__ import annotations

from metering.config import ResourceArnRule
from metering.sql import DUCKDB, Dialect, lookup


def resource_arn(rule: ResourceArnRule, dialect: Dialect = DUCKDB) -> str:
    return lookup("resource_arn", rule.map, dialect)
