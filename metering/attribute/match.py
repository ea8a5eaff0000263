"""Join the two sources into calls (SPEC 2, 3).

SQL run by the warehouse engine over the spooled inputs. A call counts once if either
source has it: CloudTrail events are unique by ``eventID`` (duplicate deliveries) and by
``requestID``; metering records by ``request_id``, in their newest version (``written_us``:
an item updated between incremental exports, or read from a full export and from a later
incremental one, is the version written last; older versions are duplicates, never
copies that disagree). Which duplicate survives never depends on input order (the
smallest row wins), so shuffled or re-split inputs bill the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from metering.schemas import (
    EVENT_KEYS,
    EVENTS,
    JOINED,
    RECORD_KEY,
    RECORD_VERSION,
    RECORDS,
    Relation,
)
from metering.sql import literal

# What ``calls_in`` gives: a call (JOINED but its tenant), and the evidence the attribution
# rules read in its place.
MATCHED: dict[str, pl.DataType] = {
    **{c: t for c, t in JOINED.items() if c not in ("tenant_id", "attribution")},
    **dict.fromkeys(
        ("user_arn", "issuer_arn", "source_identity", "secret_arn", "resource_arn"), pl.Utf8()
    ),
    "record_tenant_id": pl.Utf8(),
}


def _twice(table: str, key: str) -> str:
    """SQL: hashes of the non-null ``key`` values that occur more than once.

    Grouping 64-bit hashes is much cheaper than grouping strings. Two keys sharing a hash
    only send their rows down the exact path, so a collision costs time, never a result.
    """
    return (
        f"SELECT hash({key}) AS h FROM {table} WHERE {key} IS NOT NULL "
        "GROUP BY h HAVING count(*) > 1"
    )


def _seen_twice(key: str, twice: str) -> str:
    """SQL condition: ``key`` may occur more than once (its hash is in ``twice``)."""
    return f"({key} IS NOT NULL AND hash({key}) IN (FROM {twice}))"


def _unique(
    table: str, key: str, columns: Sequence[str], what: str, newest: str | None = None
) -> str:
    """One row per non-null ``key`` (rows with a NULL key are all kept), with ``conflict``.

    Only the few keys that may occur twice are grouped: every other row streams through.
    With ``newest`` (a column of ``table`` besides ``columns``: when a row's version was
    written; NULL ranks below any value), only a key's newest rows are its copies; the
    column is not in the result. Among a key's copies the smallest wins, whatever the input
    order; exact copies (duplicate deliveries) are thereby one. When a key's copies differ,
    the winner's ``conflict`` says so (``what`` names the rows, e.g. "records"), after what
    an earlier step said of it; ``table`` must have a ``conflict`` column.
    """
    others = [c for c in columns if c != key]
    twice = _seen_twice(key, "twice")
    versions = f"count(DISTINCT struct_pack({', '.join(others)}))"
    differing = ", ".join(
        f"CASE WHEN count(DISTINCT struct_pack({c})) > 1 THEN {literal(c)} END" for c in others
    )
    template = literal(f"{{}} different {what} share {key} {{}} ({{}} differ)")
    said = (
        f"CASE WHEN {versions} > 1 THEN "
        f"format({template}, {versions}, {key}, concat_ws(', ', {differing})) END"
    )
    copies = f"{table} WHERE {twice}"
    passing = f"SELECT * FROM {table} WHERE NOT {twice}"
    if newest is not None:
        newest_only = f"{newest} IS NOT DISTINCT FROM max({newest}) OVER (PARTITION BY {key})"
        copies = f"(SELECT * FROM {copies} QUALIFY {newest_only})"
        passing = f"SELECT * EXCLUDE ({newest}) FROM {table} WHERE NOT {twice}"
    return f"""
        WITH twice AS MATERIALIZED ({_twice(table, key)})
        {passing}
        UNION ALL BY NAME
        SELECT {key}, {", ".join(f"smallest.{c} AS {c}" for c in others)},
            nullif(concat_ws('; ', smallest.conflict, said), '') AS conflict
        FROM (
            SELECT {key}, min(struct_pack({", ".join(others)}, conflict)) AS smallest,
                {said} AS said
            FROM {copies} GROUP BY {key}
        )
    """


def _unique_events(table: str, columns: Sequence[str]) -> str:
    """One event per ``eventID``, then per non-null ``requestID``.

    Only events that may share a key with another event (a few) go through both steps;
    all others are unique by both keys and stream through, so nothing the size of the
    month is held. (Every row of a shared key is among the few, so the steps see all of
    a key's rows.)
    """
    first, then = EVENT_KEYS
    shared = f"({_seen_twice(first, 'twice_e')} OR {_seen_twice(then, 'twice_r')})"
    by_event = _unique("shared", first, columns, "copies")
    return f"""
        WITH twice_e AS MATERIALIZED ({_twice(table, first)}),
        twice_r AS MATERIALIZED ({_twice(table, then)}),
        shared AS MATERIALIZED (SELECT * FROM {table} WHERE {shared})
        SELECT * FROM {table} WHERE NOT {shared}
        UNION ALL BY NAME
        SELECT * FROM ({_unique(f"({by_event})", then, columns, "events")})
    """


# Only the columns a call needs are carried (and compared when duplicates differ).
EVENT_COLUMNS = tuple(c for c in EVENTS if c != "event_source")
RECORD_COLUMNS = tuple(c for c in RECORDS if c not in ("principal_arn", RECORD_VERSION))


def calls_in(events: Relation, records: Relation) -> Relation:
    """One row per distinct call, from either source or both (MATCHED): ``call_time``,
    ``source``, and the evidence the attribution rules read.

    A call erred when either source says so (SPEC 1.1): its ``error_code`` is CloudTrail's,
    else its record's, and ``error_seen_by`` says which sources saw an error (a call in both
    sources that only one of them saw fail is an outcome the sources disagree on).

    Events are unique by ``eventID``, then by non-null ``requestID``; records by
    ``request_id``, newest version first (``schemas.EVENT_KEYS``, ``RECORD_KEY``,
    ``RECORD_VERSION``). A matched call's time is AWS's
    ``eventTime``; its tenant and sizes come from its record.
    """
    event_columns, record_columns = EVENT_COLUMNS, RECORD_COLUMNS
    fresh = "NULL::VARCHAR AS conflict"  # nothing said of a row yet
    event_rows = f"(SELECT {', '.join(event_columns)}, {fresh} FROM {events})"
    record_rows = f"(SELECT {', '.join(record_columns)}, {RECORD_VERSION}, {fresh} FROM {records})"
    by_request = _unique(record_rows, RECORD_KEY, record_columns, "records", RECORD_VERSION)
    sql = f"""
        WITH e AS ({_unique_events(event_rows, event_columns)}),
        r AS ({by_request})
        {JOIN}
    """
    return Relation.query(sql, MATCHED)


# SQL (any engine's): the calls of the unique events ``e`` and the unique records ``r``
# (see ``calls_in``), joined on the request id.
JOIN = f"""SELECT
            coalesce(e.request_id, r.request_id) AS request_id,
            e.event_id,
            coalesce(e.event_time, r.ts) AS call_time,
            coalesce(e.operation, r.operation) AS operation,
            coalesce(e.error_code, r.error_code) AS error_code,
            CASE WHEN e.error_code IS NOT NULL AND r.error_code IS NOT NULL THEN 'both'
                 WHEN e.error_code IS NOT NULL THEN 'cloudtrail'
                 WHEN r.error_code IS NOT NULL THEN 'metering' END AS error_seen_by,
            e.user_arn, e.issuer_arn, e.source_identity, e.secret_arn,
            coalesce(e.resource_arn, r.resource_arn) AS resource_arn,
            r.tenant_id AS record_tenant_id,
            r.request_bytes, r.response_bytes,
            CASE WHEN e.event_id IS NOT NULL AND r.request_id IS NOT NULL THEN 'both'
                 WHEN e.event_id IS NOT NULL THEN 'cloudtrail'
                 ELSE 'metering' END AS source,
            nullif(concat_ws('; ', 'cloudtrail: ' || e.conflict, 'metering: ' || r.conflict), '')
                AS conflict
        FROM e FULL OUTER JOIN r ON e.{RECORD_KEY} = r.{RECORD_KEY}"""
