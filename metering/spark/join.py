"""The month's calls in Spark: ``attribute.match``'s rule, in Spark SQL.

Events are one per ``eventID``, then one per non-null ``requestID``; records one per
``request_id`` in their newest version (``schemas.EVENT_KEYS``, ``RECORD_KEY``,
``RECORD_VERSION``); of a key's copies the smallest wins (columns compared in order,
NULL after any value, as DuckDB orders the struct it takes the minimum of), and the
winner's ``conflict`` says how copies differ, in the same words. Only keys seen twice are
grouped (a small semi join); every other row passes by an anti join, so nothing the size
of the month is sorted. The two sources are then joined by ``match.JOIN``, the DuckDB
engine's own SQL. Each step is materialised (``session.materialised``) so that no plan nests
another's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from metering.attribute.match import EVENT_COLUMNS, JOIN, MATCHED, RECORD_COLUMNS
from metering.schemas import EVENT_KEYS, RECORD_KEY, RECORD_VERSION, Relation
from metering.spark.session import materialised
from metering.sql import SPARK

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def _said(key: str, others: Sequence[str], what: str) -> str:
    """Spark SQL: how a key's copies differ (``match._unique``'s words), or NULL."""
    versions = f"count(DISTINCT struct({', '.join(others)}))"
    differing = ", ".join(
        f"CASE WHEN count(DISTINCT struct({c})) > 1 THEN {SPARK.literal(c)} END" for c in others
    )
    text = (
        f"concat(CAST({versions} AS STRING), {SPARK.literal(f' different {what} share {key} ')}, "
        f"{key}, ' (', concat_ws(', ', {differing}), ' differ)')"
    )
    return f"CASE WHEN {versions} > 1 THEN {text} END"


def unique_sql(
    name: str, key: str, columns: Sequence[str], what: str, newest: str | None = None
) -> tuple[str, str]:
    """Spark SQL over the rows of the view ``name`` (``columns``, ``conflict``, and
    ``newest`` when given): those of a ``key`` no other row has (or none), and one winner
    per key several rows have; see the module's docstring."""
    others = [c for c in columns if c != key]
    kept = ", ".join([*columns, "conflict"])
    twice = f"(SELECT {key} FROM {name} WHERE {key} IS NOT NULL GROUP BY {key} HAVING count(*) > 1)"
    passing = (
        f"SELECT {', '.join(f'r.{c}' for c in [*columns, 'conflict'])} "
        f"FROM {name} r LEFT ANTI JOIN {twice} t ON r.{key} = t.{key}"
    )
    copies = f"SELECT r.* FROM {name} r LEFT SEMI JOIN {twice} t ON r.{key} = t.{key}"
    if newest is not None:
        copies = (
            f"SELECT {kept} FROM (SELECT *, max({newest}) OVER (PARTITION BY {key}) AS _newest "
            f"FROM ({copies})) WHERE {newest} <=> _newest"
        )
    order = ", ".join(f"{c} ASC NULLS LAST" for c in [*others, "conflict"])
    winners = f"""
        WITH copies AS ({copies}),
        said AS (SELECT {key}, {_said(key, others, what)} AS said FROM copies GROUP BY {key}),
        ranked AS (
            SELECT *, row_number() OVER (PARTITION BY {key} ORDER BY {order}) AS _rank
            FROM copies
        )
        SELECT {", ".join(f"ranked.{c}" for c in columns)},
            nullif(concat_ws('; ', ranked.conflict, said.said), '') AS conflict
        FROM ranked JOIN said ON ranked.{key} = said.{key}
        WHERE _rank = 1
    """
    return passing, winners


def unique(
    spark: SparkSession,
    rows: DataFrame,
    key: str,
    columns: Sequence[str],
    what: str,
    newest: str | None = None,
) -> DataFrame:
    """``rows`` one per non-null ``key`` (``unique_sql``), materialised."""
    name = f"_unique_{key}"
    rows.createOrReplaceTempView(name)
    passing, winners = unique_sql(name, key, columns, what, newest)
    return materialised(spark.sql(passing).unionByName(spark.sql(winners)))


def calls_in(spark: SparkSession, events: DataFrame, records: DataFrame) -> Relation:
    """One row per distinct call (``match.MATCHED``), as the temporary view ``_matched``."""
    fresh = "CAST(NULL AS STRING) AS conflict"  # nothing said of a row yet
    event_rows = events.selectExpr(*EVENT_COLUMNS, fresh)
    record_rows = records.selectExpr(*RECORD_COLUMNS, RECORD_VERSION, fresh)
    first, then = EVENT_KEYS
    by_event = unique(spark, event_rows, first, EVENT_COLUMNS, "copies")
    unique(spark, by_event, then, EVENT_COLUMNS, "events").createOrReplaceTempView("e")
    unique(
        spark, record_rows, RECORD_KEY, RECORD_COLUMNS, "records", RECORD_VERSION
    ).createOrReplaceTempView("r")
    materialised(spark.sql(JOIN)).createOrReplaceTempView("_matched")
    return Relation("_matched", MATCHED)
