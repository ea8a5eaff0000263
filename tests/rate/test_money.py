"""Money rules (SPEC section 1): exact, per-call units, lines that sum to the total."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metering.config import PricingConfig, Tier
from metering.rate import account_cost, call_units, price, round_half_up, round_lines, units_of
from metering.schemas import UNATTRIBUTED, decimal_column
from tests.rate.strategies import tenant_units

PRICING = PricingConfig()


def test_worked_example_from_the_spec() -> None:
    # Tenant 1: 10 calls/s under 32 KB for 730 h; tenant 2: 15.76 M calls of 32-64 KB.
    bill = price({"1": 26_280_000, "2": 2 * 15_760_000}, PRICING)
    assert bill.account_cost == Decimal("20.2300000")
    assert bill.lines["1"].exact == Fraction("9.198")
    assert bill.lines["2"].exact == Fraction("11.032")
    assert bill.lines["1"].amount == Decimal("9.20")  # the spare cent: 0.008 > 0.002
    assert bill.lines["2"].amount == Decimal("11.03")
    assert bill.amount == Decimal("20.23")


def test_tiers_apply_to_the_month_total() -> None:
    assert account_cost(1_000_000_000, PRICING.tiers) == Decimal(350)
    assert account_cost(1_500_000_000, PRICING.tiers) == Decimal(350) + Decimal(100)
    assert account_cost(0, PRICING.tiers) == 0
    three = (
        Tier(up_to=10, per_million=Decimal(3)),
        Tier(up_to=20, per_million=Decimal(2)),
        Tier(per_million=Decimal(1)),
    )
    assert account_cost(25, three) == Decimal("0.000055")  # 10x3 + 10x2 + 5x1


def test_ties_break_by_tenant_id() -> None:
    # Three equal thirds of 0.01: two lines of 0.00 and one of 0.01; "a" wins the tie.
    lines = round_lines({"c": Fraction(1, 300), "a": Fraction(1, 300), "b": Fraction(1, 300)}, 2)
    assert lines == {"a": Decimal("0.01"), "b": Decimal("0.00"), "c": Decimal("0.00")}


def test_share_pro_rata_spreads_unattributed_cost() -> None:
    bill = price(
        {"a": 3_000_000, "b": 1_000_000, UNATTRIBUTED: 4_000_000}, PRICING, "share_pro_rata"
    )
    assert set(bill.lines) == {"a", "b"}
    assert bill.lines["a"].amount == Decimal("2.10")
    assert bill.lines["b"].amount == Decimal("0.70")
    platform = price({"a": 3_000_000, "b": 1_000_000, UNATTRIBUTED: 4_000_000}, PRICING)
    assert platform.lines[UNATTRIBUTED].amount == Decimal("1.40")


def test_round_half_up_of_a_fraction() -> None:
    assert round_half_up(Fraction(5, 1000), 2) == Decimal("0.01")
    assert round_half_up(Fraction(4999, 1_000_000), 2) == Decimal("0.00")
    assert round_half_up(Decimal("0.125"), 2) == Decimal("0.13")


def _units(sql: str, rows: list[tuple[int | None, int | None]]) -> list[int]:
    """Evaluate a units SQL expression over (request_bytes, response_bytes) rows in DuckDB."""
    con = duckdb.connect()
    con.execute("CREATE TABLE c (i INTEGER, request_bytes BIGINT, response_bytes BIGINT)")
    con.executemany("INSERT INTO c VALUES (?, ?, ?)", [(i, *row) for i, row in enumerate(rows)])
    return [r[0] for r in con.execute(f"SELECT {sql} FROM c ORDER BY i").fetchall()]


@settings(max_examples=60)
@given(
    sizes=st.lists(st.integers(0, 20 * 1024 * 1024), min_size=1, max_size=40),
    block=st.integers(1, 1 << 20),
)
def test_units_are_max_one_ceil(sizes: list[int], block: int) -> None:
    expected = [max(1, -(-n // block)) for n in sizes]
    assert [units_of(n, block) for n in sizes] == expected
    assert _units(call_units("request", block, 1), [(n, 0) for n in sizes]) == expected


def test_units_per_measure_and_unknown_size() -> None:
    rows = [(100, 32700), (32768, 1), (None, None), (40000, 70000)]

    def units(measure: str, unknown: int = 1) -> list[int]:
        return _units(call_units(measure, 32768, unknown), rows)  # type: ignore[arg-type]

    assert units("request") == [1, 1, 1, 2]
    assert units("response") == [1, 1, 1, 3]
    assert units("request+response") == [2, 2, 1, 4]
    assert units("max") == [1, 1, 1, 3]
    assert units("max", unknown=5) == [1, 1, 5, 3]


prices = st.decimals(min_value=0, max_value=1000, places=4, allow_nan=False, allow_infinity=False)


@settings(max_examples=300)
@given(units=tenant_units, first=prices, second=prices)
def test_lines_always_sum_exactly_to_the_rounded_total(
    units: dict[str, int], first: Decimal, second: Decimal
) -> None:
    pricing = PricingConfig(
        tiers=(Tier(up_to=1_000_000_000, per_million=first), Tier(per_million=second))
    )
    bill = price(units, pricing)
    assert sum(line.amount for line in bill.lines.values()) == bill.amount
    assert bill.amount == round_half_up(bill.account_cost, 2)
    assert sum(line.exact for line in bill.lines.values()) == Fraction(bill.account_cost)
    for line in bill.lines.values():
        # Each line is its exact share rounded down or up, never further.
        assert abs(Fraction(line.amount) - line.exact) < Fraction(1, 100)


@settings(max_examples=200)
@given(units=tenant_units, policy=st.sampled_from(["platform", "share_pro_rata"]), data=st.data())
def test_result_independent_of_tenant_order(
    units: dict[str, int], policy: str, data: st.DataObject
) -> None:
    shuffled = dict(data.draw(st.permutations(list(units.items()))))
    assert price(units, PRICING, policy).lines == price(shuffled, PRICING, policy).lines  # type: ignore[arg-type]


@given(
    st.lists(st.integers(-(10**26) + 1, 10**26 - 1), max_size=20),
    st.integers(0, 12),
)
def test_decimal_columns_hold_amounts_exactly_and_refuse_more_places(
    minor: list[int], places: int
) -> None:
    """Amounts go into the warehouse's DECIMAL columns unchanged; a value with one place
    too many is an error, never a cut."""
    values = [Decimal(m).scaleb(-places) for m in minor]
    assert decimal_column(values, 38, 12).to_list() == values
    with pytest.raises(ValueError, match="more than 12 decimal places"):
        decimal_column([*values, Decimal("0.0000000000001")], 38, 12)
    with pytest.raises(ValueError, match="does not fit DECIMAL"):
        decimal_column([*values, Decimal(10**26)], 38, 12)
