"""Live DynamoDB tables and S3 exports, through boto3 over HTTP against a moto server."""

from __future__ import annotations

import gzip
from pathlib import Path

import boto3
import duckdb
import pytest

from metering.collect.table import partition_keys, read_table
from metering.config import load_config
from metering.month import Month
from metering.pipeline import bill
from metering.sample.dynamodb import item_line
from tests.helpers import create_metering_table, export_records, record, write_config

OCT = Month(2026, 10)
PAD = "x" * 900  # ~1 KB items: a day of 1,500 items in one partition is several 1 MB pages


def _table(name: str) -> object:
    ddb = boto3.client("dynamodb")
    create_metering_table(ddb, name)
    return ddb


def _put(ddb: object, name: str, rows: list[dict[str, object]], pad: bool = False) -> None:
    """Write ``rows`` as the hook would; with ``pad``, all into shard 00 of their day with
    ~1 KB of padding each, so a busy day's partition exceeds DynamoDB's 1 MB page."""
    import json

    items = [json.loads(item_line(r))["Item"] for r in rows]
    for item in items:
        if pad:
            item["padding"] = {"S": PAD}
            item["pk"] = {"S": item["pk"]["S"][:-2] + "00"}
    for start in range(0, len(items), 25):
        ddb.batch_write_item(  # type: ignore[attr-defined]
            RequestItems={name: [{"PutRequest": {"Item": i}} for i in items[start : start + 25]]}
        )


def _rows() -> list[dict[str, object]]:
    # 1,500 calls on Oct 3 (pages), 10 on Oct 31 just before midnight, 3 on Nov 1, 2 on Sep 30.
    rows = [
        record(
            f"d3-{i:05d}",
            f"t{i % 3}",
            f"2026-10-03T10:{i // 60 % 60:02d}:{i % 60:02d}.000Z",
            100 + i,
            50,
        )
        for i in range(1500)
    ]
    rows += [record(f"d31-{i}", "t0", f"2026-10-31T23:59:59.{i:03d}Z", 40000, 1) for i in range(10)]
    rows += [record(f"nov-{i}", "t0", "2026-11-01T00:00:00.000Z") for i in range(3)]
    rows += [record(f"sep-{i}", "t1", "2026-09-30T23:59:59.999Z") for i in range(2)]
    return rows


def test_partition_keys_cover_the_month_and_its_edges() -> None:
    keys = partition_keys(OCT)
    assert len(keys) == (31 + 2) * 16
    assert keys[0] == "METER#2026-09-30#00" and keys[-1] == "METER#2026-11-01#15"


@pytest.mark.parametrize("scan", [False, True])
def test_table_read_completely_and_exactly_once(aws: str, scan: bool) -> None:
    ddb = _table("Metering")
    _put(ddb, "Metering", _rows(), pad=True)
    # The pages really are several: check what DynamoDB (moto) returns for the busiest pk.
    collected, retries = read_table("Metering", "us-east-1", OCT, scan=scan)
    frame = collected.frame
    assert frame.height == 1515
    assert frame["request_id"].n_unique() == 1515
    assert collected.counters.records_seen == 1515
    assert collected.quarantine == []
    assert retries == 0


def test_busy_partition_takes_several_pages(aws: str) -> None:
    ddb = _table("Metering")
    rows = [record(f"r{i:05d}", "t0", "2026-10-03T10:00:00.000Z") for i in range(1500)]
    _put(ddb, "Metering", rows, pad=True)
    from metering.collect import _aws

    pages = [
        len(page) for page in _aws.TablePages("Metering", "us-east-1").query("METER#2026-10-03#00")
    ]
    assert len(pages) >= 2  # more than 1 MB in one partition: LastEvaluatedKey followed
    assert sum(pages) == 1500


def test_bill_from_table_bills_the_month_only(aws: str, tmp_path: Path) -> None:
    ddb = _table("Metering")
    _put(ddb, "Metering", _rows())
    config = write_config(tmp_path, metering='table = "Metering"\nregion = "us-east-1"')
    result = bill(load_config(config), OCT)
    c = result.counters
    assert (c.records_seen, c.calls_billed, c.out_of_month, c.quarantined) == (1515, 1510, 5, 0)
    assert c.duplicates == 0
    assert result.bill.total_units == 1500 + 10 * 2


def test_malformed_table_item_quarantined(aws: str, tmp_path: Path) -> None:
    ddb = _table("Metering")
    _put(ddb, "Metering", [record("ok", "t0", "2026-10-02T00:00:00.000Z")])
    bad = {
        "pk": {"S": "METER#2026-10-02#05"},
        "sk": {"S": "2026-10-02T00:00:00.000Z#bad"},
        "request_id": {"S": "bad"},
        "tenant_id": {"N": "42"},
        "ts": {"S": "2026-10-02T00:00:00.000Z"},
        "operation": {"S": "ExecuteStatement"},
        "request_bytes": {"N": "1"},
        "response_bytes": {"N": "1"},
    }
    ddb.put_item(TableName="Metering", Item=bad)  # type: ignore[attr-defined]
    result = bill(load_config(write_config(tmp_path, metering='table = "Metering"')), OCT)
    assert result.counters.calls_billed == 1
    [entry] = result.quarantine
    assert entry.source_uri == "dynamodb://Metering/METER#2026-10-02#05"
    assert entry.reason == "tenant_id has DynamoDB type N, expected S"
    assert "sk 2026-10-02T00:00:00.000Z#bad" in entry.locator


def _upload(folder: Path, bucket: str, prefix: str) -> None:
    s3 = boto3.client("s3")
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            s3.put_object(
                Bucket=bucket,
                Key=f"{prefix}/{path.relative_to(folder).as_posix()}",
                Body=path.read_bytes(),
            )


def test_export_read_from_s3_matches_local(aws: str, tmp_path: Path) -> None:
    boto3.client("s3").create_bucket(Bucket="exports")
    rows = _rows()[:200] + _rows()[-15:]
    export_records(tmp_path / "dynamodb", rows, files=3)
    _upload(tmp_path / "dynamodb", "exports", "metering/2026-10")
    local = bill(load_config(write_config(tmp_path)), OCT)
    remote_dir = tmp_path / "remote"
    remote_dir.mkdir()
    remote = bill(
        load_config(
            write_config(remote_dir, metering='exports = ["s3://exports/metering/2026-10"]')
        ),
        OCT,
    )
    assert remote.tenant_month.drop("run_id").equals(local.tenant_month.drop("run_id"))
    assert remote.counters.files_read == 4  # 3 data files and the empty partition
    assert remote.counters.calls_billed == 210


def test_s3_export_missing_data_file_is_an_error_naming_it(aws: str, tmp_path: Path) -> None:
    from metering.errors import InputError

    boto3.client("s3").create_bucket(Bucket="exports")
    folder = export_records(tmp_path / "dynamodb", _rows()[:10], files=2)
    victim = sorted((folder / "data").iterdir())[0]
    victim.unlink()
    _upload(tmp_path / "dynamodb", "exports", "m")
    with pytest.raises(InputError, match=victim.name):
        bill(load_config(write_config(tmp_path, metering='exports = ["s3://exports/m"]')), OCT)


def test_s3_corrupt_data_file_quarantined_rest_billed(aws: str, tmp_path: Path) -> None:
    boto3.client("s3").create_bucket(Bucket="exports")
    folder = export_records(tmp_path / "dynamodb", _rows()[:100], files=2)
    victim = sorted((folder / "data").iterdir(), key=lambda p: p.stat().st_size)[-1]
    body = gzip.decompress(victim.read_bytes())
    victim.write_bytes(gzip.compress(body, mtime=0)[:-40])  # truncated in transit
    _upload(tmp_path / "dynamodb", "exports", "m")
    result = bill(load_config(write_config(tmp_path, metering='exports = ["s3://exports/m"]')), OCT)
    reasons = sorted(q.reason.split(":")[0] for q in result.quarantine)
    assert any(r.startswith("MD5") for r in reasons)
    assert any(r.startswith("truncated gzip") for r in reasons)
    assert 50 <= result.counters.calls_billed < 100
    assert result.exit_code == 3
    con = duckdb.connect(str(tmp_path / "meter.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM calls").fetchall() == [(result.counters.calls_billed,)]
