"""The FinOps FOCUS export (``meter export --format focus``): the month's allocation, as
FOCUS 1.2 rows, one per tenant charge (the Data API's line and each shared cost's share).

FOCUS 1.2 is the latest released version of the specification (FOCUS_Spec, tag v1.2,
7296e3146fb931ee32b6496fa6e4200e7f4384f7; tests/report/focus_1_2_columns.json pins its
column definitions). It has no allocation columns (the Allocated* columns are in the
drafts after it), so the rows say what they are with the columns it has:

- they are an allocation of AWS's invoice, never a second invoice: ``BilledCost`` is 0
  (the payable amount is on AWS's invoice, in AWS's own rows; FOCUS: "the sum of the
  BilledCost for a given InvoiceId MUST match ... the invoice"), ``InvoiceId`` is empty,
  and the invoice issuer and billing account are the chargeback's, not AWS's. A FinOps tool
  that sums BilledCost over AWS's FOCUS export and this one gets AWS's invoice, once;
- the tenant's allocated amount is ``EffectiveCost`` and ``ContractedCost`` (they sum to
  what meter allocated); ``ChargeCategory`` is ``Usage`` (the tenant's use of the
  service), ``ChargeClass`` empty (not a correction of an earlier period);
- the tenant is in ``Tags`` (``meter/tenant_id``, ``meter/charge``, ...) and in ``x_``
  columns; ``ProviderName``/``PublisherName`` stay ``AWS``, whose resources they are;
- ``ResourceId``/``ResourceType``/``RegionId``: the cluster of the tenant's charge when
  its calls were on one cluster (``x_Clusters`` lists them all);
- ``PricingCategory`` is ``Standard``; the Data API's ``ListUnitPrice`` is the first
  tier's price of one request unit and ``ListCost`` = ``ListUnitPrice x PricingQuantity``
  exactly; a shared cost's row is one allocated share (``PricingQuantity`` 1, unit price
  and list cost its amount).

Rows are sorted by tenant and charge; the same warehouse gives the same bytes. Text cells
that a spreadsheet would run as a formula are neutralised like the finance CSV's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

import polars as pl

from metering.config import DATA_API_CHARGE
from metering.rate.money import amount_text, shown_places
from metering.rate.shared import data_api_charge
from metering.report.finance import csv_bytes, neutralise
from metering.schemas import UNATTRIBUTED

__all__ = ["FOCUS_COLUMNS", "FOCUS_VERSION", "X_COLUMNS", "focus_csv"]

FOCUS_VERSION = "1.2"

# FOCUS columns, in the spec's (alphabetical) order: every Mandatory one, and the
# Conditional and Recommended ones this export fills.
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
    "InvoiceId",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "ResourceId",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "ServiceSubcategory",
    "Tags",
)
# Custom columns (FOCUS: custom columns start with ``x_``).
X_COLUMNS = (
    "x_AllocatedCost",
    "x_AllocationMethod",
    "x_Attribution",
    "x_BilledUnits",
    "x_BillingMonth",
    "x_Calls",
    "x_Charge",
    "x_Clusters",
    "x_CostCenter",
    "x_CostExact",
    "x_DriverQuantity",
    "x_RequestBytes",
    "x_ResponseBytes",
    "x_RunId",
    "x_SharePct",
    "x_SizeEstimatedCalls",
    "x_TenantId",
    "x_TenantName",
)

PROVIDER = "AWS"
ISSUER = "Internal chargeback (meter): an allocation, not an invoice"
SERVICE_NAMES = {DATA_API_CHARGE: "Amazon RDS Data API"}
SHARED_SERVICE = "Amazon Aurora"
SERVICE_CATEGORY = "Databases"
SERVICE_SUBCATEGORY = "Relational Databases"
RESOURCE_TYPE = "Aurora DB Cluster"
CONSUMED_UNITS = {"units": "Request Units", "calls": "Requests", "bytes": "Bytes"}
PRICING_UNIT = "Request Units"
SHARE_UNIT = "Allocated Shares"
TAG_PREFIX = "meter/"
DEFAULT_BILLING_ACCOUNT = ("meter-allocation", "RDS Data API tenant allocation (meter)")


def _timestamp(moment: datetime) -> str:
    """FOCUS date/time format: ISO 8601 in UTC, ``YYYY-MM-DDTHH:MM:SSZ``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pct(share: Decimal) -> str:
    return str((Decimal(share) * 100).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def _plain(value: Decimal, places: int) -> str:
    """A decimal in FOCUS's numeric format: no exponent, no trailing zeros past the
    currency's minor unit (``places`` decimals: 2 for USD, none for JPY, 3 for KWD)."""
    whole, _, decimals = format(value, "f").partition(".")
    decimals = decimals.rstrip("0").ljust(places, "0")
    return f"{whole}.{decimals}" if decimals else whole


def _block(block_bytes: int) -> str:
    return f"{block_bytes // 1024} KiB" if block_bytes % 1024 == 0 else f"{block_bytes} byte"


def _attribution(frame: pl.DataFrame) -> dict[str, str]:
    """``rule=calls`` pairs per tenant, by rule name: ``metering_record=95;principal=5``."""
    out: dict[str, list[str]] = {}
    for row in frame.sort("tenant_id", "attribution").iter_rows(named=True):
        out.setdefault(row["tenant_id"], []).append(f"{row['attribution']}={row['calls']}")
    return {tenant: ";".join(parts) for tenant, parts in out.items()}


def _charges(tenant_month: pl.DataFrame, charges: pl.DataFrame | None) -> list[dict[str, object]]:
    """The month's charges by tenant and charge; a month billed before meter kept charges
    has its Data API lines only."""
    if charges is not None and charges.height:
        return charges.sort("tenant_id", "charge").to_dicts()
    return [
        {**data_api_charge(row), "currency": row["currency"]}
        for row in tenant_month.sort("tenant_id").iter_rows(named=True)
    ]


def _cluster(clusters: str) -> tuple[str, str]:
    """The charge's cluster and its region when it is on one cluster, else empty (null)."""
    arns = [arn for arn in clusters.split(",") if arn]
    regions = {arn.split(":")[3] for arn in arns if arn.count(":") >= 5}
    region = regions.pop() if len(regions) == 1 else ""
    return (arns[0] if len(arns) == 1 else ""), region


def focus_csv(
    tenant_month: pl.DataFrame,
    attribution: pl.DataFrame,
    period: tuple[datetime, datetime],
    block_bytes: int = 32768,
    billing_account: tuple[str, str] = DEFAULT_BILLING_ACCOUNT,
    charges: pl.DataFrame | None = None,
    unit_price: Decimal = Decimal("0.00000035"),
) -> bytes:
    """The FOCUS CSV bytes of a month.

    ``tenant_month``: the month's ``tenant_month`` rows; ``attribution``: calls per tenant
    and winning rule (``tenant_id, attribution, calls``); ``period``: the billing month's
    first instant and the next month's (UTC); ``billing_account``: (id, name);
    ``charges``: the month's ``tenant_charges`` rows (None or empty: its Data API lines);
    ``unit_price``: the list price of one request unit (the first tier's).
    """
    start, end = (_timestamp(moment) for moment in period)
    rules = _attribution(attribution)
    account_id, account_name = billing_account
    block = _block(block_bytes)
    lines_of = {row["tenant_id"]: row for row in tenant_month.iter_rows(named=True)}
    lines: list[Iterable[object]] = [FOCUS_COLUMNS + X_COLUMNS]
    for charge in _charges(tenant_month, charges):
        tenant, name = str(charge["tenant_id"]), str(charge["charge"])
        row = lines_of.get(tenant, {})
        currency = str(charge["currency"])
        places = shown_places(currency)
        amount = amount_text(Decimal(str(charge["amount"])), currency)
        data_api = name == DATA_API_CHARGE
        who = "not attributed to a tenant" if tenant == UNATTRIBUTED else f"of tenant {tenant}"
        driver = str(charge["driver"])
        if data_api:
            description = (
                f"RDS Data API requests {who}, billed in {block} request units: an "
                "allocation of AWS's invoice, not an invoice line"
            )
            quantity = Decimal(int(str(charge["quantity"])))
            price = unit_price
            list_cost = _plain(price * quantity, places)
            pricing_unit = PRICING_UNIT
        else:
            description = (
                f"Share {who} of the Aurora cost {name}, split by {driver}: an allocation of "
                "AWS's invoice, not an invoice line"
            )
            quantity, price, list_cost = Decimal(1), Decimal(amount), amount
            pricing_unit = SHARE_UNIT
        resource, region = _cluster(str(charge["clusters"]))
        tags = {
            f"{TAG_PREFIX}tenant_id": tenant,
            f"{TAG_PREFIX}tenant_name": row.get("tenant_name", ""),
            f"{TAG_PREFIX}cost_center": row.get("cost_center", ""),
            f"{TAG_PREFIX}charge": name,
        }
        focus = {
            "BilledCost": amount_text(Decimal(0), currency),
            "BillingAccountId": neutralise(account_id),
            "BillingAccountName": neutralise(account_name),
            "BillingCurrency": currency,
            "BillingPeriodEnd": end,
            "BillingPeriodStart": start,
            "ChargeCategory": "Usage",
            "ChargeClass": "",
            "ChargeDescription": neutralise(description),
            "ChargeFrequency": "Usage-Based",
            "ChargePeriodEnd": end,
            "ChargePeriodStart": start,
            "ConsumedQuantity": charge["quantity"],
            "ConsumedUnit": CONSUMED_UNITS[driver],
            "ContractedCost": amount,
            "EffectiveCost": amount,
            "InvoiceId": "",
            "InvoiceIssuerName": ISSUER,
            "ListCost": list_cost,
            "ListUnitPrice": _plain(price, places),
            "PricingCategory": "Standard",
            "PricingQuantity": quantity,
            "PricingUnit": pricing_unit,
            "ProviderName": PROVIDER,
            "PublisherName": PROVIDER,
            "RegionId": region,
            "ResourceId": resource,
            "ResourceType": RESOURCE_TYPE if resource else "",
            "ServiceCategory": SERVICE_CATEGORY,
            "ServiceName": SERVICE_NAMES.get(name, SHARED_SERVICE),
            "ServiceSubcategory": SERVICE_SUBCATEGORY,
            "Tags": neutralise(json.dumps(tags, ensure_ascii=False, separators=(",", ":"))),
            "x_AllocatedCost": amount,
            "x_AllocationMethod": f"meter:{driver}",
            "x_Attribution": rules.get(tenant, ""),
            "x_BilledUnits": row.get("units", ""),
            "x_BillingMonth": row.get("month", ""),
            "x_Calls": row.get("calls", ""),
            "x_Charge": name,
            "x_Clusters": neutralise(str(charge["clusters"])),
            "x_CostCenter": neutralise(str(row.get("cost_center", ""))),
            "x_CostExact": str(charge["cost_exact"]),
            "x_DriverQuantity": charge["quantity"],
            "x_RequestBytes": row.get("request_bytes", ""),
            "x_ResponseBytes": row.get("response_bytes", ""),
            "x_RunId": row.get("run_id", ""),
            "x_SharePct": _pct(Decimal(str(charge["share"]))),
            "x_SizeEstimatedCalls": row.get("size_estimated_calls", ""),
            "x_TenantId": neutralise(tenant),
            "x_TenantName": neutralise(str(row.get("tenant_name", ""))),
        }
        lines.append([focus[c] for c in FOCUS_COLUMNS + X_COLUMNS])
    return csv_bytes(lines)
