"""``[invoice]`` end to end: the tie-out in the warehouse, the summary and the report, and
``allocate = "invoice"`` splitting what AWS invoiced to the cent (a real DuckDB file)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import boto3
import polars as pl
import pytest
from typer.testing import CliRunner

from metering.cli import app
from metering.config import load_config
from metering.month import Month
from metering.outputs import export
from metering.pipeline import bill
from tests.helpers import warehouse_rows
from tests.invoices import cur_frame, write_export, write_month

OCT = Month(2026, 10)
D = Decimal
runner = CliRunner()


def _amounts(config: Path) -> dict[object, object]:
    return dict(warehouse_rows(config, "SELECT tenant_id, amount FROM tenant_month ORDER BY 1"))


TIE_OUT = """
    SELECT region, invoiced_requests, meter_units, request_variance, request_variance_pct,
           invoiced_net_cost, modelled_cost, cost_variance, cost_variance_pct, tax,
           within_tolerance, allocate, allocated_total, lines
    FROM invoice WHERE month = '2026-10' ORDER BY region = 'all', region
"""


@pytest.mark.parametrize(
    ("form", "format"),
    [("parquet", "cur2"), ("csv.gz", "cur2"), ("parquet", "focus"), ("csv.gz", "focus")],
)
def test_the_tie_out_is_in_the_warehouse(tmp_path: Path, form: str, format: str) -> None:
    config = write_month(tmp_path, form=form, format=format)
    result = bill(load_config(config), OCT)
    assert result.exit_code == 0
    lines = (3, 5) if format == "cur2" else (2, 4)  # FOCUS has no discount, no negation lines
    assert warehouse_rows(config, TIE_OUT) == [
        ("eu-west-1", D(20), None, None, None, D("0.74"), None, None, None, None, None, "model", None, lines[0]),
        ("us-east-1", D(40), None, None, None, D("0.77"), None, None, None, None, None, "model", None, lines[1]),
        # 60 units at 0.35 per million: 0.000021, 0.00
        ("all", D(60), 60, D(0), D(0), D("1.51"), D("0.00"), D("-1.51"), D("-100"), D("0.04"), True, "model", D("0.00"), sum(lines)),
    ]  # fmt: skip
    assert result.invoice.height == 3
    run_id = warehouse_rows(config, "SELECT DISTINCT run_id FROM invoice")
    assert run_id == [(result.run_id,)]
    # Invoice files are inputs: counted, fingerprinted.
    assert result.counters.files_read == 3 + 3  # the export's 2 files and manifest, and ours


def test_model_allocation_is_what_it_was_without_an_invoice(tmp_path: Path) -> None:
    with_invoice = write_month(tmp_path / "with")
    without = write_month(tmp_path / "without")
    text = without.read_text()
    without.write_text(text[: text.index("[invoice]")])
    for config in (with_invoice, without):
        bill(load_config(config), OCT)
    lines = "SELECT * EXCLUDE (run_id) FROM tenant_month ORDER BY tenant_id"
    assert warehouse_rows(with_invoice, lines) == warehouse_rows(without, lines)
    runs = "SELECT total_units, account_cost, amount FROM bill_runs"
    assert (
        warehouse_rows(with_invoice, runs)
        == warehouse_rows(without, runs)
        == [(60, D("0.000021"), D("0.00"))]
    )
    assert warehouse_rows(without, "SELECT count(*) FROM invoice") == [(0,)]


@pytest.mark.parametrize(
    ("include_tax", "total", "amounts"),
    [
        # 1.51 by units 30:20:10 = 0.755, 0.5033.., 0.2516..: the spare cent to acme's .005
        (False, D("1.51"), {"acme": D("0.76"), "globex": D("0.50"), "initech": D("0.25")}),
        # 1.55 = 0.775, 0.5166.., 0.2583..: two spare cents to initech's .0083, globex's .0066
        (True, D("1.55"), {"acme": D("0.77"), "globex": D("0.52"), "initech": D("0.26")}),
    ],
)
def test_allocate_invoice_splits_what_aws_invoiced_to_the_cent(
    tmp_path: Path, include_tax: bool, total: Decimal, amounts: dict[str, Decimal]
) -> None:
    tax = "true" if include_tax else "false"
    config = write_month(tmp_path, f'allocate = "invoice"\ninclude_tax = {tax}\n')
    loaded = load_config(config)
    result = bill(loaded, OCT)
    assert _amounts(config) == amounts
    assert sum(amounts.values()) == total == result.bill.amount
    assert warehouse_rows(config, "SELECT account_cost, amount FROM bill_runs") == [(total, total)]
    month_row = "SELECT allocate, allocated_total, modelled_cost FROM invoice WHERE region = 'all'"
    assert warehouse_rows(config, month_row) == [("invoice", total, D("0.00"))]
    # The days carry the blended rate of what was invoiced, the finance CSV its lines.
    days = warehouse_rows(
        config, "SELECT tenant_id, sum(cost_exact) FROM tenant_day GROUP BY 1 ORDER BY 1"
    )
    exact = {"acme": total / 2, "globex": total / 3, "initech": total / 6}
    assert {t: c.quantize(D("1e-9")) for t, c in days} == {
        t: c.quantize(D("1e-9")) for t, c in exact.items()
    }
    finance = list(csv.DictReader(io.StringIO(export(loaded, OCT, "finance").decode())))
    assert sum(D(row["amount"]) for row in finance) == total


def test_allocating_an_invoice_without_data_api_lines_fails_and_writes_nothing(
    tmp_path: Path,
) -> None:
    config = write_month(tmp_path, 'allocate = "invoice"\ndata_api_usage_types = ["%Nope%"]\n')
    done = runner.invoke(app, ["bill", "--month", "2026-10", "--config", str(config)])
    assert done.exit_code == 1
    said = " ".join(done.output.split())
    assert f'[invoice] allocate = "invoice", but {tmp_path / "cur"} holds no Data API line' in said
    assert not (tmp_path / "meter.duckdb").exists()


def test_bill_and_report_show_the_tie_out(tmp_path: Path) -> None:
    config = write_month(tmp_path, 'allocate = "invoice"\n', extra_calls=2)
    done = runner.invoke(app, ["bill", "--month", "2026-10", "--config", str(config)])
    assert done.exit_code == 0, done.output
    report = runner.invoke(app, ["report", "--month", "2026-10", "--config", str(config)])
    assert report.exit_code == 0, report.output
    for shown in (done.output, report.output):
        text = " ".join(shown.split())
        assert "tie-out with the AWS invoice, 2026-10 (USD; variance = meter - AWS)" in text
        assert "│ Data API requests │ 60 │ 62 units │ +2 (+3.33 %) │" in text
        assert "│ net cost before tax │ 1.51 │ 0.00 │ -1.51 (-100.00 %) │" in text
        assert (
            "by region, as AWS invoiced: eu-west-1 20 requests, 0.74; us-east-1 40 requests, 0.77"
        ) in text
        assert (
            "AWS net cost: usage 2.90, Savings Plans -1.11, credits -0.25, discounts -0.03 "
            "(8 Data API lines); tax 0.04"
        ) in text
        assert 'tenant lines split what AWS invoiced: 1.51 USD (allocate = "invoice")' in text
        assert "requests differ from AWS's by more than the tolerance (1.00 %)" in text


def test_a_changed_invoice_is_a_new_run_and_bad_lines_are_quarantined(tmp_path: Path) -> None:
    config = write_month(tmp_path)
    first = bill(load_config(config), OCT)
    assert bill(load_config(config), OCT).run_id == first.run_id
    # The export's second file again, its second row (eu-west-1's 0.74 of usage) in euros.
    part = (
        tmp_path / "cur" / "cur2" / "data" / "BILLING_PERIOD=2026-10" / "cur2-00002.snappy.parquet"
    )
    euros = pl.when(pl.int_range(pl.len()) == 1).then(pl.lit("EUR")).otherwise(pl.lit("USD"))
    cur_frame().slice(6).with_columns(line_item_currency_code=euros).write_parquet(part)
    again = bill(load_config(config), OCT)
    assert again.run_id != first.run_id
    assert again.exit_code == 3
    assert [(q.source_uri, q.locator, q.reason) for q in again.quarantine] == [
        (str(part), "row 2", "in 'EUR'; [pricing] currency is USD: not counted")
    ]
    assert (again.counters.records_seen, again.counters.quarantined) == (61, 1)
    assert warehouse_rows(config, "SELECT source_uri, locator FROM quarantine") == [
        (str(part), "row 2")
    ]
    month_row = "SELECT invoiced_requests, invoiced_net_cost FROM invoice WHERE region = 'all'"
    assert warehouse_rows(config, month_row) == [(D(52), D("0.77"))]


def test_an_invoice_in_s3(aws: str, tmp_path: Path) -> None:
    config = write_month(tmp_path, 'allocate = "invoice"\n', form="csv.gz")
    s3 = boto3.client("s3", endpoint_url=aws)
    s3.create_bucket(Bucket="billing")
    for path in sorted((tmp_path / "cur").rglob("*")):
        if path.is_file():
            s3.upload_file(str(path), "billing", f"exports/{path.relative_to(tmp_path / 'cur')}")
    config.write_text(
        config.read_text().replace('uris = ["cur"]', 'uris = ["s3://billing/exports"]')
    )
    write_export(tmp_path / "cur", cur_frame().head(0), "csv.gz")  # the local copy is not read
    result = bill(load_config(config), OCT)
    assert _amounts(config) == {"acme": D("0.76"), "globex": D("0.50"), "initech": D("0.25")}
    month_row = "SELECT invoiced_requests, invoiced_net_cost, tax FROM invoice WHERE region = 'all'"
    assert warehouse_rows(config, month_row) == [(D(60), D("1.51"), D("0.04"))]
    assert result.exit_code == 0
