"""Joining only what new files touch equals joining everything again, on any input."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from metering.attribute import delta, match
from metering.schemas import EVENTS, RECORDS, Relation, call_key
from metering.store.engine import Engine

START = datetime(2026, 10, 1, tzinfo=UTC)
SCRATCH = Path(tempfile.mkdtemp(prefix="meter-test-delta-"))  # the engine's spill folder
Event = tuple[str, str | None, int, str, str | None, str | None, str | None, str | None]
Record = tuple[str, str, int, str, int, int, str | None, int | None]

# Small key spaces, so that new rows often share event ids and request ids with old ones
# (duplicate deliveries, a late record for an old event, an event id under two requests).
# Every column a call is made of varies: which copy of a key wins depends on them all.
events_strategy = st.lists(
    st.tuples(
        st.sampled_from(["e1", "e2", "e3", "e4", "e5"]),  # event_id
        st.sampled_from(["r1", "r2", "r3", "r4", None]),  # request_id
        st.integers(0, 3),  # event_time
        st.sampled_from(["ExecuteStatement", "BeginTransaction"]),  # operation
        st.sampled_from([None, "BadRequestException"]),  # error_code
        st.sampled_from(["arn:a", "arn:b", None]),  # user_arn, issuer_arn, source_identity
        st.sampled_from(["arn:s1", None]),  # secret_arn
        st.sampled_from(["arn:c1", "arn:c2", None]),  # resource_arn
    ),
    max_size=12,
)
records_strategy = st.lists(
    st.tuples(
        st.sampled_from(["r1", "r2", "r3", "r4", "r5"]),  # request_id
        st.sampled_from(["t1", "t2"]),  # tenant_id
        st.integers(0, 3),  # ts
        st.sampled_from(["ExecuteStatement", "CommitTransaction"]),  # operation
        st.integers(0, 70000),  # request_bytes
        st.sampled_from([0, 40000]),  # response_bytes
        st.sampled_from(["arn:c1", None]),  # resource_arn
        st.sampled_from([None, 1, 2]),  # written_us: versions of an item (None: unknown)
    ),
    max_size=8,
)


def _tables(con: duckdb.DuckDBPyConnection) -> None:
    types = {"event_time": "TIMESTAMPTZ", "ts": "TIMESTAMPTZ", "written_us": "BIGINT"}
    for name, schema in (("events", EVENTS), ("records", RECORDS)):
        columns = ", ".join(f"{c} {types.get(c, 'VARCHAR')}" for c in schema)
        columns = columns.replace("_bytes VARCHAR", "_bytes BIGINT")
        for part in ("old", "new", "newer"):
            con.execute(f"CREATE TABLE {part}_{name} ({columns})")


def _insert(
    con: duckdb.DuckDBPyConnection, part: str, events: list[Event], records: list[Record]
) -> None:
    for event_id, request_id, second, operation, error, arn, secret, cluster in events:
        con.execute(
            f"INSERT INTO {part}_events (event_id, request_id, event_time, event_source, "
            "operation, error_code, user_arn, issuer_arn, source_identity, secret_arn, "
            "resource_arn) VALUES (?, ?, ?, 'rdsdataapi.amazonaws.com', ?, ?, ?, ?, ?, ?, ?)",
            (
                event_id,
                request_id,
                START + timedelta(seconds=second),
                operation,
                error,
                arn,
                arn,
                arn,
                secret,
                cluster,
            ),
        )
    for request_id, tenant, second, operation, size, response, cluster, written in records:
        con.execute(
            f"INSERT INTO {part}_records (request_id, tenant_id, ts, operation, "
            "request_bytes, response_bytes, resource_arn, written_us) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                request_id,
                tenant,
                START + timedelta(seconds=second),
                operation,
                size,
                response,
                cluster,
                written,
            ),
        )


def _rows(con: duckdb.DuckDBPyConnection, relation: Relation | str) -> list[tuple[object, ...]]:
    return sorted(con.execute(f"FROM {relation}").fetchall(), key=repr)


def _events(name: str) -> Relation:
    return Relation(name, EVENTS)


def _records(name: str) -> Relation:
    return Relation(name, RECORDS)


def _patched(before: str, rejoined: delta.Rejoined) -> str:
    """SQL: the calls of ``before`` that ``rejoined`` does not replace, and its own."""
    kept = f"SELECT * FROM {before}"
    if rejoined.replacing is not None:
        kept += f" WHERE {call_key()} NOT IN (SELECT key FROM {rejoined.replacing})"
    return f"({kept} UNION ALL BY NAME FROM {rejoined.calls})"


Events = list[Event]
Records = list[Record]


@settings(max_examples=80, deadline=None)
@given(
    old=st.tuples(events_strategy, records_strategy),
    new=st.tuples(events_strategy, records_strategy),
    newer=st.tuples(events_strategy, records_strategy),
)
def test_rejoining_the_touched_calls_equals_a_full_join(
    old: tuple[Events, Records], new: tuple[Events, Records], newer: tuple[Events, Records]
) -> None:
    """Two re-bills in a row, each adding rows: the first bill's calls, with the calls each
    re-bill joined again in place of those it replaces, are the calls of joining everything
    again."""
    con = duckdb.connect()
    engine = Engine(con, SCRATCH)
    _tables(con)
    for part, (events, records) in (("old", old), ("new", new), ("newer", newer)):
        _insert(con, part, events, records)
    join = match.calls_in
    con.execute(
        f"CREATE TABLE before AS FROM {join(_events('old_events'), _records('old_records'))}"
    )

    again = delta.rejoin(
        engine,
        join,
        (_events("old_events"), _events("new_events")),
        (_records("old_records"), _records("new_records")),
    )
    if again.replacing is None:  # it may say so only when it is so: nothing is replaced
        assert con.execute(
            f"SELECT count(*) FROM before, {again.calls} j "
            f"WHERE {call_key('before')} = {call_key('j')}"
        ).fetchall() == [(0,)]
    for name in ("events", "records"):
        con.execute(f"CREATE VIEW both_{name} AS FROM old_{name} UNION ALL FROM new_{name}")
        con.execute(f"CREATE VIEW all_{name} AS FROM both_{name} UNION ALL FROM newer_{name}")
    full = join(_events("both_events"), _records("both_records"))
    assert _rows(con, _patched("before", again)) == _rows(con, full)
    if not new[0] and not new[1]:  # only what the new rows touch was joined again
        assert again.count == 0 and again.replacing is None

    con.execute(f"CREATE TABLE after_first AS FROM {_patched('before', again)}")
    again = delta.rejoin(
        engine,
        join,
        (_events("both_events"), _events("newer_events")),
        (_records("both_records"), _records("newer_records")),
    )
    full = join(_events("all_events"), _records("all_records"))
    assert _rows(con, _patched("after_first", again)) == _rows(con, full)
