"""Small helpers for the SQL text the stages hand to the warehouse engine."""

from __future__ import annotations

from collections.abc import Mapping


def literal(text: str) -> str:
    """``text`` as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def lookup(column: str, mapping: Mapping[str, str]) -> str:
    """``mapping[column]``, or NULL when the value is not a key."""
    if not mapping:
        return "NULL::VARCHAR"
    arms = " ".join(f"WHEN {literal(k)} THEN {literal(v)}" for k, v in sorted(mapping.items()))
    return f"(CASE {column} {arms} END)"
