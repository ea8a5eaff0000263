"""Joining only what new files touch equals joining everything again, on any input."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from metering.attribute import delta, match
from metering.schemas import EVENTS, RECORDS
from metering.store.engine import Engine

START = datetime(2026, 10, 1, tzinfo=UTC)
SCRATCH = Path(tempfile.mkdtemp(prefix="meter-test-delta-"))  # the engine's spill folder

# Small key spaces, so that new rows often share event ids and request ids with old ones
# (duplicate deliveries, a late record for an old event, an event id under two requests).
events_strategy = st.lists(
    st.tuples(
        st.sampled_from(["e1", "e2", "e3", "e4", "e5"]),
        st.sampled_from(["r1", "r2", "r3", "r4", None]),
        st.integers(0, 3),
        st.sampled_from(["ExecuteStatement", "BeginTransaction"]),
        st.sampled_from(["arn:a", "arn:b", None]),
    ),
    max_size=12,
)
records_strategy = st.lists(
    st.tuples(
        st.sampled_from(["r1", "r2", "r3", "r4", "r5"]),
        st.sampled_from(["t1", "t2"]),
        st.integers(0, 3),
        st.integers(0, 70000),
    ),
    max_size=8,
)


def _tables(con: duckdb.DuckDBPyConnection) -> None:
    types = {"event_time": "TIMESTAMPTZ", "ts": "TIMESTAMPTZ"}
    for name, schema in (("events", EVENTS), ("records", RECORDS)):
        columns = ", ".join(f"{c} {types.get(c, 'VARCHAR')}" for c in schema)
        columns = columns.replace("_bytes VARCHAR", "_bytes BIGINT")
        for part in ("old", "new", "newer"):
            con.execute(f"CREATE TABLE {part}_{name} ({columns})")


def _insert(
    con: duckdb.DuckDBPyConnection,
    part: str,
    events: list[tuple[str, str | None, int, str, str | None]],
    records: list[tuple[str, str, int, int]],
) -> None:
    for event_id, request_id, second, operation, arn in events:
        con.execute(
            f"INSERT INTO {part}_events (event_id, request_id, event_time, event_source, "
            "operation, user_arn) VALUES (?, ?, ?, 'rdsdataapi.amazonaws.com', ?, ?)",
            [event_id, request_id, START + timedelta(seconds=second), operation, arn],
        )
    for request_id, tenant, second, size in records:
        con.execute(
            f"INSERT INTO {part}_records (request_id, tenant_id, ts, operation, "
            "request_bytes, response_bytes) VALUES (?, ?, ?, 'ExecuteStatement', ?, 0)",
            [request_id, tenant, START + timedelta(seconds=second), size],
        )


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[object, ...]]:
    return sorted(con.execute(f"FROM ({sql})").fetchall(), key=repr)


def _keep(
    con: duckdb.DuckDBPyConnection, name: str, rejoined: delta.Rejoined, before: str
) -> delta.Patch:
    """What ``rejoin`` made, kept as tables of their own (as the spool keeps a patch)."""
    touched = delta.touched(rejoined.patch)
    replaced = con.execute(f"SELECT count(*) FROM {before} WHERE {touched}").fetchall()
    if not rejoined.patch.replaces:  # it may say so only when it is so
        assert replaced == [(0,)]
    kept = delta.Patch.named(name, rejoined.patch.replaces)
    for table, made in zip(kept.relations(), rejoined.patch.relations(), strict=True):
        con.execute(f"CREATE TABLE {table} AS FROM {made}")
    return kept


Events = list[tuple[str, str | None, int, str, str | None]]
Records = list[tuple[str, str, int, int]]


@settings(max_examples=80, deadline=None)
@given(
    old=st.tuples(events_strategy, records_strategy),
    new=st.tuples(events_strategy, records_strategy),
    newer=st.tuples(events_strategy, records_strategy),
)
def test_rejoining_the_touched_calls_equals_a_full_join(
    old: tuple[Events, Records], new: tuple[Events, Records], newer: tuple[Events, Records]
) -> None:
    """Two re-bills in a row, each adding rows: the first bill's calls and the two
    patches over them are the calls of joining everything again."""
    con = duckdb.connect()
    engine = Engine(con, SCRATCH)
    _tables(con)
    for part, (events, records) in (("old", old), ("new", new), ("newer", newer)):
        _insert(con, part, events, records)
    con.execute(f"CREATE TABLE before AS {match.calls_in('old_events', 'old_records')}")

    again = delta.rejoin(
        engine, match.calls_in, ("old_events", "new_events"), ("old_records", "new_records")
    )
    first = _keep(con, "first", again, "before")
    for name in ("events", "records"):
        con.execute(f"CREATE VIEW both_{name} AS FROM old_{name} UNION ALL FROM new_{name}")
        con.execute(f"CREATE VIEW all_{name} AS FROM both_{name} UNION ALL FROM newer_{name}")
    full = match.calls_in("both_events", "both_records")
    assert _rows(con, delta.rejoined("before", [first])) == _rows(con, full)
    # Only what the new rows touch was joined again.
    if not new[0] and not new[1]:
        assert again.calls == 0 and not first.replaces

    con.execute(f"CREATE TABLE after_first AS {delta.rejoined('before', [first])}")
    again = delta.rejoin(
        engine, match.calls_in, ("both_events", "newer_events"), ("both_records", "newer_records")
    )
    second = _keep(con, "second", again, "after_first")
    full = match.calls_in("all_events", "all_records")
    assert _rows(con, delta.rejoined("before", [first, second])) == _rows(con, full)
