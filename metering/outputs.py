"""What a billed month gives people: exports, the terminal report, charts.

Reads the warehouse and hands the rows to ``metering.report``; nothing here bills.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import polars as pl

from metering.config import Config
from metering.month import Month
from metering.overhead import Overhead
from metering.rate import measured_bytes
from metering.schemas import AMOUNT_DIGITS, UNATTRIBUTED, Progress, decimal_column


def export(config: Config, month: Month, format: str) -> bytes:
    """A billed month as export bytes (``finance`` CSV, ``charges`` CSV or FinOps ``focus``
    CSV)."""
    from metering.errors import UsageError
    from metering.report import charges_csv, finance_csv
    from metering.store.queries import charge_rows

    if format not in ("finance", "charges", "focus"):
        raise UsageError(f"--format {format!r}: choose finance, charges, focus or parquet")
    rows = _billed_lines(config, month)
    charges, _ = charge_rows(config.warehouse.path, month)
    if format == "finance":
        return finance_csv(rows, charges)
    if format == "charges":
        if charges.is_empty():
            raise UsageError(
                f"{month} was billed before meter kept charges (schema 7); bill it again: "
                f"`{config.command(f'meter bill --month {month}')}`"
            )
        return charges_csv(charges, rows)
    from metering.report import focus_csv
    from metering.store.queries import tenant_attribution

    attribution = tenant_attribution(config.warehouse.path, month)
    pricing = config.pricing
    return focus_csv(
        rows,
        attribution,
        (month.start, month.end),
        pricing.block_bytes,
        charges=charges,
        unit_price=pricing.tiers[0].per_million / 1_000_000,
    )


def export_parquet(config: Config, month: Month, folder: Path) -> list[Path]:
    """A billed month's tenant_month, tenant_day and calls as Parquet files in ``folder``
    (for BI and dbt); the paths written."""
    from metering.store.queries import write_parquet

    _billed_lines(config, month)  # a month never billed says what to do
    return write_parquet(config.warehouse.path, month, folder)


@dataclass(frozen=True, slots=True)
class MonthReport:
    """A billed month as ``meter report`` shows it (and notebooks read it)."""

    month: Month
    run: dict[str, object]  # the month's latest bill_runs row
    lines: pl.DataFrame  # tenant_month rows, by tenant
    savings: pl.DataFrame  # edge_savings rows + tenant_name, cost_saved (most saved first)
    block_bytes: int
    margin_bytes: int
    invoice: pl.DataFrame = field(default_factory=pl.DataFrame)  # the tie-out (no rows: none)
    charges: pl.DataFrame = field(default_factory=pl.DataFrame)  # tenant_charges rows
    shared_costs: pl.DataFrame = field(default_factory=pl.DataFrame)  # shared_costs rows

    @property
    def currency(self) -> str:
        return str(self.run["currency"])

    @property
    def calls(self) -> int:
        return int(self.lines["calls"].sum())

    @property
    def units(self) -> int:
        return int(self.lines["units"].sum())

    @property
    def amount(self) -> Decimal:
        """Sum of the lines' billed amounts (== the account total rounded half-up)."""
        return sum((Decimal(a) for a in self.lines["amount"]), Decimal(0))

    @property
    def account_cost(self) -> Decimal:
        return Decimal(str(self.run["account_cost"]))

    @property
    def overhead(self) -> Overhead | None:
        """What the month's own evidence cost, as its bill estimated it (None: billed
        before meter kept the estimate)."""
        return Overhead.of_run(self.run)

    @property
    def unattributed(self) -> Unattributed:
        """The unattributed line (zeros when every call was attributed)."""
        row = self.lines.filter(pl.col("tenant_id") == UNATTRIBUTED)
        units = int(row["units"].sum())
        return Unattributed(
            calls=int(row["calls"].sum()),
            units=units,
            amount=sum((Decimal(a) for a in row["amount"]), Decimal(0)),
            unit_share=Decimal(units) / Decimal(self.units) if self.units else Decimal(0),
        )


@dataclass(frozen=True, slots=True)
class Unattributed:
    """The month's calls no rule could attribute to a tenant."""

    calls: int
    units: int
    amount: Decimal  # its billed line (0 under share_pro_rata: tenants carry it)
    unit_share: Decimal  # its share of the month's units, 0..1


def _billed_lines(config: Config, month: Month) -> pl.DataFrame:
    from metering.errors import UsageError
    from metering.store import read_month

    rows = read_month(config.warehouse.path, "tenant_month", month, "tenant_id")
    if rows.is_empty():
        raise UsageError(
            f"{month} is not billed in {config.warehouse.path}; "
            f"run `{config.command(f'meter bill --month {month}')}` first"
        )
    return rows


def month_report(config: Config, month: Month) -> MonthReport:
    """A billed month's lines, totals, unattributed share and payload-edge savings."""
    from metering.rate.edges import default_margin, edge_savings
    from metering.rate.money import shown_places, worth
    from metering.store.queries import billed_run, charge_rows, invoice_rows, payload_sizes

    lines = _billed_lines(config, month)
    path = config.warehouse.path
    run = billed_run(path, month) or {}
    pricing = config.pricing
    margin = default_margin(pricing.block_bytes)
    savings = edge_savings(
        payload_sizes(path, month, measured_bytes(pricing.measure)), pricing.block_bytes, margin
    )
    total_units = int(str(run.get("total_units", 0)))
    cost = Decimal(str(run.get("account_cost", 0)))
    places = shown_places(str(run.get("currency") or pricing.currency))  # the bill's
    saved_cost = [worth(units, cost, total_units, places) for units in savings["units_saved"]]
    savings = savings.join(
        lines.select("tenant_id", "tenant_name"), on="tenant_id", how="left", maintain_order="left"
    ).with_columns(cost_saved=decimal_column(saved_cost, *AMOUNT_DIGITS))
    invoice = invoice_rows(path, month)
    charges, shared = charge_rows(path, month)
    return MonthReport(
        month, run, lines, savings, pricing.block_bytes, margin, invoice, charges, shared
    )


def chart(
    config: Config,
    month: Month,
    out: Path,
    plotted: dict[str, pl.DataFrame] | None = None,
    progress: Progress | None = None,
) -> list[Path]:
    """Write the month's PNG charts to ``out``; return their paths.

    ``plotted``, when given, receives the data behind each chart (see ``render_charts``);
    ``progress`` hears of each chart written.
    """
    from metering.rate.edges import default_margin, edge_savings
    from metering.rate.money import per_unit
    from metering.report.charts import ChartData, render_charts
    from metering.store.queries import (
        billed_run,
        month_changes,
        month_trend,
        payload_sizes,
        tenant_days,
    )

    lines = _billed_lines(config, month)
    path = config.warehouse.path
    pricing = config.pricing
    margin = default_margin(pricing.block_bytes)
    sizes = payload_sizes(path, month, measured_bytes(pricing.measure))
    run = billed_run(path, month) or {}
    units = int(str(run.get("total_units", 0)))
    unit_cost = per_unit(Decimal(str(run.get("account_cost", 0))), units) if units else None
    currency = str(run.get("currency") or pricing.currency)  # the bill's, not today's config
    changes = month_changes(path, month)
    previous = billed_run(path, month.previous())
    if previous is None or previous["currency"] != currency:
        changes = changes.clear()  # no change to show across two currencies
    data = ChartData(
        month=str(month),  # (as the charts label it)
        currency=currency,
        tenant_month=lines,
        tenant_days=tenant_days(path, month),
        payload_sizes=sizes,
        edge_savings=edge_savings(sizes, pricing.block_bytes, margin),
        trend=month_trend(path, month),
        changes=changes,
        block_bytes=pricing.block_bytes,
        margin_bytes=margin,
        measure=pricing.measure.replace("+", " + "),
        unit_cost=unit_cost,
    )
    return render_charts(data, Path(out), plotted, progress)


# -- for analysts: small aggregates of a billed month, as notebooks read them -------------


def billed_months(config: Config) -> list[Month]:
    """The months the warehouse holds tenant lines of, oldest first."""
    from metering.store.queries import billed_months as months

    return months(config.warehouse.path)


def month_trend(config: Config, month: Month, months: int = 12) -> pl.DataFrame:
    """Tenant lines of the last ``months`` billed months up to ``month`` (month, tenant_id,
    tenant_name, calls, units, cost_exact, amount, currency), by month and tenant."""
    from metering.store.queries import month_trend as trend

    return trend(config.warehouse.path, month, months)


def month_changes(config: Config, month: Month) -> pl.DataFrame:
    """Each tenant's change in cost from the month before ``month`` (exact, and of the
    billed amounts), biggest first; empty when the month before was not billed."""
    from metering.store.queries import month_changes as changes

    return changes(config.warehouse.path, month)


def tenant_days(config: Config, month: Month, tenant_id: str | None = None) -> pl.DataFrame:
    """Calls, units and exact cost per tenant (one, or all) and day of ``month``."""
    from metering.store.queries import tenant_days as days

    return days(config.warehouse.path, month, tenant_id)


def tenant_operations(config: Config, month: Month, tenant_id: str) -> pl.DataFrame:
    """One tenant's calls of ``month`` by operation."""
    from metering.store.queries import tenant_operations as operations

    return operations(config.warehouse.path, month, tenant_id)


def call_rates(config: Config, month: Month) -> pl.DataFrame:
    """Calls per second per tenant in ``month`` (peak, p99, p95): a guide for rate limits."""
    from metering.store.queries import call_rates as rates

    return rates(config.warehouse.path, month)
