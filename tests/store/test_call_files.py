"""Schema 9: months whose calls a Spark bill wrote as Parquet, read by `calls` there."""

from __future__ import annotations

from pathlib import Path

import duckdb

from metering.schemas import RATED
from metering.store import connect
from metering.store.schema import views
from tests.conftest import REPO

GOLDEN = REPO / "tests" / "golden"


def test_a_warehouse_of_schema_7_migrates_to_read_parquet_calls(tmp_path: Path) -> None:
    path = tmp_path / "meter.duckdb"
    con = duckdb.connect(str(path))
    con.execute((GOLDEN / "warehouse_v7.sql").read_text())
    held = con.execute("SELECT month, count(*) FROM calls GROUP BY ALL ORDER BY ALL").fetchall()
    con.close()
    with connect(path) as migrated:
        assert migrated.execute("SELECT count(*) FROM month_call_files").fetchall() == [(0,)]
        assert (
            migrated.execute(
                "SELECT month, count(*) FROM calls GROUP BY ALL ORDER BY ALL"
            ).fetchall()
            == held
        )
        # A month of calls in Parquet, partitioned by day as Spark writes them.
        folder = tmp_path / "calls" / "month=2026-12" / "run"
        folder.parent.mkdir(parents=True)
        names = ", ".join(RATED)
        migrated.execute("CREATE TEMP TABLE spark_rows AS SELECT * FROM call_rows WHERE false")
        migrated.execute(
            f"INSERT INTO spark_rows (month, {names}) VALUES ('2026-12', 'r1', NULL, "
            "TIMESTAMPTZ '2026-12-01 00:00:01+00', 'acme', 'ExecuteStatement', NULL, 'both', "
            "1, 2, 1, 'metering_record', 'both', false, NULL, true, true, NULL), "
            "('2026-12', 'r2', NULL, TIMESTAMPTZ '2026-12-02 00:00:01+00', 'acme', "
            "'ExecuteStatement', NULL, NULL, 1, 2, 1, 'metering_record', 'metering', false, NULL, "
            "true, false, NULL)"
        )
        migrated.execute(
            f"COPY (SELECT {names}, CAST(event_time AS DATE) AS day FROM spark_rows) TO "
            f"'{folder}' (FORMAT parquet, PARTITION_BY (day))"
        )
        migrated.execute("INSERT INTO month_runs VALUES ('2026-12', 'run-12', NULL)")
        migrated.execute("INSERT INTO month_call_files VALUES ('2026-12', ?)", [str(folder)])
        for ddl in views([("2026-12", str(folder))]):
            migrated.execute(ddl)
        got = migrated.execute(
            "SELECT run_id, request_id, tenant_id, units FROM calls WHERE month = '2026-12'"
        ).fetchall()
        assert got == [("run-12", "r1", "acme", 1)]  # billed calls only
        assert (
            migrated.execute("SELECT count(*) FROM calls").fetchall()[0][0]
            == sum(n for _, n in held) + 1
        )
