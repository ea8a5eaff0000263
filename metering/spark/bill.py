"""A bill on Spark, in the order of its steps: the month joined, attributed, rated and
summed in Spark (``month``), then priced (``metering.priced``) and written to the
warehouse in one transaction, the calls staying in their Parquet.

``bill`` does it all in one process (``meter bill --engine spark``); ``spark_job`` runs the
Spark half where a cluster is (``meter spark-job``) and ``bill_from_aggregates`` finishes
it on any machine (``meter bill --from-aggregates``), with no Spark.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from metering import store
from metering.attribute.principal import check_patterns
from metering.collect import Inputs, Spool, collect_invoice, collect_month
from metering.config import Config
from metering.errors import ConfigError, UsageError
from metering.month import Month
from metering.priced import priced
from metering.run import recipe, recipe_sql, run_columns, spool_folder
from metering.schemas import BillResult, MonthSums, Progress
from metering.spark import job
from metering.spark.decode import SparkSpool
from metering.spark.month import calls_folder, month_sums, remove_calls, remove_calls_but
from metering.spark.session import spark_session
from metering.sql import SPARK
from metering.store.engine import Engine, memory_limit
from metering.trace import trace

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def bill(config: Config, month: Month, progress: Progress | None, allow_empty: bool) -> BillResult:
    """``pipeline.bill`` with Spark: join, attribute, rate and sum in Spark; price and write
    here."""
    started = datetime.now(UTC)
    memory = memory_limit()
    with store.connect(config.warehouse.path) as con:
        store.ensure_open(con, month)
        engine = Engine(con, spool_folder(config) / "scratch", memory)
        check_patterns(config.attribution.rules, engine.refusal, config.path, SPARK)
        with spark_session(config.engine) as session:
            made = _month(session, config, month, progress)
        return _finish(con, config, month, made, started, allow_empty, progress)


@dataclass(frozen=True, slots=True)
class SparkMonth:
    """What Spark made of a month: its inputs' accounting, the sums of its rated calls, and
    where their Parquet is (None: the month has no calls)."""

    inputs: Inputs
    sums: MonthSums
    calls: str | None


def _month(
    session: SparkSession,
    config: Config,
    month: Month,
    progress: Progress | None,
    calls_root: str | None = None,
) -> SparkMonth:
    """The month's sources collected, joined, attributed, rated and summed in Spark."""
    spool = SparkSpool(session)
    inputs = collect_month(config, month, spool, progress)
    run_id, _ = inputs.identity(config, month)
    folder = calls_folder(config, month, run_id, root=calls_root)
    sums, written = month_sums(session, spool, config, month, folder)
    if not written:  # no calls: no Parquet for `calls` to read
        remove_calls(folder)
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
    run_id, inputs_sha = made.inputs.identity(config, month)
    try:
        with store.transaction(con):
            result = priced(config, month, made.inputs, run_id, made.sums, allow_empty)
            run = run_columns(config, started, inputs_sha)
            rows = store.RunRows.of(result, run, recipe(config, month, SPARK), {}, made.calls)
            store.drop_calls(con, month)
            with trace("write warehouse"):
                store.write_run(con, month, rows, progress)
    except BaseException:
        if made.calls is not None:
            remove_calls(made.calls)
        raise
    if made.calls is not None:
        remove_calls_but(made.calls)
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
    check_patterns(config.attribution.rules, lambda _: None, config.path, SPARK)
    root = config.engine.calls or f"{out.rstrip('/')}/calls"
    with spark_session(config.engine) as session:
        made = _month(session, config, month, progress, calls_root=root)
        sources = {"events": made.inputs.events, "records": made.inputs.records}
        text = job.document(month, recipe_sql(config, month), made.calls, sources, made.sums)
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
    started = datetime.now(UTC)
    doc = job.read(uri)
    if doc["month"] != str(month):
        raise UsageError(f"{uri}: the spark-job output is of {doc['month']}, not of {month}")
    if doc["sql"] != recipe_sql(config, month):
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
