"""pipelines/monthly_close.py as a scheduler runs it: a subprocess and its exit status."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb

from tests.conftest import REPO
from tests.helpers import copy_sample, export_records, record, write_config
from tests.invoices import write_month

JOB = REPO / "pipelines" / "monthly_close.py"


def _run(config: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            str(JOB),
            "--config",
            str(config),
            "--out",
            str(out),
            "--month",
            "2026-10",
            *extra,
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
    )


def _closed(config: Path) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(config.parent / "meter.duckdb"), read_only=True)
    try:
        return con.execute("SELECT month, event FROM month_events").fetchall()
    finally:
        con.close()


def test_clean_month_is_exported_and_closed(tmp_path: Path) -> None:
    rows = [
        record(
            f"r{i}", ("acme", "globex")[i % 2], f"2026-10-{i % 28 + 1:02d}T08:00:00.000Z", 900 * i
        )
        for i in range(60)
    ]
    export_records(tmp_path / "dynamodb", rows)
    config = write_config(tmp_path)
    done = _run(config, tmp_path / "out")
    assert done.returncode == 0, done.stdout + done.stderr
    folder = tmp_path / "out" / "2026-10"
    assert (folder / "finance_2026-10.csv").read_text().count("\n") == 3
    assert (folder / "focus_2026-10.csv").is_file()
    assert not (folder / "charges_2026-10.csv").exists()  # no shared costs: nothing to itemise
    assert sorted(p.suffix for p in (folder / "charts").iterdir()) and all(
        p.suffix == ".png" for p in (folder / "charts").iterdir()
    )
    assert _closed(config) == [("2026-10", "closed")]
    again = _run(config, tmp_path / "out")
    assert again.returncode == 4
    assert "already closed" in again.stdout


def test_unclean_month_is_exported_but_left_open(tmp_path: Path) -> None:
    copy_sample(tmp_path / "s")
    config = tmp_path / "s" / "meter.toml"
    done = _run(config, tmp_path / "out")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "quarantined" in done.stdout
    folder = tmp_path / "out" / "2026-10"
    assert (folder / "finance_2026-10.csv").is_file()
    # The sample splits a shared cost: each tenant's charges are itemised beside the CSV.
    charges = (folder / "charges_2026-10.csv").read_text().splitlines()
    assert charges[0].startswith("billing_month,tenant_id,") and "aurora_compute" in charges[1]
    assert "wrote 3 exports" in done.stdout
    assert _closed(config) == []


def test_bad_config_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "meter.toml").write_text("[nope]\n")
    done = _run(tmp_path / "meter.toml", tmp_path / "out")
    assert done.returncode == 2
    assert "nope: unknown key" in done.stderr


def test_a_month_that_ties_out_to_the_invoice_closes(tmp_path: Path) -> None:
    config = write_month(tmp_path)  # 60 units billed, 60 requests invoiced
    done = _run(config, tmp_path / "out")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _closed(config) == [("2026-10", "closed")]


def test_requests_past_the_invoice_tolerance_need_review(tmp_path: Path) -> None:
    config = write_month(tmp_path, extra_calls=2)  # 62 units billed, 60 requests invoiced
    done = _run(config, tmp_path / "out")
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stdout.endswith(
        "2026-10: left open for review:\n  Data API requests: meter billed 62 units, AWS "
        "invoiced 60 (+3.33 %), past the [invoice] tolerance of 1.00 % (see the invoice table; "
        "calibrate [pricing] measure and block_bytes)\n"
    )
    assert _closed(config) == []
    (tmp_path / "meter.toml").write_text(
        config.read_text().replace('format = "cur2"', 'format = "cur2"\ntolerance = "0.05"')
    )
    assert _run(config, tmp_path / "out").returncode == 0
