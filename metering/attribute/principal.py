"""Rule ``principal``: a regex with a ``tenant`` group over the caller's identity.

Tried on ``userIdentity.arn``, then the session issuer's ARN, then ``sourceIdentity``;
the first that matches names the tenant. The warehouse engine runs the regex (RE2 syntax:
no look-arounds or back-references; meter says so when a pattern uses them).
"""

from __future__ import annotations

import re

from metering.config import PrincipalRule
from metering.sql import literal

IDENTITY_COLUMNS = ("user_arn", "issuer_arn", "source_identity")


def probe(rule: PrincipalRule) -> str:
    """A constant SQL expression that fails where the engine cannot run the pattern."""
    return f"regexp_extract('', {literal(rule.pattern)})"


def principal(rule: PrincipalRule) -> str:
    group = re.compile(rule.pattern).groupindex["tenant"]
    pattern = literal(rule.pattern)
    tries = ", ".join(
        f"nullif(regexp_extract({column}, {pattern}, {group}), '')" for column in IDENTITY_COLUMNS
    )
    return f"coalesce({tries})"
