"""``meter spark-job``'s output: what a month's Spark run leaves for the small machine that
finishes the bill (``meter bill --from-aggregates URI``).

One JSON document, ``aggregates.json`` under the job's folder (written through Spark, so
any file system Spark writes reaches: a local folder, ``s3://`` on EMR and Glue): the
month, the fingerprint of the SQL that joined and rated it (pricing's units rule,
operations, attribution rules), where the calls' Parquet went, each source's accounting
(counters, quarantine, input files and rows, as a spool entry keeps them) and the sums the
pricing reads (``schemas.MonthSums``). Reading it needs no Spark.
"""

from __future__ import annotations

import json
from datetime import date
from typing import TYPE_CHECKING, Any

import polars as pl

from metering import __version__
from metering.collect.files import Reader, list_objects
from metering.errors import InputError
from metering.month import Month
from metering.overhead import COUNTS as EVIDENCE
from metering.rate import profile, select, shared
from metering.schemas import Collected, MonthSums, Relation
from metering.spark.decode import accounting

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

FORMAT = 1
FOLDER = "aggregates"  # under the job's output URI: Spark's part file of the document
_NONE = Relation("_", {})
FRAMES = {
    "totals": profile.tenant_totals(_NONE).columns,
    "days": profile.tenant_days(_NONE).columns,
    "reconciliation": profile.reconciliation(_NONE).columns,
    "conflicts": select.conflicts(_NONE).columns,
    "drivers": shared.DRIVERS,
}


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return [
        {k: v.isoformat() if isinstance(v, date) else v for k, v in row.items()}
        for row in frame.to_dicts()
    ]


def _frame(rows: list[dict[str, Any]], name: str) -> pl.DataFrame:
    schema = FRAMES[name]
    parsed = [
        {k: date.fromisoformat(v) if schema[k] == pl.Date() else v for k, v in row.items()}
        for row in rows
    ]
    return pl.DataFrame(parsed, schema=schema, orient="row")


def _source(collected: Collected) -> dict[str, Any]:
    return {
        "counters": collected.counters.as_dict(),
        "quarantine": [q.as_list() for q in collected.quarantine],
        "inputs": [[i.uri, i.name, i.digest, i.size] for i in collected.inputs],
        "rows": collected.parquet_rows,
    }


def document(
    month: Month,
    sql: str,
    calls: str | None,
    sources: dict[str, Collected],
    sums: MonthSums,
) -> str:
    """The job's document (see the module's docstring)."""
    return json.dumps(
        {
            "format": FORMAT,
            "meter_version": __version__,
            "month": str(month),
            "sql": sql,
            "calls": calls,
            "sources": {name: _source(c) for name, c in sources.items()},
            "decided": sums.decided,
            "evidence": sums.evidence,
            **{name: _rows(getattr(sums, name)) for name in FRAMES},
        }
    )


def write(spark: SparkSession, out: str, text: str) -> str:
    """Write ``text`` as the job's document under ``out``; returns the folder it is in."""
    folder = f"{out.rstrip('/')}/{FOLDER}"
    spark.createDataFrame([(text,)], "value string").coalesce(1).write.mode("overwrite").text(
        folder
    )
    return folder


def read(uri: str) -> dict[str, Any]:
    """The document a job wrote under ``uri`` (its output folder), local or ``s3://``."""
    folder = f"{uri.rstrip('/')}/{FOLDER}"
    try:
        listing = list_objects(folder)
    except InputError:
        listing = None
    parts = (
        [o for o in listing.objects if o.name.rsplit("/", 1)[-1].startswith("part-")]
        if listing
        else []
    )
    if len(parts) != 1:
        raise InputError(
            f"{uri}: no meter spark-job output here (expected one part file in {folder}/); "
            "give the --out of a finished `meter spark-job`"
        )
    try:
        doc: dict[str, Any] = json.loads(b"".join(Reader(parts[0])))
    except ValueError as exc:
        raise InputError(f"{parts[0].uri}: not a meter spark-job document: {exc}") from None
    if doc.get("format") != FORMAT:
        raise InputError(f"{parts[0].uri}: written by another meter ({doc.get('meter_version')})")
    return doc


def sources(doc: dict[str, Any]) -> dict[str, Collected]:
    """Each source's accounting (no rows) from a document."""
    return {name: accounting(meta, int(meta["rows"])) for name, meta in doc["sources"].items()}


def sums(doc: dict[str, Any]) -> MonthSums:
    """The month's sums from a document."""
    frames = {name: _frame(doc[name], name) for name in FRAMES}
    evidence = {name: int(doc["evidence"][name]) for name in EVIDENCE}
    decided = {name: int(value) for name, value in doc["decided"].items()}
    return MonthSums(decided=decided, evidence=evidence, **frames)
