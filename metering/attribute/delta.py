"""Join again only the calls that new input files can change.

When a re-bill of a month only adds input files (a new day, late deliveries), most calls
cannot change. The event and request ids the new rows hold are collected first and grown
until no old row links them to another id: every old event with one of those ids brings
in its other id, and so on. The rows holding these ids are then a closed group: the dedup
rule of ``match`` (one event per ``eventID``, then per ``requestID``; one record per
``request_id``) decides their calls from those rows alone, and no other call depends on
them. So these calls are joined again from those rows, and every other call is taken
from the previous run as it was. ``tests/attribute/test_delta.py`` checks on random
inputs that the result equals joining everything again.

Usually no old row shares an id with the new ones, and one pass over the old events
shows it. (``event_id`` and a record's ``request_id`` are never NULL: the collectors
quarantine such rows.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

TOUCHED_EVENTS = "_touched_events"  # the event ids and request ids the new rows touch
TOUCHED_REQUESTS = "_touched_requests"


class Runner(Protocol):
    """What runs the SQL: the warehouse engine."""

    def create(self, name: str, sql: str) -> int: ...

    def insert(self, table: str, sql: str) -> int: ...


def touched() -> str:
    """SQL condition: a call (columns ``request_id``, ``event_id``) the new rows touch."""
    # CASE, not OR: ``NULL IN (...)`` is NULL, and NOT NULL would drop the row.
    return (
        f"(CASE WHEN request_id IS NULL THEN event_id IN (FROM {TOUCHED_EVENTS}) "
        f"ELSE request_id IN (FROM {TOUCHED_REQUESTS}) END)"
    )


def rejoin(
    run: Runner,
    join: Callable[[str, str], str],
    events: tuple[str, str],
    records: tuple[str, str],
) -> int:
    """Join again by ``join(events, records)`` the calls the new rows touch, into the table
    ``_joined_again``; ``events`` and ``records`` are (old rows, new rows) each. Returns how
    many calls were joined again. ``rejoined`` then gives all the month's calls."""
    old_events, new_events = events
    old_records, new_records = records
    run.create(TOUCHED_EVENTS, f"SELECT DISTINCT event_id FROM {new_events}")
    run.create(
        TOUCHED_REQUESTS,
        f"SELECT request_id FROM {new_events} WHERE request_id IS NOT NULL "
        f"UNION SELECT request_id FROM {new_records}",
    )
    while True:  # grow the ids until the old events holding them bring no others
        run.create(
            "_old_events_touched",
            f"SELECT * FROM {old_events} WHERE event_id IN (FROM {TOUCHED_EVENTS}) "
            f"OR request_id IN (FROM {TOUCHED_REQUESTS})",
        )
        grown = run.insert(
            TOUCHED_EVENTS,
            "SELECT DISTINCT event_id FROM _old_events_touched "
            f"WHERE event_id NOT IN (FROM {TOUCHED_EVENTS})",
        )
        grown += run.insert(
            TOUCHED_REQUESTS,
            "SELECT DISTINCT request_id FROM _old_events_touched "
            f"WHERE request_id IS NOT NULL AND request_id NOT IN (FROM {TOUCHED_REQUESTS})",
        )
        if not grown:
            break
    run.create("_events_again", f"FROM _old_events_touched UNION ALL BY NAME FROM {new_events}")
    run.create(
        "_records_again",
        f"SELECT * FROM {old_records} WHERE request_id IN (FROM {TOUCHED_REQUESTS}) "
        f"UNION ALL BY NAME FROM {new_records}",
    )
    return run.create("_joined_again", join("_events_again", "_records_again"))


def rejoined(before: str) -> str:
    """SQL: the calls of ``before`` (the previous run's) the new rows do not touch, and
    those ``rejoin`` joined again."""
    return f"SELECT * FROM {before} WHERE NOT {touched()} UNION ALL BY NAME FROM _joined_again"
