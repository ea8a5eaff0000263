"""``--json``, config discovery and exit statuses, as a scheduler or a script meets them:
subprocesses, stdout and stderr apart."""

from __future__ import annotations

import json
import re
import subprocess
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from tests.helpers import (
    copy_sample,
    lines_of,
    record,
    run_meter,
    write_config,
    write_data_file,
)

# Pinned: the README's --json table. Keys are only ever added.
BILL_KEYS = [
    "command", "exit_code", "month", "run_id", "warehouse", "currency", "account_cost",
    "amount", "total_units", "counters", "lines", "unregistered_tenants", "quarantine",
    "conflicts", "reconciliation", "overhead", "invoice", "input_files", "charges",
    "shared_costs", "calls",
]  # fmt: skip
LINE_KEYS = [
    "tenant_id", "tenant_name", "cost_center", "calls", "units", "request_bytes",
    "response_bytes", "size_estimated_calls", "peak_rps", "cost_exact", "amount", "share",
]  # fmt: skip


def meter(
    *args: str, cwd: Path = REPO, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_meter(*args, cwd=cwd, env=env, unset=("METER_CONFIG",))


def document(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(done.stdout)  # one document, nothing else on stdout
    assert doc["exit_code"] == done.returncode
    return doc


def test_bill_report_close_reopen_diff_as_json(tmp_path: Path) -> None:
    config = str(copy_sample(tmp_path / "s"))
    bill = document(meter("bill", "--month", "2026-10", "--config", config, "--json"))
    assert list(bill) == BILL_KEYS
    assert (bill["command"], bill["exit_code"], bill["month"]) == ("bill", 3, "2026-10")
    assert bill["warehouse"] == str(tmp_path / "s" / "meter.duckdb")
    assert [list(line) for line in bill["lines"]] == [LINE_KEYS] * len(bill["lines"])
    amounts = [Decimal(line["amount"]) for line in bill["lines"]]  # strings: exact
    assert sum(amounts) == Decimal(bill["amount"])
    assert sum(line["calls"] for line in bill["lines"]) == bill["counters"]["calls_billed"]
    assert bill["quarantine"]["count"] == bill["counters"]["quarantined"] == 5
    assert {q["locator"] for q in bill["quarantine"]["listed"]} == {
        f"line {n}" for n in range(2521, 2526)
    }
    days = bill["reconciliation"]
    assert sum(d["cloudtrail_only"] for d in days) > 0 and days[0]["day"] == "2026-10-01"

    report = document(meter("report", "--month", "2026-10", "--config", config, "--json"))
    assert (report["command"], report["run_id"], report["amount"]) == (
        "report",
        bill["run_id"],
        bill["amount"],
    )
    assert report["counters"] == bill["counters"]
    assert report["lines"] == bill["lines"]

    nothing = meter("diff", "--month", "2026-10", "--config", config, "--json")
    assert nothing.returncode == 4  # one run: nothing to compare
    assert document(nothing)["runs"] == [1]

    closed = document(meter("close", "--month", "2026-10", "--config", config, "--json"))
    assert (closed["command"], closed["event"], closed["month"]) == ("close", "closed", "2026-10")
    refused = meter("bill", "--month", "2026-10", "--config", config, "--json")
    assert refused.returncode == 1
    assert document(refused)["error"].startswith("2026-10 was closed by")
    reopened = meter("reopen", "--month", "2026-10", "--reason", "late file", "--config", config)
    assert reopened.returncode == 0
    meter("bill", "--month", "2026-10", "--config", config)
    two = document(meter("diff", "--month", "2026-10", "--config", config, "--json"))
    assert (two["exit_code"], two["runs"]) == (0, [1, 2])


def test_sample_as_json(tmp_path: Path) -> None:
    out = tmp_path / "m"
    done = meter("sample", "--out", str(out), "--calls", "50", "--tenants", "3", "--json")
    doc = document(done)
    assert (doc["command"], doc["calls"], doc["tenants"]) == ("sample", 50, 3)
    # Progress in a log: what was written, stage by stage (stderr; stdout is the document).
    assert re.search(r"Z export data files 5/5 \(100%", done.stderr), done.stderr
    assert re.search(r"Z cloudtrail files (\d+)/\1 \(100%", done.stderr), done.stderr
    assert doc["config"] == str(out / "meter.toml")


def test_the_config_is_found_as_the_readme_says(tmp_path: Path) -> None:
    config = copy_sample(tmp_path / "s")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # No --config, no ./meter.toml: $METER_CONFIG names it.
    found = meter("bill", "--month", "2026-10", cwd=elsewhere, env={"METER_CONFIG": str(config)})
    assert found.returncode == 3, found.stderr
    # No --config, no $METER_CONFIG: ./meter.toml.
    here = meter("report", "--month", "2026-10", "--json", cwd=config.parent)
    assert document(here)["month"] == "2026-10"
    # --config wins over $METER_CONFIG.
    wins = meter(
        "report", "--month", "2026-10", "--config", str(config), env={"METER_CONFIG": "/nope"}
    )
    assert wins.returncode == 0, wins.stderr
    missing = meter("report", "--month", "2026-10", cwd=elsewhere)
    assert missing.returncode == 2
    assert "meter.toml: no such config file" in missing.stderr
    # A suggested command repeats the --config given, so it can be pasted as it is.
    never = meter("export", "--month", "2026-09", "--config", str(config))
    assert never.returncode == 2
    assert f"run `meter bill --month 2026-09 --config {config}` first" in never.stderr
    plain = meter("export", "--month", "2026-09", cwd=config.parent)
    assert "run `meter bill --month 2026-09` first" in plain.stderr


def _small(folder: Path, body: str = "", registry: str | None = None) -> Path:
    rows = [record("r1", "acme", "2026-10-02T00:00:00.000Z")]
    write_data_file(folder / "dynamodb" / "data" / "a.json.gz", lines_of(rows))
    return write_config(folder, body, registry=registry)


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ("registry", "no such tenants registry; fix [tenants] registry"),
        ("registry-columns", "the registry needs the columns"),
        ("warehouse-folder", "the warehouse is a folder; fix [warehouse] path"),
        ("warehouse-parent", "which is no folder; fix [warehouse] path"),
    ],
)
def test_configuration_problems_exit_2(tmp_path: Path, change: str, said: str) -> None:
    config = _small(tmp_path, registry="tenant_id,tenant_name,cost_center\nacme,Acme,CC\n")
    text = config.read_text()
    if change == "registry":
        (tmp_path / "tenants.csv").unlink()
    elif change == "registry-columns":
        (tmp_path / "tenants.csv").write_text("tenant,name\nacme,Acme\n")
    elif change == "warehouse-folder":
        (tmp_path / "meter.duckdb").mkdir()
    else:
        config.write_text(text.replace('path = "meter.duckdb"', 'path = "no/such/w.duckdb"'))
    done = meter("bill", "--month", "2026-10", "--config", str(config), "--json")
    assert done.returncode == 2, done.stderr
    assert said in done.stderr
    assert said in document(done)["error"]


def test_rls_check_that_cannot_connect_exits_1() -> None:
    dsn = "host=127.0.0.1 port=1 dbname=x user=u connect_timeout=2"
    done = meter("rls", "--check", dsn, "--json")
    assert done.returncode == 1
    assert document(done)["error"].startswith("cannot connect to PostgreSQL")


def test_parquet_export_and_progress_lines_in_a_log(tmp_path: Path) -> None:
    """For BI and dbt: the month's tables as Parquet, money still DECIMAL. In a log (stderr
    not a terminal) a long command says how far it got in plain timestamped lines."""
    import duckdb

    config = str(copy_sample(tmp_path / "s"))
    bill = meter("bill", "--month", "2026-10", "--config", config)
    lines = [line for line in bill.stderr.splitlines() if " cloudtrail files " in line]
    assert lines and " cloudtrail files 386/386 (100%" in lines[-1]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", lines[-1].split()[0])
    # The join, DuckDB's work, in per cent: no rate (it is no count of things).
    assert re.search(r"Z joining calls 100/100 \(100%\)\n", bill.stderr), bill.stderr
    out = tmp_path / "pq"
    done = meter(
        "export", "--month", "2026-10", "--format", "parquet", "--out", str(out), "--config", config
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == [
        "calls.parquet",
        "tenant_day.parquet",
        "tenant_month.parquet",
    ]
    con = duckdb.connect(str(tmp_path / "s" / "meter.duckdb"), read_only=True)
    for table in ("tenant_month", "tenant_day", "calls"):
        exported = con.sql(f"SELECT * FROM '{out / table}.parquet' ORDER BY ALL").fetchall()
        kept = con.sql(f"SELECT * FROM {table} WHERE month = '2026-10' ORDER BY ALL").fetchall()
        assert exported == kept, table
    described = con.sql(f"DESCRIBE SELECT amount FROM '{out}/tenant_month.parquet'").fetchall()
    con.close()
    assert described[0][:2] == ("amount", "DECIMAL(20,4)")  # money stays exact
    charts = meter("chart", "--month", "2026-10", "--config", config, "--out", str(tmp_path / "c"))
    assert charts.returncode == 0, charts.stderr
    assert re.search(r"Z charts 5/5 \(100%", charts.stderr), charts.stderr  # one month: no trend
    missing = meter("export", "--month", "2026-10", "--format", "parquet", "--config", config)
    assert missing.returncode == 2
    assert "give --out DIR" in missing.stderr
