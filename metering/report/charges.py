"""The charges CSV (``meter export --format charges``, SPEC 8): one row per tenant and
charge of a month, the Data API's own line (``data_api``) and each shared cost's share.

A tenant's rows sum to its finance CSV amount; each charge's rows sum to what it allocated.
Amounts have exactly their currency's decimals (``money.amount_text``).
Cells follow the finance CSV's rules (``csv_bytes``, ``neutralise``); the same warehouse
gives the same bytes.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import polars as pl

from metering.rate.money import amount_text
from metering.report.finance import csv_bytes, neutralise

COLUMNS = (
    "billing_month",
    "tenant_id",
    "tenant_name",
    "cost_center",
    "charge",
    "driver",
    "quantity",
    "amount",
    "currency",
    "share_pct",
    "clusters",
    "run_id",
)


def charges_csv(charges: pl.DataFrame, tenant_month: pl.DataFrame) -> bytes:
    """The CSV bytes of a month's ``tenant_charges`` rows (``share_pct``: the tenant's
    share of the charge), named from its ``tenant_month`` rows."""
    names = {
        row["tenant_id"]: (row["tenant_name"], row["cost_center"])
        for row in tenant_month.iter_rows(named=True)
    }
    lines = []
    for row in charges.sort("tenant_id", "charge").iter_rows(named=True):
        name, center = names.get(row["tenant_id"], ("", ""))
        lines.append(
            (
                row["month"],
                neutralise(row["tenant_id"]),
                neutralise(name),
                neutralise(center),
                row["charge"],
                row["driver"],
                row["quantity"],
                amount_text(row["amount"], row["currency"]),
                row["currency"],
                str((Decimal(row["share"]) * 100).quantize(Decimal("0.0001"), ROUND_HALF_UP)),
                neutralise(row["clusters"]),
                row["run_id"],
            )
        )
    return csv_bytes([COLUMNS, *lines])
