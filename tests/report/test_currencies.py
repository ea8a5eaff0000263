"""A bill in yen (no minor unit) and in Kuwaiti dinars (3 decimals), end to end through
``meter bill --json``, ``meter report``, the finance CSV and the FOCUS CSV: every amount
with exactly its currency's decimals; and a currency ISO 4217 does not know is refused."""

from __future__ import annotations

import json
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
    "EffectiveCost,InvoiceIssuerName,ListCost,PricingQuantity,PricingUnit,ProviderName,"
    "PublisherName,ServiceCategory,ServiceName,SubAccountId,SubAccountName,x_Attribution,"
    "x_BilledUnits,x_BillingMonth,x_Calls,x_CostCenter,x_CostExact,x_RequestBytes,"
    "x_ResponseBytes,x_RunId,x_SharePct,x_SizeEstimatedCalls,x_TenantId,x_TenantName\n"
)
PERIOD = "2026-11-01T00:00:00Z,2026-10-01T00:00:00Z"


def _focus_row(amount: str, currency: str, tenant: str, units: int, exact: str) -> str:
    """A FOCUS row of one tenant of the month below (``{run}``: its run id)."""
    name, center = {"a": ("Alpha", "cc-1"), "b": ("Beta", "cc-2"), "c": ("Gamma", "cc-3")}[tenant]
    share = "42.8571" if tenant == "a" else "28.5714"
    return (
        f"{amount},rds-data-api,RDS Data API tenant chargeback,{currency},{PERIOD},Usage,,"
        f'"RDS Data API requests of tenant {tenant}, billed in 32 KiB request units",'
        f"Usage-Based,{PERIOD},{units},Requests,{amount},{amount},AWS,{amount},{units},"
        f"Request Units,AWS,AWS,Databases,Amazon RDS Data API,{tenant},{name},"
        f"metering_record={units},{units},2026-10,{units},{center},{exact},{units * 100},"
        f"{units * 100},{{run}},{share},0,{tenant},{name}\n"
    )


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
            + _focus_row("1", "JPY", "a", 3, "0.999999999999")
            + _focus_row("1", "JPY", "b", 2, "0.666666666666")
            + _focus_row("0", "JPY", "c", 2, "0.666666666666")
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
            + _focus_row("0.004", "KWD", "a", 3, "0.003703703400")
            + _focus_row("0.003", "KWD", "b", 2, "0.002469135600")
            + _focus_row("0.002", "KWD", "c", 2, "0.002469135600")
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
