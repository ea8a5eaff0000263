"""The one place that knows the order: collect -> match -> attribute -> rate -> store."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl

from metering import __version__
from metering.attribute import attribute, match, reconcile, select_month
from metering.collect import collect_records
from metering.collect.registry import read_registry
from metering.config import Config
from metering.month import Month
from metering.rate import Bill, call_units, price
from metering.rate.profile import tenant_days, tenant_totals
from metering.schemas import CALLS, UNATTRIBUTED, Collected, Counters, QuarantineEntry
from metering.store import RunRows, write_run

UNATTRIBUTED_NAME = "Unattributed calls"
Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(slots=True)
class BillResult:
    """What ``meter bill`` reports."""

    month: Month
    run_id: str
    warehouse: Path
    bill: Bill
    tenant_month: pl.DataFrame
    counters: Counters
    quarantine: list[QuarantineEntry]
    unregistered: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """SPEC 5: 0 clean, 3 finished with quarantined input."""
        return 3 if self.quarantine else 0


def _fingerprint(parts: list[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for name, value in sorted(parts):
        digest.update(f"{name}\0{value}\n".encode())
    return digest.hexdigest()


def bill(config: Config, month: Month, progress: Progress | None = None) -> BillResult:
    """Bill ``month``: read every source, attribute, rate, and replace it in the warehouse."""
    started = datetime.now(UTC)
    pricing = config.pricing
    registry = read_registry(config.tenants.registry)

    collected = Collected(pl.DataFrame())
    records = None
    if config.sources.metering is not None:
        got = collect_records(config.sources.metering, month, progress)
        records = got.frame
        collected.counters.add(got.counters)
        collected.quarantine.extend(got.quarantine)
        collected.inputs.extend(got.inputs)
    events = None  # CloudTrail: see the cloudtrail collector

    calls, matched = match(records, events)
    billed, selected = select_month(
        calls, month.start, month.end, pricing.operations, pricing.bill_errors
    )
    counters = collected.counters
    counters.add(matched)
    counters.add(selected)

    rated = attribute(billed, config.attribution.rules).with_columns(
        units=call_units(pricing.measure, pricing.block_bytes, pricing.unknown_size_units),
        size_estimated=pl.col("source") == "cloudtrail",
    )
    totals = tenant_totals(rated)
    the_bill = price(
        dict(totals.select("tenant_id", "units").iter_rows()),
        pricing,
        config.attribution.unattributed,
    )

    registry_digest = (
        hashlib.sha256(Path(config.tenants.registry).read_bytes()).hexdigest()
        if config.tenants.registry
        else ""
    )
    inputs_sha = _fingerprint(
        [(f.name, f.digest) for f in collected.inputs] + [("<registry>", registry_digest)]
    )
    run_id = (
        f"{month}-"
        + _fingerprint([("month", str(month)), ("config", config.sha256), ("inputs", inputs_sha)])[
            :12
        ]
    )

    tenant_month, unregistered = _tenant_month(totals, the_bill, registry, str(month), run_id)
    calls_rows = rated.select(
        month=pl.lit(str(month)),
        run_id=pl.lit(run_id),
        request_id="request_id",
        event_id="event_id",
        event_time="call_time",
        tenant_id="tenant_id",
        operation="operation",
        request_bytes="request_bytes",
        response_bytes="response_bytes",
        units="units",
        attribution="attribution",
        source="source",
        size_estimated="size_estimated",
    ).cast(CALLS)  # type: ignore[arg-type]
    days = tenant_days(rated, the_bill).with_columns(month=pl.lit(str(month)))
    quarantine = sorted(collected.quarantine, key=lambda q: (q.source_uri, q.locator, q.reason))
    run = {
        "run_id": run_id,
        "month": str(month),
        "status": "billed",
        "started_at": started,
        "finished_at": datetime.now(UTC),
        "config_sha256": config.sha256,
        "inputs_sha256": inputs_sha,
        "total_calls": rated.height,
        "total_units": the_bill.total_units,
        "account_cost": the_bill.account_cost,
        "amount": the_bill.amount,
        "currency": the_bill.currency,
        **counters.as_dict(),
        "unregistered_tenants": unregistered,
        "meter_version": __version__,
    }
    warehouse = Path(config.warehouse.path)
    write_run(
        warehouse,
        str(month),
        RunRows(
            run=run,
            calls=calls_rows,
            tenant_month=tenant_month,
            tenant_day=days,
            reconciliation=reconcile(calls, month.start, month.end).with_columns(
                month=pl.lit(str(month))
            ),
            quarantine=quarantine,
        ),
    )
    return BillResult(
        month, run_id, warehouse, the_bill, tenant_month, counters, quarantine, unregistered
    )


def _tenant_month(
    totals: pl.DataFrame, the_bill: Bill, registry: pl.DataFrame, month: str, run_id: str
) -> tuple[pl.DataFrame, list[str]]:
    """The monthly cost profile rows, named from the registry."""
    names = registry.select("tenant_id", "tenant_name", "cost_center", registered=pl.lit(True))
    rows = totals.join(names, on="tenant_id", how="left")
    unregistered = sorted(
        t for t in rows.filter(pl.col("registered").is_null())["tenant_id"] if t != UNATTRIBUTED
    )
    zero = Decimal(0)
    lines = [the_bill.lines.get(t) for t in rows["tenant_id"]]
    rows = rows.with_columns(
        month=pl.lit(month),
        run_id=pl.lit(run_id),
        currency=pl.lit(the_bill.currency),
        tenant_name=pl.when(pl.col("tenant_id") == UNATTRIBUTED)
        .then(pl.lit(UNATTRIBUTED_NAME))
        .otherwise(pl.col("tenant_name").fill_null("")),
        cost_center=pl.col("cost_center").fill_null(""),
        registered=pl.col("registered").fill_null(False),
        cost_exact=pl.Series(
            [x.cost_exact if x else zero for x in lines], dtype=pl.Decimal(38, 12)
        ),
        amount=pl.Series([x.amount if x else zero for x in lines], dtype=pl.Decimal(18, 2)),
        share=pl.Series([the_bill.share(t) for t in rows["tenant_id"]], dtype=pl.Decimal(18, 12)),
    )
    return rows.sort("tenant_id"), unregistered


def export(config: Config, month: Month, format: str) -> bytes:
    """A billed month as export bytes (``finance`` CSV)."""
    from metering.errors import UsageError
    from metering.report import finance_csv
    from metering.store import read_month

    rows = read_month(config.warehouse.path, "tenant_month", str(month), "tenant_id")
    if rows.is_empty():
        raise UsageError(
            f"{month} is not billed in {config.warehouse.path}; "
            f"run `meter bill --month {month}` first"
        )
    if format == "finance":
        return finance_csv(rows)
    raise UsageError(f"--format {format!r}: choose finance")
