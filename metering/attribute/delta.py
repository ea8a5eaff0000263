"""Join again only the calls that new input rows can change.

When a re-bill of a month only adds input files (a new day, late deliveries), most calls
cannot change. The event and request ids the new rows hold are collected first and grown
until no old row links them to another id: every old event with one of those ids brings
in its other id, and so on. The rows holding these ids are then a closed group: the dedup
rule of ``match`` (one event per ``eventID``, then per ``requestID``; one record per
``request_id``: ``schemas.EVENT_KEYS``, ``RECORD_KEY``) decides their calls from those rows
alone, and no other call depends on them. So these calls are joined again from those
rows, and every other call stays as the last bill joined it.
``tests/attribute/test_delta.py`` checks on random inputs that the result equals joining
everything again.

Usually no old row shares an id with the new ones, and one pass over the old events
shows it. (``event_id`` and a record's ``request_id`` are never NULL: the collectors
quarantine such rows.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import polars as pl

from metering.schemas import EVENT_KEYS, Relation, key_of

KEYS: dict[str, pl.DataType] = {"key": pl.Utf8()}  # call keys (``schemas.call_key``)


@dataclass(frozen=True, slots=True)
class Rejoined:
    """What ``rejoin`` made: the calls joined again, and the keys of the calls they
    replace (``None`` when they are all new: no call before has one of their ids)."""

    calls: Relation
    count: int
    replacing: Relation | None


class Runner(Protocol):
    """What runs the SQL: the warehouse engine."""

    def table(self, name: str, relation: Relation) -> tuple[Relation, int]: ...

    def insert(self, table: Relation, relation: Relation) -> int: ...


def _ids(column: str, relation: Relation, where: str = "") -> Relation:
    """The distinct non-null ``column`` values of ``relation``."""
    sql = f"SELECT DISTINCT {column} FROM {relation} WHERE {column} IS NOT NULL {where}"
    return Relation.query(sql, {column: pl.Utf8()})


def rejoin(
    run: Runner,
    join: Callable[[Relation, Relation], Relation],
    events: tuple[Relation, Relation],
    records: tuple[Relation, Relation],
) -> Rejoined:
    """Join again by ``join(events, records)`` the calls the new rows touch; ``events``
    and ``records`` are (old rows, new rows) each."""
    old_events, new_events = events
    old_records, new_records = records
    event_id, request_id = EVENT_KEYS  # (an event's request id is a record's RECORD_KEY)
    touched_events, _ = run.table("_touched_events", _ids(event_id, new_events))
    touched_requests, _ = run.table(
        "_touched_requests",
        Relation.query(
            f"FROM {_ids(request_id, new_events)} UNION FROM {_ids(request_id, new_records)}",
            {request_id: pl.Utf8()},
        ),
    )
    while True:  # grow the ids until the old events holding them bring no others
        touching = Relation.query(
            f"SELECT * FROM {old_events} WHERE {event_id} IN (FROM {touched_events}) "
            f"OR {request_id} IN (FROM {touched_requests})",
            old_events.columns,
        )
        old_touched, touched = run.table("_old_events_touched", touching)
        grown = run.insert(
            touched_events,
            _ids(event_id, old_touched, f"AND {event_id} NOT IN (FROM {touched_events})"),
        )
        grown += run.insert(
            touched_requests,
            _ids(request_id, old_touched, f"AND {request_id} NOT IN (FROM {touched_requests})"),
        )
        if not grown:
            break
    events_again, _ = run.table("_events_again", _both(old_touched, new_events))
    old_records_touched, touched_records = run.table(
        "_old_records_touched",
        Relation.query(
            f"SELECT * FROM {old_records} WHERE {request_id} IN (FROM {touched_requests})",
            old_records.columns,
        ),
    )
    records_again, _ = run.table("_records_again", _both(old_records_touched, new_records))
    calls, count = run.table("_joined_again", join(events_again, records_again))
    # Every call before has its ids from an old row: when no old row holds a touched id,
    # no call before is touched, and the calls joined again are all new.
    if not touched + touched_records:
        return Rejoined(calls, count, None)
    keys = Relation.query(
        f"SELECT {key_of(event_id, event_id)} AS key FROM {touched_events} "
        f"UNION ALL SELECT {key_of(request_id, request_id)} FROM {touched_requests}",
        KEYS,
    )
    replacing, _ = run.table("_replacing", keys)
    return Rejoined(calls, count, replacing)


def _both(old: Relation, new: Relation) -> Relation:
    return Relation.query(f"FROM {old} UNION ALL BY NAME FROM {new}", new.columns)
