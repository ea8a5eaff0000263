"""Period close and audit: close and reopen months, compare runs, judge a run's health."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import polars as pl

from metering.config import Config
from metering.month import Month
from metering.schemas import MONTH_ROW
from metering.store import MonthEvent

if TYPE_CHECKING:
    from metering.publish import Published


def who() -> str:
    """Who is running meter, for the audit trail."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def set_month_state(config: Config, month: Month, event: str, reason: str) -> MonthEvent:
    """Close or reopen ``month`` (``event`` = closed | reopened), recording who and why."""
    from metering.store import set_month_state as record

    return record(config.warehouse.path, month, event, who(), reason)


def close_month(config: Config, month: Month, reason: str = "") -> MonthEvent:
    """Freeze a billed month: a later bill of it is refused until it is reopened."""
    return set_month_state(config, month, "closed", reason)


def reopen_month(config: Config, month: Month, reason: str) -> MonthEvent:
    """Reopen a closed month so it can be billed again (who, when and why are recorded)."""
    return set_month_state(config, month, "reopened", reason)


def diff(config: Config, month: Month) -> tuple[list[int], pl.DataFrame]:
    """The last two runs of ``month`` per tenant: (their run numbers, before/after rows)."""
    from metering.store import diff_runs

    return diff_runs(config.warehouse.path, month)


@dataclass(frozen=True, slots=True)
class Health:
    """Whether a billed month is clean enough to close without a human look."""

    quarantined: int
    conflicts: int  # calls whose copies disagree
    matched: int
    unmatched: int  # calls seen in only one source (when both are configured)
    tolerance: float
    invoice: pl.DataFrame = field(default_factory=pl.DataFrame)  # the tie-out's month row

    @property
    def unmatched_share(self) -> float:
        seen = self.matched + self.unmatched
        return self.unmatched / seen if seen else 0.0

    @property
    def problems(self) -> list[str]:
        out = []
        if self.quarantined:
            out.append(f"{self.quarantined} input(s) quarantined (see the quarantine table)")
        if self.conflicts:
            out.append(f"{self.conflicts} call(s) whose copies disagree (see the conflicts table)")
        if self.unmatched_share > self.tolerance:
            out.append(
                f"{self.unmatched_share:.2%} of calls are in only one source "
                f"(tolerance {self.tolerance:.2%}; see the reconciliation table)"
            )
        for row in self.invoice.iter_rows(named=True):
            if row["within_tolerance"] is False:
                pct = row["request_variance_pct"]
                off = "" if pct is None else f" ({pct:+.2f} %)"
                out.append(
                    f"Data API requests: meter billed {row['meter_units']:,} units, AWS "
                    f"invoiced {row['invoiced_requests'].normalize():,f}{off}, past the "
                    f"[invoice] tolerance of {row['tolerance'] * 100:.2f} % (see the invoice "
                    "table; calibrate [pricing] measure and block_bytes)"
                )
        return out


def health(config: Config, month: Month, tolerance: float) -> Health:
    """Quarantine, conflicts and reconciliation of the month's newest run, and its tie-out
    with the AWS invoice (requests past ``[invoice] tolerance``)."""
    from metering.store import read_month
    from metering.store.queries import invoice_rows

    path = config.warehouse.path
    quarantined = read_month(path, "quarantine", month, "source_uri").height
    conflicts = read_month(path, "conflicts", month, "request_id, event_id").height
    days = read_month(path, "reconciliation", month, "day")
    both = config.sources.cloudtrail is not None and config.sources.metering is not None
    totals = days.select(pl.col("matched", "cloudtrail_only", "metering_only").sum())
    matched, trail_only, records_only = totals.row(0) if days.height else (0, 0, 0)
    unmatched = int(trail_only) + int(records_only) if both else 0
    invoice = invoice_rows(path, month)
    if invoice.height:
        invoice = invoice.filter(pl.col("region") == MONTH_ROW)
    return Health(quarantined, conflicts, int(matched), unmatched, tolerance, invoice)


def publish_month(
    config: Config, month: Month, dsn: str | None = None, role: str | None = None
) -> Published:
    """Publish ``month``'s per-tenant usage to PostgreSQL behind row-level security
    (``metering.publish``): to ``dsn``, else ``[publish] dsn``, else METER_PUBLISH_DSN."""
    import os

    from metering.errors import UsageError
    from metering.publish import publish
    from metering.store.queries import month_usage

    target = dsn or config.publish.dsn or os.environ.get("METER_PUBLISH_DSN")
    if not target:
        raise UsageError(
            "no database to publish to: give --dsn postgresql://..., set METER_PUBLISH_DSN, "
            "or dsn in meter.toml's [publish] section"
        )
    usage = month_usage(config.warehouse.path, month)
    if usage is None:
        bill = config.command(f"meter bill --month {month}")
        raise UsageError(f"{month} was never billed: run `{bill}` first")
    return publish(target, usage, config.publish.schema_name, role or config.publish.role)
