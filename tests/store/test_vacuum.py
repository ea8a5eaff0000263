"""The warehouse's closing checkpoint rewrites a table only when its deleted rows are worth it."""

from __future__ import annotations

from pathlib import Path

import duckdb

from metering.store import VACUUM_ROWS, connect

ROW_GROUP = 122_880  # DuckDB's


def _row_groups(path: Path) -> list[tuple[int, int]]:
    """(rows stored, first block) of each row group of table ``t``, deleted rows included."""
    with duckdb.connect(str(path), read_only=True) as con:
        found = con.execute(
            "SELECT max(count), min(block_id) FROM pragma_storage_info('t') "
            "WHERE column_path = '[1]' AND segment_type = 'VARCHAR' "
            "GROUP BY row_group_id ORDER BY row_group_id"
        ).fetchall()
    return [(int(rows), int(block)) for rows, block in found]


def _add(con: duckdb.DuckDBPyConnection, rows: int) -> None:
    con.execute(
        "INSERT INTO t SELECT i, 'arn:aws:rds:eu-west-1:1:cluster:c' || (i % 97) "
        f"FROM range({rows}) r(i)"
    )


def test_adding_rows_leaves_the_row_groups_already_written_as_they_are(tmp_path: Path) -> None:
    """A re-bill that adds a day of calls: DuckDB would merge the last few row groups with
    the new rows (rewriting hundreds of thousands of calls to save one row group)."""
    path = tmp_path / "meter.duckdb"
    with connect(path) as con:
        con.execute("SET preserve_insertion_order = false")
        con.execute("CREATE TABLE t (i BIGINT, arn VARCHAR)")
        for rows in (ROW_GROUP + 100_000, ROW_GROUP + 100_000, 7_000):  # groups not all full
            _add(con, rows)
    before = _row_groups(path)
    assert [rows for rows, _ in before] == [ROW_GROUP, 100_000, ROW_GROUP, 100_000, 7_000]

    with connect(path) as con:
        _add(con, 34_000)
    after = _row_groups(path)
    assert after[:-1] == before  # the same rows in the same blocks
    assert after[-1][0] == 34_000  # the new rows: a row group of their own


def test_deleted_rows_are_reclaimed_once_a_row_group_and_a_tenth_of_the_table(
    tmp_path: Path,
) -> None:
    path = tmp_path / "meter.duckdb"
    rows = 4 * ROW_GROUP
    with connect(path) as con:
        con.execute("CREATE TABLE t (i BIGINT, arn VARCHAR)")
        _add(con, rows)
    stored = sum(count for count, _ in _row_groups(path))
    assert stored == rows

    few = VACUUM_ROWS // 2  # a re-bill that replaced a few calls: they stay stored
    with connect(path) as con:
        con.execute(f"DELETE FROM t WHERE i % 8 = 0 AND i < {few * 8}")
    assert sum(count for count, _ in _row_groups(path)) == rows

    with connect(path) as con:  # a row group's worth, and over a tenth: they go
        con.execute(f"DELETE FROM t WHERE i % 8 = 1 AND i < {few * 8}")
        assert con.execute("SELECT count(*) FROM t").fetchall() == [(rows - 2 * few,)]
    assert sum(count for count, _ in _row_groups(path)) < rows - few
