"""The one place that knows the order: collect -> attribute -> rate -> price -> store.

Each step is a function of typed values (``schemas.Relation``, frames, ``Collected``):
the steps write their SQL, the engine runs it, and this module only orders them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path

import polars as pl

from metering import attribute, overhead, store
from metering.attribute import delta
from metering.attribute.principal import check_patterns
from metering.collect import Inputs, Spool, collect_month
from metering.collect.registry import read_registry
from metering.config import Config
from metering.errors import EmptyMonthError, WarehouseError
from metering.month import Month
from metering.period import who
from metering.rate import price, profile, select, shared, tieout
from metering.rate.money import account_cost, minor_units
from metering.schemas import (
    EVENTS,
    INVOICE,
    RECORDS,
    BillResult,
    Counters,
    Progress,
    Relation,
    empty,
    fingerprint,
)
from metering.store.engine import Engine, memory_limit
from metering.trace import trace


def spool_folder(config: Config) -> Path:
    """Where decoded inputs are kept between runs: beside the warehouse."""
    return Path(config.warehouse.path).with_suffix(".spool")


def bill(
    config: Config,
    month: Month,
    progress: Progress | None = None,
    fresh: bool = False,
    allow_empty: bool = False,
) -> BillResult:
    """Bill ``month``: read every source, attribute, rate, and replace it in the warehouse.

    The warehouse is taken first and held to the end, so a second ``meter bill`` on it, or a
    closed month, fails at once, before any input is read. Input files an earlier run
    decoded are reused from the spool unless they changed (``fresh`` decodes all again).
    When the month's last bill only lacks some new files, only the calls they touch are
    joined and written again. A month no source holds a record of is refused
    (``EmptyMonthError``) unless ``allow_empty``. A file that cannot be written (a full
    disk) ends the bill with a ``WarehouseError``; the warehouse is as it was.
    """
    try:
        return _bill(config, month, progress, fresh, allow_empty)
    except OSError as exc:  # the spool or the scratch folder (the warehouse: store.connect)
        raise WarehouseError(
            f"{exc.filename or spool_folder(config)}: cannot write: {exc.strerror or exc}; the "
            "bill stopped and the warehouse is unchanged (free some disk space, or check the "
            "folder's permissions, then bill again)"
        ) from None


def _bill(
    config: Config, month: Month, progress: Progress | None, fresh: bool, allow_empty: bool
) -> BillResult:
    started = datetime.now(UTC)
    memory = memory_limit()  # checked before the warehouse is touched
    spool = Spool(spool_folder(config), fresh=fresh)
    with store.connect(config.warehouse.path) as con:
        store.ensure_open(con, month)
        inputs = collect_month(config, month, spool, progress)
        run_id, inputs_sha = inputs.identity(config, month)
        engine = Engine(con, spool_folder(config) / "scratch", memory)
        check_patterns(config.attribution.rules, engine.refusal, config.path)
        with store.transaction(con):
            last = None if fresh else store.last_bill(con, month)
            joined_again = _join(engine, config, month, inputs, last)
            result = _rate(engine, config, month, inputs, run_id, allow_empty)
            run = {"started_at": started, "finished_at": datetime.now(UTC), "executed_by": who()}
            run |= {"config_sha256": config.sha256, "inputs_sha256": inputs_sha}
            rows = store.RunRows.of(result, run, _recipe(config, month), inputs.spooled)
            with trace("write warehouse"):
                store.write_run(con, month, rows, progress)
    result.joined_again = joined_again
    result.reused_files, result.decoded_files = spool.reused, spool.decoded
    return result


def _join(
    engine: Engine, config: Config, month: Month, inputs: Inputs, last: store.LastBill | None
) -> int | None:
    """Put the month's rated calls in the warehouse: all of them joined from the inputs'
    spooled files, or, when the month's ``last`` bill only lacks some new files, only the
    calls those touch. Returns how many were joined again (None: all were)."""
    join = partial(attribute.joined, rules=config.attribution.rules)
    read = inputs.spooled
    fits = last is not None and last.recipe == _recipe(config, month)
    added = last.added(read) if last is not None and fits else None
    if added is None:
        events = engine.parquet("_events_in", read["events"], EVENTS)
        records = engine.parquet("_records_in", read["records"], RECORDS)
        with trace("join and rate the month"):
            calls = select.rated(join(events, records), config.pricing, month)
            store.replace_calls(engine.con, month, calls, None)
        return None
    if not any(added.values()):
        return 0  # the calls the last bill left are this bill's
    parts: dict[str, tuple[Relation, Relation]] = {}
    for source, schema in (("events", EVENTS), ("records", RECORDS)):
        old = [path for path in read[source] if path not in set(added[source])]
        parts[source] = (
            engine.parquet(f"_{source}_old", old, schema),
            engine.parquet(f"_{source}_new", added[source], schema),
        )
    again = delta.rejoin(engine, join, parts["events"], parts["records"])
    calls = select.rated(again.calls, config.pricing, month)
    if again.replacing is None:
        store.add_calls(engine.con, month, calls)
    else:
        store.replace_calls(engine.con, month, calls, again.replacing)
    return again.count


def _rate(
    engine: Engine, config: Config, month: Month, inputs: Inputs, run_id: str, allow_empty: bool
) -> BillResult:
    """The month's counters, lines, days and reconciliation from its calls in the
    warehouse, priced (refuses a month no source holds: EmptyMonthError)."""
    calls = store.month_calls(month)
    counters = _counters(engine, config, month, inputs, calls, allow_empty)
    totals = engine.frame(profile.tenant_totals(calls))
    counters.calls_billed = int(totals["calls"].sum())
    units = dict(totals.select("tenant_id", "units").iter_rows())
    invoiced = _invoiced_cost(config, month, inputs)
    the_bill = price(units, config.pricing, config.attribution.unattributed, invoiced)
    registry = read_registry(config.tenants.registry)
    lines, unregistered = profile.cost_profile(totals, the_bill, registry)
    days = profile.day_costs(engine.frame(profile.tenant_days(calls)), the_bill)
    quarantine = sorted(inputs.both.quarantine, key=lambda q: (q.source_uri, q.locator, q.reason))
    tenant_month = _of(lines, month, run_id)
    drivers = engine.frame(shared.cluster_drivers(calls, config))
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
        conflicts=engine.frame(select.conflicts(calls)),
        tenant_day=_of(days, month),
        reconciliation=_of(engine.frame(profile.reconciliation(calls)), month),
        overhead=_overhead(engine, config, inputs, calls),
        invoice=_tie_out(config, month, inputs, run_id, the_bill.total_units, the_bill.amount),
        charges=charges.tenant_charges,
        shared_costs=charges.shared_costs,
    )


def _overhead(engine: Engine, config: Config, inputs: Inputs, calls: Relation) -> overhead.Overhead:
    """What the month's evidence cost: its CloudTrail data events and metering writes
    (of the sources configured), at ``[overhead]``'s prices."""
    events = engine.parquet("_events_all", inputs.spooled["events"], EVENTS)
    counted = engine.frame(overhead.counts(calls, events)).row(0, named=True)
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
    engine: Engine, config: Config, month: Month, inputs: Inputs, calls: Relation, empty: bool
) -> Counters:
    """SPEC 5's counters: what the collectors counted, and what the join and the month's
    selection decided over ``calls``; a month no source holds is refused unless ``empty``."""
    both = inputs.both  # (merged afresh on each use)
    counters = both.counters
    decided = engine.frame(select.counts(calls, config.pricing.operations)).row(0, named=True)
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


def _recipe(config: Config, month: Month) -> str:
    """What the calls a bill leaves depend on besides the inputs: the config, and the SQL
    that joins, attributes and rates (so a meter that changes any of it joins the whole
    month again instead of mixing its rows with older ones)."""
    joined = attribute.joined(Relation("e", {}), Relation("r", {}), config.attribution.rules)
    sql = select.rated(joined, config.pricing, month).sql
    return fingerprint([("config", config.sha256), ("sql", sql)])
