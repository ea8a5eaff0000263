"""``[[shared_costs]]`` end to end (SPEC 8): the ACU, I/O and storage lines of a hand-built
invoice split over the tenants exactly by each driver, per day where the lines are, what
cannot be split reported as unallocated, and the finance CSV's amounts the tenants' totals
(a real DuckDB file; the figures worked out by hand in tests/invoices.py)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from metering.cli import app
from metering.config import load_config
from metering.month import Month
from metering.outputs import export
from metering.pipeline import bill
from metering.store import SCHEMA_VERSION
from tests.helpers import warehouse_rows
from tests.invoices import ALPHA, BETA, GAMMA, write_shared_month

OCT = Month(2026, 10)
D = Decimal
runner = CliRunner()

# What each tenant is charged, worked out by hand:
# data_api        1.00 by units 5:4:3 (acme, globex, initech) = .41666, .33333, .25
#                 -> 0.41, 0.33, 0.25 + the spare cent to acme's .00666
# aurora_compute  alpha 10-01 4.00 by 3:1; 10-02 3.00 by 1:2; 10-03 0.50 (no call: alpha's
#                 month, 4:3); credit -0.40 by 4:3; beta 10-01 1.00 initech; 10-02 2.00 by 1:1
#                 acme 3 + 1 + 2/7 - 1.6/7 + 1 = 5.05714, globex 3.04286, initech 2 (10.10)
#                 -> acme takes the spare cent: 5.06, 3.04, 2.00; gamma's 9.99 is no
#                 cluster the tenants called (clusters = []): not this charge's
# aurora_io       alpha 0.10 by calls 4:2, beta 0.20 by calls 3 (initech):1 (acme)
#                 acme .06667 + .05, globex .03333, initech .15 -> 0.12, 0.03, 0.15
# aurora_storage  alpha 1.00 by bytes 800:40300, beta 1.00 by 600:200 (initech, acme)
#                 acme .01946 + .25, globex .98054, initech .75 -> 0.27, 0.98, 0.75;
#                 gamma's 0.70 (listed, no call) and 0.05 naming no cluster: unallocated
CHARGES = {
    ("acme", "data_api"): D("0.42"),
    ("acme", "aurora_compute"): D("5.06"),
    ("acme", "aurora_io"): D("0.12"),
    ("acme", "aurora_storage"): D("0.27"),
    ("globex", "data_api"): D("0.33"),
    ("globex", "aurora_compute"): D("3.04"),
    ("globex", "aurora_io"): D("0.03"),
    ("globex", "aurora_storage"): D("0.98"),
    ("initech", "data_api"): D("0.25"),
    ("initech", "aurora_compute"): D("2.00"),
    ("initech", "aurora_io"): D("0.15"),
    ("initech", "aurora_storage"): D("0.75"),
}
TOTALS = {"acme": D("5.87"), "globex": D("4.38"), "initech": D("3.15")}


@pytest.mark.parametrize(
    ("form", "format"), [("parquet", "cur2"), ("csv.gz", "cur2"), ("parquet", "focus")]
)
def test_shared_costs_split_exactly_by_their_drivers(
    tmp_path: Path, form: str, format: str
) -> None:
    config = write_shared_month(tmp_path, form, format)
    result = bill(load_config(config), OCT)
    assert result.exit_code == 0
    charges = warehouse_rows(config, "SELECT tenant_id, charge, amount FROM tenant_charges")
    assert {(t, c): a for t, c, a in charges} == CHARGES
    assert warehouse_rows(
        config,
        "SELECT charge, driver, lines, invoiced_cost, allocated, unallocated, "
        "unallocated_lines, unallocated_resources, daily_lines FROM shared_costs ORDER BY charge",
    ) == [
        ("aurora_compute", "units", 7, D("10.1"), D("10.10"), D("0.00"), 0, "", 6),
        ("aurora_io", "calls", 2, D("0.3"), D("0.30"), D("0.00"), 0, "", 0),
        ("aurora_storage", "bytes", 4, D("2.75"), D("2.00"), D("0.75"), 2, f"(no resource),{GAMMA}", 0),
    ]  # fmt: skip
    # Each tenant's driver and clusters; shares of each charge sum to 1.
    assert warehouse_rows(
        config,
        "SELECT tenant_id, quantity, clusters, share FROM tenant_charges "
        "WHERE charge = 'aurora_storage' ORDER BY tenant_id",
    ) == [
        ("acme", 1000, f"{ALPHA},{BETA}", D("0.134732360097")),
        ("globex", 40300, ALPHA, D("0.490267639903")),
        ("initech", 600, BETA, D("0.375000000000")),
    ]
    # The finance CSV: each tenant's total over its charges, summing to what was allocated.
    finance = list(
        csv.DictReader(io.StringIO(export(load_config(config), OCT, "finance").decode()))
    )
    assert {row["tenant_id"]: D(row["amount"]) for row in finance} == TOTALS
    assert sum(TOTALS.values()) == D("13.40") == D("1.00") + D("10.10") + D("0.30") + D("2.00")
    assert [row["share_pct"] for row in finance] == ["43.8060", "32.6866", "23.5075"]


def test_the_charges_export_and_the_summary(tmp_path: Path) -> None:
    config = write_shared_month(tmp_path)
    done = runner.invoke(app, ["bill", "--month", "2026-10", "--config", str(config)])
    assert done.exit_code == 0, done.output
    summary = " ".join(done.output.split())
    assert "aurora_storage" in summary
    assert "unallocated 0.75" in summary
    done = runner.invoke(
        app, ["export", "--month", "2026-10", "--format", "charges", "--config", str(config)]
    )
    assert done.exit_code == 0, done.output
    rows = list(csv.DictReader(io.StringIO(done.output)))
    assert [r["tenant_id"] + ":" + r["charge"] for r in rows[:4]] == [
        "acme:aurora_compute",
        "acme:aurora_io",
        "acme:aurora_storage",
        "acme:data_api",
    ]
    assert {(r["tenant_id"], r["charge"]): D(r["amount"]) for r in rows} == CHARGES
    report = runner.invoke(
        app, ["report", "--month", "2026-10", "--config", str(config)], env={"COLUMNS": "120"}
    )
    assert "unallocated 0.75" in " ".join(report.output.split())
    # Both tables show, beside the Data API line, each tenant's total over its charges: the
    # finance CSV's amount (a column only a month with shared costs has).
    for output in (summary, " ".join(report.output.split())):
        assert "all charges" in output
        for tenant, total in TOTALS.items():
            assert f"{tenant} " in output and f" {total} " in output
        assert f" {sum(TOTALS.values())} " in output


def test_without_shared_costs_the_charges_are_the_data_api_lines(tmp_path: Path) -> None:
    config = write_shared_month(tmp_path, body="")
    done = runner.invoke(app, ["bill", "--month", "2026-10", "--config", str(config)])
    assert done.exit_code == 0, done.output
    assert "all charges" not in done.output  # the amount column is the whole charge
    charges = warehouse_rows(config, "SELECT tenant_id, charge, amount FROM tenant_charges")
    assert {(t, c): a for t, c, a in charges} == {
        key: amount for key, amount in CHARGES.items() if key[1] == "data_api"
    }
    assert warehouse_rows(config, "SELECT count(*) FROM shared_costs") == [(0,)]
    finance = export(load_config(config), OCT, "finance").decode()
    amounts = [row["amount"] for row in csv.DictReader(io.StringIO(finance))]
    assert amounts == ["0.42", "0.33", "0.25"]


def test_shared_costs_need_an_invoice_and_distinct_names(tmp_path: Path) -> None:
    config = tmp_path / "meter.toml"
    config.write_text(
        '[sources.metering]\nexports = ["d"]\n[[shared_costs]]\nname = "a"\n'
        'usage_types = ["%ACU%"]\n'
    )
    done = runner.invoke(app, ["bill", "--month", "2026-10", "--config", str(config)])
    assert done.exit_code == 2
    assert "configure [invoice] uris" in done.output
    config.write_text(
        '[sources.metering]\nexports = ["d"]\n[invoice]\nuris = ["c"]\n'
        + '[[shared_costs]]\nname = "a"\nusage_types = ["%ACU%"]\n' * 2
    )
    done = runner.invoke(app, ["bill", "--month", "2026-10", "--config", str(config)])
    assert done.exit_code == 2
    assert "names a more than once" in " ".join(done.output.split())


def test_a_warehouse_of_schema_6_migrates_and_bills_its_charges(tmp_path: Path) -> None:
    config = write_shared_month(tmp_path)
    bill(load_config(config), OCT)
    con = duckdb.connect(str(tmp_path / "meter.duckdb"))
    con.execute("DROP TABLE tenant_charges")
    con.execute("DROP TABLE shared_costs")
    con.execute("ALTER TABLE call_rows DROP COLUMN resource_arn")
    con.execute("UPDATE meter_meta SET value = '6' WHERE key = 'schema_version'")
    con.execute("UPDATE month_runs SET recipe = 'the SQL of meter 6'")
    con.close()
    # A month an older meter billed has no charges to export until billed again (its calls
    # do not know their clusters yet); the next bill migrates the warehouse.
    done = runner.invoke(
        app, ["export", "--month", "2026-10", "--format", "charges", "--config", str(config)]
    )
    assert done.exit_code == 2
    assert "billed before meter kept charges" in " ".join(done.output.split())
    version = "SELECT value FROM meter_meta WHERE key = 'schema_version'"
    assert warehouse_rows(config, version) == [("6",)]  # (exports read it as it is)
    result = bill(load_config(config), OCT)
    assert warehouse_rows(config, version) == [(str(SCHEMA_VERSION),)]
    assert result.joined_again is None  # meter's SQL changed: the month is joined whole
    charges = warehouse_rows(config, "SELECT tenant_id, charge, amount FROM tenant_charges")
    assert {(t, c): a for t, c, a in charges} == CHARGES


def test_the_sample_shows_the_tie_out_and_its_shared_cost(tmp_path: Path) -> None:
    """README quick start: the sample's CUR 2.0 export ties out and its Aurora capacity is
    split over the tenants by units (figures of the README)."""
    from tests.helpers import copy_sample

    config = load_config(copy_sample(tmp_path / "s"))
    result = bill(config, OCT)
    assert result.exit_code == 3  # the sample's 5 malformed records
    month = result.invoice.filter(region="all").row(0, named=True)
    assert (month["invoiced_requests"], month["meter_units"]) == (D(12408), 12390)
    assert month["within_tolerance"] is True  # -0.15 %: the calls only CloudTrail saw
    (shared,) = result.shared_costs.to_dicts()
    assert (shared["charge"], shared["lines"], shared["allocated"]) == (
        "aurora_compute",
        62,
        D("233.72"),
    )
    assert shared["unallocated"] == 0
    finance = list(csv.DictReader(io.StringIO(export(config, OCT, "finance").decode())))
    assert sum(D(row["amount"]) for row in finance) == D("233.72") + result.bill.amount


@pytest.mark.parametrize(
    ("currency", "scale", "places"),
    [("JPY", D(100), 0), ("KWD", D("0.1"), 3)],  # the same minor units: 42 yen, 0.042 dinars
)
def test_shared_costs_in_a_currency_of_0_or_3_decimals(
    tmp_path: Path, currency: str, scale: Decimal, places: int
) -> None:
    """The invoice of the month above in yen (every cost times 100) or in Kuwaiti dinars
    (times 0.1): the same split in minor units, each charge rounded to the currency's own
    decimals and written with exactly them in the charges and finance CSVs, FOCUS, --json
    and the summary."""
    import json

    config = write_shared_month(tmp_path, currency=currency, scale=scale)

    def text(amount: Decimal) -> str:
        return f"{amount * scale:.{places}f}"

    done = runner.invoke(app, ["bill", "--month", "2026-10", "--config", str(config), "--json"])
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert {(c["tenant_id"], c["charge"]): c["amount"] for c in doc["charges"]} == {
        key: text(amount) for key, amount in CHARGES.items()
    }
    assert [(s["charge"], s["allocated"], s["unallocated"]) for s in doc["shared_costs"]] == [
        ("aurora_compute", text(D("10.10")), text(D(0))),
        ("aurora_io", text(D("0.30")), text(D(0))),
        ("aurora_storage", text(D("2.00")), text(D("0.75"))),
    ]
    stored = warehouse_rows(
        config, "SELECT tenant_id, charge, amount, currency FROM tenant_charges"
    )
    assert {(t, c): (a, cur) for t, c, a, cur in stored} == {
        key: (amount * scale, currency) for key, amount in CHARGES.items()
    }

    month = ["--month", "2026-10", "--config", str(config)]
    charges = runner.invoke(app, ["export", *month, "--format", "charges"])
    assert charges.exit_code == 0, charges.output
    rows = list(csv.DictReader(io.StringIO(charges.output)))
    assert {(r["tenant_id"], r["charge"]): r["amount"] for r in rows} == {
        key: text(amount) for key, amount in CHARGES.items()
    }
    assert {r["currency"] for r in rows} == {currency}
    finance = list(
        csv.DictReader(io.StringIO(export(load_config(config), OCT, "finance").decode()))
    )
    assert {row["tenant_id"]: row["amount"] for row in finance} == {
        tenant: text(total) for tenant, total in TOTALS.items()
    }
    focus = list(csv.DictReader(io.StringIO(export(load_config(config), OCT, "focus").decode())))
    assert {(r["x_TenantId"], r["x_Charge"]): r["EffectiveCost"] for r in focus} == {
        key: text(amount) for key, amount in CHARGES.items()
    }
    assert {(r["BilledCost"], r["BillingCurrency"]) for r in focus} == {(text(D(0)), currency)}
    shared = [r for r in focus if r["x_Charge"] != "data_api"]
    assert all(r["ListCost"] == r["ListUnitPrice"] == r["EffectiveCost"] for r in shared)

    summary = runner.invoke(app, ["report", *month], env={"COLUMNS": "120"})
    assert f"unallocated {text(D('0.75'))} {currency} of aurora_storage" in " ".join(
        summary.output.split()
    )
