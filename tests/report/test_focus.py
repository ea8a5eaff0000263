"""The FinOps FOCUS export: column set against the spec, values, golden bytes (each row
against FOCUS 1.2's column definitions: test_focus_spec.py)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl

from metering.config import Config
from metering.outputs import export
from metering.pipeline import bill
from metering.report import FOCUS_COLUMNS, X_COLUMNS, focus_csv, neutralise
from tests.helpers import assert_golden, csv_rows
from tests.report.conftest import OCT, hostile_lines, read_back

# The FinOps Foundation's column definitions of FOCUS 1.2 (the latest released version),
# pinned: built from FOCUS_Spec's specification/columns/*.md at tag v1.2 (the commit is in
# the file). test_focus_spec.py checks every row against them.
SPEC = json.loads((Path(__file__).parent / "focus_1_2_columns.json").read_text())


def test_the_column_set_is_pinned() -> None:
    assert FOCUS_COLUMNS == (
        "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
        "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass",
        "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart",
        "ConsumedQuantity", "ConsumedUnit", "ContractedCost", "EffectiveCost", "InvoiceId",
        "InvoiceIssuerName", "ListCost", "ListUnitPrice", "PricingCategory", "PricingQuantity",
        "PricingUnit", "ProviderName", "PublisherName", "RegionId", "ResourceId", "ResourceType",
        "ServiceCategory", "ServiceName", "ServiceSubcategory", "Tags",
    )  # fmt: skip
    assert X_COLUMNS == (
        "x_AllocatedCost", "x_AllocationMethod", "x_Attribution", "x_BilledUnits",
        "x_BillingMonth", "x_Calls", "x_Charge", "x_Clusters", "x_CostCenter", "x_CostExact",
        "x_DriverQuantity", "x_RequestBytes", "x_ResponseBytes", "x_RunId", "x_SharePct",
        "x_SizeEstimatedCalls", "x_TenantId", "x_TenantName",
    )  # fmt: skip


def test_columns_follow_the_spec() -> None:
    columns = SPEC["columns"]
    assert (SPEC["version"], SPEC["tag"]) == ("1.2", "v1.2")
    mandatory = {name for name, c in columns.items() if c["feature_level"] == "Mandatory"}
    assert mandatory <= set(FOCUS_COLUMNS)  # every Mandatory column, and only spec columns
    assert set(FOCUS_COLUMNS) <= set(columns)
    assert list(FOCUS_COLUMNS) == sorted(FOCUS_COLUMNS)  # the spec's alphabetical order
    for column in X_COLUMNS:  # custom columns carry the x_ prefix
        assert re.fullmatch(r"x_(?:[A-Z][a-z]+)+", column), column
    assert len(set(FOCUS_COLUMNS + X_COLUMNS)) == len(FOCUS_COLUMNS) + len(X_COLUMNS)


def test_small_month_rows(small: Config) -> None:
    rows = csv_rows(export(small, OCT, "focus"))
    assert [r["x_TenantId"] for r in rows] == ["__unattributed__", "acme", "globex"]
    assert [(r["EffectiveCost"], r["x_Calls"], r["PricingQuantity"]) for r in rows] == [
        ("0.70", "2", "2"),
        ("3.50", "10", "10"),
        ("3.85", "5", "11"),
    ]
    globex = rows[2]
    run_id = globex["x_RunId"]
    tags = {
        "meter/tenant_id": "globex",
        "meter/tenant_name": "Globex Inc.",
        "meter/cost_center": "CC-2",
        "meter/charge": "data_api",
    }
    assert globex == {
        "BilledCost": "0.00",
        "BillingAccountId": "meter-allocation",
        "BillingAccountName": "RDS Data API tenant allocation (meter)",
        "BillingCurrency": "USD",
        "BillingPeriodEnd": "2026-11-01T00:00:00Z",
        "BillingPeriodStart": "2026-10-01T00:00:00Z",
        "ChargeCategory": "Usage",
        "ChargeClass": "",
        "ChargeDescription": "RDS Data API requests of tenant globex, billed in 32 KiB request "
        "units: an allocation of AWS's invoice, not an invoice line",
        "ChargeFrequency": "Usage-Based",
        "ChargePeriodEnd": "2026-11-01T00:00:00Z",
        "ChargePeriodStart": "2026-10-01T00:00:00Z",
        "ConsumedQuantity": "11",
        "ConsumedUnit": "Request Units",
        "ContractedCost": "3.85",
        "EffectiveCost": "3.85",
        "InvoiceId": "",
        "InvoiceIssuerName": "Internal chargeback (meter): an allocation, not an invoice",
        "ListCost": "3.85",
        "ListUnitPrice": "0.35",
        "PricingCategory": "Standard",
        "PricingQuantity": "11",
        "PricingUnit": "Request Units",
        "ProviderName": "AWS",
        "PublisherName": "AWS",
        "RegionId": "",
        "ResourceId": "",
        "ResourceType": "",
        "ServiceCategory": "Databases",
        "ServiceName": "Amazon RDS Data API",
        "ServiceSubcategory": "Relational Databases",
        "Tags": json.dumps(tags, separators=(",", ":")),
        "x_AllocatedCost": "3.85",
        "x_AllocationMethod": "meter:units",
        "x_Attribution": "metering_record=5",
        "x_BilledUnits": "11",
        "x_BillingMonth": "2026-10",
        "x_Calls": "5",
        "x_Charge": "data_api",
        "x_Clusters": "",
        "x_CostCenter": "CC-2",
        "x_CostExact": "3.850000000000",
        "x_DriverQuantity": "11",
        "x_RequestBytes": "1000",
        "x_ResponseBytes": str(32769 + 36044 + 36045 + 65546 + 40000 - 1000),
        "x_RunId": run_id,
        "x_SharePct": "47.8261",
        "x_SizeEstimatedCalls": "0",
        "x_TenantId": "globex",
        "x_TenantName": "Globex Inc.",
    }
    assert rows[0]["ChargeDescription"].startswith(
        "RDS Data API requests not attributed to a tenant, billed in 32 KiB request units"
    )
    assert json.loads(rows[0]["Tags"])["meter/tenant_name"] == "Unattributed calls"
    assert run_id.startswith("2026-10-")


def test_effective_cost_sums_to_the_month_total_billed_cost_to_nothing(sample: Config) -> None:
    rows = csv_rows(export(sample, OCT, "focus"))
    con = duckdb.connect(str(sample.warehouse.path), read_only=True)
    try:
        (total,) = con.execute(
            "SELECT amount FROM bill_runs WHERE month = '2026-10' ORDER BY finished_at DESC LIMIT 1"
        ).fetchone() or (None,)
        (shared,) = con.execute(
            "SELECT sum(allocated) FROM shared_costs WHERE month = '2026-10'"
        ).fetchone() or (None,)
        (lines,) = con.execute(
            "SELECT count(*) FROM tenant_charges WHERE month = '2026-10'"
        ).fetchone() or (0,)
    finally:
        con.close()
    assert len(rows) == lines == 16  # 8 tenants, each its Data API line and its compute share
    # The Data API's lines and the sample's shared cost (Aurora capacity), to the cent.
    assert sum(Decimal(r["EffectiveCost"]) for r in rows) == total + shared
    # An allocation of AWS's invoice: beside AWS's own FOCUS rows it adds nothing billed.
    assert {r["BilledCost"] for r in rows} == {"0.00"}
    assert all(r["EffectiveCost"] == r["ContractedCost"] == r["x_AllocatedCost"] for r in rows)
    assert {r["ChargePeriodStart"] for r in rows} == {"2026-10-01T00:00:00Z"}


def test_sample_golden_and_rebilling_gives_the_same_bytes(sample: Config) -> None:
    first = export(sample, OCT, "focus")
    assert_golden("focus_2026-10.csv", first)
    bill(sample, OCT)
    assert export(sample, OCT, "focus") == first


def test_cells_a_spreadsheet_would_run_are_neutralised() -> None:
    frame = pl.DataFrame(
        {
            "month": ["2026-10"],
            "tenant_id": ["=cmd|' /C calc'!A0"],
            "tenant_name": ["@evil"],
            "cost_center": ["+1"],
            "calls": [1],
            "units": [2],
            "request_bytes": [3],
            "response_bytes": [4],
            "cost_exact": pl.Series([Decimal("0.5")], dtype=pl.Decimal(38, 12)),
            "amount": pl.Series([Decimal("0.5")], dtype=pl.Decimal(18, 2)),
            "currency": ["EUR"],
            "share": pl.Series([Decimal(1)], dtype=pl.Decimal(18, 12)),
            "run_id": ["r"],
            "size_estimated_calls": [1],
        }
    )
    attribution = pl.DataFrame(
        {
            "tenant_id": ["=cmd|' /C calc'!A0"] * 2,
            "attribution": ["principal", "metering_record"],
            "calls": [1, 0],
        }
    )
    period = (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))
    (row,) = csv_rows(focus_csv(frame, attribution, period, block_bytes=4096))
    assert row["x_TenantId"] == "'=cmd|' /C calc'!A0"
    assert json.loads(row["Tags"])["meter/tenant_id"] == "=cmd|' /C calc'!A0"  # (a { first)
    assert row["x_TenantName"] == "'@evil"
    assert row["x_CostCenter"] == "'+1"
    assert row["EffectiveCost"] == "0.50"
    assert row["BillingCurrency"] == "EUR"
    assert row["x_Attribution"] == "metering_record=0;principal=1"
    assert "billed in 4 KiB request units: an allocation" in row["ChargeDescription"]


def test_any_text_round_trips_through_two_csv_readers() -> None:
    lines = hostile_lines().sort("tenant_id")
    attribution = pl.DataFrame(
        {"tenant_id": lines["tenant_id"], "attribution": "principal", "calls": lines["calls"]}
    )
    period = (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))
    columns = list(FOCUS_COLUMNS + X_COLUMNS)
    for rows in read_back(focus_csv(lines, attribution, period)):
        assert rows[0] == columns
        assert [len(row) for row in rows] == [len(columns)] * (1 + lines.height)
        got = [dict(zip(columns, row, strict=True)) for row in rows[1:]]
        for row, tenant, name, cost_center in zip(
            got, lines["tenant_id"], lines["tenant_name"], lines["cost_center"], strict=True
        ):
            assert row["x_TenantId"] == neutralise(tenant)
            assert row["x_TenantName"] == neutralise(name)
            assert json.loads(row["Tags"])["meter/tenant_id"] == tenant
            assert row["x_CostCenter"] == neutralise(cost_center)
            assert row["ChargeDescription"].startswith(f"RDS Data API requests of tenant {tenant},")
            assert row["x_Attribution"] == "principal=1"
