"""Rule ``principal``: a regex with a ``tenant`` group over the caller's identity.

Tried on ``userIdentity.arn``, then the session issuer's ARN, then ``sourceIdentity``;
the first that matches names the tenant.
"""

from __future__ import annotations

import re

import polars as pl

from metering.config import PrincipalRule
from metering.errors import ConfigError

IDENTITY_COLUMNS = ("user_arn", "issuer_arn", "source_identity")


def principal(rule: PrincipalRule) -> pl.Expr:
    group = re.compile(rule.pattern).groupindex["tenant"]
    try:
        pl.select(pl.lit("").str.extract(rule.pattern, group))
    except pl.exceptions.ComputeError as exc:
        raise ConfigError(
            f"attribution rule principal: pattern {rule.pattern!r} uses regex syntax meter "
            f"cannot run (look-arounds and back-references are not supported): {exc}"
        ) from None
    return pl.coalesce(
        pl.col(column).str.extract(rule.pattern, group).replace("", None)
        for column in IDENTITY_COLUMNS
    )
