"""Decoding inside Spark: meter's own listing and decoders, run in Spark tasks.

The collectors list their files and hand ``Spool.decode`` jobs and a decoder, as for the
DuckDB engine; ``SparkSpool`` sends each group of files (a delivery-day folder, an export
data file; at most ``spool.GROUP_BYTES`` of input, and cut smaller, ``pieces``, when there
are fewer groups than a cluster has cores) to a Spark task through ``mapInArrow``,
where the same msgspec decoders read them. So the same bytes give the same rows, counters
and quarantine entries as on one machine: no glob over thousands of paths, no folder that
is missing when read, no JSON reader that nulls a whole one-line file. Each task's rows
stream out as Arrow batches; what else it found (counters, quarantine, fingerprints) comes
as one last row per group, which the driver merges in job order, as ``Spool.decode`` does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from metering.collect.spool import Decoder, Job, Spool, group_parts, grouped
from metering.schemas import EVENTS, RECORDS, Collected, Counters, InputFile, Progress
from metering.schemas import QuarantineEntry as Entry
from metering.spark.session import materialised

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

SCHEMAS = {"events": EVENTS, "records": RECORDS}
GROUP = "_group"  # which group a row came from
META = "_meta"  # a group's accounting (JSON), on its last row; null on rows of data

_SPARK_TYPES = {
    pl.Utf8: "string",
    pl.Int64: "bigint",
    pl.Boolean: "boolean",
    pl.Date: "date",
    pl.Datetime: "timestamp",
}


def spark_type(dtype: pl.DataType) -> str:
    """The Spark SQL type of a column meter declares (schemas.py)."""
    return _SPARK_TYPES[dtype.base_type()]


def ddl(schema: dict[str, pl.DataType]) -> str:
    """A Spark DDL schema string for ``schema``."""
    return ", ".join(f"{name} {spark_type(dtype)}" for name, dtype in schema.items())


def _arrow_schema(schema: dict[str, pl.DataType]) -> pa.Schema:
    import pyarrow as pa

    types = {
        pl.Utf8: pa.string(),
        pl.Int64: pa.int64(),
        pl.Boolean: pa.bool_(),
        pl.Date: pa.date32(),
        pl.Datetime: pa.timestamp("us", tz="UTC"),
    }
    fields = [pa.field(c, types[t.base_type()]) for c, t in schema.items()]
    return pa.schema([*fields, pa.field(GROUP, pa.int64()), pa.field(META, pa.string())])


def _meta(part: Collected) -> dict[str, Any]:
    return {
        "counters": part.counters.as_dict(),
        "quarantine": [q.as_list() for q in part.quarantine],
        "inputs": [[i.uri, i.name, i.digest, i.size] for i in part.inputs],
        "reusable": part.reusable,
    }


def accounting(meta: dict[str, Any], rows: int) -> Collected:
    """A group's (or a source's) accounting from ``_meta`` (no rows, ``rows`` counted)."""
    return Collected(
        pl.DataFrame(),
        Counters(**meta["counters"]),
        [Entry.of(q) for q in meta["quarantine"]],
        [InputFile(uri, name, digest, int(size)) for uri, name, digest, size in meta["inputs"]],
        parquet_rows=rows,
        reusable=bool(meta.get("reusable", True)),
    )


def decode_task(
    kind: str, groups: Sequence[Sequence[Job[Any]]], decoder: Decoder[Any]
) -> Any:  # a mapInArrow function
    """What a Spark task runs: the groups whose numbers it is given, decoded."""
    schema = SCHEMAS[kind]

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        target = _arrow_schema(schema)
        for batch in batches:
            for number in batch.column(0).to_pylist():
                whole = Collected(pl.DataFrame())
                rows = 0
                for part in group_parts(decoder, groups[number]):
                    if part.frame.height:
                        table = part.frame.select(list(schema)).to_arrow()
                        table = table.append_column(GROUP, pa.array([number] * table.num_rows))
                        table = table.append_column(META, pa.nulls(table.num_rows, pa.string()))
                        rows += table.num_rows
                        yield from table.cast(target).to_batches()
                    part.frame = pl.DataFrame()
                    whole.extend(part)
                meta = json.dumps({**_meta(whole), "rows": rows})
                last = {c: [None] for c in schema} | {GROUP: [number], META: [meta]}
                yield pa.RecordBatch.from_pydict(last, schema=target)

    return run


MIN_PIECE_BYTES = 8 * 1024 * 1024  # a task's input, at least (where there is that much)


def pieces(groups: list[list[Job[Any]]], tasks: int) -> list[list[Job[Any]]]:
    """``groups`` cut into pieces of about an equal share of ``tasks`` (but not below
    MIN_PIECE_BYTES), so that a month of a few day folders still keeps every core of a
    cluster busy; a file is never cut, and the pieces keep the files' order."""
    total = sum(job.obj.size for group in groups for job in group)
    most = max(MIN_PIECE_BYTES, total // max(1, tasks))
    cut: list[list[Job[Any]]] = []
    for group in groups:
        piece: list[Job[Any]] = []
        size = 0
        for job in group:
            if piece and size + job.obj.size > most:
                cut.append(piece)
                piece, size = [], 0
            piece.append(job)
            size += job.obj.size
        if piece:
            cut.append(piece)
    return cut


class SparkSpool(Spool):
    """A ``Spool`` that decodes in Spark and keeps each source's rows as a DataFrame
    (``frames``), materialised, instead of Parquet files; nothing is reused between runs."""

    def __init__(self, spark: SparkSession) -> None:
        super().__init__(None, workers=1)
        self.spark = spark
        self.frames: dict[str, list[DataFrame]] = {"events": [], "records": []}

    def decode(
        self,
        kind: str,
        jobs: Sequence[Job[Any]],
        decoder: Decoder[Any],
        progress: Progress | None = None,
        label: str = "files",
    ) -> Collected:
        self.decoded += len(jobs)
        cores = max(2, self.spark.sparkContext.defaultParallelism)
        groups = pieces(grouped(jobs), 4 * cores)
        if not groups:
            return Collected(pl.DataFrame())
        first = {job.obj.uri: index for index, job in enumerate(jobs)}
        # About four tasks per core: on a cluster every core busy, on few cores several
        # small groups per task (a Python worker started costs more than a group decoded).
        tasks = min(len(groups), 4 * cores)
        numbers = self.spark.range(len(groups), numPartitions=tasks)
        schema = f"{ddl(SCHEMAS[kind])}, {GROUP} bigint, {META} string"
        decoded = numbers.mapInArrow(decode_task(kind, groups, decoder), schema)
        decoded = materialised(decoded)  # decoded once, read by what follows
        metas = decoded.where(f"{META} IS NOT NULL").select(GROUP, META).collect()
        order = sorted(metas, key=lambda row: first[groups[row[0]][0].obj.uri])
        parts = [accounting(json.loads(meta), json.loads(meta)["rows"]) for _, meta in order]
        self.frames[kind].append(decoded.where(f"{META} IS NULL").drop(GROUP, META))
        if progress is not None:
            progress(label, len(jobs), len(jobs))
        return Collected.merged(parts)

    def put(self, kind: str, name: str, collected: Collected) -> Collected:
        """Rows read without files (a live table): handed to Spark from the driver."""
        schema = SCHEMAS[kind]
        frame = collected.frame.select(list(schema)) if collected.frame.width else None
        if frame is not None and frame.height:
            rows = frame.to_dicts()
            self.frames[kind].append(self.spark.createDataFrame(rows, ddl(schema)))
        return Collected(
            pl.DataFrame(),
            collected.counters,
            collected.quarantine,
            collected.inputs,
            parquet_rows=frame.height if frame is not None else 0,
        )

    def frame(self, kind: str) -> DataFrame:
        """Every row of ``kind`` decoded (an empty frame when there is none)."""
        frames = self.frames[kind]
        if not frames:
            return self.spark.createDataFrame([], ddl(SCHEMAS[kind]))
        union = frames[0]
        for more in frames[1:]:
            union = union.unionByName(more)
        return union
