"""Exact money: tiered account cost, blended allocation, largest-remainder rounding.

Everything here is ``Decimal`` or ``Fraction``; floats never touch an amount. Rounding
happens once, in ``round_lines``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from metering.config import Tier

MILLION = 1_000_000
# Currencies without a minor unit (ISO 4217); every other bills to the cent. Three-decimal
# currencies (BHD, KWD, ...) are billed to two decimals, like the finance CSV.
MINOR_UNITS = {"JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "VND": 0}


def minor_units(currency: str) -> int:
    """Digits after the decimal point of ``currency``'s smallest coin."""
    return MINOR_UNITS.get(currency, 2)


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


def worth(units: int, cost: Decimal, total_units: int, places: int = 2) -> Decimal:
    """What ``units`` of a month that cost ``cost`` for ``total_units`` are worth at its
    average cost per unit, rounded half-up to ``places``."""
    return round_half_up(per_unit(cost, total_units) * units, places)
