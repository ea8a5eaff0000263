"""A month's calls joined, attributed and rated in Spark, written as Parquet, and summed.

The steps are the DuckDB engine's: ``attribute.attributed``, ``rate.select.rated``, the
sums of ``rate.profile``, ``rate.select`` and ``overhead``, each writing its SQL in Spark's
dialect (``sql.SPARK``); only the dedup is Spark's own (``spark.join``). Units stay BIGINT
and no money is computed here: the sums go back to Python to be priced.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import polars as pl

from metering import attribute, overhead
from metering.config import Config
from metering.month import Month
from metering.rate import profile, select, shared
from metering.schemas import EVENTS, RATED, MonthSums, Relation
from metering.spark import join
from metering.spark.decode import SparkSpool, ddl
from metering.sql import SPARK, utc_day
from metering.trace import trace

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

CALLS_VIEW = "_calls"


def calls_root(config: Config) -> str:
    """Where Spark bills keep their calls: ``[engine] calls``, else beside the warehouse."""
    from pathlib import Path

    return config.engine.calls or str(Path(config.warehouse.path).with_suffix(".calls"))


def calls_folder(config: Config, month: Month, run_id: str, root: str | None = None) -> str:
    """A new folder for one bill's calls of ``month``, under ``root`` (else ``calls_root``):
    a bill that fails leaves the last one's folder as the warehouse names it."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"{(root or calls_root(config)).rstrip('/')}/month={month}/{run_id}-{stamp}"


def _frame(spark: SparkSession, relation: Relation) -> pl.DataFrame:
    """A (small) relation's rows, as the DuckDB engine's ``Engine.frame`` gives them."""
    rows = [row.asDict() for row in spark.sql(f"SELECT * FROM {relation}").collect()]
    return pl.DataFrame(rows, schema=relation.columns, orient="row")


def _row(spark: SparkSession, relation: Relation) -> dict[str, Any]:
    return _frame(spark, relation).row(0, named=True)


def month_sums(
    spark: SparkSession, spool: SparkSpool, config: Config, month: Month, folder: str
) -> tuple[MonthSums, int]:
    """The sums of ``month``'s rated calls, and how many calls were written to ``folder``
    (Parquet, partitioned by day: RATED's columns)."""
    with trace("spark: join"):
        matched = join.calls_in(spark, spool.frame("events"), spool.frame("records"))
    joined = attribute.attributed(matched, config.attribution.rules, SPARK)
    rated = select.rated(joined, config.pricing, month, SPARK)
    with trace("spark: attribute, rate, write calls"):
        calls = spark.sql(f"SELECT *, {utc_day('event_time', SPARK)} AS day FROM {rated}")
        calls.write.mode("overwrite").partitionBy("day").parquet(folder)
        written = spark.read.schema(f"{ddl(RATED)}, day date").parquet(folder)
        written.drop("day").createOrReplaceTempView(CALLS_VIEW)
        count = written.count()
    spool.frame("events").createOrReplaceTempView("_events_all")
    calls_of = Relation(CALLS_VIEW, RATED)
    events = Relation("_events_all", EVENTS)
    with trace("spark: sums"):
        sums = MonthSums(
            decided=_row(spark, select.counts(calls_of, config.pricing.operations, SPARK)),
            totals=_frame(spark, profile.tenant_totals(calls_of, SPARK)),
            days=_frame(spark, profile.tenant_days(calls_of, SPARK)),
            reconciliation=_frame(spark, profile.reconciliation(calls_of, SPARK)),
            conflicts=_frame(spark, select.conflicts(calls_of)),
            evidence=_row(spark, overhead.counts(calls_of, events, SPARK)),
            drivers=_frame(spark, shared.cluster_drivers(calls_of, config, SPARK)),
        )
    return sums, count


def is_local(uri: str) -> bool:
    return not re.match(r"^[a-z0-9]+://", uri)


def remove_calls(folder: str) -> None:
    """Remove one bill's calls (a bill that failed: the warehouse does not name them).
    Only local folders: an object store's are left for its lifecycle rules."""
    import shutil

    if is_local(folder):
        shutil.rmtree(folder, ignore_errors=True)


def remove_calls_but(kept: str) -> None:
    """Remove the earlier bills' calls of ``kept``'s month (local folders), all but it."""
    from pathlib import Path

    root = Path(kept).parent
    if not is_local(kept) or not root.is_dir():
        return
    for folder in root.iterdir():
        if folder.is_dir() and str(folder) != kept:
            remove_calls(str(folder))
