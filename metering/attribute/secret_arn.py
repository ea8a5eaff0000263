"""Rule ``secret_arn``: one Secrets Manager secret per tenant."""

from __future__ import annotations

from metering.config import SecretArnRule
from metering.sql import lookup


def secret_arn(rule: SecretArnRule) -> str:
    return lookup("secret_arn", rule.map)
