"""Charts, drawn with Agg to PNG and checked for what they show: the numbers behind each axes,
the labels a reader sees (read back from the Axes), the alt text, the picture's size, and
that it is not blank."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.image import imread
from PIL import Image

from metering.config import Config, load_config
from metering.outputs import chart
from metering.pipeline import bill
from metering.rate.edges import edge_savings
from metering.report.charts import (
    BASE,
    DOWN,
    DPI,
    EDGE,
    OTHERS,
    UP,
    alt_text,
    month_label,
    plot_cost_per_tenant,
    plot_daily_calls,
    plot_daily_cost,
    plot_edge_savings,
    plot_month_change,
    plot_payload_sizes,
    plot_trend,
)
from metering.store.queries import month_changes
from tests.helpers import export_records, write_config
from tests.report.conftest import OCT, REGISTRY, SEP, small_records

D = Decimal


def _rgb(color: str) -> np.ndarray:
    return np.array([int(color[i : i + 2], 16) / 255 for i in (1, 3, 5)])


def _pixels_of(png: np.ndarray, color: str) -> int:
    """How many pixels are (almost exactly) ``color``."""
    return int((np.abs(png[..., :3] - _rgb(color)).max(axis=-1) < 0.02).sum())


def _check_picture(path: Path, size: tuple[int, int], colors: dict[str, int]) -> None:
    """A PNG of ``size`` pixels (width, height), not blank, with at least N pixels of each colour."""
    png = imread(path)
    assert png.shape[1::-1] == size
    assert png.shape[2] == 4
    assert float(png[..., :3].std()) > 0.1  # not a blank page
    assert (png[..., :3].min(axis=-1) < 0.9).mean() > 0.02  # ink on at least 2 % of it
    for color, least in colors.items():
        assert _pixels_of(png, color) >= least, color


def _description(path: Path) -> str:
    """The alt text ``meter chart`` writes into a PNG (its ``Description`` text chunk)."""
    with Image.open(path) as image:
        return str(image.info["Description"])


def _legend(ax: Axes) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None
    return [t.get_text() for t in legend.get_texts()]


def _ticks(ax: Axes, axis: str = "y") -> list[str]:
    labels = ax.get_yticklabels() if axis == "y" else ax.get_xticklabels()
    return [t.get_text() for t in labels]


def _bar_colors(ax: Axes) -> list[str]:
    return [to_hex(p.get_facecolor()).upper() for p in ax.patches]


def test_small_month_charts_show_the_bill(small: Config, tmp_path: Path) -> None:
    paths = chart(small, OCT, tmp_path / "charts")
    assert [p.name for p in paths] == [
        "2026-10-cost-per-tenant.png",
        "2026-10-daily-cost.png",
        "2026-10-daily-calls.png",
        "2026-10-payload-sizes.png",
        "2026-10-edge-savings.png",
    ]  # one month only: no trend, no change from the month before
    cost, daily_cost, daily, sizes, savings = paths
    _check_picture(cost, (11 * DPI, int(3.8 * DPI)), {BASE: 20_000})
    _check_picture(daily_cost, (13 * DPI, 6 * DPI), {BASE: 2_000, "#E69F00": 2_000})
    _check_picture(daily, (13 * DPI, int(5.8 * DPI)), {BASE: 2_000})
    _check_picture(sizes, (12 * DPI, int(6.5 * DPI)), {BASE: 500, EDGE: 2_000})
    _check_picture(savings, (12 * DPI, int(3.7 * DPI)), {EDGE: 20_000})
    # Each PNG carries its alt text: what it shows, in words.
    assert _description(cost) == (
        "Cost per tenant, October 2026. Horizontal bars, one per tenant line, largest first, "
        "labelled with the billed amount and its share of the month: Globex Inc. (globex): "
        "3.85 USD (47.8 %); Acme Ltd (acme): 3.50 USD (43.5 %); Unattributed calls: 0.70 USD "
        "(8.7 %)."
    )
    assert _description(daily_cost) == (
        "Cost per day by tenant, October 2026. Stacked bars of cost per day in USD, one bar "
        "for each day from 1 Oct to 31 Oct 2026, one colour per tenant (cost in the month): "
        "Globex Inc. (globex): 3.85 USD; Acme Ltd (acme): 3.50 USD; Unattributed calls: "
        "0.70 USD; the busiest day Sat 3 Oct with 4.55 USD."
    )
    assert _description(daily) == (
        "Daily Data API calls per tenant, October 2026. Panel 1, Acme Ltd (acme): 10 calls in "
        "the month, busiest Thu 1 Oct with 4, on its own scale. Panel 2, Globex Inc. (globex): "
        "5 calls in the month, busiest Sat 3 Oct with 5, on its own scale. Panel 3, "
        "Unattributed calls: 2 calls in the month, busiest Sat 31 Oct with 2, on its own scale."
    )
    assert _description(sizes).endswith(": 17 calls drawn, 3 of them just past an edge (orange).")
    assert _description(savings).endswith(
        "Globex Inc. (globex): about 1.05 USD a month: 3 units (27.3 % of its units)."
    )


def test_the_data_behind_each_chart(small: Config, tmp_path: Path) -> None:
    plotted: dict[str, pl.DataFrame] = {}
    chart(small, OCT, tmp_path, plotted)
    assert sorted(plotted) == ["cost", "daily", "daily_cost", "savings", "sizes"]
    cost = plotted["cost"]
    assert cost.to_dict(as_series=False) == {
        "label": ["Globex Inc. (globex)", "Acme Ltd (acme)", "Unattributed calls"],
        "cost": [3.85, 3.5, 0.7],
        "amount": [3.85, 3.5, 0.7],
        "share_pct": pytest.approx([100 * 11 / 23, 100 * 10 / 23, 100 * 2 / 23]),
        "text": ["3.85 USD  (47.8 %)", "3.50 USD  (43.5 %)", "0.70 USD  (8.7 %)"],
    }
    # Cost per day, exact: each unit is 0.35 USD; the stack from the bottom up.
    daily_cost = plotted["daily_cost"]
    assert daily_cost.height == 3 * 31  # every day of October, for each tenant
    assert daily_cost.filter(pl.col("cost") > 0).rows() == [
        ("Globex Inc. (globex)", date(2026, 10, 3), D("3.85")),
        ("Acme Ltd (acme)", date(2026, 10, 1), D("1.40")),
        ("Acme Ltd (acme)", date(2026, 10, 2), D("1.40")),
        ("Acme Ltd (acme)", date(2026, 10, 3), D("0.70")),
        ("Unattributed calls", date(2026, 10, 31), D("0.70")),
    ]
    assert sum(daily_cost["cost"]) == D("8.05")  # the account cost, to the last digit
    daily = plotted["daily"]
    assert daily["series"].unique(maintain_order=True).to_list() == [
        "Acme Ltd (acme)",
        "Globex Inc. (globex)",
        "Unattributed calls",
    ]
    assert daily.height == 3 * 31
    assert daily.filter(pl.col("calls") > 0).rows() == [
        ("Acme Ltd (acme)", date(2026, 10, 1), 4),
        ("Acme Ltd (acme)", date(2026, 10, 2), 4),
        ("Acme Ltd (acme)", date(2026, 10, 3), 2),
        ("Globex Inc. (globex)", date(2026, 10, 3), 5),
        ("Unattributed calls", date(2026, 10, 31), 2),
    ]
    # 1 KiB bars, right-closed: 32,769 B is in (32, 33] KiB; 36,044 and 36,045 B in (35, 36].
    assert plotted["sizes"].rows() == [
        (0.0, 1.0, 12, 0),
        (32.0, 33.0, 1, 1),
        (35.0, 36.0, 2, 1),
        (39.0, 40.0, 1, 0),
        (64.0, 65.0, 1, 1),
    ]
    assert plotted["savings"].rows() == [
        (
            "Globex Inc. (globex)",
            3,
            pytest.approx(100 * 3 / 11),
            "about 1.05 USD a month: 3 units (27.3 % of its units)",
        )
    ]


def test_trend_and_month_over_month_with_two_months(
    small_two_months: Config, tmp_path: Path
) -> None:
    plotted: dict[str, pl.DataFrame] = {}
    paths = chart(small_two_months, OCT, tmp_path, plotted)
    assert [p.name for p in paths[-2:]] == ["2026-10-trend.png", "2026-10-month-over-month.png"]
    trend, change = paths[-2:]
    _check_picture(trend, (10 * DPI, 6 * DPI), {BASE: 20_000})
    _check_picture(change, (12 * DPI, int(3.8 * DPI)), {UP: 20_000})
    assert plotted["trend"].rows() == [
        ("2026-09", "Acme Ltd (acme)", 0.7),
        ("2026-10", "Acme Ltd (acme)", 3.5),
        ("2026-09", "Globex Inc. (globex)", 0.0),
        ("2026-10", "Globex Inc. (globex)", 3.85),
        ("2026-09", "Unattributed calls", 0.0),
        ("2026-10", "Unattributed calls", 0.7),
        ("2026-09", "total", 0.7),
        ("2026-10", "total", 8.05),
    ]
    # Month over month: acme 0.70 -> 3.50; globex and the unattributed line are new.
    assert plotted["change"].rows() == [
        ("Globex Inc. (globex)", D("3.85"), D("3.85"), None, "+3.85 USD (new this month)"),
        ("Acme Ltd (acme)", D("2.80"), D("2.80"), 400.0, "+2.80 USD (+400.0 %)"),
        ("Unattributed calls", D("0.70"), D("0.70"), None, "+0.70 USD (new this month)"),
    ]
    assert _description(trend) == (
        "Cost per month by tenant, Sep 2026 to Oct 2026. Stacked bars of cost per month from "
        "Sep 2026 to Oct 2026, one colour per tenant (Acme Ltd (acme); Globex Inc. (globex); "
        "Unattributed calls); billed totals: Sep 2026 0.70 USD; Oct 2026 8.05 USD, +1,050.0 %."
    )
    assert _description(change).startswith(
        "Change in cost per tenant, September 2026 to October 2026. Horizontal bars of each "
        "tenant's change in cost from the month before, increases to the right, decreases to "
        "the left: Globex Inc. (globex): +3.85 USD (new this month); "
    )


def test_month_changes_are_exact_and_need_the_month_before(
    small: Config, small_two_months: Config
) -> None:
    changes = month_changes(small_two_months.warehouse.path, OCT)
    assert changes.columns == [
        "tenant_id",
        "tenant_name",
        "registered",
        "previous_amount",
        "amount",
        "change",
        "previous_cost_exact",
        "cost_exact",
        "change_exact",
        "change_pct",
        "new",
        "gone",
    ]
    assert changes.select(
        "tenant_id", "previous_amount", "amount", "change", "change_exact", "change_pct", "new"
    ).rows() == [
        ("globex", D("0.00"), D("3.85"), D("3.85"), D("3.85"), None, True),
        ("acme", D("0.70"), D("3.50"), D("2.80"), D("2.80"), 400.0, False),
        ("__unattributed__", D("0.00"), D("0.70"), D("0.70"), D("0.70"), None, True),
    ]
    assert not changes["gone"].any()
    # September has no month before it; the one-month warehouse has no September.
    assert month_changes(small_two_months.warehouse.path, SEP).is_empty()
    assert month_changes(small.warehouse.path, OCT).is_empty()


def _lines(n: int) -> pl.DataFrame:
    """``n`` tenant lines; tenant i costs i + 1."""
    return pl.DataFrame(
        {
            "tenant_id": [f"t{i:02d}" for i in range(n)],
            "tenant_name": [f"Tenant {i}" for i in range(n)],
            "cost_exact": pl.Series([D(i + 1) for i in range(n)], dtype=pl.Decimal(38, 12)),
            "amount": pl.Series([D(i + 1) for i in range(n)], dtype=pl.Decimal(18, 2)),
            "share": pl.Series([D(i + 1) / 210 for i in range(n)], dtype=pl.Decimal(18, 12)),
        }
    )


def test_cost_per_tenant_groups_the_smallest_as_other() -> None:
    ax = Figure().add_subplot()
    drawn = plot_cost_per_tenant(ax, _lines(20), "EUR", top=5)
    assert drawn["label"].to_list() == [
        "Tenant 19 (t19)",
        "Tenant 18 (t18)",
        "Tenant 17 (t17)",
        "Tenant 16 (t16)",
        "16 other tenants",
    ]
    assert drawn["amount"].to_list() == [20.0, 19.0, 18.0, 17.0, float(sum(range(1, 17)))]
    assert drawn["text"][-1] == "136.00 EUR  (64.8 %)"
    assert _ticks(ax) == drawn["label"].to_list()
    assert ax.get_xlabel() == "Cost in the month (EUR)"
    assert [t.get_text() for t in ax.texts] == drawn["text"].to_list()
    assert _bar_colors(ax) == [BASE] * 4 + [OTHERS]


def _days(n: int, days: int = 2) -> pl.DataFrame:
    """``n`` tenants over ``days`` days of October; tenant i makes 1,000 * (i + 1) calls and
    costs 0.01 * (i + 1) a day."""
    return pl.DataFrame(
        {
            "day": [date(2026, 10, 1) + timedelta(days=d) for _ in range(n) for d in range(days)],
            "tenant_id": [f"t{i:02d}" for i in range(n) for _ in range(days)],
            "calls": [1_000 * (i + 1) for i in range(n) for _ in range(days)],
            "cost_exact": pl.Series(
                [D("0.01") * (i + 1) for i in range(n) for _ in range(days)],
                dtype=pl.Decimal(38, 12),
            ),
        }
    )


def test_daily_cost_is_top_n_and_others_with_exact_money() -> None:
    fig = Figure()
    ax = fig.add_subplot()
    lines = _lines(20).with_columns(  # billed amounts: each tenant's two days
        amount=pl.Series([D("0.02") * (i + 1) for i in range(20)], dtype=pl.Decimal(18, 2))
    )
    drawn = plot_daily_cost(ax, _days(20), lines, "EUR", top=4)
    # N = 3 tenants of their own, then one grey slice: N + 1 series, from the bottom up.
    assert drawn["series"].unique(maintain_order=True).to_list() == [
        "Tenant 19 (t19)",
        "Tenant 18 (t18)",
        "Tenant 17 (t17)",
        "17 other tenants",
    ]
    assert drawn.height == 4 * 31  # every day of October
    others = drawn.filter(pl.col("series") == "17 other tenants", pl.col("cost") > 0)
    assert others["cost"].to_list() == [D("1.53")] * 2  # 0.01 * (1 + ... + 17), exactly
    assert _legend(ax) == [  # the top of the stack first
        "17 other tenants: 3.06 EUR",
        "Tenant 17 (t17): 0.36 EUR",
        "Tenant 18 (t18): 0.38 EUR",
        "Tenant 19 (t19): 0.40 EUR",
    ]
    assert ax.get_ylabel() == "Cost per day (EUR)"
    assert ax.get_xlabel() == "Day (UTC; weekends shaded)"
    assert _ticks(ax, "x") == ["1 Oct", "8 Oct", "15 Oct", "22 Oct", "29 Oct"]
    assert [len(bars) for bars in ax.containers] == [31] * 4
    assert alt_text(fig).endswith("the busiest day Thu 1 Oct with 2.10 EUR.")


def test_daily_cost_gives_a_slice_under_1_percent_no_colour() -> None:
    days = _days(3).with_columns(  # t02 is 99.5 % of the month, t00 and t01 0.25 % each
        cost_exact=pl.Series([D(1), D(1), D(1), D(1), D(398), D(398)], dtype=pl.Decimal(38, 12))
    )
    ax = Figure().add_subplot()
    drawn = plot_daily_cost(ax, days, currency="USD", top=8)
    assert drawn["series"].unique(maintain_order=True).to_list() == ["t02", "2 other tenants"]
    assert _legend(ax) == ["2 other tenants: 4.00 USD", "t02: 796.00 USD"]  # (exact sums)
    # One tenant alone under 1 % keeps its own colour: grouping it would hide a name for nothing.
    ax = Figure().add_subplot()
    drawn = plot_daily_cost(ax, days.filter(pl.col("tenant_id") != "t00"), top=8)
    assert drawn["series"].unique(maintain_order=True).to_list() == ["t02", "t01"]


def test_daily_calls_in_panels_each_on_its_own_scale() -> None:
    fig = Figure()
    axes = list(fig.subplots(2, 2).flat)
    drawn = plot_daily_calls(axes, _days(10), {"t09": "Nine"})
    assert drawn["series"].unique(maintain_order=True).to_list() == [
        "Nine (t09)",
        "t08",
        "t07",
        "7 other tenants",
    ]
    assert [ax.get_title(loc="left") for ax in axes] == [
        "Nine (t09): 20,000 calls",
        "t08: 18,000 calls",
        "t07: 16,000 calls",
        "7 other tenants: 56,000 calls",
    ]
    assert [ax.get_ylim()[1] for ax in axes] == pytest.approx([11_500, 10_350, 9_200, 32_200])
    assert [len(ax.containers[0]) for ax in axes] == [31] * 4  # a bar for each day of October
    # Fewer series than panels: the spare panels are hidden.
    fig = Figure()
    axes = list(fig.subplots(2, 2).flat)
    plot_daily_calls(axes, _days(3))
    assert [ax.get_visible() for ax in axes] == [True, True, True, False]
    # One axes: one line per series, as before.
    ax = Figure().add_subplot()
    drawn = plot_daily_calls(ax, _days(20), top=3)
    assert drawn["series"].unique(maintain_order=True).to_list() == [
        "t19",
        "t18",
        "18 other tenants",
    ]
    assert (
        drawn.filter(pl.col("series") == "18 other tenants", pl.col("calls") > 0)["calls"].to_list()
        == [171_000] * 2
    )
    assert _legend(ax) == ["t19: 40,000", "t18: 38,000", "18 other tenants: 342,000"]


def _changes(rows: list[tuple[str, str, str, str, str]]) -> pl.DataFrame:
    """month_changes rows from (tenant, previous amount, amount, previous exact, exact)."""

    def money(values: list[D], scale: int) -> pl.Series:
        return pl.Series(values, dtype=pl.Decimal(38 if scale == 12 else 18, scale))

    before = [D(r[1]) for r in rows]
    after = [D(r[2]) for r in rows]
    before_exact = [D(r[3]) for r in rows]
    after_exact = [D(r[4]) for r in rows]
    return pl.DataFrame(
        {
            "tenant_id": [r[0] for r in rows],
            "tenant_name": [""] * len(rows),
            "registered": [True] * len(rows),
            "previous_amount": money(before, 2),
            "amount": money(after, 2),
            "change": money([a - b for a, b in zip(after, before, strict=True)], 2),
            "previous_cost_exact": money(before_exact, 12),
            "cost_exact": money(after_exact, 12),
            "change_exact": money(
                [a - b for a, b in zip(after_exact, before_exact, strict=True)], 12
            ),
            "new": [b == 0 for b in before_exact],
            "gone": [a == 0 for a in after_exact],
        }
    )


def test_month_change_shows_increases_decreases_and_the_rest_net() -> None:
    changes = _changes(
        [
            ("up", "10.00", "12.50", "10.0", "12.5"),
            ("down", "8.00", "6.00", "8.0", "6.0"),
            ("new", "0.00", "1.00", "0", "1.0"),
            ("gone", "3.00", "0.00", "3.0", "0"),
            ("tiny", "0.00", "0.00", "0.001", "0.00108"),
            ("small1", "1.00", "1.10", "1.0", "1.1"),
            ("small2", "1.00", "0.95", "1.0", "0.95"),
        ]
    )
    fig = Figure()
    ax = fig.add_subplot()
    drawn = plot_month_change(ax, changes, "EUR", top=5)
    assert drawn.rows() == [
        ("up", D("2.50"), D("2.5"), 25.0, "+2.50 EUR (+25.0 %)"),
        ("new", D("1.00"), D("1.0"), None, "+1.00 EUR (new this month)"),
        ("down", D("-2.00"), D("-2.0"), -25.0, "\u22122.00 EUR (\u221225.0 %)"),
        ("gone", D("-3.00"), D("-3.0"), None, "\u22123.00 EUR (no calls this month)"),
        ("3 other tenants (net)", D("0.05"), D("0.05008"), 2.5, "+0.05 EUR (+2.5 %)"),
    ]
    assert _ticks(ax) == drawn["label"].to_list()
    assert _bar_colors(ax) == [UP, UP, DOWN, DOWN, OTHERS]
    assert [t.get_text() for t in ax.texts] == drawn["text"].to_list()
    assert [t.get_horizontalalignment() for t in ax.texts] == [
        "left",
        "left",
        "right",
        "right",
        "left",
    ]  # each label beside its bar's end, away from 0
    assert ax.get_xlabel() == "Change in cost from the month before (EUR)"
    assert "\u22123.00 EUR (no calls this month)" in alt_text(fig)
    # A change the bill rounded away is shown exact, with its exact percentage.
    drawn = plot_month_change(Figure().add_subplot(), changes.filter(pl.col("tenant_id") == "tiny"))
    assert drawn["text"].to_list() == ["0.00 USD (exact +0.000080, +8.0 %)"]


def test_trend_totals_show_the_change_and_stay_short_over_many_months() -> None:
    months = [f"2025-{m:02d}" for m in (11, 12)] + [f"2026-{m:02d}" for m in range(1, 11)]
    rows = [
        (m, t, f"A long company name number {t} GmbH & Co. KG", D(1_000_000 * (i + 1) + t))
        for i, m in enumerate(months)
        for t in range(30)
    ]
    trend = pl.DataFrame(
        {
            "month": [r[0] for r in rows],
            "tenant_id": [f"tenant-{r[1]:02d}" for r in rows],
            "tenant_name": [r[2] for r in rows],
            "cost_exact": pl.Series([r[3] for r in rows], dtype=pl.Decimal(38, 12)),
            "amount": pl.Series([r[3] for r in rows], dtype=pl.Decimal(18, 2)),
        }
    )
    ax = Figure().add_subplot()
    plot_trend(ax, trend, "EUR", top=3)
    labels = [t.get_text() for t in ax.texts]
    assert labels[0] == "30.00 M EUR"  # 30 tenants of 1,000,000 and some
    assert labels[1] == "60.00 M EUR\n+100.0 %"
    assert labels[-1] == "360.00 M EUR\n+9.1 %"
    assert _legend(ax) == [
        "28 other tenants",
        "A long company name number… (tenant-28)",
        "A long company name number… (tenant-29)",
    ]
    assert max(len(label) for label in _legend(ax)) <= 42
    # A gap in the months: no change is claimed across it.
    ax = Figure().add_subplot()
    plot_trend(ax, trend.filter(pl.col("month") != "2026-01"), "EUR")
    assert [t.get_text() for t in ax.texts][2] == "120.00 M EUR"
    # Totals the bill rounds alike (0.01 and 0.01): the change is the exact one, and says so.
    tiny = pl.DataFrame(
        {
            "month": ["2026-09", "2026-10"],
            "tenant_id": ["a", "a"],
            "tenant_name": ["A", "A"],
            "cost_exact": pl.Series([D("0.0100"), D("0.0115")], dtype=pl.Decimal(38, 12)),
            "amount": pl.Series([D("0.01"), D("0.01")], dtype=pl.Decimal(18, 2)),
        }
    )
    ax = Figure().add_subplot()
    plot_trend(ax, tiny)
    assert [t.get_text() for t in ax.texts] == ["0.01 USD", "0.01 USD\n+15.0 % exact"]


def test_alt_text_is_the_headline_and_what_each_plot_drew() -> None:
    fig = Figure()
    fig.suptitle("Cost per tenant, October 2026")
    plot_cost_per_tenant(fig.add_subplot(), _lines(2), "EUR")
    assert alt_text(fig) == (
        "Cost per tenant, October 2026. Horizontal bars, one per tenant line, largest first, "
        "labelled with the billed amount and its share of the month: Tenant 1 (t01): 2.00 EUR "
        "(1.0 %); Tenant 0 (t00): 1.00 EUR (0.5 %)."
    )
    assert alt_text(Figure()) == ""


def test_amounts_are_in_the_bill_s_currency(tmp_path: Path) -> None:
    """Charts read the currency from the bill, not from today's config."""
    folder = tmp_path / "eur"
    folder.mkdir()
    export_records(folder / "dynamodb", small_records(with_september=False))
    pricing = '[pricing]\ncurrency = "EUR"\ntiers = [ { per_million = "350000" } ]\n'
    path = write_config(folder, pricing, registry=REGISTRY)
    bill(load_config(path), OCT)
    path.write_text(path.read_text().replace('currency = "EUR"', 'currency = "USD"'))
    plotted: dict[str, pl.DataFrame] = {}
    chart(load_config(path), OCT, tmp_path / "charts", plotted)
    assert plotted["cost"]["text"].to_list() == [
        "3.85 EUR  (47.8 %)",
        "3.50 EUR  (43.5 %)",
        "0.70 EUR  (8.7 %)",
    ]
    assert plotted["savings"]["text"][0].startswith("about 1.05 EUR a month")


def test_month_label() -> None:
    assert month_label("2026-10") == "October 2026"


def test_the_same_month_gives_the_same_png(small: Config, tmp_path: Path) -> None:
    first = chart(small, OCT, tmp_path / "a")
    second = chart(small, OCT, tmp_path / "b")
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_no_sizes_known_draws_empty_charts_that_say_so() -> None:
    """A CloudTrail-only month knows no payload sizes: nothing to draw, and the chart says so."""
    sizes = pl.DataFrame(schema={"tenant_id": pl.Utf8, "bytes": pl.Int64, "calls": pl.Int64})
    savings = edge_savings(sizes, 32768)
    fig = Figure()
    top, bottom = fig.subplots(2, 1)
    assert plot_payload_sizes(top, sizes, 32768, 3276, 2).is_empty()
    assert plot_edge_savings(bottom, savings).is_empty()
    assert [t.get_text() for t in bottom.texts] == ["No call went just past a block edge"]
    assert alt_text(fig).endswith("No call went just past a block edge: nothing to save.")


def test_edge_savings_past_top_groups_the_rest() -> None:
    savings = pl.DataFrame(
        {
            "tenant_id": [f"t{i}" for i in range(5)],
            "calls": [100] * 5,
            "units": [200] * 5,
            "near_edge_calls": [50, 40, 30, 20, 10],
            "near_edge_units": [100, 80, 60, 40, 20],
            "units_saved": [50, 40, 30, 20, 10],
        }
    )
    ax = Figure().add_subplot()
    drawn = plot_edge_savings(ax, savings, top=3)
    assert drawn.rows() == [
        ("t0", 50, 25.0, "50 units (25.0 % of its units)"),
        ("t1", 40, 20.0, "40 units (20.0 % of its units)"),
        ("3 other tenants", 60, 10.0, "60 units (10.0 % of their units)"),
    ]
    assert _bar_colors(ax) == [EDGE, EDGE, OTHERS]
    assert ax.get_xlabel() == "Billed units saved in the month (one per trimmed call)"
    # With the month's cost of a unit, bars are money; a saving under a cent keeps its digits.
    ax = Figure().add_subplot()
    drawn = plot_edge_savings(ax, savings, unit_cost=Fraction(35, 100_000_000), top=3)
    assert drawn["text"].to_list() == [
        "about 0.000018 USD a month: 50 units (25.0 % of its units)",
        "about 0.000014 USD a month: 40 units (20.0 % of its units)",
        "about 0.000021 USD a month: 60 units (10.0 % of their units)",
    ]
    assert ax.get_xlabel().startswith("Saving in a month (USD, at the month's average cost")
