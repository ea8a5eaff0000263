"""Collectors: CloudTrail files, DynamoDB tables and exports -> frames (``metering.schemas``).

Every collector returns a ``Collected``: the frame, its counters, quarantine entries and
the inputs it read. Each reads whole files (or table pages) independently, so they can be
spread over processes. ``collect_month`` is the step: both sources of a month, at once.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from metering.collect.cloudtrail import read_cloudtrail
from metering.collect.exports import read_exports
from metering.collect.invoice import read_invoice
from metering.collect.registry import registry_digest
from metering.collect.spool import Spool
from metering.month import Month
from metering.schemas import RECORDS, Collected, Counters, Invoice, Progress, empty, fingerprint
from metering.trace import trace

if TYPE_CHECKING:  # (worker processes decode files without loading the config models)
    from metering.config import (
        CloudTrailSource,
        Config,
        InvoiceConfig,
        MeteringSource,
        SharedCostConfig,
    )

__all__ = [
    "Inputs",
    "Spool",
    "collect_events",
    "collect_invoice",
    "collect_month",
    "collect_records",
    "read_cloudtrail",
    "read_exports",
    "read_invoice",
]


@dataclass(frozen=True, slots=True)
class Inputs:
    """A month's inputs, spooled: CloudTrail events and metering records; and what AWS
    invoiced, when ``[invoice]`` is configured."""

    events: Collected
    records: Collected
    invoice: Invoice | None = None

    @property
    def both(self) -> Collected:
        """Their counters, quarantine and input files together (no rows)."""
        parts = [self.records, self.events]
        if self.invoice is not None:
            parts.append(self.invoice.accounting)
        return Collected.merged(
            Collected(pl.DataFrame(), c.counters, c.quarantine, c.inputs) for c in parts
        )

    def identity(self, config: Config, month: Month) -> tuple[str, str]:
        """The run's id (a fingerprint of month, config and inputs: the same inputs and
        config bill as the same run) and the inputs' own fingerprint."""
        registry = config.tenants.registry
        digest = registry_digest(registry) if registry else ""
        files = [(f.name, f.digest) for f in self.both.inputs] + [("<registry>", digest)]
        inputs = fingerprint(files)
        run = fingerprint([("month", str(month)), ("config", config.sha256), ("inputs", inputs)])
        return f"{month}-{run[:12]}", inputs

    @property
    def spooled(self) -> dict[str, list[Path]]:
        """The spooled files they are in, per source."""
        return {"events": self.events.parquet, "records": self.records.parquet}

    @property
    def rows(self) -> int:
        """Rows of both sources, before any is found a duplicate."""
        return self.events.parquet_rows + self.records.parquet_rows

    def nothing_of(self, month: Month, config: Config, counters: Counters) -> str:
        """What was read, for a month none of it belongs to (``counters``: the bill's)."""
        read = []
        if config.sources.cloudtrail is not None:
            read.append(
                f"{self.events.counters.files_read:,} CloudTrail file(s) under "
                f"{', '.join(config.sources.cloudtrail.paths)}"
            )
        if config.sources.metering is not None:
            where = [*config.sources.metering.exports]
            if config.sources.metering.table:
                where.append(f"table {config.sources.metering.table}")
            files = self.records.counters.files_read
            read.append(f"{files:,} metering file(s) in {', '.join(where)}")
        return (
            f"no source holds a single record of {month}: read {' and '.join(read)}, "
            f"{counters.records_seen:,} records in all: {counters.quarantined:,} quarantined, "
            f"{counters.skipped_non_data_api:,} not Data API calls, {counters.out_of_month:,} "
            "calls of other months. "
            "Check --month and the paths in meter.toml; to bill the month empty anyway, pass "
            "--allow-empty"
        )


def collect_month(
    config: Config, month: Month, spool: Spool, progress: Progress | None = None
) -> Inputs:
    """Both sources of ``month`` as ``config`` names them, at once, on one set of worker
    processes (a live table's network reads overlap the decoding of CloudTrail files)."""
    jobs: list[tuple[str, Callable[..., Collected], object]] = [
        ("collect metering records", collect_records, config.sources.metering),
        ("collect cloudtrail events", collect_events, config.sources.cloudtrail),
    ]

    def run(what: str, collect: Callable[..., Collected], source: object) -> Collected:
        if source is None:
            return Collected(pl.DataFrame())
        with trace(what):
            return collect(source, month, spool, progress)

    with spool, ThreadPoolExecutor(len(jobs), thread_name_prefix="meter-collect") as threads:
        records, events = (job.result() for job in [threads.submit(run, *j) for j in jobs])
    invoice = None
    if config.invoice is not None:
        invoice = collect_invoice(
            config.invoice, month, config.pricing.currency, spool, config.shared_costs
        )
    return Inputs(events, records, invoice)


def collect_invoice(
    source: InvoiceConfig,
    month: Month,
    currency: str,
    spool: Spool,
    shared: Sequence[SharedCostConfig] = (),
) -> Invoice:
    """What AWS invoiced for the month's Data API requests, and the lines of its ``shared``
    costs, from the configured exports (files fetched or gunzipped in the spool's folder,
    and removed after)."""
    scratch = spool.folder / "invoice" if spool.folder else Path(tempfile.gettempdir())
    with trace("collect invoice"):
        return read_invoice(source, month, currency, scratch, shared)


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
    return read_cloudtrail(source.paths, month, source.late_days, progress, spool, source.formats)
