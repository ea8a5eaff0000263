"""Every row of the FOCUS export against the FinOps Foundation's column definitions of FOCUS
1.2, the latest released version (tests/report/focus_1_2_columns.json: built from
FOCUS_Spec's specification/columns/*.md at tag v1.2, commit 7296e314; the validator package
is not installable here), and the rules between columns its text states; and the export is
an allocation, not a second invoice, beside AWS's own FOCUS rows."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from metering.config import Config, load_config
from metering.outputs import export
from metering.pipeline import bill
from metering.report import FOCUS_COLUMNS
from tests.helpers import csv_rows
from tests.invoices import ALPHA, BETA, write_shared_month
from tests.report.conftest import OCT

SPEC = json.loads((Path(__file__).parent / "focus_1_2_columns.json").read_text())
COLUMNS = SPEC["columns"]
# FOCUS 1.2, attributes/numeric_format.md and datetime_format.md
NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:E-?\d+)?")
MOMENT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def check(rows: list[dict[str, str]]) -> None:
    """Each FOCUS cell against its column's definition (an empty cell is a null)."""
    assert rows
    for row in rows:
        for name in FOCUS_COLUMNS:
            column, value = COLUMNS[name], row[name]
            if not value:
                assert column["allows_nulls"], f"{name} may not be null"
                continue
            if column.get("allowed_values"):
                assert value in column["allowed_values"], f"{name}: {value!r} is not allowed"
            kind = column["data_type"]
            if kind == "Decimal":
                assert NUMBER.fullmatch(value), f"{name}: {value!r} is not FOCUS numeric format"
            elif kind == "Date/Time":
                assert MOMENT.fullmatch(value), f"{name}: {value!r} is not FOCUS date/time"
            elif kind == "JSON":  # key-value format: an object of scalar values
                tags = json.loads(value)
                assert isinstance(tags, dict), name
                assert all(not isinstance(v, dict | list) for v in tags.values()), name
            else:
                assert kind == "String", (name, kind)
        # The rules between columns FOCUS 1.2's text states (columns/*.md):
        category = row["ChargeCategory"]
        if category in ("Usage", "Purchase") and row["ChargeClass"] != "Correction":
            for name in ("PricingCategory", "PricingQuantity", "PricingUnit", "ListUnitPrice"):
                assert row[name], f"{name} may not be null on a {category} row"
        if row["ListUnitPrice"] and row["PricingQuantity"]:  # listcost.md
            assert Decimal(row["ListUnitPrice"]) * Decimal(row["PricingQuantity"]) == Decimal(
                row["ListCost"]
            )
        assert bool(row["ResourceType"]) == bool(row["ResourceId"])  # resourcetype.md
        subcategories = COLUMNS["ServiceSubcategory"]["allowed_categories"]
        assert subcategories[row["ServiceSubcategory"]] == row["ServiceCategory"]
        assert not row["ChargeClass"] or row["ChargeClass"] == "Correction"
        assert Decimal(row["ListUnitPrice"] or 0) >= 0
        # An allocation, not an invoice: nothing billed, no invoice, not AWS's issuer.
        assert Decimal(row["BilledCost"]) == 0
        assert not row["InvoiceId"]
        assert row["InvoiceIssuerName"] != row["ProviderName"] == "AWS"


def test_the_checklist_is_focus_1_2_as_released() -> None:
    assert (SPEC["version"], SPEC["tag"], SPEC["commit"]) == (
        "1.2",
        "v1.2",
        "7296e3146fb931ee32b6496fa6e4200e7f4384f7",
    )
    assert len(COLUMNS) == 57
    mandatory = sorted(n for n, c in COLUMNS.items() if c["feature_level"] == "Mandatory")
    assert len(mandatory) == 21 and "InvoiceIssuerName" in mandatory
    assert COLUMNS["ChargeCategory"]["allowed_values"] == [
        "Usage",
        "Purchase",
        "Tax",
        "Credit",
        "Adjustment",
    ]


def test_small_and_sample_months_follow_the_spec(small: Config, sample: Config) -> None:
    check(csv_rows(export(small, OCT, "focus")))
    check(csv_rows(export(sample, OCT, "focus")))


def test_a_month_with_shared_costs_follows_the_spec(tmp_path: Path) -> None:
    config = load_config(write_shared_month(tmp_path))
    bill(config, OCT)
    rows = csv_rows(export(config, OCT, "focus"))
    check(rows)
    assert len(rows) == 12  # three tenants, four charges each
    acme = {row["x_Charge"]: row for row in rows if row["x_TenantId"] == "acme"}
    assert acme["aurora_compute"]["EffectiveCost"] == "5.06"
    assert acme["aurora_compute"]["ResourceId"] == ""  # on two clusters: x_Clusters has them
    assert acme["aurora_compute"]["x_Clusters"] == f"{ALPHA},{BETA}"
    assert acme["aurora_compute"]["RegionId"] == "us-east-1"
    initech = {row["x_Charge"]: row for row in rows if row["x_TenantId"] == "initech"}
    assert (initech["aurora_io"]["ResourceId"], initech["aurora_io"]["ResourceType"]) == (
        BETA,
        "Aurora DB Cluster",
    )
    assert json.loads(initech["aurora_io"]["Tags"])["meter/charge"] == "aurora_io"
    # Loaded beside AWS's own FOCUS export, the rows add nothing to the invoice's total and
    # EffectiveCost carries what meter allocated, to the cent.
    assert sum(Decimal(r["BilledCost"]) for r in rows) == 0
    assert sum(Decimal(r["EffectiveCost"]) for r in rows) == Decimal("13.40")


@pytest.mark.parametrize("name", ["BilledCost", "ChargeCategory", "ListCost"])
def test_the_check_catches_a_broken_row(small: Config, name: str) -> None:
    rows = csv_rows(export(small, OCT, "focus"))
    rows[0][name] = {"BilledCost": "1.00", "ChargeCategory": "Allocation", "ListCost": "9"}[name]
    with pytest.raises(AssertionError):
        check(rows)
