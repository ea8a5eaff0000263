"""The Spark session a bill runs in: UTC, Parquet timestamps as INT64 microseconds, the
driver's Python on local workers, ``[engine]``'s master and settings."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from metering.config import EngineConfig
from metering.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# What every meter session sets; [engine] conf may add to these, never change them.
PINNED = {
    "spark.sql.session.timeZone": "UTC",  # a call's day and month are UTC's (SPEC 1.6)
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",  # not INT96: DuckDB reads it
    "spark.sql.ansi.enabled": "true",  # an overflow fails the bill instead of wrapping
}
DEFAULTS = {
    "spark.ui.showConsoleProgress": "false",
    "spark.ui.enabled": "false",
}
# On one machine (local[N]): fewer, bigger shuffle partitions than Spark's 200.
LOCAL_DEFAULTS = {"spark.sql.shuffle.partitions": "8"}


def materialised(frame: DataFrame) -> DataFrame:
    """``frame`` computed once and kept, so that the steps after it read it instead of
    nesting its plan in theirs: in the checkpoint folder when one is set (``[engine.conf]
    "spark.checkpoint.dir"``: it survives executors that go, as with dynamic allocation),
    else on the executors (``localCheckpoint``)."""
    if frame.sparkSession.sparkContext.getCheckpointDir():
        return frame.checkpoint()
    return frame.localCheckpoint()


def _checkpoints(session: SparkSession, engine: EngineConfig) -> None:
    """Use the checkpoint folder ``spark.checkpoint.dir`` names ([engine.conf], or the
    job's own settings), which Spark 3.5 does not read by itself."""
    context = session.sparkContext
    folder = engine.conf.get("spark.checkpoint.dir") or context.getConf().get(
        "spark.checkpoint.dir"
    )
    if folder and not context.getCheckpointDir():
        context.setCheckpointDir(folder)


def missing() -> str | None:
    """Why Spark cannot run here (no pyspark, no java), or None."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed: pip install 'meter[spark]'"
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        return "Spark needs Java 17 or later: no java on PATH and no JAVA_HOME"
    return None


@contextmanager
def spark_session(engine: EngineConfig, app: str = "meter") -> Iterator[SparkSession]:
    """A session as ``engine`` configures it (an active one, under spark-submit, is used
    and left running; one meter started is stopped after)."""
    why = missing()
    if why is not None:
        raise ConfigError(f'[engine] kind = "spark": {why}')
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        for key, value in PINNED.items():
            active.conf.set(key, value)
        _checkpoints(active, engine)
        yield active
        return
    submitted = "PYSPARK_GATEWAY_PORT" in os.environ  # spark-submit, Glue, EMR: its master
    master = engine.master or os.environ.get("MASTER") or ("" if submitted else "local[*]")
    builder = SparkSession.builder.appName(app)
    if master:
        builder = builder.master(master)
    if master.startswith("local"):  # workers are this machine's: run them in this Python
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    local = LOCAL_DEFAULTS if master.startswith("local") else {}
    for key, value in {**DEFAULTS, **local, **engine.conf, **PINNED}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    _checkpoints(session, engine)
    try:
        yield session
    finally:
        session.stop()
