"""Checks every collector runs on the strings it keeps, in bulk (polars expressions).

The bounds are ``metering.limits``'; each check gives a reason (a string expression) where
a value breaks its bound, and null where it is fine, so collectors ``coalesce`` them with
their own checks and quarantine the rows that have a reason.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from metering import limits

# C0 controls, DEL and C1 controls: never part of an id, a name or an operation.
CONTROL = r"[\x00-\x1f\x7f-\x9f]"


def kept_strings(names: Mapping[str, str]) -> list[pl.Expr]:
    """Why a row's strings cannot be kept, per column (``names``: column -> the name a
    user knows it by, e.g. ``user_arn`` -> ``userIdentity.arn``)."""
    reasons: list[pl.Expr] = []
    for column, name in names.items():
        value = pl.col(column)
        limit = limits.MAX_CHARS[column]
        # Bytes first (free in Arrow): only a value of more bytes can have more characters.
        too_long = (value.str.len_bytes() > limit) & (value.str.len_chars() > limit)
        reasons.append(
            pl.when(too_long).then(
                pl.format(
                    f"{name} is longer than {limit:,} characters ({{}})", value.str.len_chars()
                )
            )
        )
        if column in limits.PRINTABLE:
            reasons.append(
                pl.when(value.str.contains(CONTROL)).then(
                    pl.lit(f"{name} contains a control character")
                )
            )
    return reasons


def shown(column: str) -> pl.Expr:
    """A value as a reason quotes it: at most ``limits.SHOWN_CHARS`` characters."""
    value = pl.col(column)
    cut = limits.SHOWN_CHARS
    return (
        pl.when(value.str.len_chars() > cut)
        .then(pl.format("{}... ({} characters)", value.str.slice(0, cut), value.str.len_chars()))
        .otherwise(value)
    )
