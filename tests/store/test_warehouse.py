"""Bills that can be defended: idempotent re-runs, close/reopen, diff, locking, crashes,
schema versions."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from metering.config import load_config
from metering.errors import MonthClosedError, WarehouseBusyError, WarehouseError
from metering.month import Month
from metering.outputs import export
from metering.period import diff, set_month_state
from metering.pipeline import bill
from metering.schemas import CALLS
from metering.store import SCHEMA_VERSION, connect
from metering.store.schema import OVERHEAD_COLUMNS
from tests.conftest import REPO
from tests.helpers import copy_sample, export_records, record, write_config

OCT = Month(2026, 10)


def _sample(tmp_path: Path) -> Path:
    copy_sample(tmp_path / "s")
    return tmp_path / "s" / "meter.toml"


def _dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, in a stable order (bill_runs without its clock columns)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [
            r[0]
            for r in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()
        ]
        out = {}
        for table in tables:
            columns = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
            keep = [c for c in columns if c not in ("started_at", "finished_at", "changed_at")]
            out[table] = con.execute(
                f"SELECT {', '.join(keep)} FROM {table} ORDER BY ALL"
            ).fetchall()
        return out
    finally:
        con.close()


def test_rebilling_is_idempotent_and_exports_are_byte_identical(tmp_path: Path) -> None:
    config = load_config(_sample(tmp_path))
    bill(config, OCT)
    first = export(config, OCT, "finance")
    before = _dump(Path(config.warehouse.path))
    bill(config, OCT)
    after = _dump(Path(config.warehouse.path))
    assert export(config, OCT, "finance") == first
    for table in before:
        if table not in ("bill_runs", "run_lines"):
            assert after[table] == before[table], table
    assert len(after["bill_runs"]) == 2  # every execution is kept
    runs = {row[0] for row in after["bill_runs"]}
    assert len(runs) == 1  # same inputs and config: the same run id


def test_close_refuses_rebill_until_reopened(tmp_path: Path) -> None:
    config = load_config(_sample(tmp_path))
    with pytest.raises(MonthClosedError, match="never been billed"):
        set_month_state(config, OCT, "closed", "")
    bill(config, OCT)
    set_month_state(config, OCT, "closed", "sent to finance")
    before = _dump(Path(config.warehouse.path))
    with pytest.raises(MonthClosedError) as refused:
        bill(config, OCT)
    assert 'meter reopen --month 2026-10 --reason "' in str(refused.value)
    assert "sent to finance" in str(refused.value)
    assert _dump(Path(config.warehouse.path)) == before
    set_month_state(config, OCT, "reopened", "late CloudTrail files")
    bill(config, OCT)
    con = duckdb.connect(config.warehouse.path, read_only=True)
    events = con.execute(
        "SELECT event, changed_by, reason FROM month_events ORDER BY changed_at"
    ).fetchall()
    assert [(e, r) for e, _, r in events] == [
        ("closed", "sent to finance"),
        ("reopened", "late CloudTrail files"),
    ]
    assert all(by for _, by, _ in events)


def test_diff_shows_what_changed_per_tenant(tmp_path: Path) -> None:
    rows = [
        record(f"r{i}", "acme" if i % 2 else "globex", "2026-10-05T00:00:00.000Z")
        for i in range(10)
    ]
    export_records(tmp_path / "dynamodb", rows)
    config = load_config(write_config(tmp_path))
    bill(config, OCT)
    shutil.rmtree(tmp_path / "dynamodb")
    export_records(
        tmp_path / "dynamodb", [*rows, record("late", "acme", "2026-10-31T23:00:00.000Z", 70000, 0)]
    )
    bill(config, OCT)
    runs, frame = diff(config, OCT)
    assert runs == [1, 2]
    acme = frame.filter(frame["tenant_id"] == "acme").row(0, named=True)
    assert (
        acme["calls_before"],
        acme["calls_after"],
        acme["units_before"],
        acme["units_after"],
    ) == (5, 6, 5, 8)
    globex = frame.filter(frame["tenant_id"] == "globex").row(0, named=True)
    assert globex["calls_before"] == globex["calls_after"] == 5


# A real `meter bill` in another process, which stops inside its write transaction (after
# some tables are written, before COMMIT) and says so on stdout.
SLOW_BILL = textwrap.dedent(
    """
    import sys, time
    from metering.config import load_config
    from metering.month import Month
    from metering.pipeline import bill

    def progress(stage, done, total):
        if stage == "writing warehouse" and done == 2:
            print("WRITING", flush=True)
            time.sleep(60)

    bill(load_config(sys.argv[1]), Month(2026, 10), progress)
    """
)


def _start_slow_bill(config: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", SLOW_BILL, str(config)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "WRITING"
    return process


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.stdout is not None
    process.stdout.close()


def test_second_process_fails_at_once_with_busy(tmp_path: Path) -> None:
    config_path = _sample(tmp_path)
    first = _start_slow_bill(config_path)
    try:
        started = time.monotonic()
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "metering",
                "bill",
                "--month",
                "2026-10",
                "--config",
                str(config_path),
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        assert second.returncode == 1
        assert "the warehouse is busy" in second.stderr
        assert time.monotonic() - started < 15  # it did not read the inputs first
        with pytest.raises(WarehouseBusyError):
            bill(load_config(config_path), OCT)
    finally:
        _stop(first)


def test_sigkill_during_the_write_leaves_the_warehouse_unchanged(tmp_path: Path) -> None:
    config_path = _sample(tmp_path)
    config = load_config(config_path)
    bill(config, OCT)  # a first, complete run
    before = _dump(Path(config.warehouse.path))
    # Change the inputs so the killed run would have written different rows.
    (config_path.parent / "tenants.csv").write_text(
        "tenant_id,tenant_name,cost_center\nacme,Renamed,X\n"
    )
    process = _start_slow_bill(config_path)
    _stop(process)
    assert process.returncode == -signal.SIGKILL
    assert _dump(Path(config.warehouse.path)) == before


# Runs meter with a file size limit: every write past it is refused as on a full disk
# (EFBIG), without root or a small disk. An ignored SIGXFSZ stays ignored across exec.
_LIMITED = (
    "import os, resource, signal, sys; "
    "signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
    "limit = int(sys.argv[1]); resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)); "
    "os.execv(sys.executable, [sys.executable, '-m', 'metering', *sys.argv[2:]])"
)


def _bill_with_file_size_limit(
    config_path: Path, limit: int, *options: str
) -> subprocess.CompletedProcess[str]:
    """``meter bill`` in a process that may write no file past ``limit`` bytes."""
    command = ["bill", "--month", "2026-10", "--config", str(config_path), *options]
    return subprocess.run(
        [sys.executable, "-c", _LIMITED, str(limit), *command],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )


@pytest.mark.parametrize(
    ("options", "fails_in"),
    [((), "meter.duckdb"), (("--fresh",), "meter.spool")],  # the commit; the spool's writes
)
def test_a_full_disk_ends_the_bill_with_one_clear_line_and_changes_nothing(
    tmp_path: Path, options: tuple[str, ...], fails_in: str
) -> None:
    config_path = _sample(tmp_path)
    config = load_config(config_path)
    bill(config, OCT)
    before = _dump(Path(config.warehouse.path))
    (config_path.parent / "tenants.csv").write_text(
        "tenant_id,tenant_name,cost_center\nacme,Renamed,X\n"
    )
    failed = _bill_with_file_size_limit(config_path, 1, *options)
    assert failed.returncode == 1, failed.stderr
    # The error is the last thing said (progress lines come before it in a log).
    error = failed.stderr[failed.stderr.index("error: ") :]
    said = " ".join(error.split())
    assert said.startswith(f"error: {config_path.parent}/{fails_in}")
    assert "File too large" in said and "the warehouse is unchanged" in said
    assert "rollback" not in said and "bug" not in said
    assert _dump(Path(config.warehouse.path)) == before
    assert list(config_path.parent.glob("meter.spool/**/*.tmp")) == []
    # With room again, the same bill goes through from what the spool holds.
    again = bill(config, OCT)
    assert again.tenant_month.filter(tenant_id="acme")["tenant_name"].to_list() == ["Renamed"]


def test_older_warehouse_is_migrated_newer_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute((REPO / "tests" / "golden" / "warehouse_v1.sql").read_text())
    con.execute("INSERT INTO meter_meta VALUES ('schema_version', '1')")
    con.execute("INSERT INTO quarantine VALUES ('r', '2026-09', 'f', 'line 1', 'bad')")
    call = ("2026-09", "r", "q1", "e1", "2026-09-03 10:00:00+00", "acme", "ExecuteStatement")
    call += (10, 20, 1, "metering_record", "both", False)
    con.execute(f"INSERT INTO calls VALUES ({', '.join('?' * len(call))})", call)
    con.close()
    with connect(path) as migrated:
        version = migrated.execute(
            "SELECT value FROM meter_meta WHERE key = 'schema_version'"
        ).fetchall()
        assert version == [(str(SCHEMA_VERSION),)]
        assert migrated.execute("SELECT count(*) FROM quarantine").fetchall() == [(1,)]
        columns = {r[0] for r in migrated.execute("DESCRIBE bill_runs").fetchall()}
        assert {"run_seq", "executed_by", "unlisted_files", "conflicting_duplicates"} <= columns
        assert set(OVERHEAD_COLUMNS) <= columns  # v5: NULL for runs billed before
        assert migrated.execute("SELECT count(*) FROM conflicts").fetchall() == [(0,)]  # v4
        assert migrated.execute("SELECT count(*) FROM invoice").fetchall() == [(0,)]  # v6
        for table in ("tenant_charges", "shared_costs"):  # v7
            assert migrated.execute(f"SELECT count(*) FROM {table}").fetchall() == [(0,)]
        call_rows = [r[0] for r in migrated.execute("DESCRIBE call_rows").fetchall()]
        assert call_rows[-1] == "resource_arn"  # v7: NULL for calls joined before
        # v3: calls became a view over call_rows and month_runs; it reads as before.
        assert [r[0] for r in migrated.execute("DESCRIBE calls").fetchall()] == list(CALLS)
        got = migrated.execute("SELECT * EXCLUDE (event_time) FROM calls").fetchall()
        assert got == [call[:4] + call[5:]]
        migrated.execute("UPDATE meter_meta SET value = '99' WHERE key = 'schema_version'")
    with (
        pytest.raises(WarehouseError, match="schema version 99, newer than this meter's"),
        connect(path),
    ):
        pass


def test_traceability_a_line_lists_its_calls(tmp_path: Path) -> None:
    config = load_config(_sample(tmp_path))
    result = bill(config, OCT)
    con = duckdb.connect(config.warehouse.path, read_only=True)
    lines = con.execute(
        "SELECT tenant_id, calls, units, run_id FROM tenant_month ORDER BY 1"
    ).fetchall()
    for tenant, calls, units, run_id in lines:
        got = con.execute(
            "SELECT count(*), sum(units) FROM calls WHERE month = '2026-10' AND tenant_id = ? AND run_id = ?",
            [tenant, run_id],
        ).fetchall()
        assert got == [(calls, units)]
    run = con.execute("SELECT config_sha256, inputs_sha256 FROM bill_runs").fetchall()
    assert run == [(config.sha256, run[0][1])] and len(run[0][1]) == 64
    assert result.run_id == lines[0][3]
