"""The finance CSV (SPEC section 7): one row per tenant line, deterministic bytes.

Also the two rules every CSV meter writes follows: ``neutralise`` (no spreadsheet formula
runs on open) and ``csv_bytes`` (valid RFC 4180 for any string).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal

import polars as pl

from metering.config import DATA_API_CHARGE
from metering.rate.money import amount_text
from metering.text import CONTROL

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


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    if "," in text or '"' in text or CONTROL.search(text):
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_bytes(rows: Iterable[Iterable[object]]) -> bytes:
    """RFC 4180 CSV, UTF-8, ``\\n`` line ends: the bytes of every CSV meter writes.

    A cell is quoted, its double quotes doubled, when it holds a comma, a double quote or
    any control character (CR and LF among them, tab too); other cells are written as
    they are. ``None`` is an empty cell.
    """
    return "".join(",".join(map(_cell, row)) + "\n" for row in rows).encode("utf-8")


def _pct(share: Decimal) -> str:
    return str((Decimal(share) * 100).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def shared_charges(charges: pl.DataFrame | None) -> pl.DataFrame | None:
    """A month's ``tenant_charges`` rows other than the Data API's own line (its shared
    costs' shares); None when it has none."""
    if charges is None or not charges.height:
        return None
    shared = charges.filter(pl.col("charge") != DATA_API_CHARGE)
    return shared if shared.height else None


def tenant_totals(
    tenant_month: pl.DataFrame, charges: pl.DataFrame | None = None
) -> dict[str, tuple[Decimal, Decimal]]:
    """Each tenant's amount and share (0..1) of the month: its Data API line, plus, when the
    month has shared costs (``charges``: its ``tenant_charges`` rows), its share of each; the
    share is then of the month's total over all charges. The amounts sum exactly to what was
    allocated: each charge's lines sum to its total."""
    lines = {
        row["tenant_id"]: (Decimal(row["amount"]), Decimal(row["share"]))
        for row in tenant_month.iter_rows(named=True)
    }
    shared = shared_charges(charges)
    if shared is None:
        return lines
    amounts = {tenant: amount for tenant, (amount, _) in lines.items()}
    for tenant, amount in shared.select("tenant_id", "amount").iter_rows():
        amounts[tenant] = amounts.get(tenant, Decimal(0)) + Decimal(amount)
    whole = sum(amounts.values(), Decimal(0))
    return {
        tenant: (amount, Decimal(amount) / whole if whole else Decimal(0))
        for tenant, amount in amounts.items()
    }


def finance_csv(tenant_month: pl.DataFrame, charges: pl.DataFrame | None = None) -> bytes:
    """The CSV bytes for a month's ``tenant_month`` rows; with shared costs (``charges``,
    its ``tenant_charges`` rows), each tenant's amount is its total over all its charges
    (``tenant_totals``)."""
    totals = tenant_totals(tenant_month, charges)
    lines = (
        (
            row["month"],
            neutralise(row["tenant_id"]),
            neutralise(row["tenant_name"]),
            neutralise(row["cost_center"]),
            row["calls"],
            row["units"],
            row["request_bytes"],
            row["response_bytes"],
            amount_text(totals[row["tenant_id"]][0], row["currency"]),
            row["currency"],
            _pct(totals[row["tenant_id"]][1]),
            row["run_id"],
        )
        for row in tenant_month.sort("tenant_id").iter_rows(named=True)
    )
    return csv_bytes([COLUMNS, *lines])
