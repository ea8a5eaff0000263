"""The join's dedup (SPEC 2): the fast SQL equals the rule read literally, on any input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from metering.attribute import match

COLUMNS = ("event_id", "request_id", "event_time", "operation", "user_arn")

# Small key spaces so that event ids, request ids and whole rows repeat often.
rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(["e1", "e2", "e3", "e4", "e5"]),
        st.sampled_from(["r1", "r2", "r3", None]),
        st.integers(0, 3),
        st.sampled_from(["ExecuteStatement", "BeginTransaction"]),
        st.sampled_from(["arn:a", "arn:b", None]),
    ),
    max_size=25,
)


def _naive_unique(table: str, key: str) -> str:
    """The rule as written: per non-null key the smallest row; NULL keys all kept."""
    others = ", ".join(c for c in COLUMNS if c != key)
    return f"""
        SELECT * FROM {table} WHERE {key} IS NULL
        UNION ALL BY NAME
        SELECT {key}, smallest.* FROM (
            SELECT {key}, min(struct_pack({others})) AS smallest
            FROM {table} WHERE {key} IS NOT NULL GROUP BY {key}
        )
    """


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[object, ...]]:
    result = con.execute(f"SELECT {', '.join(COLUMNS)} FROM ({sql})").fetchall()
    return sorted(result, key=repr)


@settings(max_examples=100, deadline=None)
@given(rows=rows_strategy)
def test_event_dedup_equals_the_naive_rule(rows: list[tuple[object, ...]]) -> None:
    start = datetime(2026, 10, 1, tzinfo=UTC)
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE events (event_id VARCHAR, request_id VARCHAR, event_time TIMESTAMPTZ, "
        "operation VARCHAR, user_arn VARCHAR)"
    )
    for e, r, t, op, arn in rows:
        con.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?)",
            [e, r, start + timedelta(seconds=t), op, arn],
        )
    by_event = _naive_unique("events", "event_id")
    naive = _naive_unique(f"({by_event})", "request_id")
    fast = match._unique_events("(SELECT *, NULL::VARCHAR AS conflict FROM events)", COLUMNS)
    got = _rows(con, fast)
    assert got == _rows(con, naive)
    # One row per event id and per non-null request id.
    assert len({row[0] for row in got}) == len(got)
    request_ids = [row[1] for row in got if row[1] is not None]
    assert len(set(request_ids)) == len(request_ids)
    # A call is flagged when copies of its event differ, or different events share its
    # request id: exactly then.
    differ = "GROUP BY {0} HAVING count(DISTINCT struct_pack(" + ", ".join(COLUMNS) + ")) > 1"
    events_differ = {
        e
        for (e,) in con.execute(
            f"SELECT event_id FROM events {differ.format('event_id')}"
        ).fetchall()
    }
    requests_differ = {
        r
        for (r,) in con.execute(
            f"SELECT request_id FROM ({by_event}) WHERE request_id IS NOT NULL "
            + differ.format("request_id")
        ).fetchall()
    }
    expected = {row[0] for row in got if row[0] in events_differ or row[1] in requests_differ}
    flagged = con.execute(f"SELECT event_id FROM ({fast}) WHERE conflict IS NOT NULL").fetchall()
    assert {e for (e,) in flagged} == expected


record_rows_strategy = st.lists(
    st.tuples(
        st.sampled_from(["r1", "r2", "r3"]),  # request_id
        st.sampled_from(["t1", "t2"]),  # tenant_id
        st.sampled_from([100, 40000]),  # response_bytes
        st.sampled_from([None, 1, 2, 3]),  # written_us (None: a version of unknown time)
    ),
    max_size=12,
)


@settings(max_examples=100, deadline=None)
@given(rows=record_rows_strategy)
def test_record_dedup_keeps_the_newest_version(
    rows: list[tuple[str, str, int, int | None]],
) -> None:
    """Of a request_id's records only those written last count (an unknown time ranks
    below any known one); among them the smallest wins, and only they can disagree."""
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE records (request_id VARCHAR, tenant_id VARCHAR, response_bytes BIGINT, "
        "written_us BIGINT, conflict VARCHAR)"
    )
    for row in rows:
        con.execute("INSERT INTO records VALUES (?, ?, ?, ?, NULL)", list(row))
    columns = ("request_id", "tenant_id", "response_bytes")
    fast = match._unique("records", "request_id", columns, "records", "written_us")
    got = sorted(
        con.execute(
            f"SELECT request_id, tenant_id, response_bytes, conflict FROM ({fast})"
        ).fetchall()
    )
    expected = []
    for request_id in sorted({r[0] for r in rows}):
        versions = [r for r in rows if r[0] == request_id]
        known = [r[3] for r in versions if r[3] is not None]
        newest = [r[1:3] for r in versions if r[3] == (max(known) if known else None)]
        winner = min(newest)
        copies = len(set(newest))
        expected.append((request_id, *winner, copies))
    assert [(r, t, b, c is not None) for r, t, b, c in got] == [
        (r, t, b, copies > 1) for r, t, b, copies in expected
    ]
    assert "written_us" not in [d[0] for d in con.execute(f"DESCRIBE ({fast})").fetchall()]
