"""Join again only the calls that new input files can change.

When a re-bill of a month only adds input files (a new day, late deliveries), most calls
cannot change. The keys new rows touch are found first; the calls carrying them are
joined again from every row, old and new, that holds those keys; every other call is
taken from the previous run as it was. The result equals joining everything again
(``tests/attribute/test_delta.py`` checks it on random inputs).

Why these keys are enough, given the dedup rule of ``match`` (events: the smallest row per
``eventID``, then per non-null ``requestID``; records: the smallest per ``request_id``;
``event_id`` and a record's ``request_id`` are never NULL, the collectors quarantine
such rows):

- ``touched event ids`` (E): the new events' ids. Only their winners can change.
- ``touched request ids`` (R): the new rows' request ids, and those of every event (old
  or new) of an id in E, since E's winners may move between these request ids.
- A request id outside R keeps its winner: no new row has it, and no event id's winner
  can move to or from it. An event id outside E keeps its winner.
- To decide a request id in R again, every event id with a row of that request id is
  decided again from all its rows; so the events read are those of E and of every event
  id seen with a request id in R.
- A call changes only if its request id is in R, or it has no request id and its event
  id is in E.
"""

from __future__ import annotations

TOUCHED_EVENTS = "_touched_events"  # the tables the pipeline builds for ``touched``
TOUCHED_REQUESTS = "_touched_requests"


def touched_events(new_events: str) -> str:
    """SQL: E, the event ids of the new files."""
    return f"SELECT DISTINCT event_id FROM {new_events}"


def touched_requests(events: str, new_events: str, new_records: str) -> str:
    """SQL: R, the request ids whose call may change (needs TOUCHED_EVENTS)."""
    return f"""
        SELECT request_id FROM {new_events} WHERE request_id IS NOT NULL
        UNION SELECT request_id FROM {new_records}
        UNION SELECT request_id FROM {events}
              WHERE request_id IS NOT NULL AND event_id IN (FROM {TOUCHED_EVENTS})
    """


def events_to_join(events: str) -> str:
    """SQL: every event row that deciding the touched calls again needs."""
    return f"""
        SELECT * FROM {events} WHERE event_id IN (
            FROM {TOUCHED_EVENTS}
            UNION SELECT event_id FROM {events} WHERE request_id IN (FROM {TOUCHED_REQUESTS})
        )
    """


def records_to_join(records: str) -> str:
    """SQL: every record row that deciding the touched calls again needs."""
    return f"SELECT * FROM {records} WHERE request_id IN (FROM {TOUCHED_REQUESTS})"


def touched() -> str:
    """SQL condition: a call (columns ``request_id``, ``event_id``) the new files may change."""
    # CASE, not OR: ``NULL IN (...)`` is NULL, and NOT NULL would drop the row.
    return (
        f"(CASE WHEN request_id IS NULL THEN event_id IN (FROM {TOUCHED_EVENTS}) "
        f"ELSE request_id IN (FROM {TOUCHED_REQUESTS}) END)"
    )


def rejoined(before: str, joined_again: str) -> str:
    """SQL: the calls of ``before`` the new files cannot change, and ``joined_again``: the
    ``touched`` calls of the join of ``events_to_join`` and ``records_to_join``."""
    return f"""
        SELECT * FROM {before} WHERE NOT {touched()}
        UNION ALL BY NAME
        FROM {joined_again}
    """
