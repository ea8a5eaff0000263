"""The price step, the same for both engines: a month's bill from the sums of its rated
calls (``schemas.MonthSums``) and its inputs' accounting (``collect.Inputs``).

SPEC 5's counters, the tenant lines and days priced exactly (``rate.price``,
``rate.profile``), the shared costs' charges (``rate.shared``), the evidence's overhead
(``overhead``) and the tie-out with the AWS invoice (``rate.tieout``), in one
``BillResult``; a month no source holds is refused (``EmptyMonthError``).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl

from metering import overhead
from metering.collect import Inputs
from metering.collect.registry import read_registry
from metering.config import Config
from metering.errors import EmptyMonthError
from metering.month import Month
from metering.rate import price, profile, select, shared, tieout
from metering.rate.money import account_cost, minor_units
from metering.schemas import INVOICE, BillResult, Counters, MonthSums, empty


def priced(
    config: Config, month: Month, inputs: Inputs, run_id: str, sums: MonthSums, allow_empty: bool
) -> BillResult:
    """The month's bill from the ``sums`` of its rated calls (whichever engine made them)
    and its ``inputs``' accounting: counters, tenant lines, days, priced exactly, and the
    tie-out (refuses a month no source holds: EmptyMonthError)."""
    counters = _counters(config, month, inputs, dict(sums.decided), allow_empty)
    totals = sums.totals
    counters.calls_billed = int(totals["calls"].sum())
    units = dict(totals.select("tenant_id", "units").iter_rows())
    invoiced = _invoiced_cost(config, month, inputs)
    the_bill = price(units, config.pricing, config.attribution.unattributed, invoiced)
    registry = read_registry(config.tenants.registry)
    lines, unregistered = profile.cost_profile(totals, the_bill, registry)
    days = profile.day_costs(sums.days, the_bill)
    quarantine = sorted(inputs.both.quarantine, key=lambda q: (q.source_uri, q.locator, q.reason))
    tenant_month = _of(lines, month, run_id)
    drivers = sums.drivers
    invoiced_lines = inputs.invoice.shared if inputs.invoice is not None else []
    charges = shared.charges(config, str(month), tenant_month, invoiced_lines, drivers, run_id)
    return BillResult(
        month,
        run_id,
        Path(config.warehouse.path),
        the_bill,
        tenant_month,
        counters,
        quarantine,
        unregistered,
        conflicts=sums.conflicts,
        tenant_day=_of(days, month),
        reconciliation=_of(sums.reconciliation, month),
        overhead=_overhead(config, sums.evidence),
        invoice=_tie_out(config, month, inputs, run_id, the_bill.total_units, the_bill.amount),
        charges=charges.tenant_charges,
        shared_costs=charges.shared_costs,
    )


def _overhead(config: Config, counted: dict[str, int]) -> overhead.Overhead:
    """What the month's evidence cost: its CloudTrail data events and metering writes
    (``counted``; of the sources configured), at ``[overhead]``'s prices."""
    sources = config.sources
    return overhead.Overhead.estimate(
        config,
        int(counted["data_events"]) if sources.cloudtrail is not None else None,
        int(counted["writes"]) if sources.metering is not None else None,
    )


def _invoiced_cost(config: Config, month: Month, inputs: Inputs) -> Decimal | None:
    """The account cost to split when ``[invoice] allocate = "invoice"`` (else None: the
    tiers' price of the units)."""
    source, invoice = config.invoice, inputs.invoice
    if source is None or invoice is None or source.allocate != "invoice":
        return None
    places = minor_units(config.pricing.currency)
    return tieout.allocated_cost(invoice, source, places, str(month))


def _tie_out(
    config: Config, month: Month, inputs: Inputs, run_id: str, units: int, allocated: Decimal
) -> pl.DataFrame:
    """The month's tie-out with the AWS invoice (no rows without ``[invoice]``)."""
    source, invoice = config.invoice, inputs.invoice
    if source is None or invoice is None:
        return empty(INVOICE)
    modelled = account_cost(units, config.pricing.tiers)
    places = minor_units(config.pricing.currency)
    return tieout.tie_out(invoice, source, str(month), run_id, units, modelled, allocated, places)


def _counters(
    config: Config, month: Month, inputs: Inputs, decided: dict[str, int], empty: bool
) -> Counters:
    """SPEC 5's counters: what the collectors counted, and what the join and the month's
    selection ``decided``; a month no source holds is refused unless ``empty``."""
    both = inputs.both  # (merged afresh on each use)
    counters = both.counters
    counters.out_of_month = int(decided["out_of_month"])
    if not decided.pop("in_month") and not empty:
        raise EmptyMonthError(inputs.nothing_of(month, config, counters))
    counters.duplicates = inputs.rows - decided.pop("unique_events") - decided.pop("unique_records")
    for name, value in decided.items():
        setattr(counters, name, int(value))
    counters.withheld_units = select.withheld_units(both.quarantine, config.pricing, month)
    return counters


def _of(frame: pl.DataFrame, month: Month, run_id: str | None = None) -> pl.DataFrame:
    """``frame``'s rows, marked with the month (and the run)."""
    marked = frame.with_columns(month=pl.lit(str(month)))
    return marked if run_id is None else marked.with_columns(run_id=pl.lit(run_id))
