"""What the steps of a bill hand each other, in one place: the columns of each step's
relation, the ``Relation`` itself, what one call is, and the run's plain records.

collect         -> RECORDS (metering records) and EVENTS (CloudTrail Data API events)
attribute       -> JOINED: one row per call, either source or both, with its tenant
rate            -> RATED: + units, whether it is in the month and billed
store           -> the warehouse tables of SPEC section 6 (``calls``: the billed RATED rows)

collect.invoice -> ``Invoice``: what AWS invoiced for the month's Data API requests (SPEC 8);
rate.tieout     -> INVOICE: the tie-out of meter's bill with it (the ``invoice`` table)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from decimal import Context, Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

if TYPE_CHECKING:
    from metering.month import Month
    from metering.overhead import Overhead
    from metering.rate import Bill

TS = pl.Datetime("ms", "UTC")
Schema = dict[str, pl.DataType]
# A rounded amount (the warehouse's store.schema.AMOUNT): to its currency's minor unit, 0
# to 4 decimals (rate.money); an exact cost is Decimal(38, 12).
AMOUNT_DIGITS = (20, 4)  # precision, scale
AMOUNT = pl.Decimal(*AMOUNT_DIGITS)


@dataclass(frozen=True, slots=True)
class Relation:
    """What one step of a bill hands the next: rows the engine can read, and their columns.

    ``sql`` is what a query reads them from: a table's or view's name, or a query in
    parentheses. ``str(relation)`` is that, so steps write ``f"FROM {relation}"``.
    """

    sql: str
    columns: Schema

    @classmethod
    def query(cls, sql: str, columns: Schema) -> Relation:
        """The rows of the query ``sql``, which has ``columns``."""
        return cls(f"({sql})", columns)

    def __str__(self) -> str:
        return self.sql


# How the sources' rows become calls (SPEC 2): CloudTrail events are one per eventID, then
# one per request id; metering records are one per request id (its newest version); an
# event and a record of the same request id are one call.
EVENT_KEYS = ("event_id", "request_id")
RECORD_KEY = "request_id"
RECORD_VERSION = "written_us"  # of a request_id's records, only the newest versions count


def key_of(column: str, value: str) -> str:
    """SQL: the call key of a call known by ``column`` (``request_id`` or ``event_id``) =
    ``value`` (see ``call_key``)."""
    return f"'{column[0]}:' || {value}"


def call_key(alias: str = "") -> str:
    """SQL: a call's identity, over a relation with ``request_id`` and ``event_id``.

    A call is its request (the Data API's RequestId, which both sources carry): a
    CloudTrail event without a request id is a call of its own, known by its eventID. The
    join's dedup, the re-bill's closure and the warehouse all know a call by this.
    """
    at = f"{alias}." if alias else ""
    keys = (key_of(column, f"{at}{column}") for column in ("request_id", "event_id"))
    return f"coalesce({', '.join(keys)})"


# What the application recorded per call (SPEC 2.2); one row per record, before dedup.
RECORDS: dict[str, pl.DataType] = {
    "request_id": pl.Utf8(),
    "tenant_id": pl.Utf8(),
    "ts": TS,
    "operation": pl.Utf8(),
    "request_bytes": pl.Int64(),
    "response_bytes": pl.Int64(),
    "resource_arn": pl.Utf8(),
    "principal_arn": pl.Utf8(),
    "error_code": pl.Utf8(),  # the call's error as the application saw it; null: success
    # When this version of the record was written, in microseconds since the epoch: an
    # incremental export's WriteTimestampMicros, a full export's exportTime (its items are
    # as of then); null when unknown (a live table, an export without a summary), which
    # ranks below any known time. Of several versions of one request_id the newest counts.
    "written_us": pl.Int64(),
}

# What AWS saw (SPEC 2.1): Data API events only, one row per record, before dedup.
EVENTS: dict[str, pl.DataType] = {
    "event_id": pl.Utf8(),
    "request_id": pl.Utf8(),
    "event_time": TS,
    "event_source": pl.Utf8(),
    "operation": pl.Utf8(),
    "error_code": pl.Utf8(),
    "user_arn": pl.Utf8(),
    "issuer_arn": pl.Utf8(),
    "source_identity": pl.Utf8(),
    "secret_arn": pl.Utf8(),
    "resource_arn": pl.Utf8(),
}

# One row per distinct call of either source or both, attributed (attribute.joined), before
# the month's billable calls are selected.
JOINED: dict[str, pl.DataType] = {
    "request_id": pl.Utf8(),
    "event_id": pl.Utf8(),
    "call_time": TS,
    "operation": pl.Utf8(),
    "error_code": pl.Utf8(),  # CloudTrail's errorCode, else the record's error_code
    "error_seen_by": pl.Utf8(),  # cloudtrail | metering | both; null: no error
    "request_bytes": pl.Int64(),
    "response_bytes": pl.Int64(),
    "source": pl.Utf8(),
    "conflict": pl.Utf8(),  # how copies of the call disagree (null: they do not)
    "tenant_id": pl.Utf8(),
    "attribution": pl.Utf8(),
    "resource_arn": pl.Utf8(),  # the call's cluster (SPEC 2.1), what shared costs split by
}

# Every call of JOINED, rated (rate.rated): its units, and whether it is in the month and
# billed. The warehouse keeps them (call_rows) for the next bill of the month.
RATED: dict[str, pl.DataType] = {
    "request_id": pl.Utf8(),
    "event_id": pl.Utf8(),
    "event_time": TS,
    "tenant_id": pl.Utf8(),
    "operation": pl.Utf8(),
    "error_code": pl.Utf8(),
    "error_seen_by": pl.Utf8(),
    "request_bytes": pl.Int64(),
    "response_bytes": pl.Int64(),
    "units": pl.Int64(),
    "attribution": pl.Utf8(),
    "source": pl.Utf8(),
    "size_estimated": pl.Boolean(),
    "conflict": pl.Utf8(),
    "in_month": pl.Boolean(),
    "billed": pl.Boolean(),
    "resource_arn": pl.Utf8(),
}

# One row per billed call, as the warehouse's `calls` view shows it (SPEC 6): the month, its
# run, and what RATED says of the call but whether it erred, disagreed, was in the month
# and billed (it is).
CALLS: dict[str, pl.DataType] = {
    "month": pl.Utf8(),
    "run_id": pl.Utf8(),
    **{
        name: dtype
        for name, dtype in RATED.items()
        if name
        not in ("error_code", "error_seen_by", "conflict", "in_month", "billed", "resource_arn")
    },
}

UNATTRIBUTED = "__unattributed__"

# How long work reports how far it got: (stage, done, total).
Progress = Callable[[str, int, int], None]
# The total of a stage that reports a share, in per cent (a long statement in the warehouse:
# DuckDB's own estimate), not a count of things done.
PERCENT = 100


def empty(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """An empty frame with the given columns."""
    return pl.DataFrame(schema=schema)


def decimal_column(values: Sequence[Decimal], precision: int, scale: int) -> pl.Series:
    """``values`` as a ``Decimal(precision, scale)`` column, exactly: a value with more
    places than ``scale`` is refused, never cut.

    Built from text, because polars builds a column of Python ``Decimal`` values by way
    of numpy, 0.1 s of import for a few short columns.
    """
    context = Context(prec=precision)
    quantum = Decimal(1).scaleb(-scale)
    for value in values:
        try:
            exact = value.quantize(quantum, context=context) == value
        except InvalidOperation:
            raise ValueError(f"{value} does not fit DECIMAL({precision}, {scale})") from None
        if not exact:
            raise ValueError(f"{value} has more than {scale} decimal places")
    text = pl.Series([format(value, "f") for value in values], dtype=pl.String)
    return text.cast(pl.Decimal(precision, scale), strict=True)


@dataclass(frozen=True, slots=True)
class Withheld:
    """A metering record quarantined only for a size past its bound (SPEC 2.2): what it
    would have been billed on, so the bill can say how many units the quarantine holds
    back."""

    ts: str  # as the record holds it (UTC ISO-8601 with milliseconds)
    operation: str
    request_bytes: int
    response_bytes: int


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    """One piece of input that could not be billed, and why."""

    source_uri: str
    locator: str
    reason: str
    withheld: Withheld | None = None

    def as_list(self) -> list[object]:
        """As a spool entry keeps it (JSON); ``of`` reads it back."""
        listed: list[object] = [self.source_uri, self.locator, self.reason]
        if self.withheld is not None:
            w = self.withheld
            listed.append([w.ts, w.operation, w.request_bytes, w.response_bytes])
        return listed

    @classmethod
    def of(cls, listed: list[Any]) -> QuarantineEntry:
        withheld = Withheld(*listed[3]) if len(listed) > 3 else None
        return cls(listed[0], listed[1], listed[2], withheld)


@dataclass(frozen=True, slots=True)
class InputFile:
    """One input object, for the run's inputs fingerprint."""

    uri: str
    name: str  # stable name: relative to its configured root (same on every machine)
    digest: str  # content SHA-256, or the S3 ETag
    size: int


@dataclass(slots=True)
class Counters:
    """SPEC section 5: every record read lands in exactly one bucket.

    records_seen == quarantined + skipped_non_data_api + skipped_operations + duplicates
                    + out_of_month + errored_unbilled + calls_billed + joined
                    + deleted_records
    where ``joined`` counts the second record of each call seen in both sources,
    ``errored_unbilled`` is ``errored_calls`` unless ``bill_errors`` is on, and
    ``deleted_records`` counts the deletes of incremental DynamoDB exports (a TTL expiry:
    it never un-bills a call). Older versions of a record (an item updated, read from
    several exports) are ``duplicates``: each request_id counts once, in its newest version.
    """

    files_read: int = 0
    records_seen: int = 0
    calls_billed: int = 0
    skipped_non_data_api: int = 0
    skipped_operations: int = 0
    duplicates: int = 0
    errored_calls: int = 0
    out_of_month: int = 0
    quarantined: int = 0
    joined: int = 0
    deleted_records: int = 0
    aws_retries: int = 0  # not records: AWS calls retried (throttling, 5xx), for the report
    # Not records either: export data files that their export's manifests do not list,
    # calls whose copies (same eventID or request id) disagree, and calls in both sources
    # that only one of them saw fail.
    unlisted_files: int = 0
    conflicting_duplicates: int = 0
    error_disagreements: int = 0
    # Not records: units the month's records quarantined for a size past its bound would
    # have billed (rate.select.withheld_units).
    withheld_units: int = 0

    def add(self, other: Counters) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(slots=True)
class Collected:
    """What a collector hands on: a frame plus everything needed to account for it."""

    frame: pl.DataFrame  # the rows, when kept in memory
    counters: Counters = field(default_factory=Counters)
    quarantine: list[QuarantineEntry] = field(default_factory=list)
    inputs: list[InputFile] = field(default_factory=list)
    parquet: list[Path] = field(default_factory=list)  # the rows, when spooled to disk
    parquet_rows: int = 0  # how many rows those files hold
    reusable: bool = True  # False: a read failed and may not next time (never spooled)

    @classmethod
    def refused(cls, entries: Sequence[QuarantineEntry]) -> Collected:
        """Inputs quarantined whole (a file that cannot be read), each one record seen."""
        return cls(
            pl.DataFrame(),
            Counters(records_seen=len(entries), quarantined=len(entries)),
            list(entries),
        )

    @classmethod
    def merged(cls, parts: Iterable[Collected]) -> Collected:
        """All of ``parts`` as one, in order (frames concatenated, the rest added up)."""
        merged = cls(pl.DataFrame())
        frames = []
        for part in parts:
            merged._account(part)
            if part.frame.width:
                frames.append(part.frame)
        if frames:
            merged.frame = pl.concat(frames, how="vertical", rechunk=True)
        return merged

    def extend(self, other: Collected) -> None:
        if other.frame.width:
            self.frame = (
                pl.concat([self.frame, other.frame], how="vertical")
                if self.frame.width
                else other.frame
            )
        self._account(other)

    def _account(self, other: Collected) -> None:
        """Add what ``other`` accounts for besides its frame."""
        self.counters.add(other.counters)
        self.quarantine.extend(other.quarantine)
        self.inputs.extend(other.inputs)
        self.parquet.extend(other.parquet)
        self.parquet_rows += other.parquet_rows
        self.reusable = self.reusable and other.reusable


# The tie-out of a month with the AWS invoice (rate.tieout, the `invoice` table): a row per
# region of the invoice's Data API lines and one for the month (region "all"); meter's own
# figures only on the month's row (calls carry no region). Variances are meter - AWS,
# percentages of AWS's figure. Components are exact sums (12 places), the rest rounded.
INVOICE: dict[str, pl.DataType] = {
    "month": pl.Utf8(),
    "region": pl.Utf8(),
    "invoiced_requests": pl.Decimal(38, 6),
    "meter_units": pl.Int64(),
    "request_variance": pl.Decimal(38, 6),
    "request_variance_pct": pl.Decimal(38, 4),
    "invoiced_net_cost": AMOUNT,
    "modelled_cost": AMOUNT,
    "cost_variance": AMOUNT,
    "cost_variance_pct": pl.Decimal(38, 4),
    "usage_cost": pl.Decimal(38, 12),
    "savings_plan_negation": pl.Decimal(38, 12),
    "credits": pl.Decimal(38, 12),
    "refunds": pl.Decimal(38, 12),
    "discounts": pl.Decimal(38, 12),
    "other_charges": pl.Decimal(38, 12),
    "tax": pl.Decimal(38, 12),
    "currency": pl.Utf8(),
    "lines": pl.Int64(),
    "allocate": pl.Utf8(),
    "allocated_total": AMOUNT,
    "tolerance": pl.Decimal(18, 6),
    "within_tolerance": pl.Boolean(),
    "run_id": pl.Utf8(),
}
MONTH_ROW = "all"  # the `invoice` table's region of a month's own row

# Each tenant's charges (rate.shared, the `tenant_charges` table): the Data API's line and
# each shared cost's share; `quantity` is the tenant's driver (units, calls or bytes) on
# the charge's clusters, `clusters` those clusters (comma-separated ARNs).
TENANT_CHARGES: dict[str, pl.DataType] = {
    "month": pl.Utf8(),
    "tenant_id": pl.Utf8(),
    "charge": pl.Utf8(),
    "amount": AMOUNT,
    "driver": pl.Utf8(),
    "share": pl.Decimal(18, 12),
    "run_id": pl.Utf8(),
    "cost_exact": pl.Decimal(38, 12),
    "quantity": pl.Int64(),
    "currency": pl.Utf8(),
    "clusters": pl.Utf8(),
}
# Each [[shared_costs]] entry of a month (the `shared_costs` table): the invoice's lines it
# took and their exact cost; what was split over the tenants and what could not be.
SHARED_COSTS: dict[str, pl.DataType] = {
    "month": pl.Utf8(),
    "charge": pl.Utf8(),
    "driver": pl.Utf8(),
    "lines": pl.Int64(),
    "invoiced_cost": pl.Decimal(38, 12),
    "allocated": AMOUNT,
    "unallocated": AMOUNT,
    "unallocated_lines": pl.Int64(),
    "unallocated_resources": pl.Utf8(),
    "daily_lines": pl.Int64(),
    "currency": pl.Utf8(),
    "run_id": pl.Utf8(),
}


@dataclass(slots=True)
class InvoiceRegion:
    """What AWS invoiced for the Data API in one region of a month: exact sums of the lines
    of each kind (README, "Tying out to the AWS invoice", says which line types are which)."""

    requests: Decimal = Decimal(0)  # usage amount of the usage lines: requests as AWS metered
    usage_cost: Decimal = Decimal(0)  # Usage, DiscountedUsage, SavingsPlanCoveredUsage
    savings_plan_negation: Decimal = Decimal(0)
    credits: Decimal = Decimal(0)
    refunds: Decimal = Decimal(0)
    discounts: Decimal = Decimal(0)  # EdpDiscount, BundledDiscount, PrivateRateDiscount, ...
    other_charges: Decimal = Decimal(0)  # Fee, RIFee, Savings Plans fees, types new to meter
    tax: Decimal = Decimal(0)  # Tax lines with a Data API usage type
    lines: int = 0

    @property
    def net(self) -> Decimal:
        """What is paid for it before tax: every line type but tax."""
        return (
            self.usage_cost
            + self.savings_plan_negation
            + self.credits
            + self.refunds
            + self.discounts
            + self.other_charges
        )


@dataclass(frozen=True, slots=True)
class SharedLine:
    """A line of the invoice that a ``[[shared_costs]]`` entry takes (SPEC 8): its cost
    (every line type but tax, which counts only with ``include_tax``), the resource it names
    ("" when none) and its day (None: a line of a longer period, split by the month)."""

    charge: str
    resource_id: str
    day: str | None  # YYYY-MM-DD
    cost: Decimal


@dataclass(slots=True)
class Invoice:
    """The month's AmazonRDS lines of AWS Data Exports, summed: the Data API's per region,
    and what the Data API's share of the service's unitemised tax is reckoned from."""

    currency: str
    regions: dict[str, InvoiceRegion] = field(default_factory=dict)  # "" when unknown
    rds_net: Decimal = Decimal(0)  # every AmazonRDS line of the month but tax
    rds_tax: Decimal = Decimal(0)  # AmazonRDS tax lines without a usage type
    shared: list[SharedLine] = field(default_factory=list)  # the [[shared_costs]] lines
    accounting: Collected = field(default_factory=lambda: Collected(pl.DataFrame()))

    @property
    def requests(self) -> Decimal:
        return sum((r.requests for r in self.regions.values()), Decimal(0))

    @property
    def net(self) -> Decimal:
        """The Data API's net cost before tax, exact."""
        return sum((r.net for r in self.regions.values()), Decimal(0))

    @property
    def tax(self) -> Fraction:
        """The Data API's tax, exact: its own tax lines, and of the service's tax lines that
        name no usage type its share of the service's net cost."""
        own = Fraction(sum((r.tax for r in self.regions.values()), Decimal(0)))
        if not self.rds_tax or not self.rds_net:
            return own
        return own + Fraction(self.rds_tax) * Fraction(self.net) / Fraction(self.rds_net)


@dataclass(slots=True)
class BillResult:
    """What ``meter bill`` reports, and writes besides the calls."""

    month: Month
    run_id: str
    warehouse: Path
    bill: Bill
    tenant_month: pl.DataFrame
    counters: Counters
    quarantine: list[QuarantineEntry]
    unregistered: list[str] = field(default_factory=list)
    reused_files: int = 0  # input files decoded by an earlier run and reused
    decoded_files: int = 0
    joined_again: int | None = None  # calls new files touched; None: the month was joined
    conflicts: pl.DataFrame = field(default_factory=pl.DataFrame)  # request_id, event_id, reason
    tenant_day: pl.DataFrame = field(default_factory=pl.DataFrame)
    reconciliation: pl.DataFrame = field(default_factory=pl.DataFrame)
    overhead: Overhead | None = None  # what the month's evidence cost (an estimate)
    invoice: pl.DataFrame = field(default_factory=lambda: empty(INVOICE))  # the tie-out
    charges: pl.DataFrame = field(default_factory=lambda: empty(TENANT_CHARGES))
    shared_costs: pl.DataFrame = field(default_factory=lambda: empty(SHARED_COSTS))
    calls_at: str | None = None  # a Spark bill's calls: their Parquet folder (None: warehouse)

    @property
    def exit_code(self) -> int:
        """SPEC 5: 0 clean, 3 finished with quarantined input or copies that disagree."""
        return 3 if self.quarantine or self.conflicts.height else 0


@dataclass(slots=True)
class MonthSums:
    """What the engine that joined and rated a month's calls hands the pricing (which stays
    in Python whichever engine ran): sums over the rated calls, a few thousand rows.

    ``decided``: the counters the join and the selection decide (rate.select.counts);
    ``totals``, ``days``: per tenant, and per tenant and day, of the billed calls
    (rate.profile); ``reconciliation`` per day; ``conflicts``: the calls whose copies
    disagree; ``evidence``: the data events and metering writes of the month
    (overhead.counts); ``drivers``: per tenant, cluster and day, what shared costs are
    split by (rate.shared.cluster_drivers)."""

    decided: dict[str, int]
    totals: pl.DataFrame
    days: pl.DataFrame
    reconciliation: pl.DataFrame
    conflicts: pl.DataFrame
    evidence: dict[str, int]
    drivers: pl.DataFrame


def fingerprint(parts: list[tuple[str, str]]) -> str:
    """SHA-256 of named values, whatever their order."""
    digest = hashlib.sha256()
    for name, value in sorted(parts):
        digest.update(f"{name}\0{value}\n".encode())
    return digest.hexdigest()
