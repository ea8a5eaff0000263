"""What AWS invoiced: the month's AmazonRDS lines of AWS Data Exports (SPEC 8).

Reads CUR 2.0 exports (Parquet or gzip CSV) and AWS's FOCUS 1.0 export, local or ``s3://``,
in the delivery layout ``<prefix>/<export>/data/BILLING_PERIOD=YYYY-MM/*`` with its
``metadata/BILLING_PERIOD=YYYY-MM/<export>-Manifest.json``, or loose files. Only the files of
the billed month are read (by their ``BILLING_PERIOD=`` folder when they have one) and of
them only the lines of the month's billing period and of AmazonRDS; a manifest, when there
is one, says which data files make its export.

Money is exact: CUR's Parquet files hold costs as DOUBLE, which are read as their shortest
decimal text (the text that reads back as the same double, ``repr``), CSV cells as written,
and summed as ``Decimal``; nothing is rounded here (the tie-out rounds once, at the end). A
line that cannot be read (a cost that is no number, another currency) is quarantined with
its file and line; a file that cannot be read is quarantined whole.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import polars as pl

from metering.collect.files import InputObject, Reader, is_s3, list_objects, read_small
from metering.collect.text import Text
from metering.errors import InputError
from metering.month import Month
from metering.schemas import (
    Collected,
    InputFile,
    Invoice,
    InvoiceRegion,
    QuarantineEntry,
    SharedLine,
)

if TYPE_CHECKING:
    from metering.config import InvoiceConfig, SharedCostConfig

Format = Literal["cur2", "focus"]

PRODUCT = "AmazonRDS"
# FOCUS names the service; AWS's FOCUS export also gives its code (x_ServiceCode).
PRODUCT_NAMES = frozenset({PRODUCT, "Amazon Relational Database Service"})
DATA_SUFFIXES = (".parquet", ".csv.gz", ".csv")
MANIFEST_SUFFIX = "Manifest.json"
MAX_MANIFEST_BYTES = 8 * 1024 * 1024

# Where each value a line gives is in each format: the first column of the list that a file
# has (column names are matched without regard to case). Region may be missing.
COLUMNS: dict[Format, dict[str, tuple[str, ...]]] = {
    "cur2": {
        "billing_period": ("bill_billing_period_start_date",),
        "product": ("line_item_product_code",),
        "usage_type": ("line_item_usage_type",),
        "line_type": ("line_item_line_item_type",),
        "usage": ("line_item_usage_amount",),
        "cost": ("line_item_unblended_cost",),
        "currency": ("line_item_currency_code",),
        "region": ("product_region_code",),
        "resource_id": ("line_item_resource_id",),
        "usage_start": ("line_item_usage_start_date",),
        "usage_end": ("line_item_usage_end_date",),
    },
    "focus": {
        "billing_period": ("BillingPeriodStart",),
        "product": ("x_ServiceCode", "ServiceName"),
        "usage_type": ("x_UsageType", "SkuMeter"),  # FOCUS 1.2 calls it SkuMeter
        "line_type": ("ChargeCategory",),
        "usage": ("ConsumedQuantity",),
        "cost": ("BilledCost",),
        "currency": ("BillingCurrency",),
        "region": ("RegionId",),
        "resource_id": ("ResourceId",),
        "usage_start": ("ChargePeriodStart",),
        "usage_end": ("ChargePeriodEnd",),
    },
}
OPTIONAL = frozenset({"region", "resource_id", "usage_start", "usage_end"})

# How each line type counts (README, "Tying out to the AWS invoice"). Requests are the usage
# amount of the usage kinds only; every kind but tax is in the net cost. Types not listed
# (AWS adds some now and then) count as other charges: they change what is paid.
CUR_KINDS = {
    "Usage": "usage",
    "DiscountedUsage": "usage",  # covered by a Reserved Instance
    "SavingsPlanCoveredUsage": "usage",  # at its On-Demand cost, cancelled by the negation
    "SavingsPlanNegation": "savings_plan_negation",
    "Credit": "credits",
    "Refund": "refunds",
    "Tax": "tax",
}
FOCUS_KINDS = {
    "Usage": "usage",  # BilledCost is what is paid: after Savings Plans and discounts
    "Credit": "credits",
    "Adjustment": "refunds",
    "Tax": "tax",
    "Purchase": "other_charges",
}


def _kind(line_type: str, format: Format) -> str:
    if format == "focus":
        return FOCUS_KINDS.get(line_type, "other_charges")
    if line_type in CUR_KINDS:
        return CUR_KINDS[line_type]
    return "discounts" if line_type.endswith("Discount") else "other_charges"


def like(patterns: Iterable[str]) -> Callable[[str], bool]:
    """Whether a usage type matches one of the LIKE ``patterns`` (``%``: any run of
    characters, ``_``: one), without regard to case."""
    parts = []
    for pattern in patterns:
        parts.append(
            "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
        )
    compiled = re.compile("|".join(f"(?:{p})" for p in parts), re.IGNORECASE | re.DOTALL)
    return lambda usage_type: compiled.fullmatch(usage_type) is not None


_PERIOD = re.compile(r"(?:^|/)billing_period=([^/]*)(?:/|$)", re.IGNORECASE)


def _period(name: str) -> str | None:
    """The billing period a file's ``BILLING_PERIOD=`` folder names (None: it has none)."""
    found = _PERIOD.search(name)
    return found.group(1) if found else None


def _export_of(name: str, folder: str) -> str:
    """The export folder a data file or manifest lies in (the part before ``data/`` or
    ``metadata/``); "" for a file outside the delivery layout."""
    head, sep, _ = f"/{name}".rpartition(f"/{folder}/")
    return head if sep else ""


def _tail(path: str) -> str:
    """A data file's path after its export's ``data/`` folder: what a manifest and a
    listing agree on, whatever the bucket or local folder they are under."""
    return path.rpartition("/data/")[2]


@dataclass(slots=True)
class _Files:
    """The data files of the month to read, and what was found wrong on the way."""

    data: list[InputObject] = field(default_factory=list)
    problems: list[QuarantineEntry] = field(default_factory=list)
    manifests: int = 0
    unlisted: int = 0


def find_invoice_files(uris: Iterable[str], month: Month) -> _Files:
    """The data files of ``month`` under ``uris`` (each file once), as their manifests list
    them; a file a manifest lists that is missing is an ``InputError``."""
    found = _Files()
    seen: set[str] = set()
    wanted = str(month)

    def keep(name: str) -> bool:
        period = _period(name)
        return (period is None or period == wanted) and (
            name.endswith(DATA_SUFFIXES) or name.endswith(MANIFEST_SUFFIX)
        )

    for uri in uris:
        listing = list_objects(uri, keep)
        found.problems.extend(listing.refused)
        objects = [o for o in listing.objects if o.uri not in seen]
        seen.update(o.uri for o in objects)
        manifests: dict[str, list[InputObject]] = {}
        data: dict[str, list[InputObject]] = {}
        for obj in objects:
            if obj.name.endswith(MANIFEST_SUFFIX):
                manifests.setdefault(_export_of(obj.name, "metadata"), []).append(obj)
            else:
                data.setdefault(_export_of(obj.name, "data"), []).append(obj)
        for export in sorted(data.keys() | manifests.keys()):
            files = data.get(export, [])
            listed = _listed(uri, export, manifests.get(export, []), found)
            if listed is None:
                found.data.extend(files)
                continue
            have = {_tail(o.uri): o for o in files}
            missing = sorted(listed - have.keys())
            if missing:
                raise InputError(
                    f"{uri}: the Data Exports manifest of {export.lstrip('/') or uri} lists "
                    f"{missing[0]}, which is not there ({len(missing)} missing); the delivery "
                    "is incomplete: bill again when it is whole"
                )
            for tail, obj in sorted(have.items()):
                if tail in listed:
                    found.data.append(obj)
                else:
                    found.unlisted += 1
                    found.problems.append(
                        QuarantineEntry(
                            obj.uri,
                            "file",
                            "not listed in its export's manifest (a file of an earlier "
                            "delivery?): not read",
                        )
                    )
    return found


def _listed(uri: str, export: str, manifests: list[InputObject], found: _Files) -> set[str] | None:
    """The data files (``_tail``) the export's manifest of the month lists; None when it
    has no usable manifest (every data file of the export is then read)."""
    if not manifests:
        return None
    if len(manifests) > 1:
        raise InputError(
            f"{uri}: {len(manifests)} Data Exports manifests of one month in "
            f"{export.lstrip('/') or uri} ({', '.join(m.name for m in manifests[:3])}): an "
            "export that creates a new file at each refresh keeps them all and meter cannot "
            "tell the newest; set the export to overwrite, or point [invoice] uris at one "
            "delivery's folder"
        )
    manifest = manifests[0]
    found.manifests += 1
    try:
        body = json.loads(read_small(manifest, MAX_MANIFEST_BYTES))
        files = body["dataFiles"]
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise TypeError("dataFiles is not a list of file names")
    except (InputError, ValueError, KeyError, TypeError) as exc:
        reason = f"not a Data Exports manifest ({type(exc).__name__}: {str(exc)[:80]}); "
        found.problems.append(
            QuarantineEntry(manifest.uri, "file", reason + "every data file beside it is read")
        )
        return None
    return {_tail(f) for f in files}


def read_invoice(
    source: InvoiceConfig,
    month: Month,
    currency: str,
    scratch: Path,
    shared: Sequence[SharedCostConfig] = (),
) -> Invoice:
    """What AWS invoiced for ``month``'s AmazonRDS lines under ``source.uris``, the Data
    API's (``source.data_api_usage_types``) per region, and the lines each ``shared`` cost
    takes; lines in another currency than ``currency`` are quarantined. ``scratch``: a
    folder for files fetched or gunzipped."""
    found = find_invoice_files(source.uris, month)
    invoice = Invoice(currency)
    accounting = invoice.accounting
    accounting.counters.files_read += found.manifests
    accounting.counters.unlisted_files += found.unlisted
    _quarantine(accounting, found.problems)
    data_api = like(source.data_api_usage_types)
    taker = _taker(shared, source.include_tax, month)
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="invoice-", dir=scratch) as folder:
        for number, obj in enumerate(found.data):
            try:
                path, digest = _local(obj, Path(folder) / str(number))
                lines = _lines(path, obj, source.format, month)
            except _Refused as exc:
                _quarantine(accounting, [QuarantineEntry(obj.uri, "file", str(exc))])
                continue
            accounting.counters.files_read += 1
            accounting.inputs.append(InputFile(obj.uri, f"invoice:{obj.name}", digest, obj.size))
            problems = _add(invoice, lines, source.format, data_api, taker)
            _quarantine(accounting, [QuarantineEntry(obj.uri, *p) for p in problems])
    return invoice


class _Refused(Exception):
    """A data file that cannot be read at all (its reason)."""


def _local(obj: InputObject, target: Path) -> tuple[Path, str]:
    """A local file holding ``obj``'s data (gunzipped for ``.csv.gz``), and its content
    fingerprint: a local Parquet or CSV file is read where it is."""
    gunzip = obj.name.endswith(".gz")
    try:
        if not gunzip and not is_s3(obj.uri):
            reader = Reader(obj)
            for _ in reader:
                pass
            return Path(obj.uri), reader.digest
        text = Text(obj)
        pieces: Iterator[bytes] = text.pieces() if gunzip else iter(text.reader)
        with target.open("wb") as out:
            for piece in pieces:
                out.write(piece)
    except InputError as exc:
        raise _Refused(f"cannot read it: {exc}") from None
    if text.damage is not None:
        raise _Refused(f"{text.damage}; the file is not read (a cut delivery?)")
    return target, text.reader.digest


def _lines(path: Path, obj: InputObject, format: Format, month: Month) -> pl.DataFrame:
    """The file's lines of AmazonRDS in the month's billing period, every value as text,
    with their ``locator`` (CSV line, Parquet row)."""
    parquet = obj.name.endswith(".parquet")
    try:
        scan = (  # a local name may hold [ or *: never a glob
            pl.scan_parquet(path, glob=False)
            if parquet
            else pl.scan_csv(path, infer_schema=False, glob=False)
        )
        names = scan.collect_schema().names()
    except (pl.exceptions.PolarsError, OSError) as exc:
        kind = "a Parquet" if parquet else "a CSV"
        raise _Refused(f"not {kind} file: {_short(exc)}") from None
    by_lower = {name.lower(): name for name in names}
    chosen = {}
    for value, candidates in COLUMNS[format].items():
        column = next((by_lower[c.lower()] for c in candidates if c.lower() in by_lower), None)
        if column is None and value not in OPTIONAL:
            export = "a CUR 2.0" if format == "cur2" else "an AWS FOCUS 1.0"
            raise _Refused(
                f"not {export} export (format = {format!r}): no column {' or '.join(candidates)}"
            )
        chosen[value] = column
    # Parquet rows count from 1; a CSV's first line is its header.
    offset, unit = (1, "row ") if parquet else (2, "line ")
    text = {
        value: (pl.col(column).cast(pl.String) if column else pl.lit(None, pl.String))
        for value, column in chosen.items()
    }
    products = list(PRODUCT_NAMES)
    try:
        return (
            scan.with_row_index("number", offset=offset)
            .select(locator=pl.lit(unit) + pl.col("number").cast(pl.String), **text)
            .filter(
                pl.col("billing_period").str.slice(0, 7) == str(month),
                pl.col("product").is_in(products),
            )
            .collect(engine="streaming")
        )
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise _Refused(f"cannot read it: {_short(exc)}") from None


def _short(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


Taker = Callable[[dict[str, str | None], str, Decimal], SharedLine | None]


def _taker(shared: Sequence[SharedCostConfig], include_tax: bool, month: Month) -> Taker:
    """Which ``[[shared_costs]]`` entry takes a line (the first whose usage types and
    clusters match; tax lines only with ``include_tax``): the line as it takes it, or None."""
    entries = [(entry, like(entry.usage_types), frozenset(entry.clusters)) for entry in shared]

    def take(row: dict[str, str | None], kind: str, cost: Decimal) -> SharedLine | None:
        if kind == "tax" and not include_tax:
            return None
        usage_type, resource = row["usage_type"] or "", row["resource_id"] or ""
        for entry, matches, clusters in entries:
            if matches(usage_type) and (not clusters or not resource or resource in clusters):
                day = _day(row["usage_start"], row["usage_end"], month)
                return SharedLine(entry.name, resource, day, cost)
        return None

    return take


def _day(start: str | None, end: str | None, month: Month) -> str | None:
    """The day of the month a line's usage period lies in (an hourly or daily line), or
    None when it spans more than a day (a monthly line) or is not dated."""
    if not start or len(start) < 10:
        return None
    day = start[:10]
    if day[:7] != str(month):
        return None
    if not end or len(end) < 10:
        return day
    end_day, end_time = end[:10], end[11:19]
    if end_day == day:
        return day
    try:
        next_day = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    except ValueError:
        return None
    return day if end_day == next_day and end_time in ("", "00:00:00") else None


def _add(
    invoice: Invoice,
    lines: pl.DataFrame,
    format: Format,
    data_api: Callable[[str], bool],
    take: Taker | None = None,
) -> list[tuple[str, str]]:
    """Add ``lines`` to ``invoice``; return the (locator, reason) of those that cannot be."""
    problems = []
    for row in lines.iter_rows(named=True):
        locator = row["locator"]
        line_currency = row["currency"] or invoice.currency
        if line_currency != invoice.currency:
            reason = f"in {line_currency[:80]!r}; [pricing] currency is {invoice.currency}"
            problems.append((locator, f"{reason}: not counted"))
            continue
        try:
            cost = _amount(row["cost"], "cost")
            usage = _amount(row["usage"], "usage amount")
        except ValueError as exc:
            problems.append((locator, str(exc)))
            continue
        usage_type = row["usage_type"] or ""
        kind = _kind(row["line_type"] or "", format)
        if take is not None and not data_api(usage_type):
            taken = take(row, kind, cost)
            if taken is not None:
                invoice.shared.append(taken)
        if kind == "tax":
            if data_api(usage_type):
                _region(invoice, row["region"]).tax += cost
            elif not usage_type:
                invoice.rds_tax += cost
            continue
        invoice.rds_net += cost
        if not data_api(usage_type):
            continue
        region = _region(invoice, row["region"])
        region.lines += 1
        if kind == "usage":
            region.requests += usage
            region.usage_cost += cost
        else:
            setattr(region, kind, getattr(region, kind) + cost)
    return problems


def _region(invoice: Invoice, region: str | None) -> InvoiceRegion:
    return invoice.regions.setdefault(region or "", InvoiceRegion())


def _amount(text: str | None, what: str) -> Decimal:
    """A cost or quantity as an exact decimal (empty: 0)."""
    if text is None or not text.strip():
        return Decimal(0)
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise ValueError(f"{what} {text[:80]!r} is not a number: not counted")
    return value


def _quarantine(accounting: Collected, entries: list[QuarantineEntry]) -> None:
    """Each entry is one record seen and quarantined (SPEC 5)."""
    accounting.quarantine.extend(entries)
    accounting.counters.records_seen += len(entries)
    accounting.counters.quarantined += len(entries)
