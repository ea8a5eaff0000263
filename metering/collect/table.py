"""Metering records from a live DynamoDB table (SPEC 2.2).

Query mode reads every partition of the month, ``METER#<day>#<shard>`` for each day
(plus the day either side, so calls on the month edge can still be joined to their
CloudTrail events) and each of the 16 shards, in parallel threads, following
``LastEvaluatedKey`` to the end. Scan mode (``scan = true``) is for tables with another key
design: a parallel Scan filtered on ``ts``. Items are decoded by the same code as export
lines (``records.decode_table_items``), so both paths bill identically.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from metering.collect import _aws
from metering.collect.records import decode_table_items, items_frame, validate
from metering.month import Month
from metering.schemas import RECORDS, Collected, Counters, InputFile, Progress, empty

SHARDS = 16
SCAN_SEGMENTS = 8
THREADS = 16


def partition_keys(month: Month) -> list[str]:
    """The ``pk`` values that can hold the month's records (and its edges)."""
    days = [month.first_day - timedelta(days=1), *month.days(), month.next().first_day]
    return [f"METER#{day.isoformat()}#{shard:02d}" for day in days for shard in range(SHARDS)]


def _read(uri: str, pages: Iterable[list[dict[str, Any]]]) -> Collected:
    items: list[dict[str, Any]] = []
    for page in pages:
        items.extend(page)
    decoded, numbers, bad = decode_table_items(items, uri)
    frame, invalid = validate(items_frame(decoded, numbers), uri, locator="item")
    counters = Counters(records_seen=len(items), quarantined=len(bad) + len(invalid))
    return Collected(frame, counters, bad + invalid)


def read_table(
    table: str,
    region: str | None,
    month: Month,
    scan: bool = False,
    progress: Progress | None = None,
) -> tuple[Collected, int]:
    """The month's records from ``table``; (collected, throttling/other retries made)."""
    reader = _aws.TablePages(table, region)
    if scan:
        start = (month.start - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        end = (month.end + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        jobs = [
            (f"dynamodb://{table}#segment{s}", reader.scan(s, SCAN_SEGMENTS, start, end))
            for s in range(SCAN_SEGMENTS)
        ]
    else:
        jobs = [(f"dynamodb://{table}/{pk}", reader.query(pk)) for pk in partition_keys(month)]
    collected = Collected(empty(RECORDS))
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        for done, part in enumerate(pool.map(lambda job: _read(*job), jobs), start=1):
            collected.extend(part)
            if progress is not None:
                progress(f"table {table}", done, len(jobs))
    # A live table has no files: its fingerprint is the content read.
    content = collected.frame.sort("request_id", "ts").write_csv().encode()
    collected.inputs.append(
        InputFile(
            f"dynamodb://{table}",
            f"dynamodb:{table}",
            hashlib.sha256(content).hexdigest(),
            collected.frame.height,
        )
    )
    return collected, reader.retries


__all__ = ["partition_keys", "read_table"]
