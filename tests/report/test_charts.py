"""Charts, drawn with Agg to PNG and checked for what they show: the numbers behind each axes,
the picture's size, and that it is not blank."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from metering.config import Config
from metering.outputs import chart
from metering.rate.edges import edge_savings
from metering.report.charts import (
    BASE,
    DPI,
    EDGE,
    month_label,
    plot_cost_per_tenant,
    plot_daily_calls,
    plot_edge_savings,
    plot_payload_sizes,
    plot_trend,
)
from tests.report.conftest import OCT


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


def test_small_month_charts_show_the_bill(small: Config, tmp_path: Path) -> None:
    paths = chart(small, OCT, tmp_path / "charts")
    assert [p.name for p in paths] == [
        "2026-10-cost-per-tenant.png",
        "2026-10-daily-calls.png",
        "2026-10-payload-edges.png",
    ]  # one month only: no trend chart
    cost, daily, edges = paths
    _check_picture(cost, (11 * DPI, int(3.8 * DPI)), {BASE: 20_000})
    _check_picture(daily, (12 * DPI, int(5.5 * DPI)), {BASE: 500})
    _check_picture(edges, (12 * DPI, int(9.5 * DPI)), {BASE: 500, EDGE: 20_000})


def test_the_data_behind_each_chart(small: Config, tmp_path: Path) -> None:
    plotted: dict[str, pl.DataFrame] = {}
    chart(small, OCT, tmp_path, plotted)
    assert sorted(plotted) == ["cost", "daily", "savings", "sizes"]
    cost = plotted["cost"]
    assert cost.to_dict(as_series=False) == {
        "label": ["Globex Inc. (globex)", "Acme Ltd (acme)", "Unattributed calls"],
        "cost": [3.85, 3.5, 0.7],
        "amount": [3.85, 3.5, 0.7],
        "share_pct": pytest.approx([100 * 11 / 23, 100 * 10 / 23, 100 * 2 / 23]),
        "text": ["3.85 USD  (47.8 %)", "3.50 USD  (43.5 %)", "0.70 USD  (8.7 %)"],
    }
    daily = plotted["daily"]
    assert daily["series"].unique(maintain_order=True).to_list() == [
        "Acme Ltd (acme)",
        "Globex Inc. (globex)",
        "Unattributed calls",
    ]
    assert daily.height == 3 * 31  # every day of October, for each line
    busy = daily.filter(pl.col("calls") > 0)
    assert busy.rows() == [
        ("Acme Ltd (acme)", date(2026, 10, 1), 4),
        ("Acme Ltd (acme)", date(2026, 10, 2), 4),
        ("Acme Ltd (acme)", date(2026, 10, 3), 2),
        ("Globex Inc. (globex)", date(2026, 10, 3), 5),
        ("Unattributed calls", date(2026, 10, 31), 2),
    ]
    sizes = plotted["sizes"]
    # 1 KiB bars, right-closed: 32,769 B is in (32, 33] KiB; 36,044 and 36,045 B in (35, 36].
    assert sizes.rows() == [
        (0.0, 1.0, 12, 0),
        (32.0, 33.0, 1, 1),
        (35.0, 36.0, 2, 1),
        (39.0, 40.0, 1, 0),
        (64.0, 65.0, 1, 1),
    ]
    savings = plotted["savings"]
    assert savings.rows() == [
        (
            "Globex Inc. (globex)",
            3,
            pytest.approx(100 * 3 / 11),
            "3 units (27.3 % of its units), worth about 1.05 USD",
        )
    ]


def test_trend_appears_with_several_months(small_two_months: Config, tmp_path: Path) -> None:
    plotted: dict[str, pl.DataFrame] = {}
    paths = chart(small_two_months, OCT, tmp_path, plotted)
    assert paths[-1].name == "2026-10-trend.png"
    _check_picture(paths[-1], (9 * DPI, int(5.5 * DPI)), {BASE: 20_000})
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


def test_many_tenants_are_grouped_as_other() -> None:
    n = 20
    lines = pl.DataFrame(
        {
            "tenant_id": [f"t{i:02d}" for i in range(n)],
            "tenant_name": [f"Tenant {i}" for i in range(n)],
            "cost_exact": pl.Series([Decimal(i + 1) for i in range(n)], dtype=pl.Decimal(38, 12)),
            "amount": pl.Series([Decimal(i + 1) for i in range(n)], dtype=pl.Decimal(18, 2)),
            "share": pl.Series([Decimal(i + 1) / 210 for i in range(n)], dtype=pl.Decimal(18, 12)),
        }
    )
    drawn = plot_cost_per_tenant(Figure().add_subplot(), lines, "EUR", top=5)
    assert drawn["label"].to_list() == [
        "Tenant 19 (t19)",
        "Tenant 18 (t18)",
        "Tenant 17 (t17)",
        "Tenant 16 (t16)",
        "16 other tenants",
    ]
    assert drawn["amount"].to_list() == [20.0, 19.0, 18.0, 17.0, float(sum(range(1, 17)))]
    assert drawn["text"][-1] == "136.00 EUR  (64.8 %)"

    days = pl.DataFrame(
        {
            "day": [date(2026, 10, 1), date(2026, 10, 2)] * n,
            "tenant_id": [f"t{i:02d}" for i in range(n) for _ in range(2)],
            "calls": [1_000 * (i + 1) for i in range(n) for _ in range(2)],
        }
    )
    drawn = plot_daily_calls(Figure().add_subplot(), days, top=3)
    assert drawn["series"].unique(maintain_order=True).to_list() == [
        "t19",
        "t18",
        "18 other tenants",
    ]
    assert drawn.filter(pl.col("series") == "18 other tenants")["calls"].to_list() == [171_000] * 2

    trend = pl.DataFrame(
        {
            "month": ["2026-09", "2026-10", "2026-10", "2026-10"],
            "tenant_id": ["a", "a", "b", "c"],
            "tenant_name": ["A", "A", "", "C"],
            "cost_exact": pl.Series(
                [Decimal("1.5"), Decimal(2), Decimal(1), Decimal("0.5")], dtype=pl.Decimal(38, 12)
            ),
            "amount": pl.Series(
                [Decimal("1.5"), Decimal(2), Decimal(1), Decimal("0.5")], dtype=pl.Decimal(18, 2)
            ),
        }
    )
    drawn = plot_trend(Figure().add_subplot(), trend, top=2)
    assert drawn.rows() == [
        ("2026-09", "A (a)", 1.5),
        ("2026-10", "A (a)", 2.0),
        ("2026-09", "2 other tenants", 0.0),
        ("2026-10", "2 other tenants", 1.5),
        ("2026-09", "total", 1.5),
        ("2026-10", "total", 3.5),
    ]


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
