"""Checks every collector runs on the strings it keeps, in bulk (polars expressions).

The bounds are ``metering.limits``'; each ``Check`` says where a row breaks a rule and
why. Collectors add their own checks and ``split`` a frame into the rows that keep every
rule and the others, each with the reason of the first rule it breaks. The reasons (text
built per row) are worked out only for the rows that break a rule: a few in a million.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import polars as pl

from metering import limits

# C0 controls, DEL and C1 controls: never part of an id, a name or an operation.
CONTROL = r"[\x00-\x1f\x7f-\x9f]"


@dataclass(frozen=True, slots=True)
class Check:
    """A rule for a row: ``broken`` is true where the row breaks it (null counts as kept),
    ``reason`` says why (a string expression, read only on the rows that break it)."""

    broken: pl.Expr
    reason: pl.Expr


def split(frame: pl.DataFrame, checks: Sequence[Check]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(the rows of ``frame`` that keep every rule, the others with a ``_reason`` column:
    why the first rule they break is broken), both in ``frame``'s order."""
    flagged = frame.with_columns(
        _broken=pl.any_horizontal([check.broken.fill_null(False) for check in checks])
    )
    if not flagged["_broken"].any():
        return frame, frame.clear().with_columns(_reason=pl.lit(None, pl.Utf8))
    reason = pl.coalesce([pl.when(check.broken).then(check.reason) for check in checks])
    bad = flagged.filter(pl.col("_broken")).drop("_broken").with_columns(_reason=reason)
    return flagged.filter(~pl.col("_broken")).drop("_broken"), bad


def kept_strings(names: Mapping[str, str]) -> list[Check]:
    """The rules for a row's strings, per column (``names``: column -> the name a user
    knows it by, e.g. ``user_arn`` -> ``userIdentity.arn``)."""
    checks: list[Check] = []
    for column, name in names.items():
        value = pl.col(column)
        limit = limits.MAX_CHARS[column]
        # Bytes first (free in Arrow): only a value of more bytes can have more characters.
        too_long = (value.str.len_bytes() > limit) & (value.str.len_chars() > limit)
        checks.append(
            Check(
                too_long,
                pl.format(
                    f"{name} is longer than {limit:,} characters ({{}})", value.str.len_chars()
                ),
            )
        )
        if column in limits.PRINTABLE:
            checks.append(
                Check(value.str.contains(CONTROL), pl.lit(f"{name} contains a control character"))
            )
    return checks


def shown(column: str) -> pl.Expr:
    """A value as a reason quotes it: at most ``limits.SHOWN_CHARS`` characters."""
    value = pl.col(column)
    cut = limits.SHOWN_CHARS
    return (
        pl.when(value.str.len_chars() > cut)
        .then(pl.format("{}... ({} characters)", value.str.slice(0, cut), value.str.len_chars()))
        .otherwise(value)
    )
