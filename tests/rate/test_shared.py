"""Shared costs' split (SPEC 8), property-tested: for random invoices and random usage the
tenant lines of every charge sum exactly to what it allocated, what could not be split is
exactly the lines of clusters without calls, and a tenant's share never moves when another
cluster's tenant's calls are shuffled over the days or the rows come in another order."""

from __future__ import annotations

import random
from decimal import Decimal
from fractions import Fraction

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from metering.config import Config
from metering.rate.money import round_half_up
from metering.rate.shared import DRIVERS, charges
from metering.schemas import SharedLine, empty

CLUSTERS = [f"arn:aws:rds:us-east-1:123456789012:cluster:c{i}" for i in range(3)]
MONTH = "2026-10"


def _config(driver: str, clusters: list[str] | None = None) -> Config:
    return Config.model_validate(
        {
            "sources": {"metering": {"exports": ["d"]}},
            "invoice": {"uris": ["c"]},
            "shared_costs": [
                {
                    "name": "compute",
                    "usage_types": ["%ACU%"],
                    "driver": driver,
                    "clusters": clusters or [],
                }
            ],
        }
    )


def _drivers(rows: list[tuple[str, str, int, int, int, int]]) -> pl.DataFrame:
    if not rows:
        return empty(DRIVERS)
    frame = pl.DataFrame(
        rows, schema=["tenant_id", "cluster", "day", "calls", "units", "bytes"], orient="row"
    )
    return frame.with_columns(pl.date(2026, 10, pl.col("day")).alias("day")).select(list(DRIVERS))


def _split(
    lines: list[SharedLine], rows: list[tuple[str, str, int, int, int, int]], driver: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    tenants = sorted({row[0] for row in rows})
    tenant_month = pl.DataFrame(
        {
            "tenant_id": tenants,
            "amount": [Decimal(0)] * len(tenants),
            "share": [Decimal(0)] * len(tenants),
            "cost_exact": [Decimal(0)] * len(tenants),
            "units": [0] * len(tenants),
        },
        schema_overrides={"amount": pl.Decimal(18, 2), "share": pl.Decimal(18, 12)},
    )
    split = charges(_config(driver), MONTH, tenant_month, lines, _drivers(rows), "run")
    mine = split.tenant_charges.filter(pl.col("charge") == "compute")
    return mine, split.shared_costs


usage = st.lists(
    st.tuples(
        st.sampled_from(["acme", "globex", "initech", "umbrella"]),
        st.sampled_from(CLUSTERS[:2]),  # c2 never has a call
        st.integers(1, 5),
        st.integers(1, 50),
        st.integers(1, 90),
        st.integers(0, 10**7),
    ),
    max_size=25,
)
cost = st.decimals(min_value=-5, max_value=80, places=7, allow_nan=False, allow_infinity=False)
invoice = st.lists(
    st.builds(
        SharedLine,
        charge=st.just("compute"),
        resource_id=st.sampled_from([*CLUSTERS, ""]),
        day=st.one_of(st.none(), st.integers(1, 6).map(lambda d: f"2026-10-{d:02d}")),
        cost=cost,
    ),
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(invoice, usage, st.sampled_from(["units", "calls", "bytes"]))
def test_lines_sum_to_what_was_allocated(
    lines: list[SharedLine], rows: list[tuple[str, str, int, int, int, int]], driver: str
) -> None:
    mine, totals = _split(lines, rows, driver)
    (total,) = totals.to_dicts()
    assert sum(mine["amount"], Decimal(0)) == total["allocated"]
    # Unallocated: exactly the lines of clusters without a call (c2, the tenants' clusters
    # but none of theirs on a weight of 0) and those naming none; the rest is allocated.
    called = {
        cluster
        for _, cluster, _, *weights in rows
        if weights[["calls", "units", "bytes"].index(driver)] > 0
    }
    mentioned = {cluster for _, cluster, *_ in rows}
    taken = [line for line in lines if not line.resource_id or line.resource_id in mentioned]
    unplaced = sum((line.cost for line in taken if line.resource_id not in called), Decimal(0))
    placed = sum((line.cost for line in taken if line.resource_id in called), Decimal(0))
    assert total["lines"] == len(taken)
    assert total["invoiced_cost"] == placed + unplaced
    assert total["unallocated"] == round_half_up(unplaced, 2)
    assert total["allocated"] == round_half_up(Fraction(placed), 2)
    if placed:  # each tenant's share of the charge (12 places): together, the whole of it
        shares = sum(mine["share"], Decimal(0))
        assert abs(shares - 1) <= len(mine) * Decimal("1e-12")


def _on(
    cluster: str, names: list[str]
) -> st.SearchStrategy[list[tuple[str, str, int, int, int, int]]]:
    row = st.tuples(
        st.sampled_from(names),
        st.just(cluster),
        st.integers(1, 5),
        st.integers(1, 50),
        st.integers(1, 90),
        st.integers(1, 10**7),
    )
    return st.lists(row, min_size=1, max_size=12)


@settings(max_examples=150, deadline=None)
@given(
    invoice,
    _on(CLUSTERS[0], ["acme", "globex"]),
    _on(CLUSTERS[1], ["initech", "umbrella"]),
    st.randoms(use_true_random=False),
    st.sampled_from(["units", "calls", "bytes"]),
)
def test_no_share_moves_when_another_clusters_calls_are_shuffled(
    lines: list[SharedLine],
    c0: list[tuple[str, str, int, int, int, int]],
    c1: list[tuple[str, str, int, int, int, int]],
    rnd: random.Random,
    driver: str,
) -> None:
    rows = c0 + c1
    mine, _ = _split(lines, rows, driver)
    # Another order of the same rows and lines: the same charges, to the byte.
    again, _ = _split(rnd.sample(lines, len(lines)), rnd.sample(rows, len(rows)), driver)
    assert again.equals(mine)
    # umbrella's calls on c1 moved to other days: what the tenants of c0 carry (their exact
    # cost, their share of the charge) does not move.
    moved = c0 + [
        (t, c, rnd.randint(1, 5), *w) if t == "umbrella" else (t, c, d, *w) for t, c, d, *w in c1
    ]
    after, _ = _split(lines, moved, driver)
    for tenant in ("acme", "globex"):
        row = mine.filter(pl.col("tenant_id") == tenant).select("cost_exact", "share")
        assert after.filter(pl.col("tenant_id") == tenant).select("cost_exact", "share").equals(row)


def test_a_day_without_calls_of_its_cluster_is_split_by_the_month() -> None:
    lines = [
        SharedLine("compute", CLUSTERS[0], "2026-10-01", Decimal("3.00")),
        SharedLine("compute", CLUSTERS[0], "2026-10-09", Decimal("1.00")),  # no call that day
    ]
    rows = [("acme", CLUSTERS[0], 1, 1, 1, 0), ("globex", CLUSTERS[0], 2, 3, 3, 0)]
    mine, totals = _split(lines, rows, "units")
    # 10-01: acme alone 3.00; 10-09: the month's 1:3 -> 0.25, 0.75
    assert dict(mine.select("tenant_id", "amount").iter_rows()) == {
        "acme": Decimal("3.25"),
        "globex": Decimal("0.75"),
    }
    assert totals["unallocated"].to_list() == [Decimal("0.00")]
