"""The one place that knows the order: collect -> attribute -> rate -> price -> store.

Each step is a function of typed values (``schemas.Relation``, frames, ``Collected``):
the steps write their SQL, the engine runs it, and this module only orders them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from metering import attribute, overhead, store
from metering.attribute import delta
from metering.attribute.principal import check_patterns
from metering.collect import Inputs, Spool, collect_invoice, collect_month
from metering.collect.registry import read_registry
from metering.config import Config
from metering.errors import ConfigError, EmptyMonthError, WarehouseError
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
    MonthSums,
    Progress,
    Relation,
    empty,
    fingerprint,
)
from metering.sql import DUCKDB, SPARK, Dialect
from metering.store.engine import Engine, memory_limit
from metering.trace import trace

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def spool_folder(config: Config) -> Path:
    """Where decoded inputs are kept between runs: beside the warehouse."""
    return Path(config.warehouse.path).with_suffix(".spool")


def bill(
    config: Config,
    month: Month,
    progress: Progress | None = None,
    fresh: bool = False,
    allow_empty: bool = False,
    engine: str | None = None,
) -> BillResult:
    """Bill ``month``: read every source, attribute, rate, and replace it in the warehouse.

    The warehouse is taken first and held to the end, so a second ``meter bill`` on it, or a
    closed month, fails at once, before any input is read. Input files an earlier run
    decoded are reused from the spool unless they changed (``fresh`` decodes all again).
    When the month's last bill only lacks some new files, only the calls they touch are
    joined and written again. A month no source holds a record of is refused
    (``EmptyMonthError``) unless ``allow_empty``. A file that cannot be written (a full
    disk) ends the bill with a ``WarehouseError``; the warehouse is as it was.

    ``engine`` (else ``[engine] kind``): ``spark`` joins, attributes and rates the calls in
    Spark, which writes them as Parquet outside the warehouse; the pricing and the warehouse
    are the same.
    """
    try:
        if (engine or config.engine.kind) == "spark":
            return _bill_spark(config, month, progress, allow_empty)
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
            run = _run_columns(config, started, inputs_sha)
            rows = store.RunRows.of(result, run, _recipe(config, month), inputs.spooled)
            with trace("write warehouse"):
                store.write_run(con, month, rows, progress)
    result.joined_again = joined_again
    result.reused_files, result.decoded_files = spool.reused, spool.decoded
    return result


def _run_columns(config: Config, started: datetime, inputs_sha: str) -> dict[str, object]:
    """The bill_runs columns a bill's result does not hold: when, who, and the fingerprints
    of the config and the inputs."""
    return {
        "started_at": started,
        "finished_at": datetime.now(UTC),
        "executed_by": who(),
        "config_sha256": config.sha256,
        "inputs_sha256": inputs_sha,
    }


def _bill_spark(
    config: Config, month: Month, progress: Progress | None, allow_empty: bool
) -> BillResult:
    """``bill`` with Spark: join, attribute, rate and sum in Spark; price and write here."""
    started = datetime.now(UTC)
    memory = memory_limit()
    with store.connect(config.warehouse.path) as con:
        store.ensure_open(con, month)
        engine = Engine(con, spool_folder(config) / "scratch", memory)
        check_patterns(config.attribution.rules, engine.refusal, config.path, SPARK)
        from metering import spark

        with spark.spark_session(config.engine) as session:
            made = _spark_month(session, config, month, progress)
        return _finish(con, config, month, made, started, allow_empty, progress)


@dataclass(frozen=True, slots=True)
class SparkMonth:
    """What Spark made of a month: its inputs' accounting, the sums of its rated calls, and
    where their Parquet is (None: the month has no calls)."""

    inputs: Inputs
    sums: MonthSums
    calls: str | None


def _spark_month(
    session: SparkSession,
    config: Config,
    month: Month,
    progress: Progress | None,
    calls_root: str | None = None,
) -> SparkMonth:
    """The month's sources collected, joined, attributed, rated and summed in Spark."""
    from metering import spark

    spool = spark.SparkSpool(session)
    inputs = collect_month(config, month, spool, progress)
    run_id, _ = inputs.identity(config, month)
    folder = spark.calls_folder(config, month, run_id, root=calls_root)
    sums, written = spark.month_sums(session, spool, config, month, folder)
    if not written:  # no calls: no Parquet for `calls` to read
        spark.remove_calls(folder)
    return SparkMonth(inputs, sums, folder if written else None)


def _finish(
    con: store.Connection,
    config: Config,
    month: Month,
    made: SparkMonth,
    started: datetime,
    allow_empty: bool,
    progress: Progress | None,
) -> BillResult:
    """Price a month Spark made and write it to the warehouse in one transaction (the calls
    stay in their Parquet, which a failed bill removes)."""
    from metering import spark

    run_id, inputs_sha = made.inputs.identity(config, month)
    try:
        with store.transaction(con):
            result = priced(config, month, made.inputs, run_id, made.sums, allow_empty)
            run = _run_columns(config, started, inputs_sha)
            recipe = _recipe(config, month, SPARK)
            rows = store.RunRows.of(result, run, recipe, {}, made.calls)
            store.drop_calls(con, month)
            with trace("write warehouse"):
                store.write_run(con, month, rows, progress)
    except BaseException:
        if made.calls is not None:
            spark.remove_calls(made.calls)
        raise
    if made.calls is not None:
        spark.remove_calls_but(made.calls)
    result.decoded_files = len(made.inputs.both.inputs)
    result.calls_at = made.calls
    return result


def spark_job(
    config: Config, month: Month, out: str, progress: Progress | None = None
) -> SparkMonth:
    """``meter spark-job``: ``month`` joined, attributed, rated and summed in Spark (as
    spark-submit, Glue or EMR Serverless run it), written under ``out`` (the sums and the
    accounting; the calls' Parquet in ``out``/calls unless ``[engine] calls`` says where)
    for ``bill_from_aggregates`` to price on any machine."""
    from metering import spark
    from metering.spark import job

    check_patterns(config.attribution.rules, lambda _: None, config.path, SPARK)
    root = config.engine.calls or f"{out.rstrip('/')}/calls"
    with spark.spark_session(config.engine) as session:
        made = _spark_month(session, config, month, progress, calls_root=root)
        sources = {"events": made.inputs.events, "records": made.inputs.records}
        text = job.document(month, _recipe_sql(config, month), made.calls, sources, made.sums)
        job.write(session, out, text)
    return made


def bill_from_aggregates(
    config: Config,
    month: Month,
    uri: str,
    progress: Progress | None = None,
    allow_empty: bool = False,
) -> BillResult:
    """Finish ``month``'s bill from what ``spark_job`` wrote under ``uri``: priced here,
    written to the warehouse in one transaction, ``calls`` reading the job's Parquet.
    Refuses a job of another month, or made with other rating or attribution rules."""
    from metering.errors import UsageError
    from metering.spark import job

    started = datetime.now(UTC)
    doc = job.read(uri)
    if doc["month"] != str(month):
        raise UsageError(f"{uri}: the spark-job output is of {doc['month']}, not of {month}")
    if doc["sql"] != _recipe_sql(config, month):
        raise ConfigError(
            f"{uri}: the spark-job joined and rated {month} with other [pricing] or "
            f"[attribution] settings than {config.path}'s; run the job again with this config"
        )
    sources = job.sources(doc)
    invoice = None
    if config.invoice is not None:
        with Spool(spool_folder(config)) as spool:
            invoice = collect_invoice(config.invoice, month, config.pricing.currency, spool)
    made = SparkMonth(
        Inputs(sources["events"], sources["records"], invoice), job.sums(doc), doc["calls"]
    )
    with store.connect(config.warehouse.path) as con:
        store.ensure_open(con, month)
        return _finish(con, config, month, made, started, allow_empty, progress)


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
    events = engine.parquet("_events_all", inputs.spooled["events"], EVENTS)
    sums = MonthSums(
        decided=engine.frame(select.counts(calls, config.pricing.operations)).row(0, named=True),
        totals=engine.frame(profile.tenant_totals(calls)),
        days=engine.frame(profile.tenant_days(calls)),
        reconciliation=engine.frame(profile.reconciliation(calls)),
        conflicts=engine.frame(select.conflicts(calls)),
        evidence=engine.frame(overhead.counts(calls, events)).row(0, named=True),
        drivers=engine.frame(shared.cluster_drivers(calls, config)),
    )
    return priced(config, month, inputs, run_id, sums, allow_empty)


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


def _recipe(config: Config, month: Month, dialect: Dialect = DUCKDB) -> str:
    """What the calls a bill leaves depend on besides the inputs: the config, and the SQL
    that joins, attributes and rates (so a meter that changes any of it joins the whole
    month again instead of mixing its rows with older ones; a Spark bill's calls, in
    Parquet, are never reused)."""
    if dialect.spark:
        return fingerprint([("config", config.sha256), ("spark", _recipe_sql(config, month))])
    joined = attribute.joined(Relation("e", {}), Relation("r", {}), config.attribution.rules)
    sql = select.rated(joined, config.pricing, month, dialect).sql
    return fingerprint([("config", config.sha256), ("sql", sql)])


def _recipe_sql(config: Config, month: Month) -> str:
    """A fingerprint of the Spark SQL that attributes and rates ``month``'s calls (the
    rules and the units: what a spark-job's sums depend on besides the inputs)."""
    joined = attribute.attributed(Relation("m", {}), config.attribution.rules, SPARK)
    return fingerprint([("sql", select.rated(joined, config.pricing, month, SPARK).sql)])
