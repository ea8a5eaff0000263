"""Builders shared by tests: configs, exports and records written the way AWS writes them."""

from __future__ import annotations

import base64
import csv
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from metering.sample.dynamodb import item_line, write_export
from tests.conftest import REPO, SAMPLE

# Golden files (``tests/golden``) follow the sample and the SQL meter writes:
# ``METER_UPDATE_GOLDEN=1 pytest`` rewrites them; look at ``git diff tests/golden``, then
# commit them with the change that made them.
GOLDEN = REPO / "tests" / "golden"

# What ``meter bill`` on the sample leaves beside it (README quick start, command 1): the
# warehouse and the spool, both in .gitignore. Tests copy and compare the sample without.
BILL_OUTPUTS = ("*.duckdb", "*.duckdb.wal", "*.spool")


def sample_files(root: Path = SAMPLE) -> list[Path]:
    """The sample's own files (relative to it), without what a bill left there."""
    outputs = {p for pattern in BILL_OUTPUTS for p in root.glob(pattern)}
    return sorted(
        p.relative_to(root)
        for p in root.rglob("*")
        if p.is_file() and not any(p == o or o in p.parents for o in outputs)
    )


def copy_sample(folder: Path) -> Path:
    """A copy of the sample in ``folder``, without what a bill left there; its meter.toml."""
    shutil.copytree(SAMPLE, folder, ignore=shutil.ignore_patterns(*BILL_OUTPUTS))
    return folder / "meter.toml"


def record(
    request_id: str,
    tenant: str,
    ts: str,
    req: int = 100,
    resp: int = 100,
    op: str = "ExecuteStatement",
) -> dict[str, object]:
    """A metering record row (ts as written: ISO-8601 with milliseconds)."""
    return {
        "request_id": request_id,
        "tenant_id": tenant,
        "ts": ts,
        "operation": op,
        "request_bytes": req,
        "response_bytes": resp,
    }


def write_data_file(path: Path, lines: list[str], compress: bool = True) -> Path:
    """A bare export data file (no manifest) holding ``lines``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "".join(line + "\n" for line in lines).encode()
    path.write_bytes(gzip.compress(body, mtime=0) if compress else body)
    return path


def lines_of(records: list[dict[str, object]]) -> list[str]:
    return [item_line(r) for r in records]


def export_records(folder: Path, records: list[dict[str, object]], files: int = 2) -> Path:
    """A complete export (manifests and all) of ``records`` under ``folder``."""
    frame = pl.DataFrame(records).with_columns(
        pl.col("ts").str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_unit="ms", time_zone="UTC")
    )
    return write_export(folder, frame, "01700000000000-test0001", files=files)


TABLE_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/DataApiMetering"


def _md5(body: bytes) -> bytes:
    return hashlib.md5(body, usedforsecurity=False).digest()


def _write_manifests(
    folder: Path, summary: dict[str, object], entries: list[dict[str, object]]
) -> None:
    """An export's manifests as DynamoDB writes them: manifest-files.json (JSON Lines),
    manifest-summary.json, a .checksum beside each (its MD5, hex) and ``_started``."""
    files = "".join(json.dumps(entry) + "\n" for entry in entries).encode()
    text = (json.dumps(summary, indent=3) + "\n").encode()
    for name, body in (("manifest-files", files), ("manifest-summary", text)):
        (folder / f"{name}.json").write_bytes(body)
        (folder / f"{name}.checksum").write_text(_md5(body).hex())
    (folder / "_started").write_text("")


def _key(s3_prefix: str, rest: str) -> str:
    """A key in the bucket, as manifests give them: the export's S3 prefix and all."""
    return f"{s3_prefix}/AWSDynamoDB/{rest}" if s3_prefix else f"AWSDynamoDB/{rest}"


def _summary(export_id: str, s3_prefix: str, items: int) -> dict[str, object]:
    return {
        "exportArn": f"{TABLE_ARN}/export/{export_id}",
        "startTime": "2026-11-01T06:00:00.000Z",
        "endTime": "2026-11-01T06:11:42.517Z",
        "tableArn": TABLE_ARN,
        "tableId": "12345a12-abcd-123a-ab12-1234abc12345",
        "s3Bucket": "exports",
        "s3Prefix": s3_prefix or None,
        "s3SseAlgorithm": "AES256",
        "s3SseKmsKeyId": None,
        "manifestFilesS3Key": _key(s3_prefix, f"{export_id}/manifest-files.json"),
        "billedSizeBytes": 0,
        "itemCount": items,
        "outputFormat": "DYNAMODB_JSON",
    }


def full_export(
    prefix: Path,
    s3_prefix: str,
    export_id: str,
    records: list[dict[str, object]],
    export_time: str | None,
    files: int = 2,
) -> Path:
    """A full export of ``records`` in the layout DynamoDB writes under an S3 prefix
    (``prefix`` mirrors ``s3://bucket/<s3_prefix>``): ``AWSDynamoDB/<export_id>/`` with its
    manifests and ``data/``, keys in the bucket (``<s3_prefix>/AWSDynamoDB/...``), the
    summary's ``exportTime`` (None: left out, as older tools do) and ``exportType``."""
    frame = pl.DataFrame(records).with_columns(
        pl.col("ts").str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_unit="ms", time_zone="UTC")
    )
    folder = write_export(prefix, frame, export_id, files=files)
    entries = [
        json.loads(line) for line in (folder / "manifest-files.json").read_text().splitlines()
    ]
    for entry in entries:
        entry["dataFileS3Key"] = _key(s3_prefix, str(entry["dataFileS3Key"]).split("/", 1)[1])
    summary = {"version": "2020-06-30", **_summary(export_id, s3_prefix, len(records))}
    if export_time is not None:
        summary["exportTime"] = export_time
    summary["exportType"] = "FULL_EXPORT"
    _write_manifests(folder, summary, entries)
    return folder


@dataclass(frozen=True)
class Change:
    """One change an incremental export holds: a put (``new``), an update (``new`` and
    ``old``) or a delete (``old``) of a metering record, written at ``written`` (UTC,
    microseconds: ``2026-10-11T08:00:00.000001Z``)."""

    written: str
    new: dict[str, object] | None = None
    old: dict[str, object] | None = None


def micros(when: str) -> int:
    """``2026-10-11T08:00:00.000001Z`` in microseconds since the epoch."""
    moment = datetime.strptime(when, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def change_line(change: Change, view: str = "NEW_AND_OLD_IMAGES") -> str:
    """The line an incremental export writes for ``change``: Metadata, Keys, and NewImage
    and (view NEW_AND_OLD_IMAGES) OldImage."""
    new = json.loads(item_line(change.new))["Item"] if change.new else None
    old = json.loads(item_line(change.old))["Item"] if change.old else None
    image = new or old
    assert image is not None, "a change has a new image, an old one, or both"
    line: dict[str, object] = {
        "Metadata": {"WriteTimestampMicros": {"N": str(micros(change.written))}},
        "Keys": {"pk": image["pk"], "sk": image["sk"]},
    }
    if old is not None and view == "NEW_AND_OLD_IMAGES":
        line["OldImage"] = old
    if new is not None:
        line["NewImage"] = new
    return dump(line)


def incremental_export(
    prefix: Path,
    s3_prefix: str,
    export_id: str,
    changes: list[Change],
    window: tuple[str, str],
    view: str = "NEW_AND_OLD_IMAGES",
    files: int = 2,
) -> Path:
    """An incremental export of ``changes`` in the layout DynamoDB writes (``prefix``
    mirrors ``s3://bucket/<s3_prefix>``): manifests in ``AWSDynamoDB/<export_id>/``, data
    files in the shared ``AWSDynamoDB/data/`` folder, named in manifest-files.json by their
    full keys; ``window`` is (exportFromTime, exportToTime). The changes are spread over
    ``files`` data files, and one more is empty (a partition without changes)."""
    folder = prefix / "AWSDynamoDB" / export_id
    data = prefix / "AWSDynamoDB" / "data"
    folder.mkdir(parents=True)
    data.mkdir(exist_ok=True)
    entries: list[dict[str, object]] = []
    for index in range(files + 1):
        lines = [change_line(c, view) for c in changes[index::files]] if index < files else []
        name = f"{hashlib.sha256(f'{export_id}/{index}'.encode()).hexdigest()[:26]}.json.gz"
        body = gzip.compress("".join(line + "\n" for line in lines).encode(), mtime=0)
        (data / name).write_bytes(body)
        entries.append(
            {
                "itemCount": len(lines),
                "md5Checksum": base64.b64encode(_md5(body)).decode(),
                "etag": _md5(body).hex(),
                "dataFileS3Key": _key(s3_prefix, f"data/{name}"),
            }
        )
    summary = {"version": "2023-08-01", **_summary(export_id, s3_prefix, len(changes))}
    summary |= {"exportFromTime": window[0], "exportToTime": window[1]}
    summary |= {"outputView": view, "exportType": "INCREMENTAL_EXPORT"}
    _write_manifests(folder, summary, entries)
    return folder


def upload(folder: Path, bucket: str, prefix: str) -> None:
    """Every file under ``folder`` to ``s3://bucket/prefix/`` (the local moto server)."""
    import boto3

    s3 = boto3.client("s3")
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            key = path.relative_to(folder).as_posix()
            s3.put_object(
                Bucket=bucket, Key=f"{prefix}/{key}" if prefix else key, Body=path.read_bytes()
            )


def write_config(
    folder: Path,
    body: str = "",
    metering: str = 'exports = ["dynamodb"]',
    registry: str | None = None,
) -> Path:
    """A meter.toml in ``folder`` (warehouse beside it)."""
    text = f'[warehouse]\npath = "meter.duckdb"\n\n[sources.metering]\n{metering}\n'
    if registry is not None:
        (folder / "tenants.csv").write_text(registry)
        text += '\n[tenants]\nregistry = "tenants.csv"\n'
    path = folder / "meter.toml"
    path.write_text(text + body)
    return path


def create_metering_table(client: Any, name: str) -> None:
    """The metering table of SPEC 2.2 (pk, sk), on demand, through a boto3 DynamoDB client."""
    client.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def dump(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


def assert_golden(name: str, data: bytes) -> None:
    """``data`` equals ``tests/golden/<name>`` byte for byte (or rewrites it when asked)."""
    path: Path = GOLDEN / name
    if os.environ.get("METER_UPDATE_GOLDEN") == "1":
        path.write_bytes(data)
        return
    assert path.exists(), f"{path} is missing: run METER_UPDATE_GOLDEN=1 pytest to write it"
    expected = path.read_bytes()
    if data != expected:
        got, want = data.decode().splitlines(), expected.decode().splitlines()
        first = next(
            (i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b),
            min(len(got), len(want)),
        )
        raise AssertionError(
            f"{path} differs from line {first + 1}: got {got[first : first + 1]}, "
            f"expected {want[first : first + 1]} (METER_UPDATE_GOLDEN=1 rewrites it)"
        )


def run_meter(
    *args: str,
    cwd: Path = REPO,
    env: dict[str, str] | None = None,
    unset: tuple[str, ...] = (),
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """``meter ARGS`` as a scheduler runs it: a subprocess, stdout and stderr apart,
    the environment less ``unset`` plus ``env``."""
    environment = {k: v for k, v in os.environ.items() if k not in unset} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "metering", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=timeout,
    )


def warehouse_rows(config: Path, sql: str) -> list[tuple[object, ...]]:
    """The rows ``sql`` gives on the warehouse beside ``config`` (opened read-only)."""
    con = duckdb.connect(str(config.parent / "meter.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def csv_rows(data: bytes) -> list[dict[str, str]]:
    """An export's CSV bytes as rows by column name."""
    return list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
