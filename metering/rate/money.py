"""Exact money: tiered account cost, blended allocation, largest-remainder rounding, and
each currency's minor unit.

Everything here is ``Decimal`` or ``Fraction``; floats never touch an amount. Rounding
happens once, in ``round_lines``; every output writes an amount with ``amount_text``, to
exactly its currency's decimals.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from metering.config import Tier

MILLION = 1_000_000
# The most decimals any currency of ISO 4217 has (CLF and UYW: 4); the warehouse's amount
# columns keep this many (store.schema.AMOUNT), and a test holds the two together.
MOST_PLACES = 4
# Decimals shown of an amount whose currency ISO 4217 does not list: only an old warehouse
# holds one (meter checked codes against the table from schema 8 on), billed to 2 places.
UNLISTED_PLACES = 2


@cache
def currencies() -> dict[str, tuple[str, int | None]]:
    """ISO 4217's list one, as the ``iso4217`` package ships it (the table ISO publishes,
    ``iso4217.__published__``): each code's name and minor unit (digits after the decimal
    point; None where ISO defines none: XXX, XTS, the metals XAU, XAG, XPT, XPD, the SDR
    XDR and the bond-market units)."""
    import iso4217

    return {c.code: (c.currency_name, c.exponent) for c in iso4217.Currency}


def currency_problem(code: str) -> str | None:
    """Why ``code`` cannot be billed in (a sentence with the fix), or None when it can: a
    code of ISO 4217 with a minor unit (0 to 4 decimals; funds such as CLF or USN too)."""
    table = currencies()
    if code in table:
        name, places = table[code]
        if places is not None:
            return None
        return (
            f"{code} ({name}) has no minor unit in ISO 4217, and every line is rounded to "
            'its currency\'s minor unit; bill in the currency you invoice in, e.g. "USD"'
        )
    billable = {c: name for c, (name, places) in table.items() if places is not None}
    typed = code.strip()
    near = [typed.upper()] if typed.upper() in billable else []
    near += [c for c, name in billable.items() if typed.lower() in name.lower().split()]
    near += difflib.get_close_matches(typed.upper(), list(billable), 3)
    near = list(dict.fromkeys(near))[:3]
    hint = f"; did you mean {', '.join(f'{c} ({billable[c]})' for c in near)}?" if near else ""
    return (
        f"{code!r} is not a currency code of ISO 4217 (three capital letters, e.g. "
        f'"USD", "EUR", "JPY"){hint}'
    )


def minor_units(currency: str) -> int:
    """Digits after the decimal point of ``currency``'s minor unit, from ISO 4217 (USD 2,
    JPY and XOF 0, KWD 3); ValueError for a code that is not billable
    (``currency_problem``)."""
    places = currencies().get(currency, ("", None))[1]
    if places is None:
        raise ValueError(currency_problem(currency))
    return places


def shown_places(currency: str) -> int:
    """The decimals an amount in ``currency`` is shown with: its minor unit, or
    ``UNLISTED_PLACES`` for a code ISO 4217 does not list (an old warehouse's)."""
    try:
        return minor_units(currency)
    except ValueError:
        return UNLISTED_PLACES


def amount_text(amount: Decimal, currency: str, grouped: bool = False) -> str:
    """A rounded amount as every output writes it: exactly ``currency``'s decimals (USD
    ``9.20``, JPY ``920``, KWD ``9.200``), thousands separated by commas when ``grouped``.

    Amounts are already rounded to the minor unit; only trailing zeros of the column go.
    An amount with more decimals than that (billed by a meter that rounded the currency to
    2 places, before it used ISO's table) is shown as it was billed, never rounded again.
    """
    value = Decimal(amount)
    places = shown_places(currency)
    shown = value.quantize(Decimal(1).scaleb(-places))
    if shown != value:
        shown = value.normalize()
    return f"{shown:,f}" if grouped else f"{shown:f}"


def account_cost(total_units: int, tiers: Sequence[Tier]) -> Decimal:
    """The exact cost of the month's units, each tier priced per million units."""
    cost = Decimal(0)
    floor = 0
    for tier in tiers:
        ceiling = total_units if tier.up_to is None else min(total_units, tier.up_to)
        if ceiling > floor:
            cost += Decimal(ceiling - floor) * tier.per_million / MILLION
        floor = max(floor, ceiling)
    return cost


def round_half_up(amount: Decimal | Fraction, places: int) -> Decimal:
    """``amount`` rounded to ``places`` decimals, halves away from zero."""
    if isinstance(amount, Fraction):
        scaled = amount * 10**places
        whole = (scaled.numerator * 2 + scaled.denominator) // (scaled.denominator * 2)
        return Decimal(whole).scaleb(-places)
    return amount.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def allocate(cost: Decimal, weights: Mapping[str, int]) -> dict[str, Fraction]:
    """Each key's exact share ``cost * weight / sum(weights)`` (the blended rate)."""
    total = sum(weights.values())
    if total == 0:
        return {key: Fraction(0) for key in weights}
    exact = Fraction(cost)
    return {key: exact * weight / total for key, weight in weights.items()}


def round_lines(exact: Mapping[str, Fraction], places: int) -> dict[str, Decimal]:
    """Round lines to ``places`` so they sum exactly to the rounded total.

    Largest-remainder method: every line is floored to the minor unit; the minor units
    still missing from the total (rounded half-up) go one each to the lines with the
    largest remainders, ties broken by key so the result is deterministic.
    """
    scale = 10**places
    floors = {
        key: (value * scale).numerator // (value * scale).denominator
        for key, value in exact.items()
    }
    target = round_half_up(sum(exact.values(), Fraction(0)), places).scaleb(places)
    missing = int(target) - sum(floors.values())
    by_remainder = sorted(exact, key=lambda key: (-(exact[key] * scale - floors[key]), key))
    for key in by_remainder[:missing]:
        floors[key] += 1
    return {key: Decimal(units).scaleb(-places) for key, units in floors.items()}


def per_unit(cost: Decimal, units: int) -> Fraction:
    """The exact average cost of one of ``units`` that cost ``cost`` (0 without units)."""
    return Fraction(cost) / units if units else Fraction(0)


def worth(units: int, cost: Decimal, total_units: int, places: int) -> Decimal:
    """What ``units`` of a month that cost ``cost`` for ``total_units`` are worth at its
    average cost per unit, rounded half-up to ``places``."""
    return round_half_up(per_unit(cost, total_units) * units, places)
