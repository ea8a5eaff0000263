"""``--json``: the one JSON document each command prints on stdout, for schedulers, dbt and
BI jobs (README "Machine-readable output").

Every document has ``command`` and ``exit_code``; amounts and exact costs are strings (exact
decimals: parse them as decimals, never as floats), a rounded amount with exactly its
currency's decimals (``rate.money.amount_text``); counts are integers, times ISO-8601 in
UTC, paths absolute. Keys are only ever added.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from metering.rate.money import amount_text
from metering.schemas import AMOUNT, Counters

if TYPE_CHECKING:
    import polars as pl

    from metering.outputs import MonthReport
    from metering.overhead import Overhead
    from metering.publish import Published
    from metering.rls import RlsProblem
    from metering.sample import SampleSummary
    from metering.schemas import BillResult, QuarantineEntry
    from metering.store import MonthEvent

LISTED = 100  # quarantine entries and conflicts listed in a document; the rest are counted


def dumps(document: Mapping[str, Any]) -> str:
    """The document as JSON text (one line per key, stable order)."""
    return json.dumps(document, indent=2, ensure_ascii=False, default=_plain)


def _plain(value: object) -> object:
    if isinstance(value, Decimal | Path):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not part of a JSON document")


def _rows(frame: pl.DataFrame, columns: Sequence[str], currency: str) -> list[dict[str, Any]]:
    """``frame``'s rows as objects, of those of ``columns`` it has: its rounded amounts
    (columns of the ``AMOUNT`` type) as text with ``currency``'s decimals; ``dumps`` writes
    the other decimals as text."""
    rows = frame.select([c for c in columns if c in frame.columns]).to_dicts()
    amounts = [c for c, dtype in frame.schema.items() if dtype == AMOUNT and c in columns]
    for row in rows:
        for column in amounts:
            if row[column] is not None:
                row[column] = amount_text(row[column], currency)
    return rows


def _quarantine(entries: Sequence[QuarantineEntry]) -> dict[str, Any]:
    return {
        "count": len(entries),
        "listed": [
            {"source_uri": q.source_uri, "locator": q.locator, "reason": q.reason}
            for q in entries[:LISTED]
        ],
    }


def _overhead(overhead: Overhead | None) -> dict[str, Any] | None:
    if overhead is None:
        return None
    return {
        "data_events": overhead.data_events,
        "writes": overhead.writes,
        "cloudtrail_cost": overhead.cloudtrail_cost,
        "dynamodb_cost": overhead.dynamodb_cost,
    }


LINE_COLUMNS = (
    "tenant_id", "tenant_name", "cost_center", "calls", "units", "request_bytes",
    "response_bytes", "size_estimated_calls", "peak_rps", "cost_exact", "amount", "share",
)  # fmt: skip


def bill(result: BillResult) -> dict[str, Any]:
    """``meter bill --json``."""
    conflicts = result.conflicts
    currency = result.bill.currency
    return {
        "command": "bill",
        "exit_code": result.exit_code,
        "month": str(result.month),
        "run_id": result.run_id,
        "warehouse": str(Path(result.warehouse).resolve()),
        "currency": currency,
        "account_cost": result.bill.account_cost,
        "amount": amount_text(result.bill.amount, currency),
        "total_units": result.bill.total_units,
        "counters": result.counters.as_dict(),
        "lines": _rows(result.tenant_month, LINE_COLUMNS, currency),
        "unregistered_tenants": list(result.unregistered),
        "quarantine": _quarantine(result.quarantine),
        "conflicts": {
            "count": conflicts.height,
            "listed": _rows(conflicts.head(LISTED), ("request_id", "event_id", "reason"), currency),
        },
        "reconciliation": _rows(
            result.reconciliation,
            ("day", "matched", "cloudtrail_only", "metering_only", "error_disagreements"),
            currency,
        ),
        "overhead": _overhead(result.overhead),
        "invoice": _rows(result.invoice, tuple(result.invoice.columns), currency),
        "input_files": {
            "decoded": result.decoded_files,
            "reused": result.reused_files,
            "calls_joined_again": result.joined_again,
        },
        "charges": _rows(result.charges, tuple(result.charges.columns), currency),
        "shared_costs": _rows(result.shared_costs, tuple(result.shared_costs.columns), currency),
        "calls": result.calls_at,
    }


def report(result: MonthReport) -> dict[str, Any]:
    """``meter report --json``."""
    run, currency = result.run, result.currency
    return {
        "command": "report",
        "exit_code": 0,
        "month": str(result.month),
        "run_id": run.get("run_id"),
        "currency": currency,
        "account_cost": result.account_cost,
        "amount": amount_text(result.amount, currency),
        "calls": result.calls,
        "units": result.units,
        "counters": {f.name: run.get(f.name) for f in fields(Counters) if f.name in run},
        "lines": _rows(result.lines, LINE_COLUMNS, currency),
        "edge_savings": _rows(result.savings, tuple(result.savings.columns), currency),
        "overhead": _overhead(result.overhead),
        "invoice": _rows(result.invoice, tuple(result.invoice.columns), currency),
        "charges": _rows(result.charges, tuple(result.charges.columns), currency),
        "shared_costs": _rows(result.shared_costs, tuple(result.shared_costs.columns), currency),
    }


def diff(month: str, runs: Sequence[int], frame: pl.DataFrame, exit_code: int) -> dict[str, Any]:
    """``meter diff --json`` (amounts with the decimals of the newer run's currency)."""
    currency = str(frame["currency"][0]) if frame.height else ""
    return {
        "command": "diff",
        "exit_code": exit_code,
        "month": month,
        "runs": list(runs),
        "tenants": _rows(frame, tuple(frame.columns), currency),
    }


def month_event(command: str, month: str, event: MonthEvent) -> dict[str, Any]:
    """``meter close --json`` and ``meter reopen --json``."""
    return {
        "command": command,
        "exit_code": 0,
        "month": month,
        "event": event.event,
        "at": event.at,
        "by": event.by,
        "reason": event.reason,
    }


def rls_check(problems: Sequence[RlsProblem], exit_code: int) -> dict[str, Any]:
    """``meter rls --check DSN --json``."""
    return {
        "command": "rls",
        "exit_code": exit_code,
        "problems": [{"subject": p.subject, "problem": p.problem, "fix": p.fix} for p in problems],
    }


def sample(summary: SampleSummary) -> dict[str, Any]:
    """``meter sample --json``."""
    return {
        "command": "sample",
        "exit_code": 0,
        "out": str(summary.out.resolve()),
        "month": str(summary.month),
        "tenants": summary.tenants,
        "calls": summary.calls,
        "records": summary.records,
        "malformed": summary.malformed,
        "trail_data_api": summary.trail_data_api,
        "trail_noise": summary.trail_noise,
        "config": str(summary.config.resolve()),
    }


def publish(done: Published) -> dict[str, Any]:
    """``meter publish --json``."""
    return {
        "command": "publish",
        "exit_code": 0,
        "month": done.month,
        "run_id": done.run_id,
        "status": done.status,
        "provisional": done.provisional,
        "schema": done.schema,
        "tenants": done.tenants,
        "previous_run_id": done.previous_run_id,
        "changed_tenants": list(done.changed),
    }


def error(command: str, message: str, exit_code: int) -> dict[str, Any]:
    """What a command prints with ``--json`` when it fails."""
    return {"command": command, "exit_code": exit_code, "error": message}
