"""Schema 8: the warehouse's amounts keep each currency's own decimals (up to 4); an older
warehouse (schema 6, or 7 with the shared costs' tables) migrates and keeps the amounts it
was billed with."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import duckdb

from metering.config import load_config
from metering.month import Month
from metering.outputs import export
from metering.store import SCHEMA_VERSION, connect
from metering.store.schema import AMOUNT, AMOUNT_COLUMNS
from tests.helpers import GOLDEN, run_meter, write_config

# 2026-09 billed in USD, 2026-10 in XOF by the meter of schema 6, which rounded XOF to 2
# places (ISO 4217 gives it none).
BILLED = {
    ("2026-09", "a"): Decimal("1.00"),
    ("2026-09", "b"): Decimal("0.67"),
    ("2026-09", "c"): Decimal("0.66"),
    ("2026-10", "a"): Decimal("0.37"),
    ("2026-10", "b"): Decimal("0.25"),
    ("2026-10", "c"): Decimal("0.24"),
}


def _amounts(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[object, ...]]]:
    """Every row of each table with amounts (of those the warehouse has), amounts last."""
    tables = {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    return {
        table: con.execute(
            f"SELECT * EXCLUDE ({', '.join(c for c in columns)}), {', '.join(columns)} "
            f"FROM {table} ORDER BY ALL"
        ).fetchall()
        for table, columns in AMOUNT_COLUMNS.items()
        if table in tables
    }


def _migrated(path: Path, version: int) -> None:
    """Open the warehouse of ``version`` at ``path`` (which migrates it) and check that every
    rounded amount is now AMOUNT, holding the value it held."""
    con = duckdb.connect(str(path))
    assert con.execute("SELECT value FROM meter_meta WHERE key = 'schema_version'").fetchall() == [
        (str(version),)
    ]
    before = _amounts(con)
    con.close()

    with connect(path) as migrated:
        assert migrated.execute(
            "SELECT value FROM meter_meta WHERE key = 'schema_version'"
        ).fetchall() == [(str(SCHEMA_VERSION),)]
        assert SCHEMA_VERSION >= 8
        for table, columns in AMOUNT_COLUMNS.items():
            types = dict(
                migrated.execute(f"SELECT name, type FROM pragma_table_info('{table}')").fetchall()
            )
            assert {c: types[c] for c in columns} == dict.fromkeys(columns, AMOUNT.replace(" ", ""))
        after = _amounts(migrated)
        assert {table: after[table] for table in before} == before  # 0.67 == 0.6700
        # NOT NULL is kept, and 3 and 4 decimals now fit.
        null = migrated.execute(
            "SELECT \"notnull\" FROM pragma_table_info('tenant_month') WHERE name = 'amount'"
        )
        assert null.fetchall() == [(True,)]
        assert migrated.execute(f"SELECT '0.0042'::{AMOUNT}::VARCHAR").fetchall() == [("0.0042",)]


def test_a_warehouse_of_schema_6_migrates_and_keeps_its_amounts(tmp_path: Path) -> None:
    path = tmp_path / "meter.duckdb"
    con = duckdb.connect(str(path))
    con.execute((GOLDEN / "warehouse_v6.sql").read_text())
    lines = con.execute("SELECT month, tenant_id, amount FROM tenant_month").fetchall()
    assert {(m, t): a for m, t, a in lines} == BILLED
    con.close()
    _migrated(path, 6)
    with connect(path) as migrated:  # (7: the shared costs' tables, empty)
        for table in ("tenant_charges", "shared_costs"):
            assert migrated.execute(f"SELECT count(*) FROM {table}").fetchall() == [(0,)]

    # The outputs show each month as it was billed: XOF's two places are not rounded again.
    config_path = write_config(tmp_path, '\n[pricing]\ncurrency = "XOF"\n')
    config = load_config(config_path)
    usd = export(config, Month(2026, 9), "finance").decode().splitlines()
    xof = export(config, Month(2026, 10), "finance").decode().splitlines()
    assert [row.split(",")[8:10] for row in usd[1:]] == [
        ["1.00", "USD"],
        ["0.67", "USD"],
        ["0.66", "USD"],
    ]
    assert [row.split(",")[8:10] for row in xof[1:]] == [
        ["0.37", "XOF"],
        ["0.25", "XOF"],
        ["0.24", "XOF"],
    ]
    done = run_meter("report", "--month", "2026-09", "--config", str(config_path), "--json")
    report = json.loads(done.stdout)
    assert (report["currency"], report["amount"]) == ("USD", "2.33")
    assert [line["amount"] for line in report["lines"]] == ["1.00", "0.67", "0.66"]


def test_a_warehouse_of_schema_7_migrates_and_keeps_its_charges(tmp_path: Path) -> None:
    """tests/golden/warehouse_v7.sql: a month with shared costs, as the meter of schema 7
    billed it in XOF (to 2 places): charges and shared costs keep their amounts, and the
    charges export shows them as billed."""
    path = tmp_path / "meter.duckdb"
    con = duckdb.connect(str(path))
    con.execute((GOLDEN / "warehouse_v7.sql").read_text())
    con.close()
    _migrated(path, 7)

    config_path = write_config(tmp_path, '\n[pricing]\ncurrency = "XOF"\n')
    config = load_config(config_path)
    charges = export(config, Month(2026, 10), "charges").decode().splitlines()
    assert [tuple(row.split(",")[i] for i in (1, 4, 7, 8)) for row in charges[1:5]] == [
        ("acme", "aurora_compute", "5.06", "XOF"),
        ("acme", "aurora_io", "0.12", "XOF"),
        ("acme", "aurora_storage", "0.27", "XOF"),
        ("acme", "data_api", "0.42", "XOF"),
    ]
    finance = export(config, Month(2026, 10), "finance").decode().splitlines()
    assert [row.split(",")[8] for row in finance[1:]] == ["5.87", "4.38", "3.15"]
    done = run_meter("report", "--month", "2026-10", "--config", str(config_path), "--json")
    report = json.loads(done.stdout)
    assert [(s["charge"], s["allocated"], s["unallocated"]) for s in report["shared_costs"]] == [
        ("aurora_compute", "10.1", "0"),  # (as billed, past the minor unit: normalised)
        ("aurora_io", "0.3", "0"),
        ("aurora_storage", "2", "0.75"),
    ]
