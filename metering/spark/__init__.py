"""Billing on Apache Spark (README "Billing on Apache Spark"); the only package that
imports pyspark, and only when a Spark bill runs.

session   -> ``spark_session``: UTC, microsecond Parquet timestamps, ``[engine]``'s settings
decode    -> ``SparkSpool``: meter's own listing and msgspec decoders, in Spark tasks
join      -> the dedup and join of ``attribute.match``, in Spark SQL
month     -> attribute, rate (the DuckDB engine's step SQL in Spark's dialect), per-call
             Parquet partitioned by day, and the sums the pricing reads (``MonthSums``)
job       -> ``meter spark-job``: the sums and accounting of a month written to a folder,
             for ``meter bill --from-aggregates`` to price on any small machine
bill      -> the order of a Spark bill's steps: ``bill`` (``meter bill --engine spark``),
             ``spark_job`` and ``bill_from_aggregates``; imported only when one runs
"""

from __future__ import annotations

from metering.spark.decode import SparkSpool
from metering.spark.month import (
    calls_folder,
    calls_root,
    month_sums,
    remove_calls,
    remove_calls_but,
)
from metering.spark.session import missing, spark_session

__all__ = [
    "SparkSpool",
    "calls_folder",
    "calls_root",
    "missing",
    "month_sums",
    "remove_calls",
    "remove_calls_but",
    "spark_session",
]
