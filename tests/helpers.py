"""Builders shared by tests: configs, exports and records written the way AWS writes them."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path
from typing import Any

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
