"""The one place that knows the order: collect -> match -> attribute -> rate -> store."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl

from metering import __version__
from metering.attribute import attributed, match
from metering.collect import Spool, collect_events, collect_records
from metering.collect.registry import read_registry
from metering.config import Config
from metering.month import Month
from metering.rate import Bill, call_units, measured_bytes, price
from metering.rate.profile import tenant_days, tenant_totals
from metering.schemas import EVENTS, RECORDS, UNATTRIBUTED, Collected, Counters, QuarantineEntry
from metering.store import MonthEvent, RunRows, connect, ensure_open, write_run
from metering.store.engine import Engine

UNATTRIBUTED_NAME = "Unattributed calls"
Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(slots=True)
class BillResult:
    """What ``meter bill`` reports."""

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

    @property
    def exit_code(self) -> int:
        """SPEC 5: 0 clean, 3 finished with quarantined input."""
        return 3 if self.quarantine else 0


def _fingerprint(parts: list[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for name, value in sorted(parts):
        digest.update(f"{name}\0{value}\n".encode())
    return digest.hexdigest()


def spool_folder(config: Config) -> Path:
    """Where decoded inputs are kept between runs: beside the warehouse."""
    return Path(config.warehouse.path).with_suffix(".spool")


def bill(
    config: Config, month: Month, progress: Progress | None = None, fresh: bool = False
) -> BillResult:
    """Bill ``month``: read every source, attribute, rate, and replace it in the warehouse.

    The warehouse is taken first and held to the end, so a second ``meter bill`` on it, or a
    closed month, fails at once, before any input is read. Input files an earlier run
    decoded are reused from the spool unless they changed (``fresh`` decodes all again).
    """
    warehouse = Path(config.warehouse.path)
    spool = Spool(spool_folder(config))
    with connect(warehouse) as con:
        ensure_open(con, str(month))
        if fresh:
            spool.clear()
        engine = Engine(con, spool_folder(config) / "scratch")
        rows, result = _rate_month(config, month, engine, spool, progress)
        write_run(con, str(month), rows, progress)
    result.reused_files, result.decoded_files = spool.reused, spool.decoded
    return result


def _rate_month(
    config: Config, month: Month, engine: Engine, spool: Spool, progress: Progress | None
) -> tuple[RunRows, BillResult]:
    """Everything ``bill`` writes and reports, computed from the inputs."""
    started = datetime.now(UTC)
    pricing = config.pricing
    registry = read_registry(config.tenants.registry)

    records = Collected(pl.DataFrame())
    if config.sources.metering is not None:
        records = collect_records(config.sources.metering, month, spool, progress)
    events = Collected(pl.DataFrame())
    if config.sources.cloudtrail is not None:
        events = collect_events(config.sources.cloudtrail, month, spool, progress)
    counters = Counters()
    counters.add(records.counters)
    counters.add(events.counters)
    inputs = records.inputs + events.inputs

    registry_digest = (
        hashlib.sha256(Path(config.tenants.registry).read_bytes()).hexdigest()
        if config.tenants.registry
        else ""
    )
    inputs_sha = _fingerprint(
        [(f.name, f.digest) for f in inputs] + [("<registry>", registry_digest)]
    )
    run_id = (
        f"{month}-"
        + _fingerprint([("month", str(month)), ("config", config.sha256), ("inputs", inputs_sha)])[
            :12
        ]
    )

    if progress is not None:
        progress("joining and rating", 0, 1)
    engine.load("_records_in", records.parquet, RECORDS)
    engine.load("_events_in", events.parquet, EVENTS)
    counters.duplicates = (
        engine.count("_records_in")
        - engine.create("_records", match.unique_records("_records_in"))
        + engine.count("_events_in")
        - engine.create("_events", match.unique_events("_events_in"))
    )
    engine.create("_joined", match.joined("_events", "_records"))
    window = {"start": month.start, "end": month.end}
    decided = engine.frame(
        match.counts("_joined", pricing.operations, pricing.bill_errors), window
    ).row(0, named=True)
    for name, value in decided.items():
        setattr(counters, name, int(value))
    _check_patterns(engine, config)
    units = call_units(pricing.measure, pricing.block_bytes, pricing.unknown_size_units)
    chosen = match.selected("_joined", pricing.operations, pricing.bill_errors)
    counters.calls_billed = engine.create(
        "_calls",
        f"""
        SELECT $month AS month, $run_id AS run_id, request_id, event_id,
               call_time AS event_time, tenant_id, operation, request_bytes, response_bytes,
               {units} AS units, attribution, source, source = 'cloudtrail' AS size_estimated
        FROM ({attributed(f"({chosen})", config.attribution.rules)})
        """,
        {**window, "month": str(month), "run_id": run_id},
    )
    totals = engine.frame(tenant_totals("_calls"))
    the_bill = price(
        dict(totals.select("tenant_id", "units").iter_rows()),
        pricing,
        config.attribution.unattributed,
    )
    collected_quarantine = records.quarantine + events.quarantine
    if progress is not None:
        progress("joining and rating", 1, 1)

    tenant_month, unregistered = _tenant_month(totals, the_bill, registry, str(month), run_id)
    days = engine.frame(tenant_days("_calls"))
    costs = [the_bill.day_cost(t, u) for t, u in days.select("tenant_id", "units").iter_rows()]
    days = days.with_columns(
        month=pl.lit(str(month)), cost_exact=pl.Series(costs, dtype=pl.Decimal(38, 12))
    )
    quarantine = sorted(collected_quarantine, key=lambda q: (q.source_uri, q.locator, q.reason))
    run = {
        "run_id": run_id,
        "month": str(month),
        "status": "billed",
        "started_at": started,
        "finished_at": datetime.now(UTC),
        "config_sha256": config.sha256,
        "inputs_sha256": inputs_sha,
        "total_calls": counters.calls_billed,
        "total_units": the_bill.total_units,
        "account_cost": the_bill.account_cost,
        "amount": the_bill.amount,
        "currency": the_bill.currency,
        **counters.as_dict(),
        "unregistered_tenants": unregistered,
        "meter_version": __version__,
        "executed_by": _who(),
    }
    rows = RunRows(
        run=run,
        calls="_calls",
        tenant_month=tenant_month,
        tenant_day=days,
        reconciliation=engine.frame(match.reconcile("_joined"), window).with_columns(
            month=pl.lit(str(month))
        ),
        quarantine=quarantine,
    )
    warehouse = Path(config.warehouse.path)
    result = BillResult(
        month, run_id, warehouse, the_bill, tenant_month, counters, quarantine, unregistered
    )
    return rows, result


def _check_patterns(engine: Engine, config: Config) -> None:
    """Refuse principal patterns the engine's regex dialect (RE2) cannot run."""
    from metering.attribute.principal import probe
    from metering.config import PrincipalRule
    from metering.errors import ConfigError

    for number, rule in enumerate(config.attribution.rules, start=1):
        if isinstance(rule, PrincipalRule) and (why := engine.refusal(probe(rule))):
            raise ConfigError(
                f"{config.path}: attribution rule {number} (principal): pattern {rule.pattern!r} "
                f"uses regex syntax meter cannot run (look-arounds and back-references are "
                f"not supported): {why}"
            )


def _who() -> str:
    """Who is running meter, for the audit trail."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def set_month_state(config: Config, month: Month, event: str, reason: str) -> MonthEvent:
    """Close or reopen ``month`` (``event`` = closed | reopened), recording who and why."""
    from metering.store import set_month_state as record

    return record(config.warehouse.path, str(month), event, _who(), reason)


def diff(config: Config, month: Month) -> tuple[list[int], pl.DataFrame]:
    """The last two runs of ``month`` per tenant: (their run numbers, before/after rows)."""
    from metering.store import diff_runs

    return diff_runs(config.warehouse.path, str(month))


@dataclass(frozen=True, slots=True)
class Health:
    """Whether a billed month is clean enough to close without a human look."""

    quarantined: int
    matched: int
    unmatched: int  # calls seen in only one source (when both are configured)
    tolerance: float

    @property
    def unmatched_share(self) -> float:
        seen = self.matched + self.unmatched
        return self.unmatched / seen if seen else 0.0

    @property
    def problems(self) -> list[str]:
        out = []
        if self.quarantined:
            out.append(f"{self.quarantined} input(s) quarantined (see the quarantine table)")
        if self.unmatched_share > self.tolerance:
            out.append(
                f"{self.unmatched_share:.2%} of calls are in only one source "
                f"(tolerance {self.tolerance:.2%}; see the reconciliation table)"
            )
        return out


def health(config: Config, month: Month, tolerance: float) -> Health:
    """Quarantine and reconciliation of the month's newest run."""
    from metering.store import read_month

    path = config.warehouse.path
    quarantined = read_month(path, "quarantine", str(month), "source_uri").height
    days = read_month(path, "reconciliation", str(month), "day")
    both = config.sources.cloudtrail is not None and config.sources.metering is not None
    totals = days.select(pl.col("matched", "cloudtrail_only", "metering_only").sum())
    matched, trail_only, records_only = totals.row(0) if days.height else (0, 0, 0)
    unmatched = int(trail_only) + int(records_only) if both else 0
    return Health(quarantined, int(matched), unmatched, tolerance)


def _tenant_month(
    totals: pl.DataFrame, the_bill: Bill, registry: pl.DataFrame, month: str, run_id: str
) -> tuple[pl.DataFrame, list[str]]:
    """The monthly cost profile rows, named from the registry."""
    names = registry.select("tenant_id", "tenant_name", "cost_center", registered=pl.lit(True))
    rows = totals.join(names, on="tenant_id", how="left")
    unregistered = sorted(
        t for t in rows.filter(pl.col("registered").is_null())["tenant_id"] if t != UNATTRIBUTED
    )
    zero = Decimal(0)
    lines = [the_bill.lines.get(t) for t in rows["tenant_id"]]
    rows = rows.with_columns(
        month=pl.lit(month),
        run_id=pl.lit(run_id),
        currency=pl.lit(the_bill.currency),
        tenant_name=pl.when(pl.col("tenant_id") == UNATTRIBUTED)
        .then(pl.lit(UNATTRIBUTED_NAME))
        .otherwise(pl.col("tenant_name").fill_null("")),
        cost_center=pl.col("cost_center").fill_null(""),
        registered=pl.col("registered").fill_null(False),
        cost_exact=pl.Series(
            [x.cost_exact if x else zero for x in lines], dtype=pl.Decimal(38, 12)
        ),
        amount=pl.Series([x.amount if x else zero for x in lines], dtype=pl.Decimal(18, 2)),
        share=pl.Series([the_bill.share(t) for t in rows["tenant_id"]], dtype=pl.Decimal(18, 12)),
    )
    return rows.sort("tenant_id"), unregistered


def export(config: Config, month: Month, format: str) -> bytes:
    """A billed month as export bytes (``finance`` CSV or FinOps ``focus`` CSV)."""
    from metering.errors import UsageError
    from metering.report import finance_csv
    from metering.store import read_month

    rows = read_month(config.warehouse.path, "tenant_month", str(month), "tenant_id")
    if rows.is_empty():
        raise UsageError(
            f"{month} is not billed in {config.warehouse.path}; "
            f"run `meter bill --month {month}` first"
        )
    if format == "finance":
        return finance_csv(rows)
    if format == "focus":
        from metering.report import focus_csv
        from metering.store.queries import tenant_attribution

        return focus_csv(
            rows,
            tenant_attribution(config.warehouse.path, str(month)),
            (month.start, month.end),
            config.pricing.block_bytes,
        )
    raise UsageError(f"--format {format!r}: choose finance or focus")


@dataclass(frozen=True, slots=True)
class MonthReport:
    """A billed month as ``meter report`` shows it (and notebooks read it)."""

    month: Month
    run: dict[str, object]  # the month's latest bill_runs row
    lines: pl.DataFrame  # tenant_month rows, by tenant
    savings: pl.DataFrame  # edge_savings rows + tenant_name, cost_saved (most saved first)
    block_bytes: int
    margin_bytes: int

    @property
    def currency(self) -> str:
        return str(self.run["currency"])

    @property
    def calls(self) -> int:
        return int(self.lines["calls"].sum())

    @property
    def units(self) -> int:
        return int(self.lines["units"].sum())

    @property
    def amount(self) -> Decimal:
        """Sum of the lines' billed amounts (== the account total rounded half-up)."""
        return sum((Decimal(a) for a in self.lines["amount"]), Decimal(0))

    @property
    def account_cost(self) -> Decimal:
        return Decimal(str(self.run["account_cost"]))

    @property
    def unattributed(self) -> Unattributed:
        """The unattributed line (zeros when every call was attributed)."""
        row = self.lines.filter(pl.col("tenant_id") == UNATTRIBUTED)
        units = int(row["units"].sum())
        return Unattributed(
            calls=int(row["calls"].sum()),
            units=units,
            amount=sum((Decimal(a) for a in row["amount"]), Decimal(0)),
            unit_share=Decimal(units) / Decimal(self.units) if self.units else Decimal(0),
        )


@dataclass(frozen=True, slots=True)
class Unattributed:
    """The month's calls no rule could attribute to a tenant."""

    calls: int
    units: int
    amount: Decimal  # its billed line (0 under share_pro_rata: tenants carry it)
    unit_share: Decimal  # its share of the month's units, 0..1


def _billed_lines(config: Config, month: Month) -> pl.DataFrame:
    from metering.errors import UsageError
    from metering.store import read_month

    rows = read_month(config.warehouse.path, "tenant_month", str(month), "tenant_id")
    if rows.is_empty():
        raise UsageError(
            f"{month} is not billed in {config.warehouse.path}; "
            f"run `meter bill --month {month}` first"
        )
    return rows


def report(config: Config, month: Month) -> MonthReport:
    """A billed month's lines, totals, unattributed share and payload-edge savings."""
    from fractions import Fraction

    from metering.rate.edges import default_margin, edge_savings
    from metering.rate.money import round_half_up
    from metering.store.queries import billed_run, payload_sizes

    lines = _billed_lines(config, month)
    path = config.warehouse.path
    run = billed_run(path, str(month)) or {}
    pricing = config.pricing
    margin = default_margin(pricing.block_bytes)
    savings = edge_savings(
        payload_sizes(path, str(month), measured_bytes(pricing.measure)),
        pricing.block_bytes,
        margin,
    )
    total_units = int(str(run.get("total_units", 0)))
    cost = Fraction(Decimal(str(run.get("account_cost", 0))))
    saved_cost = [
        round_half_up(cost * units / total_units if total_units else Fraction(0), 2)
        for units in savings["units_saved"]
    ]
    savings = savings.join(
        lines.select("tenant_id", "tenant_name"), on="tenant_id", how="left", maintain_order="left"
    ).with_columns(cost_saved=pl.Series(saved_cost, dtype=pl.Decimal(18, 2)))
    return MonthReport(month, run, lines, savings, pricing.block_bytes, margin)


def chart(
    config: Config, month: Month, out: Path, plotted: dict[str, pl.DataFrame] | None = None
) -> list[Path]:
    """Write the month's PNG charts to ``out``; return their paths.

    ``plotted``, when given, receives the data behind each chart (see ``render_charts``).
    """
    from metering.rate.edges import default_margin, edge_savings
    from metering.report.charts import ChartData, render_charts
    from metering.store.queries import billed_run, month_trend, payload_sizes, tenant_days

    lines = _billed_lines(config, month)
    path = config.warehouse.path
    pricing = config.pricing
    margin = default_margin(pricing.block_bytes)
    sizes = payload_sizes(path, str(month), measured_bytes(pricing.measure))
    run = billed_run(path, str(month)) or {}
    units = int(str(run.get("total_units", 0)))
    unit_cost = float(Decimal(str(run.get("account_cost", 0)))) / units if units else None
    data = ChartData(
        month=str(month),
        currency=pricing.currency,
        tenant_month=lines,
        tenant_days=tenant_days(path, str(month)),
        payload_sizes=sizes,
        edge_savings=edge_savings(sizes, pricing.block_bytes, margin),
        trend=month_trend(path, str(month)),
        block_bytes=pricing.block_bytes,
        margin_bytes=margin,
        measure=pricing.measure.replace("+", " + "),
        unit_cost=unit_cost,
    )
    return render_charts(data, Path(out), plotted)
