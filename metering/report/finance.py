"""The finance CSV (SPEC section 7): one row per tenant line, deterministic bytes."""

from __future__ import annotations

import csv
import io
from decimal import ROUND_HALF_UP, Decimal

import polars as pl

COLUMNS = (
    "billing_month",
    "tenant_id",
    "tenant_name",
    "cost_center",
    "calls",
    "billed_units",
    "request_bytes",
    "response_bytes",
    "amount",
    "currency",
    "share_pct",
    "run_id",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """Make a text cell safe to open in a spreadsheet (no formula runs on open)."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _money(value: Decimal) -> str:
    return str(Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def _pct(share: Decimal) -> str:
    return str((Decimal(share) * 100).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def finance_csv(tenant_month: pl.DataFrame) -> bytes:
    """The CSV bytes for a month's ``tenant_month`` rows."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(COLUMNS)
    for row in tenant_month.sort("tenant_id").iter_rows(named=True):
        writer.writerow(
            (
                row["month"],
                neutralise(row["tenant_id"]),
                neutralise(row["tenant_name"]),
                neutralise(row["cost_center"]),
                row["calls"],
                row["units"],
                row["request_bytes"],
                row["response_bytes"],
                _money(row["amount"]),
                row["currency"],
                _pct(row["share"]),
                row["run_id"],
            )
        )
    return out.getvalue().encode("utf-8")
