"""A bill in yen (no minor unit) and in Kuwaiti dinars (3 decimals), end to end through
``meter bill --json``, ``meter report``, the finance CSV and the FOCUS CSV: every amount
with exactly its currency's decimals; and a currency ISO 4217 does not know is refused."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from tests.helpers import export_records, record, run_meter, write_config

REGISTRY = "tenant_id,tenant_name,cost_center\na,Alpha,cc-1\nb,Beta,cc-2\nc,Gamma,cc-3\n"
FINANCE_HEADER = (
    "billing_month,tenant_id,tenant_name,cost_center,calls,billed_units,request_bytes,"
    "response_bytes,amount,currency,share_pct,run_id\n"
)
FOCUS_HEADER = (
    "BilledCost,BillingAccountId,BillingAccountName,BillingCurrency,BillingPeriodEnd,"
    "BillingPeriodStart,ChargeCategory,ChargeClass,ChargeDescription,ChargeFrequency,"
    "ChargePeriodEnd,ChargePeriodStart,ConsumedQuantity,ConsumedUnit,ContractedCost,"
    "EffectiveCost,InvoiceId,InvoiceIssuerName,ListCost,ListUnitPrice,PricingCategory,"
    "PricingQuantity,PricingUnit,ProviderName,PublisherName,RegionId,ResourceId,ResourceType,"
    "ServiceCategory,ServiceName,ServiceSubcategory,Tags,x_AllocatedCost,x_AllocationMethod,"
    "x_Attribution,x_BilledUnits,x_BillingMonth,x_Calls,x_Charge,x_Clusters,x_CostCenter,"
    "x_CostExact,x_DriverQuantity,x_RequestBytes,x_ResponseBytes,x_RunId,x_SharePct,"
    "x_SizeEstimatedCalls,x_TenantId,x_TenantName\n"
)
PERIOD = "2026-11-01T00:00:00Z,2026-10-01T00:00:00Z"


def _focus_row(
    amount: str, zero: str, currency: str, tenant: str, units: int, exact: str, price: str
) -> str:
    """A FOCUS 1.2 row of one tenant of the month below (``{run}``: its run id): its Data
    API line, ``zero`` billed, ``price`` the list price of a unit (the list cost ``units``
    times it, exactly)."""
    name, center = {"a": ("Alpha", "cc-1"), "b": ("Beta", "cc-2"), "c": ("Gamma", "cc-3")}[tenant]
    share = "42.8571" if tenant == "a" else "28.5714"
    tags = (
        f'"{{{{""meter/tenant_id"":""{tenant}"",""meter/tenant_name"":""{name}"",'
        f'""meter/cost_center"":""{center}"",""meter/charge"":""data_api""}}}}"'
    )  # (braces doubled: the row is a template of {run})
    list_cost = str(Decimal(price) * units)
    return (
        f"{zero},meter-allocation,RDS Data API tenant allocation (meter),{currency},{PERIOD},"
        f'Usage,,"RDS Data API requests of tenant {tenant}, billed in 32 KiB request units: an '
        f"allocation of AWS's invoice, not an invoice line\",Usage-Based,{PERIOD},{units},"
        f"Request Units,{amount},{amount},,"
        f'"Internal chargeback (meter): an allocation, not an invoice",{list_cost},{price},'
        f"Standard,{units},Request Units,AWS,AWS,,,,Databases,Amazon RDS Data API,"
        f"Relational Databases,{tags},{amount},meter:units,metering_record={units},{units},"
        f"2026-10,{units},data_api,,{center},{exact},{units},{units * 100},{units * 100},"
        f"{{run}},{share},0,{tenant},{name}\n"
    )


# The list price of one unit (the first tier's per million / 10^6), as FOCUS writes it.
PRICE = {"JPY": "0.333333333333", "KWD": "0.0012345678"}
# 7 calls of one unit each, 3 of tenant a, 2 of b, 2 of c; the exact shares' spare minor
# units go to the largest remainders, b before c on their tie.
CASES = {
    "JPY": {
        "per_million": "333333.333333",  # 2.333333333331 yen: 2 yen, as 1 + 1 + 0
        "account_cost": "2.333333333331",
        "amount": "2",
        "lines": ["1", "1", "0"],
        "finance": (
            FINANCE_HEADER
            + "2026-10,a,Alpha,cc-1,3,3,300,300,1,JPY,42.8571,{run}\n"
            + "2026-10,b,Beta,cc-2,2,2,200,200,1,JPY,28.5714,{run}\n"
            + "2026-10,c,Gamma,cc-3,2,2,200,200,0,JPY,28.5714,{run}\n"
        ),
        "focus": (
            FOCUS_HEADER
            + _focus_row("1", "0", "JPY", "a", 3, "0.999999999999", PRICE["JPY"])
            + _focus_row("1", "0", "JPY", "b", 2, "0.666666666666", PRICE["JPY"])
            + _focus_row("0", "0", "JPY", "c", 2, "0.666666666666", PRICE["JPY"])
        ),
        "report_total": "│ total  │       │     7 │     7 │      2 │",
    },
    "KWD": {
        "per_million": "1234.5678",  # 0.0086419746 dinars: 0.009, as 0.004 + 0.003 + 0.002
        "account_cost": "0.0086419746",
        "amount": "0.009",
        "lines": ["0.004", "0.003", "0.002"],
        "finance": (
            FINANCE_HEADER
            + "2026-10,a,Alpha,cc-1,3,3,300,300,0.004,KWD,42.8571,{run}\n"
            + "2026-10,b,Beta,cc-2,2,2,200,200,0.003,KWD,28.5714,{run}\n"
            + "2026-10,c,Gamma,cc-3,2,2,200,200,0.002,KWD,28.5714,{run}\n"
        ),
        "focus": (
            FOCUS_HEADER
            + _focus_row("0.004", "0.000", "KWD", "a", 3, "0.003703703400", PRICE["KWD"])
            + _focus_row("0.003", "0.000", "KWD", "b", 2, "0.002469135600", PRICE["KWD"])
            + _focus_row("0.002", "0.000", "KWD", "c", 2, "0.002469135600", PRICE["KWD"])
        ),
        "report_total": "│ total  │       │     7 │     7 │  0.009 │",
    },
}


def _month(folder: Path, pricing: str) -> str:
    folder.mkdir()
    calls = [record(f"q{i}", t, f"2026-10-0{i + 1}T10:00:00.000Z") for i, t in enumerate("aaabbcc")]
    export_records(folder / "dynamodb", calls)
    return str(write_config(folder, "\n[pricing]\n" + pricing, registry=REGISTRY))


@pytest.mark.parametrize("currency", sorted(CASES))
def test_a_bill_carries_its_currency_s_decimals_into_every_output(
    tmp_path: Path, currency: str
) -> None:
    case = CASES[currency]
    config = _month(
        tmp_path / currency,
        f'currency = "{currency}"\ntiers = [ {{ per_million = "{case["per_million"]}" }} ]\n',
    )
    month = ("--month", "2026-10", "--config", config)
    done = run_meter("bill", *month, "--json", unset=("METER_CONFIG",))
    assert done.returncode == 0, done.stderr
    bill = json.loads(done.stdout)
    run = bill["run_id"]
    assert (bill["currency"], bill["account_cost"], bill["amount"]) == (
        currency,
        case["account_cost"],
        case["amount"],
    )
    assert [line["amount"] for line in bill["lines"]] == case["lines"]

    report = json.loads(run_meter("report", *month, "--json", unset=("METER_CONFIG",)).stdout)
    assert report["amount"] == case["amount"]
    assert [line["amount"] for line in report["lines"]] == case["lines"]
    shown = run_meter("report", *month, env={"COLUMNS": "120"}, unset=("METER_CONFIG",))
    assert case["report_total"] in shown.stdout, shown.stdout
    assert f"billed total {case['amount']} {currency}" in shown.stdout

    for format in ("finance", "focus"):
        export = run_meter("export", *month, "--format", format, unset=("METER_CONFIG",))
        assert export.returncode == 0, export.stderr
        assert export.stdout == case[format].format(run=run)


@pytest.mark.parametrize(
    ("currency", "message"),
    [
        ("ABC", "'ABC' is not a currency code of ISO 4217"),
        ("XAU", "XAU (Gold) has no minor unit in ISO 4217"),
    ],
)
def test_a_currency_outside_iso_4217_is_a_configuration_error(
    tmp_path: Path, currency: str, message: str
) -> None:
    config = _month(tmp_path / "m", f'currency = "{currency}"\n')
    done = run_meter("bill", "--month", "2026-10", "--config", config, unset=("METER_CONFIG",))
    assert done.returncode == 2
    assert f"{config}: pricing.currency: {message}" in done.stderr
    assert not (tmp_path / "m" / "meter.duckdb").exists()
