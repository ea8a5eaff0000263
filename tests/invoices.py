"""Hand-built AWS invoices for tests: one month's lines as CUR 2.0 (Parquet, gzip CSV) and as
AWS's FOCUS 1.0 export, written in the Data Exports delivery layout.

The month (2026-10) has Data API lines in two regions, a credit, an EDP discount, Savings
Plans covered usage and its negation, the service's tax without a usage type, and lines the
Data API tie-out must ignore: another RDS usage type, another product with a Data API-like
usage type, and September's Data API lines. Its figures (checked by hand):

    us-east-1  40 requests  usage 0.70 + 0.35 + 0.0000035, EDP -0.03, credit -0.25 = 0.7700035
    eu-west-1  20 requests  usage 1.11 + 0.74, Savings Plans negation -1.11        = 0.74
    month      60 requests  net 1.5100035 -> 1.51
    RDS net 15.100035 (13.5900315 of Aurora Serverless v2): the Data API's share 1/10 of the
    service's 0.40 tax = 0.04; with tax 1.5500035 -> 1.55
"""

from __future__ import annotations

import gzip
import io
import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import polars as pl

from metering.schemas import InvoiceRegion

DATA_API = "Aurora:DataAPIRequests"

# billing period, product, usage type, line type, usage amount, unblended cost, region
CUR_LINES: list[tuple[str, str, str, str, float, float, str]] = [
    ("2026-10", "AmazonRDS", f"USE1-{DATA_API}", "Usage", 20.0, 0.70, "us-east-1"),
    ("2026-10", "AmazonRDS", f"USE1-{DATA_API}", "Usage", 10.0, 0.35, "us-east-1"),
    ("2026-10", "AmazonRDS", f"USE1-{DATA_API}", "Usage", 10.0, 0.0000035, "us-east-1"),
    ("2026-10", "AmazonRDS", f"USE1-{DATA_API}", "EdpDiscount", 0.0, -0.03, "us-east-1"),
    ("2026-10", "AmazonRDS", f"USE1-{DATA_API}", "Credit", 0.0, -0.25, "us-east-1"),
    ("2026-10", "AmazonRDS", f"EU-{DATA_API}", "SavingsPlanCoveredUsage", 12.0, 1.11, "eu-west-1"),
    ("2026-10", "AmazonRDS", f"EU-{DATA_API}", "SavingsPlanNegation", 12.0, -1.11, "eu-west-1"),
    ("2026-10", "AmazonRDS", f"EU-{DATA_API}", "Usage", 8.0, 0.74, "eu-west-1"),
    ("2026-10", "AmazonRDS", "", "Tax", 0.0, 0.40, ""),
    (
        "2026-10",
        "AmazonRDS",
        "USE1-Aurora:ServerlessV2Usage",
        "Usage",
        100.0,
        13.5900315,
        "us-east-1",
    ),
    ("2026-10", "AWSAppSync", "USE1-DataAPI-Requests", "Usage", 1000.0, 4.0, "us-east-1"),
    ("2026-09", "AmazonRDS", f"USE1-{DATA_API}", "Usage", 999.0, 9.99, "us-east-1"),
]

# The same month in AWS's FOCUS 1.0 export: BilledCost is what is paid, so the EDP discount
# is in the usage line's cost and Savings Plans covered usage costs 0 (no negation line).
# charge category, x_ServiceCode, x_UsageType, consumed quantity, billed cost, region, period
FOCUS_LINES: list[tuple[str, str, str, float, float, str, str]] = [
    ("Usage", "AmazonRDS", f"USE1-{DATA_API}", 20.0, 0.67, "us-east-1", "2026-10"),
    ("Usage", "AmazonRDS", f"USE1-{DATA_API}", 10.0, 0.35, "us-east-1", "2026-10"),
    ("Usage", "AmazonRDS", f"USE1-{DATA_API}", 10.0, 0.0000035, "us-east-1", "2026-10"),
    ("Credit", "AmazonRDS", f"USE1-{DATA_API}", 0.0, -0.25, "us-east-1", "2026-10"),
    ("Usage", "AmazonRDS", f"EU-{DATA_API}", 12.0, 0.0, "eu-west-1", "2026-10"),
    ("Usage", "AmazonRDS", f"EU-{DATA_API}", 8.0, 0.74, "eu-west-1", "2026-10"),
    ("Tax", "AmazonRDS", "", 0.0, 0.40, "", "2026-10"),
    (
        "Usage",
        "AmazonRDS",
        "USE1-Aurora:ServerlessV2Usage",
        100.0,
        13.5900315,
        "us-east-1",
        "2026-10",
    ),
    ("Usage", "AWSAppSync", "USE1-DataAPI-Requests", 1000.0, 4.0, "us-east-1", "2026-10"),
    ("Usage", "AmazonRDS", f"USE1-{DATA_API}", 999.0, 9.99, "us-east-1", "2026-09"),
]
SERVICE_NAMES = {"AmazonRDS": "Amazon Relational Database Service", "AWSAppSync": "AWS AppSync"}


def _start(period: str) -> datetime:
    year, month = map(int, period.split("-"))
    return datetime(year, month, 1)


def cur_frame(
    lines: list[tuple[str, str, str, str, float, float, str]] = CUR_LINES,
) -> pl.DataFrame:
    """CUR 2.0 columns as Data Exports types them (costs DOUBLE, dates TIMESTAMP)."""
    n = len(lines)
    return pl.DataFrame(
        {
            "bill_bill_type": ["Anniversary"] * n,
            "bill_billing_period_start_date": [_start(line[0]) for line in lines],
            "bill_payer_account_id": ["123456789012"] * n,
            "identity_line_item_id": [f"id{i:04d}" for i in range(n)],
            "line_item_line_item_type": [line[3] for line in lines],
            "line_item_product_code": [line[1] for line in lines],
            "line_item_usage_type": [line[2] for line in lines],
            "line_item_operation": ["" if line[3] == "Tax" else "DataAPI" for line in lines],
            "line_item_usage_amount": [line[4] for line in lines],
            "line_item_unblended_cost": [line[5] for line in lines],
            "line_item_net_unblended_cost": [line[5] for line in lines],
            "line_item_currency_code": ["USD"] * n,
            "product_region_code": [line[6] for line in lines],
        },
        schema_overrides={"bill_billing_period_start_date": pl.Datetime("ms")},
    )


def focus_frame() -> pl.DataFrame:
    """AWS's FOCUS 1.0 export (with AWS columns) of the same month."""
    lines = FOCUS_LINES
    n = len(lines)
    return pl.DataFrame(
        {
            "BilledCost": [line[4] for line in lines],
            "BillingAccountId": ["123456789012"] * n,
            "BillingCurrency": ["USD"] * n,
            "BillingPeriodStart": [_start(line[6]) for line in lines],
            "ChargeCategory": [line[0] for line in lines],
            "ChargeClass": [None] * n,
            "ConsumedQuantity": [line[3] for line in lines],
            "ConsumedUnit": ["Requests"] * n,
            "EffectiveCost": [line[4] for line in lines],
            "RegionId": [line[5] or None for line in lines],
            "ServiceName": [SERVICE_NAMES[line[1]] for line in lines],
            "x_ServiceCode": [line[1] for line in lines],
            "x_UsageType": [line[2] or None for line in lines],
        },
        schema_overrides={"BillingPeriodStart": pl.Datetime("ms", "UTC")},
    )


def _csv_gz(frame: pl.DataFrame) -> bytes:
    """As Data Exports writes gzip CSV: a header row, dates ISO-8601, costs as decimals."""
    out = io.BytesIO()
    frame.write_csv(out, datetime_format="%Y-%m-%dT%H:%M:%S%.3fZ")
    return gzip.compress(out.getvalue(), mtime=0)


def write_export(
    root: Path,
    frame: pl.DataFrame,
    form: str = "parquet",
    name: str = "cur2",
    month: str = "2026-10",
    manifest: bool = True,
    parts: int = 2,
) -> list[Path]:
    """``frame`` as one export under ``root``: ``<name>/data/BILLING_PERIOD=<month>/`` in
    ``parts`` files (``form``: parquet or csv.gz) and, when asked, its manifest; returns the
    data files."""
    folder = root / name / "data" / f"BILLING_PERIOD={month}"
    folder.mkdir(parents=True, exist_ok=True)
    size = -(-frame.height // parts)
    files = []
    for part in range(parts):
        chunk = frame.slice(part * size, size)
        if form == "parquet":
            path = folder / f"{name}-{part + 1:05d}.snappy.parquet"
            chunk.write_parquet(path)
        else:
            path = folder / f"{name}-{part + 1:05d}.csv.gz"
            path.write_bytes(_csv_gz(chunk))
        files.append(path)
    if manifest:
        meta = root / name / "metadata" / f"BILLING_PERIOD={month}"
        meta.mkdir(parents=True, exist_ok=True)
        body = {
            "executionId": "00000000-0000-0000-0000-000000000001",
            "exportArn": f"arn:aws:bcm-data-exports:us-east-1:123456789012:export/{name}-x",
            "columns": [{"name": c, "type": "string"} for c in frame.columns],
            "dataFiles": [
                f"s3://cur-bucket/exports/{name}/data/BILLING_PERIOD={month}/{p.name}"
                for p in files
            ],
        }
        (meta / f"{name}-Manifest.json").write_text(json.dumps(body))
    return files


def write_month(
    folder: Path,
    invoice: str = "",
    form: str = "parquet",
    format: str = "cur2",
    extra_calls: int = 0,
) -> Path:
    """A month to bill in ``folder``: 60 one-unit calls (acme 30, globex 20, initech 10) in
    a metering-record export, the hand-built invoice in ``cur/`` and a meter.toml whose
    ``[invoice]`` table has ``invoice`` besides its uris and format; returns the config."""
    from tests.helpers import export_records, record, write_config

    tenants = ["acme"] * 30 + ["globex"] * 20 + ["initech"] * (10 + extra_calls)
    rows = [
        record(f"r{i:03d}", tenant, f"2026-10-{i % 28 + 1:02d}T08:{i % 60:02d}:00.000Z")
        for i, tenant in enumerate(tenants)
    ]
    export_records(folder / "dynamodb", rows)
    write_export(folder / "cur", cur_frame() if format == "cur2" else focus_frame(), form)
    body = f'\n[invoice]\nuris = ["cur"]\nformat = "{format}"\n{invoice}'
    return write_config(folder, body)


# The month of write_month as the reader sums it from CUR 2.0, per region.
CUR_REGIONS = {
    "eu-west-1": InvoiceRegion(
        requests=Decimal(20),
        usage_cost=Decimal("1.85"),
        savings_plan_negation=Decimal("-1.11"),
        lines=3,
    ),
    "us-east-1": InvoiceRegion(
        requests=Decimal(40),
        usage_cost=Decimal("1.0500035"),
        credits=Decimal("-0.25"),
        discounts=Decimal("-0.03"),
        lines=5,
    ),
}


# -- shared costs (SPEC 8): ACU, I/O and storage lines of the tenants' clusters -----------

ALPHA = "arn:aws:rds:us-east-1:123456789012:cluster:alpha"
BETA = "arn:aws:rds:us-east-1:123456789012:cluster:beta"
GAMMA = "arn:aws:rds:us-east-1:123456789012:cluster:gamma"  # no call of the month
ACU = "USE1-Aurora:ServerlessV2Usage"
IO = "USE1-Aurora:StorageIOUsage"
STORAGE = "USE1-Aurora:StorageUsage"

# The month's calls: (tenant, cluster, day, request bytes) of 1-unit calls but globex's
# 40,000-byte one (2 units). Units per cluster and day (what aurora_compute splits by):
#   alpha  10-01 acme 3, globex 1; 10-02 acme 1, globex 2; month acme 4, globex 3
#   beta   10-01 initech 2;        10-02 initech 1, acme 1; month initech 3, acme 1
# and a call of globex that names no cluster (10-03).
SHARED_CALLS: list[tuple[str, str | None, int, int]] = [
    *[("acme", ALPHA, 1, 100)] * 3,
    ("globex", ALPHA, 1, 100),
    ("acme", ALPHA, 2, 100),
    ("globex", ALPHA, 2, 40000),
    *[("initech", BETA, 1, 100)] * 2,
    ("initech", BETA, 2, 100),
    ("acme", BETA, 2, 100),
    ("globex", None, 3, 100),
]

# usage type, line type, resource, start, end, usage amount, unblended cost. Hours and
# days are split by that day's driver (alpha has no call on 10-03: by its month's); the
# monthly lines (start 10-01, end 11-01) by the month's.
SHARED_LINES: list[tuple[str, str, str, str, str, float, float]] = [
    ("USE1-Aurora:DataAPIRequests", "Usage", ALPHA, "10-01", "11-01", 12.0, 1.00),
    (ACU, "Usage", ALPHA, "10-01T00", "10-01T01", 1.0, 2.50),
    (ACU, "Usage", ALPHA, "10-01T01", "10-01T02", 1.0, 1.50),
    (ACU, "Usage", ALPHA, "10-02", "10-03", 4.0, 3.00),
    (ACU, "Usage", ALPHA, "10-03", "10-04", 1.0, 0.50),
    (ACU, "Credit", ALPHA, "10-01", "11-01", 0.0, -0.40),
    (ACU, "Usage", BETA, "10-01", "10-02", 1.0, 1.00),
    (ACU, "Usage", BETA, "10-02", "10-03", 2.0, 2.00),
    (ACU, "Usage", GAMMA, "10-02", "10-03", 9.0, 9.99),  # no call: not the tenants' cluster
    (IO, "Usage", ALPHA, "10-01", "11-01", 1e5, 0.10),
    (IO, "Usage", BETA, "10-01", "11-01", 2e5, 0.20),
    (STORAGE, "Usage", ALPHA, "10-01", "11-01", 10.0, 1.00),
    (STORAGE, "Usage", BETA, "10-01", "11-01", 10.0, 1.00),
    (STORAGE, "Usage", GAMMA, "10-01", "11-01", 7.0, 0.70),  # listed, no call: unallocated
    (STORAGE, "Usage", "", "10-01", "11-01", 0.5, 0.05),  # names no resource: unallocated
]

SHARED_COSTS = f"""
[[shared_costs]]
name = "aurora_compute"
usage_types = ["%Aurora:ServerlessV2Usage%"]
driver = "units"

[[shared_costs]]
name = "aurora_io"
usage_types = ["%StorageIOUsage%"]
driver = "calls"

[[shared_costs]]
name = "aurora_storage"
usage_types = ["%Aurora:StorageUsage%"]
clusters = ["{ALPHA}", "{BETA}", "{GAMMA}"]
driver = "bytes"
"""


def _moment(text: str) -> datetime:
    month, _, rest = text.partition("-")
    day, _, hour = rest.partition("T")
    if month == "11":
        return datetime(2026, 11, 1)
    return datetime(2026, int(month), int(day), int(hour or 0))


def shared_frame(
    format: str = "cur2", currency: str = "USD", scale: Decimal = Decimal(1)
) -> pl.DataFrame:
    """SHARED_LINES as CUR 2.0 (or AWS's FOCUS 1.0 export) columns and types, their costs
    times ``scale`` in ``currency``."""
    lines = [(*line[:6], float(Decimal(str(line[6])) * scale)) for line in SHARED_LINES]
    n = len(lines)
    if format == "focus":
        return pl.DataFrame(
            {
                "BilledCost": [line[6] for line in lines],
                "BillingCurrency": [currency] * n,
                "BillingPeriodStart": [datetime(2026, 10, 1)] * n,
                "ChargeCategory": [line[1] for line in lines],
                "ChargePeriodStart": [_moment(line[3]) for line in lines],
                "ChargePeriodEnd": [_moment(line[4]) for line in lines],
                "ConsumedQuantity": [line[5] for line in lines],
                "RegionId": ["us-east-1"] * n,
                "ResourceId": [line[2] or None for line in lines],
                "ServiceName": ["Amazon Relational Database Service"] * n,
                "x_ServiceCode": ["AmazonRDS"] * n,
                "x_UsageType": [line[0] for line in lines],
            },
            schema_overrides={
                c: pl.Datetime("ms", "UTC")
                for c in ("BillingPeriodStart", "ChargePeriodStart", "ChargePeriodEnd")
            },
        )
    return pl.DataFrame(
        {
            "bill_billing_period_start_date": [datetime(2026, 10, 1)] * n,
            "line_item_line_item_type": [line[1] for line in lines],
            "line_item_product_code": ["AmazonRDS"] * n,
            "line_item_usage_type": [line[0] for line in lines],
            "line_item_resource_id": [line[2] for line in lines],
            "line_item_usage_start_date": [_moment(line[3]) for line in lines],
            "line_item_usage_end_date": [_moment(line[4]) for line in lines],
            "line_item_usage_amount": [line[5] for line in lines],
            "line_item_unblended_cost": [line[6] for line in lines],
            "line_item_currency_code": [currency] * n,
            "product_region_code": ["us-east-1"] * n,
        },
        schema_overrides={
            c: pl.Datetime("ms")
            for c in (
                "bill_billing_period_start_date",
                "line_item_usage_start_date",
                "line_item_usage_end_date",
            )
        },
    )


def write_shared_month(
    folder: Path,
    form: str = "parquet",
    format: str = "cur2",
    body: str = SHARED_COSTS,
    currency: str = "USD",
    scale: Decimal = Decimal(1),
) -> Path:
    """SHARED_CALLS as metering records and SHARED_LINES as the month's export in ``folder``
    (their costs times ``scale``, in ``currency``: [pricing] currency), with a meter.toml
    that splits the invoiced Data API cost (1.00 times ``scale``) and ``body``'s shared
    costs; returns the config."""
    from tests.helpers import export_records, record, write_config

    rows = [
        {
            **record(
                f"r{i:03d}", tenant, f"2026-10-{day:02d}T08:{i:02d}:00.000Z", req=req, resp=100
            ),
            "resource_arn": cluster,
        }
        for i, (tenant, cluster, day, req) in enumerate(SHARED_CALLS)
    ]
    export_records(folder / "dynamodb", rows)
    write_export(folder / "cur", shared_frame(format, currency, scale), form, parts=1)
    invoice = f'[invoice]\nuris = ["cur"]\nformat = "{format}"\nallocate = "invoice"\n'
    pricing = f'[pricing]\ncurrency = "{currency}"\n' if currency != "USD" else ""
    return write_config(folder, f"\n{pricing}{invoice}{body}")
