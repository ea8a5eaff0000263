"""Rule ``principal``: a regex with a ``tenant`` group over the caller's identity.

Tried on ``userIdentity.arn``, then the session issuer's ARN, then ``sourceIdentity``;
the first that matches names the tenant. The engine runs the regex: DuckDB in RE2 syntax
(no look-arounds or back-references; meter says so when a pattern uses them), Spark in
Java's, into which ``java_pattern`` writes it so that it matches exactly what RE2 matches
(and refuses what the two would read differently).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

from metering.config import PrincipalRule, Rule
from metering.errors import ConfigError
from metering.sql import DUCKDB, Dialect

IDENTITY_COLUMNS = ("user_arn", "issuer_arn", "source_identity")

# Escapes RE2 and Java read alike (besides an escaped punctuation character).
_SAME_ESCAPES = set("dDwWAzpPxtnrfa")
# RE2's \s (Java's also takes \x0B, the vertical tab): spelled out for Java.
_SPACE = r"\t\n\f\r "
_GROUP_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_FLAGS = re.compile(r"\(\?([a-zA-Z]*)(?:-([a-zA-Z]*))?([:)])")


def probe(rule: PrincipalRule, dialect: Dialect = DUCKDB) -> str:
    """A constant SQL expression that fails where the engine cannot run the pattern."""
    return f"regexp_extract('', {_pattern(rule, dialect)})"


def check_patterns(
    rules: Sequence[Rule],
    refusal: Callable[[str], str | None],
    config: Path | None,
    dialect: Dialect = DUCKDB,
) -> None:
    """Refuse principal patterns the engine's regex dialect (RE2) cannot run (``refusal``
    says why the engine cannot evaluate an expression); for Spark (``dialect``), also those
    Java's regex would read differently from RE2."""
    for number, rule in enumerate(rules, start=1):
        if not isinstance(rule, PrincipalRule):
            continue
        where = f"{config}: attribution rule {number} (principal): pattern {rule.pattern!r}"
        if why := refusal(probe(rule)):
            raise ConfigError(
                f"{where} uses regex syntax meter cannot run (look-arounds and "
                f"back-references are not supported): {why}"
            )
        if dialect.spark:
            try:
                java_pattern(rule.pattern)
            except ValueError as exc:
                raise ConfigError(
                    f"{where} would match differently on Spark (Java regex) than on DuckDB "
                    f"(RE2): {exc}; write it without that construct"
                ) from None


def java_pattern(pattern: str) -> str:
    """``pattern`` (RE2) spelled so that Java's regex matches exactly the same text, or
    ValueError saying which construct the two read differently.

    ``(?P<name>`` becomes ``(?<name>``; ``$`` (outside a class) ``\\z``, since Java's ``$``
    also matches before a last line end; ``\\s`` RE2's five spaces; ``(?i)`` Unicode case
    folding, as RE2's; and the pattern runs with UNIX_LINES, so ``.`` stops only at ``\\n``.
    """
    out: list[str] = ["(?d)"]
    i, in_class, n = 0, False, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\":
            if i + 1 >= n:
                raise ValueError("a trailing backslash")
            e = pattern[i + 1]
            if e == "Q":
                end = pattern.find("\\E", i + 2)
                stop = n if end < 0 else end + 2
                out.append(pattern[i:stop] + ("" if end >= 0 else "\\E"))
                i = stop
                continue
            if e == "s":
                out.append(_SPACE if in_class else f"[{_SPACE}]")
            elif e == "S" and not in_class:
                out.append(f"[^{_SPACE}]")
            elif e in _SAME_ESCAPES or not e.isalnum():
                out.append(c + e)
            else:
                raise ValueError(f"the escape \\{e}")
            i += 2
            continue
        if in_class:
            if c == "[" or pattern.startswith("&&", i):
                raise ValueError(f"{pattern[i : i + 2]!r} inside a character class")
            if c == "]":
                in_class = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            start = i + 2 if pattern.startswith("[^", i) else i + 1
            if start < n and pattern[start] == "]":
                raise ValueError("a character class that starts with ]")
            out.append(pattern[i:start])
            in_class, i = True, start
            continue
        if c == "$":
            out.append("\\z")
        elif pattern.startswith("(?P<", i):
            name = pattern[i + 4 : pattern.find(">", i)]
            if not _GROUP_NAME.fullmatch(name):
                raise ValueError(f"the group name {name!r} (Java takes letters and digits)")
            out.append("(?<")
            i += 4
            continue
        elif pattern.startswith("(?", i) and (flags := _FLAGS.match(pattern, i)):
            on, off, close = flags.group(1), flags.group(2) or "", flags.group(3)
            if set(on + off) - set("is"):
                raise ValueError(f"the flags {flags.group(0)!r} (only i and s read alike)")
            on = on.replace("i", "iu")
            out.append(f"(?{on}{'-' + off if off else ''}{close}")
            i = flags.end()
            continue
        elif pattern.startswith("(?", i):
            raise ValueError(f"the group {pattern[i : i + 4]!r}")
        elif pattern.startswith("{,", i):
            raise ValueError("a repetition {,n}")
        else:
            out.append(c)
        i += 1
    return "".join(out)


def _pattern(rule: PrincipalRule, dialect: Dialect) -> str:
    return dialect.literal(java_pattern(rule.pattern) if dialect.spark else rule.pattern)


def principal(rule: PrincipalRule, dialect: Dialect = DUCKDB) -> str:
    group = re.compile(rule.pattern).groupindex["tenant"]
    pattern = _pattern(rule, dialect)
    tries = ", ".join(
        f"nullif(regexp_extract({column}, {pattern}, {group}), '')" for column in IDENTITY_COLUMNS
    )
    return f"coalesce({tries})"
