"""The one place that knows the order: collect -> attribute -> rate -> price -> store.

Each step is a function of typed values (``schemas.Relation``, frames, ``Collected``):
the steps write their SQL, the engine runs it, and this module only orders them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import polars as pl

from metering import __version__, attribute
from metering.attribute import delta
from metering.collect import Inputs, Spool, collect_month
from metering.collect.registry import read_registry
from metering.config import Config
from metering.errors import ConfigError, EmptyMonthError, WarehouseError
from metering.month import Month
from metering.period import who
from metering.rate import Bill, price
from metering.rate.profile import (
    cost_profile,
    day_costs,
    reconciliation,
    tenant_days,
    tenant_totals,
)
from metering.rate.select import conflicts, counts, rated
from metering.schemas import EVENTS, RECORDS, Counters, Progress, QuarantineEntry, Relation
from metering.store import (
    RunRows,
    add_calls,
    connect,
    ensure_open,
    last_bill,
    month_calls,
    replace_calls,
    transaction,
    write_run,
)
from metering.store.engine import Engine, memory_limit
from metering.trace import trace


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
    When the month's last bill only lacks some new files, only the calls they touch are
    joined and written again. A month no source holds a record of is refused
    (``EmptyMonthError``) unless ``allow_empty``. A file that cannot be written (a full
    disk) ends the bill with a ``WarehouseError``; the warehouse is as it was.
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
    started = datetime.now(UTC)
    memory = memory_limit()  # checked before the warehouse is touched
    folder = spool_folder(config)
    spool = Spool(folder, fresh=fresh)
    with connect(config.warehouse.path) as con:
        ensure_open(con, str(month))
        inputs = collect_month(config, month, spool, progress)
        registry = read_registry(config.tenants.registry)
        run_id, inputs_sha = _run_id(config, month, inputs)
        engine = Engine(con, folder / "scratch", memory)
        _check_patterns(engine, config)
        if progress is not None:
            progress("joining and rating", 0, 1)
        with transaction(con):
            last = None if fresh else last_bill(con, month)
            read = {"events": inputs.events.parquet, "records": inputs.records.parquet}
            recipe = _recipe(config, month)
            added = last.added(read) if last is not None and last.recipe == recipe else None
            joined_again = _join(engine, config, month, read, added)
            calls = month_calls(month)
            counters = _counters(engine, config, month, inputs, calls, allow_empty)
            totals = engine.frame(tenant_totals(calls))
            counters.calls_billed = int(totals["calls"].sum())
            the_bill = price(
                dict(totals.select("tenant_id", "units").iter_rows()),
                config.pricing,
                config.attribution.unattributed,
            )
            tenant_month, unregistered = cost_profile(totals, the_bill, registry)
            quarantine = sorted(
                inputs.both.quarantine, key=lambda q: (q.source_uri, q.locator, q.reason)
            )
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
                tenant_month=_of_run(tenant_month, month, run_id),
                tenant_day=_of_run(day_costs(engine.frame(tenant_days(calls)), the_bill), month),
                reconciliation=_of_run(engine.frame(reconciliation(calls)), month),
                quarantine=quarantine,
                recipe=recipe,
                inputs=read,
            )
            with trace("write warehouse"):
                write_run(con, month, rows, progress)
            found = engine.frame(conflicts(calls))
    if progress is not None:
        progress("joining and rating", 1, 1)
    result = BillResult(
        month,
        run_id,
        Path(config.warehouse.path),
        the_bill,
        rows.tenant_month,
        counters,
        quarantine,
    )
    result.unregistered, result.conflicts, result.joined_again = unregistered, found, joined_again
    result.reused_files, result.decoded_files = spool.reused, spool.decoded
    return result


def _run_id(config: Config, month: Month, inputs: Inputs) -> tuple[str, str]:
    """The run's id (a fingerprint of month, config and inputs) and the inputs' fingerprint."""
    registry = config.tenants.registry
    digest = hashlib.sha256(Path(registry).read_bytes()).hexdigest() if registry else ""
    files = [(f.name, f.digest) for f in inputs.both.inputs] + [("<registry>", digest)]
    inputs_sha = _fingerprint(files)
    run = _fingerprint([("month", str(month)), ("config", config.sha256), ("inputs", inputs_sha)])
    return f"{month}-{run[:12]}", inputs_sha


def _join(
    engine: Engine,
    config: Config,
    month: Month,
    read: dict[str, list[Path]],
    added: dict[str, list[Path]] | None,
) -> int | None:
    """Put the month's rated calls in the warehouse: all of them joined from ``read`` (the
    spooled files per source), or, when only ``added`` files are new since the last bill,
    only the calls they touch. Returns how many were joined again (None: all were)."""
    join = partial(attribute.joined, rules=config.attribution.rules)
    con = engine.con
    if added is None:
        events = engine.parquet("_events_in", read["events"], EVENTS)
        records = engine.parquet("_records_in", read["records"], RECORDS)
        with trace("join and rate the month"):
            replace_calls(con, month, rated(join(events, records), config.pricing, month), None)
        return None
    if not any(added.values()):
        return 0  # the calls the last bill left are this bill's
    parts: dict[str, tuple[Relation, Relation]] = {}
    for source, schema in (("events", EVENTS), ("records", RECORDS)):
        new = set(added[source])
        old = [path for path in read[source] if path not in new]
        parts[source] = (
            engine.parquet(f"_{source}_old", old, schema),
            engine.parquet(f"_{source}_new", added[source], schema),
        )
    again = delta.rejoin(engine, join, parts["events"], parts["records"])
    calls = rated(again.calls, config.pricing, month)
    if again.replacing is None:
        add_calls(con, month, calls)
    else:
        replace_calls(con, month, calls, again.replacing)
    return again.count


def _counters(
    engine: Engine,
    config: Config,
    month: Month,
    inputs: Inputs,
    calls: Relation,
    allow_empty: bool,
) -> Counters:
    """SPEC 5's counters: what the collectors counted, and what the join and the month's
    selection decided over ``calls``; refuses a month no source holds (EmptyMonthError)."""
    counters = inputs.both.counters
    decided = engine.frame(counts(calls, config.pricing.operations)).row(0, named=True)
    counters.out_of_month = int(decided["out_of_month"])
    if not decided.pop("in_month") and not allow_empty:
        raise EmptyMonthError(inputs.nothing_of(month, config, counters))
    unique = decided.pop("unique_events") + decided.pop("unique_records")
    counters.duplicates = inputs.rows - unique
    for name, value in decided.items():
        setattr(counters, name, int(value))
    return counters


def _of_run(frame: pl.DataFrame, month: Month, run_id: str | None = None) -> pl.DataFrame:
    """``frame``'s rows, marked with the month (and the run)."""
    marked = frame.with_columns(month=pl.lit(str(month)))
    return marked if run_id is None else marked.with_columns(run_id=pl.lit(run_id))


def _recipe(config: Config, month: Month) -> str:
    """What the calls a bill leaves depend on besides the inputs: the config, and the SQL
    that joins, attributes and rates (so a meter that changes any of it joins the whole
    month again instead of mixing its rows with older ones)."""
    placeholder = Relation("inputs", {})
    joined = attribute.joined(placeholder, placeholder, config.attribution.rules)
    return _fingerprint(
        [("config", config.sha256), ("sql", rated(joined, config.pricing, month).sql)]
    )


def _check_patterns(engine: Engine, config: Config) -> None:
    """Refuse principal patterns the engine's regex dialect (RE2) cannot run."""
    from metering.attribute.principal import probe
    from metering.config import PrincipalRule

    for number, rule in enumerate(config.attribution.rules, start=1):
        if isinstance(rule, PrincipalRule) and (why := engine.refusal(probe(rule))):
            raise ConfigError(
                f"{config.path}: attribution rule {number} (principal): pattern {rule.pattern!r} "
                f"uses regex syntax meter cannot run (look-arounds and back-references are "
                f"not supported): {why}"
            )
