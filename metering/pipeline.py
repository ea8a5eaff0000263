"""The one place that knows the order: collect -> match -> attribute -> rate -> store."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl

from metering import __version__
from metering.attribute import attributed, delta, match
from metering.collect import Spool, collect_events, collect_records
from metering.collect.registry import read_registry
from metering.config import Config
from metering.errors import EmptyMonthError, WarehouseError
from metering.month import Month
from metering.period import who
from metering.previous import Kept, Previous, Scratch, recall, remember
from metering.rate import Bill, call_units, price
from metering.rate.profile import tenant_days, tenant_totals
from metering.schemas import (
    EVENTS,
    JOINED,
    RECORDS,
    UNATTRIBUTED,
    Collected,
    Counters,
    Progress,
    QuarantineEntry,
    decimal_column,
)
from metering.store import RunRows, connect, ensure_open, latest_run, write_run
from metering.store.engine import Engine, memory_limit, trace

UNATTRIBUTED_NAME = "Unattributed calls"


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
    joined_again: int | None = None  # calls new files touched; None: the month was joined
    conflicts: pl.DataFrame = field(default_factory=pl.DataFrame)  # request_id, event_id, reason

    @property
    def exit_code(self) -> int:
        """SPEC 5: 0 clean, 3 finished with quarantined input or copies that disagree."""
        return 3 if self.quarantine or self.conflicts.height else 0


def _fingerprint(parts: list[tuple[str, str]]) -> str:
    digest = hashlib.sha256()
    for name, value in sorted(parts):
        digest.update(f"{name}\0{value}\n".encode())
    return digest.hexdigest()


def spool_folder(config: Config) -> Path:
    """Where decoded inputs are kept between runs: beside the warehouse."""
    return Path(config.warehouse.path).with_suffix(".spool")


def bill(
    config: Config,
    month: Month,
    progress: Progress | None = None,
    fresh: bool = False,
    allow_empty: bool = False,
) -> BillResult:
    """Bill ``month``: read every source, attribute, rate, and replace it in the warehouse.

    The warehouse is taken first and held to the end, so a second ``meter bill`` on it, or a
    closed month, fails at once, before any input is read. Input files an earlier run
    decoded are reused from the spool unless they changed (``fresh`` decodes all again).
    When the last bill of the month only lacks some new files, only the calls they touch
    are joined and written again (see ``previous``). A month no source holds a record of
    is refused (``EmptyMonthError``) unless ``allow_empty``. A file that cannot be written
    (a full disk) ends the bill with a ``WarehouseError``; the warehouse is as it was.
    """
    try:
        return _bill(config, month, progress, fresh, allow_empty)
    except OSError as exc:  # the spool or the scratch folder (the warehouse: store.connect)
        where = exc.filename or spool_folder(config)
        raise WarehouseError(
            f"{where}: cannot write: {exc.strerror or exc}; the bill stopped and the warehouse "
            "is unchanged (free some disk space, or check the folder's permissions, then "
            "bill again)"
        ) from None


def _bill(
    config: Config, month: Month, progress: Progress | None, fresh: bool, allow_empty: bool
) -> BillResult:
    memory = memory_limit()  # checked before the warehouse is touched
    warehouse = Path(config.warehouse.path)
    folder = spool_folder(config)
    spool = Spool(folder, fresh=fresh)
    with connect(warehouse) as con:
        ensure_open(con, str(month))
        recipe = _recipe(config)
        previous = None if fresh else recall(folder, str(month), recipe)
        if previous is not None and previous.run_id != latest_run(con, str(month)):
            previous = None  # the warehouse moved on since (another spool, or a restore)
        engine = Engine(con, folder / "scratch", memory)
        scratch = Scratch(folder, str(month))
        try:
            rows, result, read, kept = _rate_month(
                config, month, engine, spool, progress, previous, scratch, allow_empty
            )
            with trace("write warehouse"):
                write_run(con, str(month), rows, progress)
            remember(folder, str(month), recipe, result.run_id, read, kept)
        finally:
            scratch.clear()
    result.reused_files, result.decoded_files = spool.reused, spool.decoded
    return result


def _rate_month(
    config: Config,
    month: Month,
    engine: Engine,
    spool: Spool,
    progress: Progress | None,
    previous: Previous | None,
    scratch: Scratch,
    allow_empty: bool,
) -> tuple[RunRows, BillResult, dict[str, list[Path]], Kept]:
    """Everything ``bill`` writes and reports, computed from the inputs."""
    started = datetime.now(UTC)
    pricing = config.pricing
    registry = read_registry(config.tenants.registry)

    sources: list[tuple[str, Callable[..., Collected], object]] = [
        ("collect metering records", collect_records, config.sources.metering),
        ("collect cloudtrail events", collect_events, config.sources.cloudtrail),
    ]
    # Both sources at once, on one set of worker processes: a live table's network reads
    # overlap the decoding of CloudTrail files instead of waiting for it.
    with spool, ThreadPoolExecutor(len(sources), thread_name_prefix="meter-collect") as threads:
        pending = [
            threads.submit(_traced, what, collect, source, month, spool, progress)
            if source is not None
            else None
            for what, collect, source in sources
        ]
        records, events = (
            job.result() if job is not None else Collected(pl.DataFrame()) for job in pending
        )
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
    _check_patterns(engine, config)
    read = {"events": events.parquet, "records": records.parquet}
    engine.define(month_start=month.start, month_end=month.end, month=str(month), run_id=run_id)
    rejoined, kept = _join(engine, config, previous, read, scratch)
    decided = engine.frame(match.counts("_joined", pricing.operations)).row(0, named=True)
    if not decided.pop("in_month") and not allow_empty:
        counters.out_of_month = int(decided["out_of_month"])
        raise EmptyMonthError(_nothing_of(month, config, records, events, counters))
    unique = decided.pop("unique_events") + decided.pop("unique_records")
    counters.duplicates = events.parquet_rows + records.parquet_rows - unique
    for name, value in decided.items():
        setattr(counters, name, int(value))
    # Views: each reader (totals, days, the warehouse) derives the calls again from the
    # joined calls, which is cheaper than holding a month of them.
    engine.view("_calls", _billed_sql(config, "_joined"))
    if rejoined is not None:  # the warehouse then replaces only these
        engine.view("_calls_again", _billed_sql(config, "_joined_again"))
    totals = engine.frame(tenant_totals("_calls"))
    counters.calls_billed = int(totals["calls"].sum())
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
    days = days.with_columns(month=pl.lit(str(month)), cost_exact=decimal_column(costs, 38, 12))
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
        "executed_by": who(),
    }
    rows = RunRows(
        run=run,
        calls="_calls" if rejoined is None else "_calls_again",
        tenant_month=tenant_month,
        tenant_day=days,
        reconciliation=engine.frame(match.reconcile("_joined")).with_columns(
            month=pl.lit(str(month))
        ),
        quarantine=quarantine,
        conflicts=engine.frame(match.conflicts("_joined")),
        changed=None if rejoined is None else rejoined.replacing(),
    )
    warehouse = Path(config.warehouse.path)
    result = BillResult(
        month, run_id, warehouse, the_bill, tenant_month, counters, quarantine, unregistered
    )
    result.joined_again = None if rejoined is None else rejoined.calls
    result.conflicts = rows.conflicts
    return rows, result, read, kept


def _join(
    engine: Engine,
    config: Config,
    previous: Previous | None,
    read: dict[str, list[Path]],
    scratch: Scratch,
) -> tuple[delta.Rejoined | None, Kept]:
    """Make ``_joined``, the month's attributed calls from ``read`` (the spooled files per
    source), and say where they are kept for the next bill (see ``previous``). When only
    the calls the files added since ``previous`` touch were joined, says how many."""
    join = partial(_join_sql, config)
    added = previous.added(read) if previous is not None else None
    if previous is None or added is None:
        base = scratch.base()
        engine.keep("_joined", join("_events_in", "_records_in"), base)
        return None, Kept(base)
    for source, schema in (("events", EVENTS), ("records", RECORDS)):
        new = set(added[source])
        engine.load(f"_{source}_new", added[source], schema)
        engine.load(f"_{source}_old", [p for p in read[source] if p not in new], schema)
    before = _load_kept(engine, previous.kept)
    rejoined = delta.rejoin(
        engine, join, ("_events_old", "_events_new"), ("_records_old", "_records_new")
    )
    patch = rejoined.patch
    joined = delta.rejoined("_base", [*before, patch])
    patched = rejoined.calls + sum(engine.count(earlier.joined) for earlier in before)
    if previous.compact(patched, engine.count("_base")):
        base = scratch.base()
        engine.keep("_joined", joined, base)
        return rejoined, Kept(base)
    engine.view("_joined", joined)
    if not any(added.values()):  # nothing was touched: the kept files stay as they were
        return rejoined, previous.kept
    files = scratch.patch(patch.replaces)
    with trace("keep the patch"):
        for table, path in zip(patch.relations(), files.files(), strict=True):
            engine.save(table, path)
    return rejoined, previous.kept.patched(files)


def _load_kept(engine: Engine, kept: Kept) -> list[delta.Patch]:
    """Views of the kept joined calls: ``_base``, and the patches over it."""
    engine.load("_base", [kept.base], JOINED)
    patches = []
    for number, files in enumerate(kept.patches, start=1):
        patch = delta.Patch.named(f"_patch{number}", files.replaces)
        engine.load(patch.joined, [files.joined], JOINED)
        engine.load(patch.events, [files.events], {"event_id": pl.Utf8()})
        engine.load(patch.requests, [files.requests], {"request_id": pl.Utf8()})
        patches.append(patch)
    return patches


def _join_sql(config: Config, events: str, records: str) -> str:
    """SQL: the attributed calls of ``events`` and ``records`` (tables of EVENTS, RECORDS)."""
    return attributed(f"({match.calls_in(events, records)})", config.attribution.rules)


def _billed_sql(config: Config, joined: str) -> str:
    """SQL: the calls to bill among ``joined`` (a table of JOINED), as rows of CALLS."""
    pricing = config.pricing
    units = call_units(pricing.measure, pricing.block_bytes, pricing.unknown_size_units)
    chosen = match.selected(joined, pricing.operations, pricing.bill_errors)
    return f"""
        SELECT getvariable('month') AS month, getvariable('run_id') AS run_id, request_id,
               event_id, call_time AS event_time, tenant_id, operation, request_bytes,
               response_bytes, {units} AS units, attribution, source,
               source = 'cloudtrail' AS size_estimated
        FROM ({chosen})
    """


def _recipe(config: Config) -> str:
    """What a bill's kept joined calls and calls rows depend on besides the inputs: the
    config, and the SQL that joins, attributes and bills (so a meter that changes any of
    it joins the whole month again instead of mixing its rows with older ones)."""
    sql = [("join", _join_sql(config, "e", "r")), ("billed", _billed_sql(config, "j"))]
    return _fingerprint([("config", config.sha256), *sql])


def _traced(what: str, collect: Callable[..., Collected], *args: Any) -> Collected:
    with trace(what):
        return collect(*args)


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


def _nothing_of(
    month: Month, config: Config, records: Collected, events: Collected, counters: Counters
) -> str:
    """What was read, for a month none of it belongs to."""
    read = []
    if config.sources.cloudtrail is not None:
        read.append(
            f"{events.counters.files_read:,} CloudTrail file(s) under "
            f"{', '.join(config.sources.cloudtrail.uris)}"
        )
    if config.sources.metering is not None:
        where = [*config.sources.metering.exports]
        if config.sources.metering.table:
            where.append(f"table {config.sources.metering.table}")
        read.append(f"{records.counters.files_read:,} metering file(s) in {', '.join(where)}")
    return (
        f"no source holds a single record of {month}: read {' and '.join(read)}, "
        f"{counters.records_seen:,} records in all: {counters.quarantined:,} quarantined, "
        f"{counters.skipped_non_data_api:,} not Data API calls, {counters.out_of_month:,} "
        "calls of other months. "
        "Check --month and the paths in meter.toml; to bill the month empty anyway, pass "
        "--allow-empty"
    )


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
        cost_exact=decimal_column([x.cost_exact if x else zero for x in lines], 38, 12),
        amount=decimal_column([x.amount if x else zero for x in lines], 18, 2),
        share=decimal_column([the_bill.share(t) for t in rows["tenant_id"]], 18, 12),
    )
    return rows.sort("tenant_id"), unregistered
