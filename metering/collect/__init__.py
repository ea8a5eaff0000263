"""Collectors: CloudTrail files, DynamoDB tables and exports -> frames (``metering.schemas``).

Every collector returns a ``Collected``: the frame, its counters, quarantine entries and
the inputs it read. Each reads whole files (or table pages) independently, so they can be
spread over processes.
"""

from __future__ import annotations

from metering.collect.cloudtrail import read_cloudtrail
from metering.collect.exports import read_exports
from metering.collect.spool import Spool
from metering.config import CloudTrailSource, MeteringSource
from metering.month import Month
from metering.schemas import RECORDS, Collected, Progress, empty

__all__ = ["Spool", "collect_events", "collect_records", "read_cloudtrail", "read_exports"]


def collect_records(
    source: MeteringSource,
    month: Month,
    spool: Spool,
    progress: Progress | None = None,
) -> Collected:
    """Metering records from the configured exports and the live table, spooled."""
    collected = Collected(empty(RECORDS))
    if source.exports:
        collected.extend(read_exports(source.exports, progress, spool))
    if source.table is not None:
        from metering.collect.table import read_table

        from_table, retries = read_table(source.table, source.region, month, source.scan, progress)
        collected.extend(spool.put("records", f"dynamodb://{source.table}/{month}", from_table))
        collected.counters.aws_retries += retries
    return collected


def collect_events(
    source: CloudTrailSource,
    month: Month,
    spool: Spool,
    progress: Progress | None = None,
) -> Collected:
    """Data API events from the configured CloudTrail folders and prefixes, spooled."""
    return read_cloudtrail(source.uris, month, source.late_days, progress, spool)
