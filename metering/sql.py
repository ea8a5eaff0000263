"""Small helpers for the SQL text the stages hand to the warehouse engine.

A value from outside (config, environment, input data) is written into SQL only through
``literal`` (or bound as a parameter); names and expressions come from meter's own code.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime


def literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def lookup(column: str, mapping: Mapping[str, str]) -> str:
    """``mapping[column]``, or NULL when the value is not a key."""
    if not mapping:
        return "NULL::VARCHAR"
    arms = " ".join(f"WHEN {literal(k)} THEN {literal(v)}" for k, v in sorted(mapping.items()))
    return f"(CASE {column} {arms} END)"


def utc_day(column: str) -> str:
    """The UTC date of the TIMESTAMPTZ ``column``, by arithmetic on its epoch: twice as fast
    as a cast, which goes through the session's time zone."""
    return f"(DATE '1970-01-01' + (epoch_ms({column}) // 86400000)::INTEGER)"


def utc_second(column: str) -> str:
    """The UTC second of the TIMESTAMPTZ ``column``, as seconds since 1970: grouping by it
    takes half the time grouping by ``date_trunc('second', ...)`` does."""
    return f"(epoch_ms({column}) // 1000)"


def timestamp(moment: datetime) -> str:
    """An aware ``moment`` as a SQL TIMESTAMPTZ literal (in UTC)."""
    return f"TIMESTAMPTZ '{moment.astimezone(UTC).isoformat()}'"
