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

The result need not be written out whole: a re-bill's calls joined again, with the ids it
touched, are a ``Patch`` over the calls before it. The month's calls are then a base and
its patches, each row kept unless a later patch touched its ids (``rejoined``), so a
re-bill writes only its patch instead of the month.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

TOUCHED_EVENTS = "_touched_events"  # the event ids and request ids the new rows touch
TOUCHED_REQUESTS = "_touched_requests"
JOINED_AGAIN = "_joined_again"


@dataclass(frozen=True, slots=True)
class Patch:
    """Relations: calls joined again (``joined``) and the ids whose calls they replace."""

    joined: str
    events: str  # event ids (column event_id)
    requests: str  # request ids (column request_id)
    replaces: bool = True  # False: no call before it has those ids (new calls only)

    @classmethod
    def named(cls, name: str, replaces: bool) -> Patch:
        """A patch whose relations are ``name``, ``name_events`` and ``name_requests``."""
        return cls(name, f"{name}_events", f"{name}_requests", replaces)

    def relations(self) -> tuple[str, str, str]:
        return self.joined, self.events, self.requests


AGAIN = Patch(JOINED_AGAIN, TOUCHED_EVENTS, TOUCHED_REQUESTS)  # what ``rejoin`` makes


@dataclass(frozen=True, slots=True)
class Rejoined:
    """What ``rejoin`` did: how many calls it joined again, and the patch they make."""

    calls: int
    patch: Patch

    def replacing(self) -> str:
        """SQL condition: the calls before that these replace (none if all are new)."""
        return touched(self.patch) if self.patch.replaces else "false"


class Runner(Protocol):
    """What runs the SQL: the warehouse engine."""

    def create(self, name: str, sql: str) -> int: ...

    def insert(self, table: str, sql: str) -> int: ...


def touched(*patches: Patch) -> str:
    """SQL condition: a call (columns ``request_id``, ``event_id``) one of ``patches``
    touches."""
    events = " UNION ALL ".join(f"FROM {p.events}" for p in patches)
    requests = " UNION ALL ".join(f"FROM {p.requests}" for p in patches)
    # CASE, not OR: ``NULL IN (...)`` is NULL, and NOT NULL would drop the row.
    return (
        f"(CASE WHEN request_id IS NULL THEN event_id IN ({events}) "
        f"ELSE request_id IN ({requests}) END)"
    )


def rejoin(
    run: Runner,
    join: Callable[[str, str], str],
    events: tuple[str, str],
    records: tuple[str, str],
) -> Rejoined:
    """Join again by ``join(events, records)`` the calls the new rows touch, into the
    tables of ``AGAIN``; ``events`` and ``records`` are (old rows, new rows) each.
    ``rejoined`` then gives all the month's calls."""
    old_events, new_events = events
    old_records, new_records = records
    run.create(TOUCHED_EVENTS, f"SELECT DISTINCT event_id FROM {new_events}")
    run.create(
        TOUCHED_REQUESTS,
        f"SELECT request_id FROM {new_events} WHERE request_id IS NOT NULL "
        f"UNION SELECT request_id FROM {new_records}",
    )
    while True:  # grow the ids until the old events holding them bring no others
        old_touched = run.create(
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
    old_touched += run.create(
        "_old_records_touched",
        f"SELECT * FROM {old_records} WHERE request_id IN (FROM {TOUCHED_REQUESTS})",
    )
    run.create("_records_again", f"FROM _old_records_touched UNION ALL BY NAME FROM {new_records}")
    calls = run.create(JOINED_AGAIN, join("_events_again", "_records_again"))
    # Every call before has its ids from an old row: when no old row holds a touched id,
    # no call before is touched, and the calls joined again are all new.
    return Rejoined(calls, dataclasses.replace(AGAIN, replaces=old_touched > 0))


def rejoined(base: str, patches: Sequence[Patch]) -> str:
    """SQL: the calls of ``base`` and of each of ``patches`` (oldest first) that no later
    patch touches. (A patch that replaces nothing filters nothing: usually, new files hold
    new calls, and the month's calls are then read without any filter.)"""
    parts = [base, *(p.joined for p in patches)]
    replacing = [[p for p in patches[k:] if p.replaces] for k in range(len(parts))]
    return " UNION ALL BY NAME ".join(
        f"SELECT * FROM {part}" + (f" WHERE NOT {touched(*later)}" if later else "")
        for part, later in zip(parts, replacing, strict=True)
    )
