"""Reading AWS Data Exports (CUR 2.0 Parquet and gzip CSV, AWS's FOCUS 1.0): the month's Data
API lines per region, exactly; bad files and lines quarantined; manifests obeyed."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import boto3
import polars as pl
import pytest

from metering.collect.invoice import like, read_invoice
from metering.config import DEFAULT_DATA_API_USAGE_TYPES, InvoiceConfig
from metering.errors import InputError
from metering.month import Month
from metering.schemas import Invoice, InvoiceRegion
from tests.invoices import CUR_LINES, CUR_REGIONS, DATA_API, cur_frame, focus_frame, write_export

OCT = Month(2026, 10)
D = Decimal

# What each format itemises (tests/invoices.py): CUR 2.0 shows the EDP discount and the
# Savings Plans negation as lines of their own (CUR_REGIONS); FOCUS's BilledCost already
# holds them.
FOCUS_REGIONS = {
    "eu-west-1": InvoiceRegion(requests=D(20), usage_cost=D("0.74"), lines=2),
    "us-east-1": InvoiceRegion(
        requests=D(40), usage_cost=D("1.0200035"), credits=D("-0.25"), lines=4
    ),
}


def _read(root: Path, format: str = "cur2", currency: str = "USD", **options: object) -> Invoice:
    source = InvoiceConfig.model_validate({"uris": (str(root),), "format": format, **options})
    return read_invoice(source, OCT, currency, root.parent / "scratch")


@pytest.mark.parametrize("form", ["parquet", "csv.gz"])
@pytest.mark.parametrize("format", ["cur2", "focus"])
def test_every_form_of_the_month_gives_the_same_invoice(
    tmp_path: Path, form: str, format: str
) -> None:
    frame = cur_frame() if format == "cur2" else focus_frame()
    write_export(tmp_path / "exports", frame, form, name=f"{format}-export")
    invoice = _read(tmp_path / "exports", format)
    assert invoice.regions == (CUR_REGIONS if format == "cur2" else FOCUS_REGIONS)
    assert {r: p.net for r, p in invoice.regions.items()} == {
        "eu-west-1": D("0.74"),
        "us-east-1": D("0.7700035"),
    }
    assert (invoice.requests, invoice.net) == (D(60), D("1.5100035"))
    assert (invoice.rds_net, invoice.rds_tax) == (D("15.100035"), D("0.40"))
    assert invoice.tax == Fraction(4, 100)  # the Data API's tenth of the service's net cost
    counters = invoice.accounting.counters
    assert (counters.files_read, counters.quarantined, counters.records_seen) == (3, 0, 0)
    assert invoice.accounting.quarantine == []
    names = sorted(i.name for i in invoice.accounting.inputs)
    suffix = ".snappy.parquet" if form == "parquet" else ".csv.gz"
    assert names == [
        f"invoice:{format}-export/data/BILLING_PERIOD=2026-10/{format}-export-0000{n}{suffix}"
        for n in (1, 2)
    ]
    assert list((tmp_path / "scratch").iterdir()) == []  # what was gunzipped is gone


def test_usage_type_patterns_are_like_without_regard_to_case() -> None:
    matches = like(DEFAULT_DATA_API_USAGE_TYPES)
    for usage_type in (
        f"USE1-{DATA_API}",
        "EUW2-RDS:DataApiUsage",
        "USE1-Data-API-Requests",
        "APS1-Data API Requests",
        "dataapi",
    ):
        assert matches(usage_type), usage_type
    for usage_type in ("USE1-Aurora:ServerlessV2Usage", "USE1-DatabaseAPI", "", "Data__API"):
        assert not matches(usage_type), usage_type
    exact = like(["USE1-a.b_c"])
    assert exact("use1-A.bXc") and not exact("USE1-aXbXc") and not exact("USE1-a.bc")


def test_only_the_configured_usage_types_are_the_data_api(tmp_path: Path) -> None:
    write_export(tmp_path / "exports", cur_frame())
    invoice = _read(tmp_path / "exports", data_api_usage_types=["EU-%"])
    assert list(invoice.regions) == ["eu-west-1"]
    assert (invoice.requests, invoice.net, invoice.rds_net) == (D(20), D("0.74"), D("15.100035"))


def test_files_of_other_months_are_not_read_loose_files_are_filtered_by_column(
    tmp_path: Path,
) -> None:
    root = tmp_path / "exports"
    write_export(root, cur_frame(), month="2026-09", parts=1)  # September's folder
    write_export(root, cur_frame(), parts=1, manifest=False)
    cur_frame().write_parquet(root / "loose.parquet")  # outside the layout: read, filtered
    invoice = _read(root)
    assert invoice.accounting.counters.files_read == 2  # nothing of September's folders
    assert (invoice.requests, invoice.net) == (D(120), D("3.0200070"))


def test_a_file_listed_once_under_two_uris_is_read_once(tmp_path: Path) -> None:
    root = tmp_path / "ex[p]orts*"  # a local name is never a glob
    write_export(root, cur_frame())
    source = InvoiceConfig(uris=(str(root), str(root / "cur2")))
    invoice = read_invoice(source, OCT, "USD", tmp_path / "scratch")
    assert (invoice.requests, invoice.net) == (D(60), D("1.5100035"))


def test_the_manifest_says_which_data_files_make_the_export(tmp_path: Path) -> None:
    root = tmp_path / "exports"
    files = write_export(root, cur_frame())
    stale = files[0].with_name("cur2-00003.snappy.parquet")
    cur_frame().write_parquet(stale)  # a file of an earlier delivery
    invoice = _read(root)
    assert (invoice.requests, invoice.net) == (D(60), D("1.5100035"))
    counters = invoice.accounting.counters
    assert (counters.unlisted_files, counters.quarantined, counters.records_seen) == (1, 1, 1)
    [entry] = invoice.accounting.quarantine
    assert (entry.source_uri, entry.locator) == (str(stale), "file")
    assert entry.reason.startswith("not listed in its export's manifest")
    files[1].unlink()
    with pytest.raises(InputError, match=r"lists BILLING_PERIOD=2026-10/cur2-00002\.snappy"):
        _read(root)


def test_a_broken_manifest_is_quarantined_and_every_data_file_read(tmp_path: Path) -> None:
    root = tmp_path / "exports"
    write_export(root, cur_frame())
    manifest = root / "cur2" / "metadata" / "BILLING_PERIOD=2026-10" / "cur2-Manifest.json"
    manifest.write_text('{"executionId": "x"')
    invoice = _read(root)
    assert (invoice.requests, invoice.net) == (D(60), D("1.5100035"))
    [entry] = invoice.accounting.quarantine
    assert entry.source_uri == str(manifest)
    assert entry.reason.startswith("not a Data Exports manifest (JSONDecodeError")
    assert entry.reason.endswith("every data file beside it is read")


def test_two_manifests_of_one_month_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "exports"
    write_export(root, cur_frame())
    meta = root / "cur2" / "metadata" / "BILLING_PERIOD=2026-10"
    (meta / "run2").mkdir()
    (meta / "run2" / "cur2-Manifest.json").write_text(json.dumps({"dataFiles": []}))
    with pytest.raises(InputError, match="2 Data Exports manifests of one month in cur2"):
        _read(root)


def _csv(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pl.DataFrame(rows).cast(pl.String)
    path.write_bytes(gzip.compress(frame.write_csv().encode(), mtime=0))


def _line(cost: object = "0.35", currency: str = "USD", usage: object = "10") -> dict[str, object]:
    return {
        "bill_billing_period_start_date": "2026-10-01T00:00:00.000Z",
        "line_item_product_code": "AmazonRDS",
        "line_item_usage_type": f"USE1-{DATA_API}",
        "line_item_line_item_type": "Usage",
        "line_item_usage_amount": usage,
        "line_item_unblended_cost": cost,
        "line_item_currency_code": currency,
    }


def test_bad_lines_are_quarantined_with_their_line_and_the_rest_counted(tmp_path: Path) -> None:
    path = tmp_path / "exports" / "cur.csv.gz"
    _csv(
        path,
        [
            _line(),
            _line(cost="abc"),
            _line(currency="EUR"),
            _line(usage="NaN"),
            _line(cost="1.5E-7", usage=""),  # scientific notation; no usage amount: 0
        ],
    )
    invoice = _read(tmp_path / "exports")
    assert invoice.regions == {
        "": InvoiceRegion(requests=D(10), usage_cost=D("0.35000015"), lines=2)
    }
    got = [(q.source_uri, q.locator, q.reason) for q in invoice.accounting.quarantine]
    assert got == [
        (str(path), "line 3", "cost 'abc' is not a number: not counted"),
        (str(path), "line 4", "in 'EUR'; [pricing] currency is USD: not counted"),
        (str(path), "line 5", "usage amount 'NaN' is not a number: not counted"),
    ]
    counters = invoice.accounting.counters
    assert (counters.records_seen, counters.quarantined, counters.files_read) == (3, 3, 1)


@pytest.mark.parametrize(
    ("name", "body", "reason"),
    [
        ("cur.parquet", b"PAR1 not really", "not a Parquet file: "),
        ("cur.csv.gz", gzip.compress(b"a,b\n1,2\n")[:-9], "truncated gzip: the file ends"),
        ("cur.csv.gz", gzip.compress(b"a,b\n1,2\n"), "no column bill_billing_period_start_date"),
    ],
)
def test_a_file_that_cannot_be_read_is_quarantined_whole(
    tmp_path: Path, name: str, body: bytes, reason: str
) -> None:
    root = tmp_path / "exports"
    write_export(root, cur_frame(), manifest=False)
    (root / name).write_bytes(body)
    invoice = _read(root)
    assert (invoice.requests, invoice.net) == (D(60), D("1.5100035"))
    [entry] = invoice.accounting.quarantine
    assert (entry.source_uri, entry.locator) == (str(root / name), "file")
    assert reason in entry.reason
    assert invoice.accounting.counters.files_read == 2


def test_a_focus_file_read_as_cur_names_the_format(tmp_path: Path) -> None:
    write_export(tmp_path / "exports", focus_frame(), parts=1, manifest=False)
    [entry] = _read(tmp_path / "exports").accounting.quarantine
    assert entry.reason == (
        "not a CUR 2.0 export (format = 'cur2'): no column bill_billing_period_start_date"
    )


def test_an_export_in_s3_reads_as_the_same_invoice(aws: str, tmp_path: Path) -> None:
    local = tmp_path / "local"
    write_export(local, cur_frame(), "csv.gz", name="cur-csv")
    write_export(local, cur_frame(), "parquet", name="cur-parquet", month="2026-09")
    s3 = boto3.client("s3", endpoint_url=aws)
    s3.create_bucket(Bucket="billing")
    for path in sorted(local.rglob("*")):
        if path.is_file():
            s3.upload_file(str(path), "billing", f"exports/{path.relative_to(local)}")
    invoice = _read_s3("s3://billing/exports", tmp_path)
    assert invoice.regions == CUR_REGIONS
    assert invoice.tax == Fraction(4, 100)
    inputs = sorted((i.uri, i.digest) for i in invoice.accounting.inputs)
    etags = {
        f"s3://billing/{o['Key']}": o["ETag"].strip('"')
        for o in s3.list_objects_v2(Bucket="billing")["Contents"]
    }
    assert inputs == sorted((uri, etags[uri]) for uri, _ in inputs)
    assert [uri.rsplit("/", 1)[1] for uri, _ in inputs] == [
        "cur-csv-00001.csv.gz",
        "cur-csv-00002.csv.gz",
    ]
    assert list((tmp_path / "scratch").iterdir()) == []


def _read_s3(uri: str, tmp_path: Path) -> Invoice:
    source = InvoiceConfig(uris=(uri,))
    return read_invoice(source, OCT, "USD", tmp_path / "scratch")


def test_the_fixture_is_what_its_docstring_says() -> None:
    """The hand-built month's own arithmetic, as the tests rely on it."""
    october = [line for line in CUR_LINES if line[0] == "2026-10" and line[1] == "AmazonRDS"]
    rds_net = sum(D(repr(line[5])) for line in october if line[3] != "Tax")
    assert rds_net == D("15.100035") == 10 * D("1.5100035")
