"""The tie-out with the AWS invoice, and ``allocate = "invoice"``: what AWS invoiced is split by
the same blended rule and largest-remainder cents as a modelled cost."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metering.config import InvoiceConfig, PricingConfig
from metering.errors import InputError
from metering.rate import price
from metering.rate.money import round_half_up
from metering.rate.tieout import allocated_cost, requests_off, tie_out
from metering.schemas import INVOICE, UNATTRIBUTED, Invoice
from tests.invoices import CUR_REGIONS

D = Decimal
PRICING = PricingConfig()


def _invoice() -> Invoice:
    """tests/invoices.py's month, as the reader sums it from CUR 2.0."""
    return Invoice(
        "USD",
        CUR_REGIONS,
        rds_net=D("15.100035"),
        rds_tax=D("0.40"),
    )


def test_allocated_cost_is_the_net_rounded_once_with_tax_when_asked() -> None:
    source = InvoiceConfig(uris=("cur",))
    assert allocated_cost(_invoice(), source, 2, "2026-10") == D("1.51")
    with_tax = InvoiceConfig(uris=("cur",), include_tax=True)
    assert allocated_cost(_invoice(), with_tax, 2, "2026-10") == D("1.55")  # 1.5100035 + 0.04
    assert allocated_cost(_invoice(), with_tax, 0, "2026-10") == D(2)


def test_nothing_to_split_is_an_input_error() -> None:
    source = InvoiceConfig(uris=("s3://billing/cur",), allocate="invoice")
    with pytest.raises(InputError) as caught:
        allocated_cost(Invoice("USD", rds_net=D(10)), source, 2, "2026-10")
    assert str(caught.value) == (
        '[invoice] allocate = "invoice", but s3://billing/cur holds no Data API line of 2026-10 '
        "(usage types like %DataAPI%, %Data_API%): check the uris, the export's months and "
        'data_api_usage_types, or set allocate = "model"'
    )


def test_tie_out_rows() -> None:
    source = InvoiceConfig(uris=("cur",), allocate="invoice", tolerance=D("0.5"))
    frame = tie_out(_invoice(), source, "2026-10", "run1", 87, D("0.0000304500"), D("1.51"), 2)
    assert frame.schema == INVOICE
    rows = {row.pop("region"): row for row in frame.to_dicts()}
    assert list(rows) == ["eu-west-1", "us-east-1", "all"]
    common = {"month": "2026-10", "currency": "USD", "allocate": "invoice", "run_id": "run1"}
    common |= {"tolerance": D("0.5")}
    meter_only = dict.fromkeys(
        (
            "meter_units",
            "request_variance",
            "request_variance_pct",
            "modelled_cost",
            "cost_variance",
            "cost_variance_pct",
            "tax",
            "allocated_total",
            "within_tolerance",
        )
    )
    assert rows["eu-west-1"] == common | meter_only | {
        "invoiced_requests": D(20),
        "invoiced_net_cost": D("0.74"),
        "usage_cost": D("1.85"),
        "savings_plan_negation": D("-1.11"),
        "credits": D(0),
        "refunds": D(0),
        "discounts": D(0),
        "other_charges": D(0),
        "lines": 3,
    }
    assert rows["us-east-1"]["invoiced_net_cost"] == D("0.77")  # 0.7700035
    assert rows["all"] == common | {
        "invoiced_requests": D(60),
        "meter_units": 87,
        "request_variance": D(27),
        "request_variance_pct": D("45.0000"),
        "invoiced_net_cost": D("1.51"),
        "modelled_cost": D("0.00"),
        "cost_variance": D("-1.51"),
        "cost_variance_pct": D("-100.0000"),
        "usage_cost": D("2.9000035"),
        "savings_plan_negation": D("-1.11"),
        "credits": D("-0.25"),
        "refunds": D(0),
        "discounts": D("-0.03"),
        "other_charges": D(0),
        "tax": D("0.04"),
        "lines": 8,
        "allocated_total": D("1.51"),
        "within_tolerance": True,  # 45 % of the invoiced requests is within 50 %
    }


def test_an_invoice_without_data_api_lines_ties_out_to_zero() -> None:
    frame = tie_out(Invoice("USD"), InvoiceConfig(uris=("cur",)), "2026-10", "r", 5, D(0), D(0), 2)
    [row] = frame.to_dicts()
    assert (row["region"], row["invoiced_requests"], row["meter_units"]) == ("all", D(0), 5)
    assert (row["request_variance"], row["request_variance_pct"]) == (D(5), None)
    assert (row["cost_variance_pct"], row["within_tolerance"]) == (None, False)


@pytest.mark.parametrize(
    ("invoiced", "units", "tolerance", "off"),
    [
        (D(100), 101, D("0.01"), False),  # exactly 1 %
        (D(100), 102, D("0.01"), True),
        (D(100), 98, D("0.01"), True),
        (D("100.5"), 100, D("0.005"), False),
        (D(0), 0, D(0), False),
        (D(0), 1, D(1), True),  # nothing invoiced, something billed
        (D(100), 100, D(0), False),
    ],
)
def test_requests_off(invoiced: Decimal, units: int, tolerance: Decimal, off: bool) -> None:
    assert requests_off(invoiced, units, tolerance) is off


# A month's calls, as (tenant, units) pairs; and what AWS invoiced for them, exactly (costs
# with up to 12 decimals, as Data Exports sums them; credits can make it negative).
calls = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c", "d", UNATTRIBUTED]), st.integers(1, 128)),
    min_size=1,
    max_size=60,
)
invoiced = st.decimals(min_value=-50, max_value=10**9, places=12, allow_nan=False)


def _units(pairs: list[tuple[str, int]]) -> dict[str, int]:
    units: Counter[str] = Counter()
    for tenant, n in pairs:
        units[tenant] += n
    return dict(units)


@given(calls, invoiced, st.sampled_from(["platform", "share_pro_rata"]), st.randoms())
def test_invoice_allocation_sums_to_the_invoiced_total_and_ignores_call_order(
    pairs: list[tuple[str, int]], cost: Decimal, policy: str, rnd: object
) -> None:
    total = round_half_up(cost, 2)  # what allocated_cost gives: rounded once
    bill = price(_units(pairs), PRICING, policy, total)  # type: ignore[arg-type]
    assert bill.account_cost == bill.amount == total
    assert sum(line.amount for line in bill.lines.values()) == total
    carried = sum(line.units for line in bill.lines.values())
    for line in bill.lines.values():
        assert line.exact == Fraction(total) * line.units / carried  # the blended rate
        assert abs(line.amount - D(line.exact.numerator) / line.exact.denominator) < D("0.01")
    # Shuffling the calls (of any tenant among the others') moves nobody's share or cents.
    shuffled = list(pairs)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    again = price(_units(shuffled), PRICING, policy, total)  # type: ignore[arg-type]
    assert again == bill


@given(calls, invoiced, st.randoms())
def test_no_share_moves_when_other_tenants_calls_are_shuffled_among_them(
    pairs: list[tuple[str, int]], cost: Decimal, rnd: object
) -> None:
    """Tenant "a"'s exact share (and so its share of the cents) depends on its own units and
    the month's only: dealing the others' calls out to them anew leaves it where it was."""
    total = round_half_up(cost, 2)
    others = [t for t, _ in pairs if t != "a"]
    rnd.shuffle(others)  # type: ignore[attr-defined]
    dealt = iter(others)
    reshuffled = [(t if t == "a" else next(dealt), n) for t, n in pairs]
    before = price(_units(pairs), PRICING, cost=total)
    after = price(_units(reshuffled), PRICING, cost=total)
    assert after.total_units == before.total_units
    if "a" in before.lines:
        assert after.lines["a"].exact == before.lines["a"].exact
        assert after.share("a") == before.share("a")
        assert abs(after.lines["a"].amount - before.lines["a"].amount) <= D("0.01")


def test_model_allocation_is_unchanged_without_a_cost() -> None:
    units = {"t1": 26_280_000, "t2": 31_520_000}  # SPEC 1's worked example
    bill = price(units, PRICING)
    assert (bill.account_cost, bill.amount) == (D("20.23"), D("20.23"))
    assert {t: line.amount for t, line in bill.lines.items()} == {"t1": D("9.20"), "t2": D("11.03")}
    assert price(units, PRICING, cost=D("20.23")) == bill
