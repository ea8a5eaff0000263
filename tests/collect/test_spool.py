"""Parallel decoding and the incremental spool give exactly what a full in-process read gives."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from metering.collect.cloudtrail import find_trail_files
from metering.collect.exports import data_files_parts, find_data_files, read_exports
from metering.collect.spool import Job, Spool
from metering.config import load_config
from metering.month import Month
from metering.pipeline import bill
from metering.run import spool_folder
from tests.conftest import SAMPLE
from tests.helpers import copy_sample

OCT = Month(2026, 10)


def _sample(tmp_path: Path, name: str = "s") -> Path:
    copy_sample(tmp_path / name)
    return tmp_path / name / "meter.toml"


def _tables(path: str) -> dict[str, list[tuple[object, ...]]]:
    con = duckdb.connect(path, read_only=True)
    try:
        return {
            t: con.execute(f"SELECT * EXCLUDE (run_id) FROM {t} ORDER BY ALL").fetchall()
            for t in ("calls", "tenant_month")
        } | {
            t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
            for t in ("tenant_day", "reconciliation", "call_rows")  # (every call joined)
        }
    finally:
        con.close()


def test_worker_processes_decode_what_one_process_decodes(tmp_path: Path) -> None:
    roots = [str(SAMPLE / "dynamodb")]
    in_memory = read_exports(roots)
    parallel = read_exports(roots, spool=Spool(tmp_path / "spool", workers=2, in_process_bytes=0))
    assert parallel.frame.height == 0 and len(parallel.parquet) == 4  # 5 files, one empty
    import polars as pl

    spooled = pl.concat([pl.read_parquet(p) for p in parallel.parquet])
    assert spooled.sort("request_id").equals(in_memory.frame.sort("request_id"))
    assert parallel.counters == in_memory.counters
    assert parallel.quarantine == in_memory.quarantine
    assert parallel.inputs == in_memory.inputs


def test_unchanged_files_are_reused_changed_ones_decoded_again(tmp_path: Path) -> None:
    data_files = find_data_files(str(SAMPLE / "dynamodb")).files
    jobs = [Job(f.obj, f, f.obj.uri) for f in data_files]
    spool = Spool(tmp_path / "spool")
    first = spool.decode("records", jobs, data_files_parts)
    assert (spool.decoded, spool.reused) == (5, 0)
    again = Spool(tmp_path / "spool")
    second = again.decode("records", jobs, data_files_parts)
    assert (again.decoded, again.reused) == (0, 5)
    assert second.parquet == first.parquet and second.counters == first.counters
    changed = [
        Job(j.obj.__class__(j.obj.uri, j.obj.name, j.obj.size, mtime_ns=1), j.task, j.group)
        for j in jobs[:1]
    ]
    third = Spool(tmp_path / "spool")
    third.decode("records", changed + jobs[1:], data_files_parts)
    assert (third.decoded, third.reused) == (1, 4)
    assert len(list((tmp_path / "spool" / "records").glob("*.json"))) == 5  # the old one went


def test_a_day_of_trail_files_is_one_spool_entry_and_late_files_make_another(
    tmp_path: Path,
) -> None:
    """Files are decoded and spooled a folder (a delivery day) at a time: no cost per file.
    Files added later to a day already read make a new entry; the day's entry is reused."""
    config = load_config(_sample(tmp_path))
    bill(config, OCT)
    events = spool_folder(config) / "events"
    entries = sorted(events.glob("*.json"))
    read = find_trail_files([str(config.path.parent / "cloudtrail")], OCT, 3).objects  # type: ignore[union-attr]
    assert len(entries) == len({Path(obj.uri).parent for obj in read}) > 30  # a day, an entry
    _add_late_files(config.path)  # type: ignore[arg-type]
    again = bill(config, OCT)
    # (the invoice's data file and manifest are read at each bill: they are never spooled)
    assert (again.decoded_files, again.reused_files) == (2, again.counters.files_read - 2 - 2)
    assert set(entries) < set(events.glob("*.json"))
    assert len(list(events.glob("*.json"))) == len(entries) + 1


def _october_trail(config: Path) -> Path:
    return sorted(
        (config.parent / "cloudtrail").glob("AWSLogs/*/CloudTrail/*/2026/10/15/*.json.gz")
    )[0]


def _add_late_files(config: Path) -> None:
    """Two new delivery files of CloudTrail events: one of three new calls; one with a
    second delivery of an old event and an old call's request under a new event id."""
    trail = _october_trail(config)
    body = json.loads(gzip.decompress(trail.read_bytes()))
    calls = [r for r in body["Records"] if r["eventSource"].startswith("rdsdata")]
    new = [dict(r) for r in calls[:3]]
    for i, record in enumerate(new):
        record["eventID"] = f"late-{i}"
        record["requestID"] = f"late-request-{i}"
        record["eventTime"] = f"2026-10-31T12:00:0{i}Z"
    old = [r for r in calls[3:] if r.get("requestID")][:2]
    again = [old[0], {**old[1], "eventID": "late-same-request"}]
    folder = trail.parent.parent / "31"
    folder.mkdir(exist_ok=True)
    for name, records in (("1205Z_late000", new), ("1210Z_late001", again)):
        (folder / f"123456789012_CloudTrail_us-east-1_20261031T{name}0000000.json.gz").write_bytes(
            gzip.compress(json.dumps({"Records": records}).encode(), mtime=0)
        )


def test_rebill_after_new_files_equals_a_full_reread(tmp_path: Path) -> None:
    """Two re-bills, each after a new file: each joins again only the calls its file
    touches, and the warehouse ends as one bill of everything would leave it."""
    incremental = _sample(tmp_path, "inc")
    config = load_config(incremental)
    bill(config, OCT)
    _add_late_files(incremental)
    late = sorted(incremental.parent.glob("cloudtrail/**/*_late00*.json.gz"))
    late[1].rename(late[1].with_suffix(".later"))  # first only the file of new calls
    os.utime(incremental.parent / "tenants.csv")  # touching files changes nothing billed
    assert bill(config, OCT).joined_again == 3  # new calls: no calls row is replaced
    late[1].with_suffix(".later").rename(late[1])
    result = bill(config, OCT)
    assert result.decoded_files == 1 and result.reused_files > 300
    assert result.joined_again == 2  # only the calls the new file touches were joined

    full = _sample(tmp_path, "full")
    _add_late_files(full)
    fresh = bill(load_config(full), OCT)
    assert fresh.reused_files == 0
    assert _tables(config.warehouse.path) == _tables(load_config(full).warehouse.path)
    assert result.counters == fresh.counters
    assert result.run_id == fresh.run_id  # the same inputs, wherever they were decoded
    con = duckdb.connect(config.warehouse.path, read_only=True)
    assert con.execute("SELECT DISTINCT run_id FROM calls").fetchall() == [(result.run_id,)]
    # What the next bill starts from is in the warehouse: the spooled files read, as read.
    spooled = len(list(spool_folder(config).glob("*/*.parquet")))
    assert con.execute("SELECT count(*) FROM month_inputs").fetchall() == [(spooled,)]
    con.close()


def test_new_files_that_touch_most_calls_join_them_again(tmp_path: Path) -> None:
    """A second full export of the metering table holds every record again: the re-bill
    joins again every call that has a record, and equals a bill of it all at once."""
    path = _sample(tmp_path, "inc")
    config = load_config(path)
    bill(config, OCT)
    export = next((path.parent / "dynamodb" / "AWSDynamoDB").iterdir())
    shutil.copytree(export, export.with_name(f"{export.name}-second"))
    result = bill(config, OCT)
    assert (
        result.joined_again is not None and result.joined_again > 0.9 * result.counters.calls_billed
    )

    full = _sample(tmp_path, "full")
    copied = next((full.parent / "dynamodb" / "AWSDynamoDB").iterdir())
    shutil.copytree(copied, copied.with_name(f"{copied.name}-second"))
    fresh = bill(load_config(full), OCT)
    assert _tables(config.warehouse.path) == _tables(load_config(full).warehouse.path)
    assert result.counters == fresh.counters


def test_whole_month_is_joined_again_unless_only_files_were_added(tmp_path: Path) -> None:
    path = _sample(tmp_path)
    config = load_config(path)
    assert bill(config, OCT).joined_again is None  # nothing to start from
    assert bill(config, OCT).joined_again == 0  # nothing new
    os.utime(_october_trail(path), ns=(1, 1))  # the same bytes, but a changed file
    assert bill(config, OCT).joined_again is None
    other = path.with_name("other.toml")
    other.write_text(path.read_text().replace('"platform"', '"share_pro_rata"'))
    assert bill(load_config(other), OCT).joined_again is None  # another config
    assert bill(config, OCT).joined_again is None  # ... and back
    assert bill(config, OCT).joined_again == 0
    assert bill(config, OCT, fresh=True).joined_again is None  # --fresh starts over

    # The state is the warehouse's own: a warehouse restored from a backup goes on from
    # what it holds, and a re-bill from it equals a bill of everything.
    backup = tmp_path / "backup.duckdb"
    shutil.copy(config.warehouse.path, backup)
    _add_late_files(path)
    bill(config, OCT)
    shutil.copy(backup, config.warehouse.path)
    assert bill(config, OCT).joined_again == 5
    full = _sample(tmp_path, "full")
    _add_late_files(full)
    bill(load_config(full), OCT)
    assert _tables(config.warehouse.path) == _tables(load_config(full).warehouse.path)


def test_removed_file_is_noticed(tmp_path: Path) -> None:
    path = _sample(tmp_path)
    config = load_config(path)
    before = bill(config, OCT)
    victim = _october_trail(path)
    victim.unlink()
    after = bill(config, OCT)
    assert after.counters.files_read == before.counters.files_read - 1
    assert after.run_id != before.run_id
    assert spool_folder(config).is_dir()


def test_a_large_data_file_is_read_in_pieces_with_the_same_result(
    tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Pieces of a few KB instead of 64 MB: line numbers, counters and rows are unchanged."""
    from metering import limits

    whole = read_exports([str(SAMPLE / "dynamodb")])
    monkeypatch.setattr(limits, "PIECE_BYTES", 4096)
    pieces = read_exports([str(SAMPLE / "dynamodb")])
    assert pieces.frame.sort("request_id").equals(whole.frame.sort("request_id"))
    assert pieces.counters == whole.counters
    key = lambda q: (q.source_uri, int(q.locator.split()[-1]))  # noqa: E731
    assert sorted(pieces.quarantine, key=key) == sorted(whole.quarantine, key=key)
    spooled = read_exports([str(SAMPLE / "dynamodb")], spool=Spool(tmp_path / "spool"))
    assert spooled.counters == whole.counters


def test_a_large_file_is_spooled_in_parts_and_a_changed_one_leaves_no_stale_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With parts of one piece each, a file is spooled as several Parquet files that hold
    exactly its rows; decoded again smaller, it keeps only its new parts."""
    import polars as pl

    from metering import limits
    from metering.collect import spool

    monkeypatch.setattr(limits, "PIECE_BYTES", 65536)
    monkeypatch.setattr(spool, "PART_BYTES", 1)
    root = tmp_path / "dynamodb"
    shutil.copytree(SAMPLE / "dynamodb", root)
    whole = read_exports([str(root)])
    spooled = read_exports([str(root)], spool=Spool(tmp_path / "spool"))
    assert len(spooled.parquet) > 4  # 4 data files with rows, each in several parts
    rows = pl.concat([pl.read_parquet(p) for p in spooled.parquet])
    assert rows.sort("request_id").equals(whole.frame.sort("request_id"))

    data = sorted(root.glob("AWSDynamoDB/*/data/*.json.gz"), key=lambda p: p.stat().st_size)[-1]
    lines = gzip.decompress(data.read_bytes()).splitlines(keepends=True)
    data.write_bytes(gzip.compress(b"".join(lines[:3])))
    again = read_exports([str(root)], spool=Spool(tmp_path / "spool"))
    on_disk = set((tmp_path / "spool" / "records").glob("*.parquet"))
    assert on_disk == set(again.parquet) and len(again.parquet) < len(spooled.parquet)
    rows = pl.concat([pl.read_parquet(p) for p in again.parquet])
    assert rows.sort("request_id").equals(read_exports([str(root)]).frame.sort("request_id"))


def test_a_worker_decodes_without_loading_the_config_models() -> None:
    """A spool worker imports what decoding needs: pydantic and meter's config models are
    a tenth of a second per worker it does not spend."""
    code = (
        "import sys\n"
        "import metering.collect.spool, metering.collect.cloudtrail, metering.collect.exports\n"
        "print(sorted(m for m in ('metering.config', 'pydantic', 'duckdb') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
