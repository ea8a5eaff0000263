"""The sample month's AWS invoice: a CUR 2.0 export of its AmazonRDS lines, as AWS Data
Exports delivers it (``cur/<export>/data/BILLING_PERIOD=YYYY-MM/*.parquet`` and the
export's manifest), so the quick start shows the tie-out and a shared cost.

- Data API requests per day and cluster, as AWS would meter the month's calls: every call
  that succeeded, the ones the application forgot to meter too, each at its real size in
  32 KiB increments, at 0.35 USD per million (costs as CUR types them: DOUBLE);
- a promotional credit on the Data API's usage type;
- Aurora Serverless v2 capacity (ACU-hours) per day of the two Serverless v2 clusters, at
  0.12 USD per ACU-hour: the cost ``[[shared_costs]] aurora_compute`` splits.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl

from metering.month import Month
from metering.sample.calls import ACCOUNT, BLOCK, CLUSTER_ARN, REGION

EXPORT = "meter-cur"
DATA_API_USAGE = "USE1-Aurora:DataAPIRequests"
ACU_USAGE = "USE1-Aurora:ServerlessV2Usage"
DATA_API_PER_MILLION = Decimal("0.35")
ACU_HOUR = Decimal("0.12")
CREDIT = Decimal("-0.0005")


def write_invoice(
    folder: Path, month: Month, calls: pl.DataFrame, clusters: list[str], seed: int
) -> list[Path]:
    """The month's export under ``folder``: the Data API lines of ``calls`` (ts,
    request_bytes, response_bytes, resource_arn: the calls AWS billed), its credit and the
    ACU lines of ``clusters``; returns the files written."""
    days = (
        calls.filter((pl.col("ts") >= month.start) & (pl.col("ts") < month.end))
        .with_columns(
            day=pl.col("ts").dt.date(),
            units=pl.max_horizontal(
                pl.lit(1), (pl.col("request_bytes") + pl.col("response_bytes") + BLOCK - 1) // BLOCK
            ),
        )
        .group_by("day", "resource_arn")
        .agg(pl.col("units").sum())
        .sort("day", "resource_arn")
    )
    lines: list[dict[str, object]] = []

    def line(usage: str, kind: str, resource: str, start: datetime, end: datetime) -> None:
        lines.append(
            {
                "line_item_line_item_type": kind,
                "line_item_usage_type": usage,
                "line_item_resource_id": resource,
                "line_item_usage_start_date": start,
                "line_item_usage_end_date": end,
            }
        )

    amounts: list[tuple[float, float]] = []
    for day, cluster, units in days.iter_rows():
        start = datetime(day.year, day.month, day.day)
        line(DATA_API_USAGE, "Usage", str(cluster), start, start + timedelta(days=1))
        amounts.append((float(units), float(Decimal(units) * DATA_API_PER_MILLION / 1_000_000)))
    first, after = (m.replace(tzinfo=None) for m in (month.start, month.end))
    line(DATA_API_USAGE, "Credit", CLUSTER_ARN, first, after)
    amounts.append((0.0, float(CREDIT)))
    rng = np.random.default_rng(seed)
    for cluster in clusters:
        base = 48 if cluster == CLUSTER_ARN else 12  # the main cluster works harder
        for offset in range((after - first).days):
            start = first + timedelta(days=offset)
            hours = Decimal(str(round(base * (0.5 + rng.random()), 4)))
            line(ACU_USAGE, "Usage", cluster, start, start + timedelta(days=1))
            amounts.append((float(hours), float(hours * ACU_HOUR)))
    n = len(lines)
    frame = pl.DataFrame(
        {
            "bill_billing_period_start_date": [first] * n,
            "bill_payer_account_id": [ACCOUNT] * n,
            "line_item_product_code": ["AmazonRDS"] * n,
            **{key: [row[key] for row in lines] for key in lines[0]},
            "line_item_usage_amount": [usage for usage, _ in amounts],
            "line_item_unblended_cost": [cost for _, cost in amounts],
            "line_item_currency_code": ["USD"] * n,
            "product_region_code": [REGION] * n,
        },
        schema_overrides={
            name: pl.Datetime("ms")
            for name in (
                "bill_billing_period_start_date",
                "line_item_usage_start_date",
                "line_item_usage_end_date",
            )
        },
    )
    data = folder / EXPORT / "data" / f"BILLING_PERIOD={month}"
    meta = folder / EXPORT / "metadata" / f"BILLING_PERIOD={month}"
    data.mkdir(parents=True, exist_ok=True)
    meta.mkdir(parents=True, exist_ok=True)
    path = data / f"{EXPORT}-00001.snappy.parquet"
    frame.write_parquet(path, compression="snappy", statistics=False)
    manifest = meta / f"{EXPORT}-Manifest.json"
    body = {
        "exportArn": f"arn:aws:bcm-data-exports:us-east-1:{ACCOUNT}:export/{EXPORT}",
        "billingPeriod": str(month),
        "columns": [{"name": name, "type": str(dtype)} for name, dtype in frame.schema.items()],
        "dataFiles": [
            f"s3://cur-{ACCOUNT}/exports/{EXPORT}/data/BILLING_PERIOD={month}/{path.name}"
        ],
    }
    manifest.write_text(json.dumps(body, indent=2) + "\n")
    return [path, manifest]
