"""``python -m metering.spark --month YYYY-MM --out URI [--config meter.toml]``: the entry
point to hand spark-submit, Glue or EMR Serverless (``meter spark-job``)."""

from __future__ import annotations

import sys

from metering.cli import app

if __name__ == "__main__":
    app(["spark-job", *sys.argv[1:]], prog_name="meter spark-job")
