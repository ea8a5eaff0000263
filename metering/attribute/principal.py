"""Rule ``principal``: a regex with a ``tenant`` group over the caller's identity.

Tried on ``userIdentity.arn``, then the session issuer's ARN, then ``sourceIdentity``;
the first that matches names the tenant. The warehouse engine runs the regex (RE2 syntax:
no look-arounds or back-references; meter says so when a pattern uses them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from metering.config import PrincipalRule, Rule
from metering.errors import ConfigError
from metering.sql import literal

IDENTITY_COLUMNS = ("user_arn", "issuer_arn", "source_identity")


def probe(rule: PrincipalRule) -> str:
    """A constant SQL expression that fails where the engine cannot run the pattern."""
    return f"regexp_extract('', {literal(rule.pattern)})"


def check_patterns(
    rules: Sequence[Rule], refusal: Callable[[str], str | None], config: Path | None
) -> None:
    """Refuse principal patterns the engine's regex dialect (RE2) cannot run (``refusal``
    says why the engine cannot evaluate an expression)."""
    for number, rule in enumerate(rules, start=1):
        if isinstance(rule, PrincipalRule) and (why := refusal(probe(rule))):
            raise ConfigError(
                f"{config}: attribution rule {number} (principal): pattern {rule.pattern!r} "
                f"uses regex syntax meter cannot run (look-arounds and back-references are "
                f"not supported): {why}"
            )


def principal(rule: PrincipalRule) -> str:
    group = re.compile(rule.pattern).groupindex["tenant"]
    pattern = literal(rule.pattern)
    tries = ", ".join(
        f"nullif(regexp_extract({column}, {pattern}, {group}), '')" for column in IDENTITY_COLUMNS
    )
    return f"coalesce({tries})"
