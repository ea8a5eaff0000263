"""Write metering records as a DynamoDB export (``DYNAMODB_JSON``), byte-for-byte stable."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path

import polars as pl

from metering.hook.records import shard_of, spec_item
from metering.sample._files import Jobs, write_gzip

CHUNK_ROWS = 50_000  # lines rendered at a time
OPTIONAL = ("resource_arn", "principal_arn", "error_code")  # written when present and not empty
TEXT = ("tenant_id", "request_id", "operation")
SIZES = ("request_bytes", "response_bytes")
# Printable ASCII except the quote and the backslash: text JSON writes unchanged.
_PLAIN = r"^[\x20\x21\x23-\x5b\x5d-\x7e]*$"


def item_line(row: dict[str, object]) -> str:
    """One export line ``{"Item": {...}}`` for a call row (ts already formatted)."""
    item = spec_item(
        request_id=str(row["request_id"]),
        tenant_id=str(row["tenant_id"]),
        ts=str(row["ts"]),
        operation=str(row["operation"]),
        request_bytes=int(str(row["request_bytes"])),
        response_bytes=int(str(row["response_bytes"])),
        resource_arn=str(row.get("resource_arn") or "") or None,
        principal_arn=str(row.get("principal_arn") or "") or None,
        error_code=str(row.get("error_code") or "") or None,
    )
    return json.dumps({"Item": item}, separators=(",", ":"))


def _attribute(name: str, value: pl.Expr, kind: str = "S") -> list[pl.Expr]:
    """The pieces of ``"name":{"S":"value"}``."""
    return [pl.lit(f'"{name}":{{"{kind}":"'), value, pl.lit('"}')]


def _item_lines(rows: pl.DataFrame) -> list[str]:
    """``item_line`` of every row, built as columns when no value needs a JSON escape."""
    text = [c for c in (*TEXT, *OPTIONAL) if c in rows.columns]
    plain = (
        all(rows[c].dtype == pl.String for c in text)
        and all(rows[c].dtype.is_integer() for c in SIZES)
        and rows.select(
            pl.all_horizontal(pl.col(*TEXT, *SIZES).is_not_null()).all().alias("complete"),
            pl.all_horizontal(pl.col(text).fill_null("").str.contains(_PLAIN)).all().alias("plain"),
        ).row(0)
        == (True, True)
    )
    if not plain:
        return [item_line(row) for row in rows.iter_rows(named=True)]
    shard = pl.Series([f"{shard_of(rid):02d}" for rid in rows["request_id"]])
    ts, rid = pl.col("ts"), pl.col("request_id")
    pieces = [
        pl.lit('{"Item":{'),
        *_attribute("pk", pl.concat_str(pl.lit("METER#"), ts.str.slice(0, 10), pl.lit("#"), shard)),
        pl.lit(","),
        *_attribute("sk", pl.concat_str(ts, pl.lit("#"), rid)),
    ]
    for name in ("tenant_id", "request_id", "ts", "operation"):
        pieces += [pl.lit(","), *_attribute(name, pl.col(name))]
    for name in SIZES:
        pieces += [pl.lit(","), *_attribute(name, pl.col(name).cast(pl.String), "N")]
    for name in OPTIONAL:
        if name in rows.columns:
            value = pl.col(name)
            pieces.append(
                pl.when(value != "")
                .then(pl.concat_str(pl.lit(","), *_attribute(name, value)))
                .otherwise(pl.lit(""))
            )
    pieces.append(pl.lit("}}"))
    return rows.select(pl.concat_str(pieces)).to_series().to_list()


def _as_text(rows: pl.DataFrame) -> pl.DataFrame:
    """``rows`` with ts formatted as the export writes it, categorical columns as text."""
    return rows.with_columns(
        pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"), pl.col(pl.Categorical).cast(pl.String)
    )


def _write_data_file(path: Path, rows: pl.DataFrame, extra_lines: Sequence[str]) -> bytes:
    """Write one gzipped data file of ``rows`` then ``extra_lines``; return its MD5."""

    def text() -> Iterator[str]:
        for chunk in rows.iter_slices(CHUNK_ROWS) if rows.height else ():
            yield "".join(line + "\n" for line in _item_lines(_as_text(chunk)))
        yield "".join(line + "\n" for line in extra_lines)

    return write_gzip([path], text())


def write_export(
    out: Path,
    records: pl.DataFrame,
    export_id: str,
    files: int = 4,
    extra_lines: Sequence[str] = (),
    jobs: Jobs | None = None,
) -> Path:
    """Write ``records`` (RECORDS-like rows) as an export under ``out``; returns its folder.

    ``extra_lines`` (malformed records, say) go into the first data file. An extra empty
    data file is written too, as real exports have for empty partitions. ``jobs`` writes
    the data files, and the manifests once they are done; without it, all is written
    before this returns.
    """
    if jobs is None:
        with Jobs() as inline:
            return write_export(out, records, export_id, files, extra_lines, inline)
    folder = out / "AWSDynamoDB" / export_id
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    written = []
    jobs.stage("export data files", files + 1)
    for index in range(files + 1):  # the last one is an empty partition
        name = f"{hashlib.sha256(f'{export_id}/{index}'.encode()).hexdigest()[:26]}.json.gz"
        rows = records.gather_every(files, offset=index) if index < files else records.clear()
        extra = extra_lines if index == 0 else ()
        digest = jobs.submit(_write_data_file, data / name, rows, extra)
        written.append((name, rows.height + len(extra), digest))
    jobs.when_done(_write_manifests, folder, export_id, written)
    return folder


def _write_manifests(
    folder: Path, export_id: str, written: list[tuple[str, int, Future[bytes]]]
) -> None:
    """manifest-files.json, manifest-summary.json and _started for the written data files."""
    manifest = [
        {
            "itemCount": count,
            "md5Checksum": base64.b64encode(digest.result()).decode(),
            "etag": digest.result().hex(),
            "dataFileS3Key": f"AWSDynamoDB/{export_id}/data/{name}",
        }
        for name, count, digest in written
    ]
    (folder / "manifest-files.json").write_text("".join(json.dumps(m) + "\n" for m in manifest))
    table_arn = "arn:aws:dynamodb:us-east-1:123456789012:table/DataApiMetering"
    summary = {
        "version": "2020-06-30",
        "exportArn": f"{table_arn}/export/{export_id}",
        "tableArn": table_arn,
        "manifestFilesS3Key": f"AWSDynamoDB/{export_id}/manifest-files.json",
        "itemCount": sum(count for _, count, _ in written),
        "outputFormat": "DYNAMODB_JSON",
    }
    (folder / "manifest-summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (folder / "_started").write_text("")
