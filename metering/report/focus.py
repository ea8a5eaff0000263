"""The FinOps FOCUS export (``meter export --format focus``): one row per tenant line.

Columns follow the FOCUS 1.0 specification (https://focus.finops.org): every column the
spec marks *Mandatory*, plus the *Conditional* and *Recommended* ones this product can
fill (ChargeFrequency, ConsumedQuantity/ConsumedUnit, SubAccountId/SubAccountName), plus
``x_``-prefixed custom columns. How the columns are filled:

- one tenant line is one charge: ``SubAccountId`` is the tenant, the charge period is the
  whole billing month (UTC, ``[start, end)``);
- ``BilledCost`` is the line's rounded amount; it sums exactly to the month's total.
  ``EffectiveCost``, ``ListCost`` and ``ContractedCost`` are the same amount: the
  chargeback applies no discounts or commitments of its own, and the account's tiered
  price is already in the blended rate. Unit-price columns are left out (conditional in
  FOCUS): the blended per-unit rate is rarely a terminating decimal, and FOCUS requires
  ``UnitPrice x PricingQuantity == Cost`` exactly;
- ``ConsumedQuantity`` counts Data API requests (calls); ``PricingQuantity`` counts the
  billed request units (one per started block of ``block_bytes``, 32 KiB by default).

Rows are sorted by tenant; the same warehouse gives the same bytes. Text cells that a
spreadsheet would run as a formula are neutralised like the finance CSV's.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

import polars as pl

from metering.rate.money import amount_text
from metering.report.finance import csv_bytes, neutralise
from metering.schemas import UNATTRIBUTED

__all__ = ["FOCUS_COLUMNS", "FOCUS_VERSION", "X_COLUMNS", "focus_csv"]

FOCUS_VERSION = "1.0"

# FOCUS columns, in the spec's (alphabetical) order.
FOCUS_COLUMNS = (
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "ServiceCategory",
    "ServiceName",
    "SubAccountId",
    "SubAccountName",
)
# Custom columns (FOCUS: custom columns start with ``x_``).
X_COLUMNS = (
    "x_Attribution",
    "x_BilledUnits",
    "x_BillingMonth",
    "x_Calls",
    "x_CostCenter",
    "x_CostExact",
    "x_RequestBytes",
    "x_ResponseBytes",
    "x_RunId",
    "x_SharePct",
    "x_SizeEstimatedCalls",
    "x_TenantId",
    "x_TenantName",
)

PROVIDER = "AWS"
SERVICE_NAME = "Amazon RDS Data API"
SERVICE_CATEGORY = "Databases"
CONSUMED_UNIT = "Requests"
PRICING_UNIT = "Request Units"
DEFAULT_BILLING_ACCOUNT = ("rds-data-api", "RDS Data API tenant chargeback")


def _timestamp(moment: datetime) -> str:
    """FOCUS date/time format: ISO 8601 in UTC, ``YYYY-MM-DDTHH:MM:SSZ``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pct(share: Decimal) -> str:
    return str((Decimal(share) * 100).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def _block(block_bytes: int) -> str:
    return f"{block_bytes // 1024} KiB" if block_bytes % 1024 == 0 else f"{block_bytes} byte"


def _attribution(frame: pl.DataFrame) -> dict[str, str]:
    """``rule=calls`` pairs per tenant, by rule name: ``metering_record=95;principal=5``."""
    out: dict[str, list[str]] = {}
    for row in frame.sort("tenant_id", "attribution").iter_rows(named=True):
        out.setdefault(row["tenant_id"], []).append(f"{row['attribution']}={row['calls']}")
    return {tenant: ";".join(parts) for tenant, parts in out.items()}


def focus_csv(
    tenant_month: pl.DataFrame,
    attribution: pl.DataFrame,
    period: tuple[datetime, datetime],
    block_bytes: int = 32768,
    billing_account: tuple[str, str] = DEFAULT_BILLING_ACCOUNT,
) -> bytes:
    """The FOCUS CSV bytes of a month.

    ``tenant_month``: the month's ``tenant_month`` rows; ``attribution``: calls per tenant
    and winning rule (``tenant_id, attribution, calls``); ``period``: the billing month's
    first instant and the next month's (UTC); ``billing_account``: (id, name).
    """
    start, end = (_timestamp(moment) for moment in period)
    rules = _attribution(attribution)
    account_id, account_name = billing_account
    block = _block(block_bytes)
    lines: list[Iterable[object]] = [FOCUS_COLUMNS + X_COLUMNS]
    for row in tenant_month.sort("tenant_id").iter_rows(named=True):
        tenant = row["tenant_id"]
        amount = amount_text(row["amount"], row["currency"])
        who = "not attributed to a tenant" if tenant == UNATTRIBUTED else f"of tenant {tenant}"
        description = f"RDS Data API requests {who}, billed in {block} request units"
        focus = {
            "BilledCost": amount,
            "BillingAccountId": neutralise(account_id),
            "BillingAccountName": neutralise(account_name),
            "BillingCurrency": row["currency"],
            "BillingPeriodEnd": end,
            "BillingPeriodStart": start,
            "ChargeCategory": "Usage",
            "ChargeClass": "",
            "ChargeDescription": neutralise(description),
            "ChargeFrequency": "Usage-Based",
            "ChargePeriodEnd": end,
            "ChargePeriodStart": start,
            "ConsumedQuantity": row["calls"],
            "ConsumedUnit": CONSUMED_UNIT,
            "ContractedCost": amount,
            "EffectiveCost": amount,
            "InvoiceIssuerName": PROVIDER,
            "ListCost": amount,
            "PricingQuantity": row["units"],
            "PricingUnit": PRICING_UNIT,
            "ProviderName": PROVIDER,
            "PublisherName": PROVIDER,
            "ServiceCategory": SERVICE_CATEGORY,
            "ServiceName": SERVICE_NAME,
            "SubAccountId": neutralise(tenant),
            "SubAccountName": neutralise(row["tenant_name"]),
            "x_Attribution": rules.get(tenant, ""),
            "x_BilledUnits": row["units"],
            "x_BillingMonth": row["month"],
            "x_Calls": row["calls"],
            "x_CostCenter": neutralise(row["cost_center"]),
            "x_CostExact": str(row["cost_exact"]),
            "x_RequestBytes": row["request_bytes"],
            "x_ResponseBytes": row["response_bytes"],
            "x_RunId": row["run_id"],
            "x_SharePct": _pct(row["share"]),
            "x_SizeEstimatedCalls": row["size_estimated_calls"],
            "x_TenantId": neutralise(tenant),
            "x_TenantName": neutralise(row["tenant_name"]),
        }
        lines.append([focus[c] for c in FOCUS_COLUMNS + X_COLUMNS])
    return csv_bytes(lines)
