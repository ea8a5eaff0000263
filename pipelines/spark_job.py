"""The Spark job: the file to hand spark-submit, AWS Glue or EMR Serverless (README,
"Billing on Apache Spark"). It runs ``python -m metering.spark`` (``meter spark-job``) with
``--month``, ``--out`` and ``--config``, ignoring the arguments Glue adds of its own
(``--JOB_ID``, ``--TempDir``, ...); ``meter bill --from-aggregates URI`` then finishes the
month.

    spark-submit --files meter.toml pipelines/spark_job.py \\
        --month 2026-10 --out s3://bucket/meter/2026-10 --config meter.toml
"""

from __future__ import annotations

import argparse
import runpy
import sys

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--month", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--config", default="meter.toml")
    known, _ = parser.parse_known_args()
    sys.argv = [sys.argv[0], "--month", known.month, "--out", known.out, "--config", known.config]
    runpy.run_module("metering.spark", run_name="__main__", alter_sys=True)
