"""The one place that knows the order of a DuckDB bill: collect -> attribute -> rate ->
price -> store.

Each step is a function of typed values (``schemas.Relation``, frames, ``Collected``):
the steps write their SQL, the engine runs it, and this module only orders them. The
price step (``priced``) and what a run records besides its result (``run``) are the same
for a Spark bill, which ``spark.bill`` orders.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

from metering import attribute, overhead, store
from metering.attribute import delta
from metering.attribute.principal import check_patterns
from metering.collect import Inputs, Spool, collect_month
from metering.config import Config
from metering.errors import WarehouseError
from metering.month import Month
from metering.priced import priced
from metering.rate import profile, select, shared
from metering.run import recipe, run_columns, spool_folder
from metering.schemas import EVENTS, RECORDS, BillResult, MonthSums, Progress, Relation
from metering.store.engine import Engine, memory_limit
from metering.trace import trace


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
            from metering.spark.bill import bill as bill_spark

            return bill_spark(config, month, progress, allow_empty)
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
            joined_again = _join(engine, config, month, inputs, last, progress)
            sums = _sums(engine, config, month, inputs)
            result = priced(config, month, inputs, run_id, sums, allow_empty)
            run = run_columns(config, started, inputs_sha)
            rows = store.RunRows.of(result, run, recipe(config, month), inputs.spooled)
            with trace("write warehouse"):
                store.write_run(con, month, rows, progress)
    result.joined_again = joined_again
    result.reused_files, result.decoded_files = spool.reused, spool.decoded
    return result


def _join(
    engine: Engine,
    config: Config,
    month: Month,
    inputs: Inputs,
    last: store.LastBill | None,
    progress: Progress | None,
) -> int | None:
    """Put the month's rated calls in the warehouse: all of them joined from the inputs'
    spooled files, or, when the month's ``last`` bill only lacks some new files, only the
    calls those touch. Returns how many were joined again (None: all were)."""
    join = partial(attribute.joined, rules=config.attribution.rules)
    read = inputs.spooled
    fits = last is not None and last.recipe == recipe(config, month)
    added = last.added(read) if last is not None and fits else None
    if added is None:
        events = engine.parquet("_events_in", read["events"], EVENTS)
        records = engine.parquet("_records_in", read["records"], RECORDS)
        with trace("join and rate the month"):
            calls = select.rated(join(events, records), config.pricing, month)
            store.replace_calls(engine.con, month, calls, None, progress)
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
        store.add_calls(engine.con, month, calls, progress)
    else:
        store.replace_calls(engine.con, month, calls, again.replacing, progress)
    return again.count


def _sums(engine: Engine, config: Config, month: Month, inputs: Inputs) -> MonthSums:
    """The sums of the month's rated calls in the warehouse (and of its events, for the
    evidence's overhead), as ``priced`` reads them."""
    calls = store.month_calls(month)
    events = engine.parquet("_events_all", inputs.spooled["events"], EVENTS)
    return MonthSums(
        decided=engine.frame(select.counts(calls, config.pricing.operations)).row(0, named=True),
        totals=engine.frame(profile.tenant_totals(calls)),
        days=engine.frame(profile.tenant_days(calls)),
        reconciliation=engine.frame(profile.reconciliation(calls)),
        conflicts=engine.frame(select.conflicts(calls)),
        evidence=engine.frame(overhead.counts(calls, events)).row(0, named=True),
        drivers=engine.frame(shared.cluster_drivers(calls, config)),
    )
