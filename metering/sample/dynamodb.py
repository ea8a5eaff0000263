"""Write metering records as a DynamoDB export (``DYNAMODB_JSON``), byte-for-byte stable."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import polars as pl

SHARDS = 16


def item_line(row: dict[str, object]) -> str:
    """One export line ``{"Item": {...}}`` for a call row (ts already formatted)."""
    ts, rid = row["ts"], row["request_id"]
    day = str(ts)[:10]
    shard = int(hashlib.blake2b(str(rid).encode(), digest_size=2).hexdigest(), 16) % SHARDS
    item = {
        "pk": {"S": f"METER#{day}#{shard:02d}"},
        "sk": {"S": f"{ts}#{rid}"},
        "tenant_id": {"S": row["tenant_id"]},
        "request_id": {"S": rid},
        "ts": {"S": ts},
        "operation": {"S": row["operation"]},
        "request_bytes": {"N": str(row["request_bytes"])},
        "response_bytes": {"N": str(row["response_bytes"])},
    }
    for optional in ("resource_arn", "principal_arn"):
        if row.get(optional):
            item[optional] = {"S": row[optional]}
    return json.dumps({"Item": item}, separators=(",", ":"))


def write_export(
    out: Path,
    records: pl.DataFrame,
    export_id: str,
    files: int = 4,
    extra_lines: Sequence[str] = (),
) -> Path:
    """Write ``records`` (RECORDS-like rows) as an export under ``out``; returns its folder.

    ``extra_lines`` (malformed records, say) go into the first data file. An extra empty
    data file is written too, as real exports have for empty partitions.
    """
    folder = out / "AWSDynamoDB" / export_id
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    rows = records.with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ")).iter_rows(
        named=True
    )
    lines: list[list[str]] = [[] for _ in range(files)]
    for index, row in enumerate(rows):
        lines[index % files].append(item_line(row))
    lines[0].extend(extra_lines)
    lines.append([])  # an empty partition
    manifest = []
    for index, chunk in enumerate(lines):
        name = f"{hashlib.sha256(f'{export_id}/{index}'.encode()).hexdigest()[:26]}.json.gz"
        body = gzip.compress("".join(line + "\n" for line in chunk).encode(), mtime=0)
        (data / name).write_bytes(body)
        manifest.append(
            {
                "itemCount": len(chunk),
                "md5Checksum": base64.b64encode(
                    hashlib.md5(body, usedforsecurity=False).digest()
                ).decode(),
                "etag": hashlib.md5(body, usedforsecurity=False).hexdigest(),
                "dataFileS3Key": f"AWSDynamoDB/{export_id}/data/{name}",
            }
        )
    (folder / "manifest-files.json").write_text("".join(json.dumps(m) + "\n" for m in manifest))
    table_arn = "arn:aws:dynamodb:us-east-1:123456789012:table/DataApiMetering"
    summary = {
        "version": "2020-06-30",
        "exportArn": f"{table_arn}/export/{export_id}",
        "tableArn": table_arn,
        "manifestFilesS3Key": f"AWSDynamoDB/{export_id}/manifest-files.json",
        "itemCount": sum(len(chunk) for chunk in lines),
        "outputFormat": "DYNAMODB_JSON",
    }
    (folder / "manifest-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (folder / "_started").write_text("")
    return folder
