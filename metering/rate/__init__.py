"""Rating (SPEC section 1): per-call units, tiered account cost, exact per-tenant lines."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Literal

from metering.config import PricingConfig
from metering.rate.money import (
    account_cost,
    allocate,
    minor_units,
    round_half_up,
    round_lines,
)
from metering.rate.units import call_units, measured_bytes, units_of
from metering.schemas import UNATTRIBUTED

__all__ = [
    "Bill",
    "Line",
    "account_cost",
    "allocate",
    "call_units",
    "carriers",
    "measured_bytes",
    "price",
    "round_half_up",
    "round_lines",
    "units_of",
]

EXACT_PLACES = 12  # decimals kept of an exact share when it is stored (cost_exact)


@dataclass(frozen=True, slots=True)
class Line:
    """One tenant's line of the bill."""

    units: int  # the tenant's own billed units
    exact: Fraction  # its exact share of the account cost
    amount: Decimal  # rounded to the currency's minor unit

    @property
    def cost_exact(self) -> Decimal:
        return round_half_up(self.exact, EXACT_PLACES)


@dataclass(frozen=True, slots=True)
class Bill:
    """The month's account cost and how it is split."""

    currency: str
    total_units: int
    account_cost: Decimal  # exact, before rounding
    amount: Decimal  # account cost rounded half-up to the minor unit == sum of line amounts
    unit_rate: Fraction  # cost charged per unit of a line (the blended rate)
    lines: dict[str, Line]

    def day_cost(self, tenant_id: str, units: int) -> Decimal:
        """Exact cost of ``units`` of a line (0 for units whose cost others carry)."""
        if tenant_id not in self.lines:
            return Decimal(0).scaleb(-EXACT_PLACES)
        return round_half_up(self.unit_rate * units, EXACT_PLACES)

    def share(self, tenant_id: str) -> Decimal:
        """A tenant's share of the account cost (0..1; 0 for a line others carry).

        With a zero account cost (a free tier) the share is the share of units.
        """
        line = self.lines.get(tenant_id)
        if line is None:
            return Decimal(0)
        if self.account_cost:
            exact = line.exact / Fraction(self.account_cost)
        else:
            exact = Fraction(line.units, sum(x.units for x in self.lines.values()))
        return round_half_up(exact, EXACT_PLACES)


def carriers(
    weights: Mapping[str, int], unattributed: Literal["platform", "share_pro_rata"]
) -> dict[str, int]:
    """Who carries a cost split by ``weights`` (units, calls, bytes per tenant), and by how
    much: the tenants of a positive weight. Under ``share_pro_rata`` the ``__unattributed__``
    weight is left out, so the attributed tenants carry its cost in proportion to theirs;
    with no attributed tenant to carry it, it stays a line of its own. The Data API's bill
    and every shared cost split by this one rule."""
    positive = {tenant: weight for tenant, weight in weights.items() if weight > 0}
    attributed = {t: w for t, w in positive.items() if t != UNATTRIBUTED}
    if unattributed == "share_pro_rata" and UNATTRIBUTED in positive and attributed:
        return attributed
    return positive


def price(
    tenant_units: Mapping[str, int],
    pricing: PricingConfig,
    unattributed: Literal["platform", "share_pro_rata"] = "platform",
    cost: Decimal | None = None,
) -> Bill:
    """Price a month from each tenant's billed units.

    ``tenant_units`` may hold the ``__unattributed__`` line. Under ``share_pro_rata`` its
    cost is spread over the attributed tenants in proportion to their units (the line
    carries no cost); with no attributed tenant to carry it, it stays a line of its own.
    The account cost is the tiers' price of the month's units, or ``cost`` when given (what
    AWS invoiced, ``[invoice] allocate = "invoice"``): split by the same rule.
    """
    total = sum(tenant_units.values())
    if cost is None:
        cost = account_cost(total, pricing.tiers)
    weights = carriers(tenant_units, unattributed)
    places = minor_units(pricing.currency)
    exact = allocate(cost, weights)
    amounts = round_lines(exact, places)
    carried = sum(weights.values())
    return Bill(
        currency=pricing.currency,
        total_units=total,
        account_cost=cost,
        amount=round_half_up(cost, places),
        unit_rate=Fraction(cost) / carried if carried else Fraction(0),
        lines={t: Line(tenant_units[t], exact[t], amounts[t]) for t in sorted(weights)},
    )
