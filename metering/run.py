"""What a bill run is besides its result, the same for both engines: where its inputs
spool, what its calls depend on (its recipe), and the ``bill_runs`` columns it records."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from metering import attribute
from metering.config import Config
from metering.month import Month
from metering.period import who
from metering.rate import select
from metering.schemas import Relation, fingerprint
from metering.sql import DUCKDB, SPARK, Dialect


def spool_folder(config: Config) -> Path:
    """Where decoded inputs are kept between runs: beside the warehouse."""
    return Path(config.warehouse.path).with_suffix(".spool")


def run_columns(config: Config, started: datetime, inputs_sha: str) -> dict[str, object]:
    """The bill_runs columns a bill's result does not hold: when, who, and the fingerprints
    of the config and the inputs."""
    return {
        "started_at": started,
        "finished_at": datetime.now(UTC),
        "executed_by": who(),
        "config_sha256": config.sha256,
        "inputs_sha256": inputs_sha,
    }


def recipe(config: Config, month: Month, dialect: Dialect = DUCKDB) -> str:
    """What the calls a bill leaves depend on besides the inputs: the config, and the SQL
    that joins, attributes and rates (so a meter that changes any of it joins the whole
    month again instead of mixing its rows with older ones; a Spark bill's calls, in
    Parquet, are never reused)."""
    if dialect.spark:
        return fingerprint([("config", config.sha256), ("spark", recipe_sql(config, month))])
    joined = attribute.joined(Relation("e", {}), Relation("r", {}), config.attribution.rules)
    sql = select.rated(joined, config.pricing, month, dialect).sql
    return fingerprint([("config", config.sha256), ("sql", sql)])


def recipe_sql(config: Config, month: Month) -> str:
    """A fingerprint of the Spark SQL that attributes and rates ``month``'s calls (the
    rules and the units: what a spark-job's sums depend on besides the inputs)."""
    joined = attribute.attributed(Relation("m", {}), config.attribution.rules, SPARK)
    return fingerprint([("sql", select.rated(joined, config.pricing, month, SPARK).sql)])
