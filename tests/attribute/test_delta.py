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
        for part in ("old", "new"):
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


@settings(max_examples=150, deadline=None)
@given(
    old_events=events_strategy,
    old_records=records_strategy,
    new_events=events_strategy,
    new_records=records_strategy,
)
def test_rejoining_the_touched_calls_equals_a_full_join(
    old_events: list[tuple[str, str | None, int, str, str | None]],
    old_records: list[tuple[str, str, int, int]],
    new_events: list[tuple[str, str | None, int, str, str | None]],
    new_records: list[tuple[str, str, int, int]],
) -> None:
    con = duckdb.connect()
    engine = Engine(con, SCRATCH)
    _tables(con)
    _insert(con, "old", old_events, old_records)
    _insert(con, "new", new_events, new_records)
    con.execute(f"CREATE TABLE before AS {match.calls_in('old_events', 'old_records')}")

    again = delta.rejoin(
        engine, match.calls_in, ("old_events", "new_events"), ("old_records", "new_records")
    )
    con.execute(f"CREATE TABLE joined AS {delta.rejoined('before')}")

    con.execute("CREATE VIEW all_events AS FROM old_events UNION ALL FROM new_events")
    con.execute("CREATE VIEW all_records AS FROM old_records UNION ALL FROM new_records")
    assert _rows(con, "FROM joined") == _rows(con, match.calls_in("all_events", "all_records"))
    # Only what the new rows touch was joined again.
    if not new_events and not new_records:
        assert again == 0
