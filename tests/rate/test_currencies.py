"""Currencies (SPEC 1.5): ISO 4217's table with its minor units, checked at config load, and
lines rounded to each currency's own minor unit that sum exactly to the total."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metering.config import PricingConfig, Tier
from metering.rate import price, round_half_up
from metering.rate.money import (
    MOST_PLACES,
    amount_text,
    currencies,
    currency_problem,
    minor_units,
)
from metering.schemas import AMOUNT
from metering.store.schema import AMOUNT as AMOUNT_SQL
from tests.rate.strategies import tenant_units


@pytest.mark.parametrize(
    ("currency", "places"),
    [
        ("USD", 2), ("EUR", 2), ("JPY", 0), ("KRW", 0), ("XOF", 0), ("XAF", 0), ("CLP", 0),
        ("KWD", 3), ("BHD", 3), ("JOD", 3), ("OMR", 3), ("TND", 3), ("CLF", 4),
    ],
)  # fmt: skip
def test_minor_units_come_from_the_iso_table(currency: str, places: int) -> None:
    assert minor_units(currency) == places


def test_the_table_is_iso_4217_list_one_and_the_warehouse_holds_its_longest_unit() -> None:
    table = currencies()
    assert len(table) > 150  # the whole list, not a hand-written subset
    assert table["USD"] == ("US Dollar", 2)
    assert table["XAU"] == ("Gold", None)
    most = max(places for _, places in table.values() if places is not None)
    assert most == MOST_PLACES == AMOUNT.scale
    assert f"DECIMAL({AMOUNT.precision}, {AMOUNT.scale})" == AMOUNT_SQL


@pytest.mark.parametrize("code", ["XXX", "XTS", "XAU", "XAG", "XPT", "XPD", "XDR"])
def test_codes_without_a_minor_unit_are_refused(code: str) -> None:
    problem = currency_problem(code)
    assert problem is not None
    assert problem.startswith(f"{code} (") and "has no minor unit in ISO 4217" in problem
    with pytest.raises(ValueError, match="no minor unit"):
        minor_units(code)


@pytest.mark.parametrize(
    ("code", "suggested"),
    [
        ("ABC", "did you mean PAB (Balboa)?"),
        ("usd", "did you mean USD (US Dollar), "),
        ("yen", "did you mean JPY (Yen), "),
        ("EURO", "did you mean EUR (Euro), "),
        ("QQQ", '(three capital letters, e.g. "USD", "EUR", "JPY")'),
    ],
)
def test_unknown_codes_are_refused_with_close_matches(code: str, suggested: str) -> None:
    problem = currency_problem(code)
    assert problem is not None
    assert problem.startswith(f"{code!r} is not a currency code of ISO 4217")
    assert suggested in problem
    with pytest.raises(ValueError, match="not a currency code of ISO 4217"):
        PricingConfig(currency=code)


def test_funds_with_a_minor_unit_are_billable() -> None:
    assert PricingConfig(currency="USN").currency == "USN"
    assert PricingConfig(currency="CLF").currency == "CLF"


@pytest.mark.parametrize(
    ("amount", "currency", "text", "grouped"),
    [
        ("9.2000", "USD", "9.20", "9.20"),
        ("1234567.5000", "USD", "1234567.50", "1,234,567.50"),
        ("920.0000", "JPY", "920", "920"),
        ("1234.0000", "XOF", "1234", "1,234"),
        ("9.2000", "KWD", "9.200", "9.200"),
        ("0.0040", "BHD", "0.004", "0.004"),
        ("0.0000", "JPY", "0", "0"),
        ("-1.5000", "EUR", "-1.50", "-1.50"),
        # Billed by an older meter, which rounded XOF to 2 places: shown as it was billed.
        ("1234.5600", "XOF", "1234.56", "1,234.56"),
        # A code the table does not list (an old warehouse's): 2 places, as it was billed.
        ("12.3400", "ABC", "12.34", "12.34"),
    ],
)
def test_amount_text_writes_exactly_the_currency_s_decimals(
    amount: str, currency: str, text: str, grouped: str
) -> None:
    assert amount_text(Decimal(amount), currency) == text
    assert amount_text(Decimal(amount), currency, grouped=True) == grouped


prices = st.decimals(min_value=0, max_value=10_000, places=6, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(
    units=tenant_units,
    first=prices,
    second=prices,
    currency=st.sampled_from(["JPY", "XOF", "USD", "EUR", "KWD", "BHD", "JOD", "CLF"]),
)
def test_lines_sum_exactly_to_the_total_in_the_currency_s_minor_unit(
    units: dict[str, int], first: Decimal, second: Decimal, currency: str
) -> None:
    pricing = PricingConfig(
        currency=currency,
        tiers=(Tier(up_to=1_000_000_000, per_million=first), Tier(per_million=second)),
    )
    places = minor_units(currency)
    minor = Fraction(1, 10**places)
    bill = price(units, pricing)
    assert bill.amount == round_half_up(bill.account_cost, places)
    assert sum(line.amount for line in bill.lines.values()) == bill.amount
    for line in bill.lines.values():
        # To the minor unit exactly, and its exact share rounded down or up, never further.
        assert line.amount == line.amount.quantize(Decimal(1).scaleb(-places))
        assert abs(Fraction(line.amount) - line.exact) < minor


def test_a_worked_example_in_yen_and_in_dinars() -> None:
    """7 units, split 3/2/2: the spare minor units go to the largest remainders, ties by
    tenant id (b before c)."""
    units = {"a": 3, "b": 2, "c": 2}
    yen = price(
        units, PricingConfig(currency="JPY", tiers=(Tier(per_million=Decimal("333333.333333")),))
    )
    assert yen.account_cost == Decimal("2.333333333331")
    assert {t: line.amount for t, line in yen.lines.items()} == {
        "a": Decimal(1), "b": Decimal(1), "c": Decimal(0)
    }  # fmt: skip
    assert yen.amount == Decimal(2)
    dinars = price(
        units, PricingConfig(currency="KWD", tiers=(Tier(per_million=Decimal("1234.5678")),))
    )
    assert dinars.account_cost == Decimal("0.0086419746")
    assert {t: line.amount for t, line in dinars.lines.items()} == {
        "a": Decimal("0.004"), "b": Decimal("0.003"), "c": Decimal("0.002")
    }  # fmt: skip
    assert dinars.amount == Decimal("0.009")
