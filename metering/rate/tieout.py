"""Tying a month out to the AWS invoice (SPEC 8): invoiced requests against meter's units,
invoiced net cost against meter's modelled cost, and the total ``allocate = "invoice"``
splits over tenants.

Sums are exact (``Invoice``); each figure is rounded once, here, to the currency's minor
unit (amounts), 6 places (requests) or 4 (percentages), half-up. A variance is meter's
figure minus AWS's, its percentage a share of AWS's figure.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import polars as pl

from metering.config import InvoiceConfig
from metering.errors import InputError
from metering.rate.money import round_half_up
from metering.schemas import INVOICE, MONTH_ROW, Invoice, InvoiceRegion, decimal_column

EXACT_PLACES = 12
REQUEST_PLACES = 6
PERCENT_PLACES = 4


def allocated_cost(invoice: Invoice, config: InvoiceConfig, places: int, month: str) -> Decimal:
    """What ``allocate = "invoice"`` splits over the tenants: the Data API's invoiced net
    cost (and its tax with ``include_tax``), rounded once to ``places``. An invoice without a
    single Data API line of the month is an ``InputError``: there is nothing to split."""
    if not invoice.regions:
        raise InputError(
            f'[invoice] allocate = "invoice", but {", ".join(config.uris)} holds no Data API '
            f"line of {month} (usage types like {', '.join(config.data_api_usage_types)}): "
            "check the uris, the export's months and data_api_usage_types, or set "
            'allocate = "model"'
        )
    exact = Fraction(invoice.net) + (invoice.tax if config.include_tax else 0)
    return round_half_up(exact, places)


def requests_off(invoiced: Decimal, units: int, tolerance: Decimal) -> bool:
    """Whether meter's ``units`` are further from the ``invoiced`` requests than
    ``tolerance`` (a share of them); with nothing invoiced, whether meter billed any."""
    if not invoiced:
        return units != 0
    return abs(units - invoiced) > tolerance * invoiced


def tie_out(
    invoice: Invoice,
    config: InvoiceConfig,
    month: str,
    run_id: str,
    units: int,
    modelled: Decimal,
    allocated: Decimal,
    places: int,
) -> pl.DataFrame:
    """The ``invoice`` table's rows (``schemas.INVOICE``): one per region of the invoice's
    Data API lines, then the month's (``MONTH_ROW``) with meter's ``units``, ``modelled``
    cost (exact, from ``[pricing]``) and the ``allocated`` total the tenant lines sum to."""
    rows = []
    for region in sorted(invoice.regions):
        part = invoice.regions[region]
        rows.append(_row(part, region, places) | {"lines": part.lines})
    whole = InvoiceRegion(requests=invoice.requests)
    for part in invoice.regions.values():
        for name in _PARTS:
            setattr(whole, name, getattr(whole, name) + getattr(part, name))
    month_row = _row(whole, MONTH_ROW, places)
    invoiced_cost = round_half_up(whole.net, places)
    modelled_cost = round_half_up(modelled, places)
    month_row |= {
        "meter_units": units,
        "request_variance": _requests(units - whole.requests),
        "request_variance_pct": _percent(units - whole.requests, whole.requests),
        "modelled_cost": modelled_cost,
        "cost_variance": modelled_cost - invoiced_cost,
        "cost_variance_pct": _percent(modelled_cost - invoiced_cost, invoiced_cost),
        "tax": round_half_up(invoice.tax, EXACT_PLACES),
        "lines": sum(r.lines for r in invoice.regions.values()),
        "allocated_total": allocated,
        "within_tolerance": not requests_off(whole.requests, units, config.tolerance),
    }
    rows.append(month_row)
    for row in rows:
        row["tolerance"] = config.tolerance
    frame = {name: [row.get(name) for row in rows] for name in INVOICE if name not in _CONSTANT}
    columns: dict[str, pl.Series] = {}
    for name, values in frame.items():
        dtype = INVOICE[name]
        if isinstance(dtype, pl.Decimal):
            columns[name] = _decimals(name, values, dtype)
        else:
            columns[name] = pl.Series(name, values, dtype=dtype)
    constant = {
        "month": month,
        "currency": invoice.currency,
        "allocate": config.allocate,
        "run_id": run_id,
    }
    return (
        pl.DataFrame(columns)
        .with_columns(**{name: pl.lit(value, pl.Utf8) for name, value in constant.items()})
        .select(list(INVOICE))
    )


_PARTS = (
    "usage_cost",
    "savings_plan_negation",
    "credits",
    "refunds",
    "discounts",
    "other_charges",
    "tax",
)
_CONSTANT = ("month", "currency", "allocate", "run_id")


def _row(part: InvoiceRegion, region: str, places: int) -> dict[str, object]:
    """What a region's row says of the invoice alone."""
    row: dict[str, object] = {
        "region": region,
        "invoiced_requests": _requests(part.requests),
        "invoiced_net_cost": round_half_up(part.net, places),
    }
    for name in _PARTS[:-1]:  # tax: the month's row only (AWS itemises it per service)
        row[name] = round_half_up(getattr(part, name), EXACT_PLACES)
    return row


def _requests(value: Decimal | int) -> Decimal:
    return round_half_up(Decimal(value), REQUEST_PLACES)


def _percent(variance: Decimal | int, of: Decimal) -> Decimal | None:
    """``variance`` as a percentage of ``of`` (None when ``of`` is 0)."""
    if not of:
        return None
    return round_half_up(Fraction(variance) * 100 / Fraction(of), PERCENT_PLACES)


def _decimals(name: str, values: list[object], dtype: pl.Decimal) -> pl.Series:
    """A nullable exact DECIMAL column (a value with more places than it keeps is refused)."""
    present = [v for v in values if isinstance(v, Decimal)]
    decimal_column(present, dtype.precision or 38, dtype.scale or 0)
    text = [format(v, "f") if isinstance(v, Decimal) else None for v in values]
    return pl.Series(name, text, dtype=pl.String).cast(dtype, strict=True)
