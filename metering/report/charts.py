"""Charts of a billed month for people who pay the bill (matplotlib, object style).

The only module that imports matplotlib. Each ``plot_x(ax, frame, ...)`` draws on an axes
it is given and returns what it drew (labels and values) as a polars frame, so tests and
notebooks can check the picture's numbers. ``render_charts`` lays the axes out on figures
and writes PNGs; it never touches pyplot, so no window opens and no global state changes
(figures are drawn by the Agg renderer).
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction
from pathlib import Path

import polars as pl
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, MultipleLocator

from metering.schemas import UNATTRIBUTED

__all__ = [
    "ChartData",
    "month_label",
    "plot_cost_per_tenant",
    "plot_daily_calls",
    "plot_edge_savings",
    "plot_payload_sizes",
    "plot_trend",
    "render_charts",
]

# Okabe-Ito: tells tenants apart for colour-blind readers too.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
GREY = "#9E9E9E"  # "other tenants" and unattributed calls
EDGE = "#D55E00"  # calls just past a block edge
BASE = "#0072B2"
DPI = 150
KIB = 1024


def month_label(month: str) -> str:
    """``2026-10`` -> ``October 2026``."""
    return datetime.strptime(month, "%Y-%m").strftime("%B %Y")


def _short_month(month: str) -> str:
    return datetime.strptime(month, "%Y-%m").strftime("%b %Y")


def _count(value: float, _pos: object = None) -> str:
    return f"{value:,.0f}"


def _money_axis(axis: Axis, largest: float) -> None:
    """Money ticks: as many decimals as the tick step needs (at least cents under 100),
    thousands separators."""
    locator = MaxNLocator(nbins=6, steps=[1, 2, 5, 10])  # one significant digit per step
    ticks = locator.tick_values(0, largest or 1.0)
    step = float(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    places = max(0, -math.floor(math.log10(step))) if step > 0 else 2
    if largest < 100:
        places = max(places, 2)
    axis.set_major_locator(locator)
    axis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:,.{places}f}"))


def _small(amount: float) -> str:
    """A small amount in plain decimals, two significant digits: 0.000083, not 8.3e-05."""
    places = max(2, 1 - math.floor(math.log10(amount))) if amount > 0 else 2
    return f"{amount:.{places}f}"


def _tenant_label(tenant_id: str, tenant_name: str, registered: bool = True) -> str:
    if tenant_id == UNATTRIBUTED:
        return "Unattributed calls"
    if not registered:
        return f"{tenant_id} (not in the registry)"
    return f"{tenant_name} ({tenant_id})" if tenant_name else tenant_id


def _about(amount: float, currency: str) -> str:
    """An estimate of money to the cent, or "less than 0.01" when it rounds to nothing."""
    if 0 < amount < 0.005:
        return f"less than 0.01 {currency}"
    return f"about {amount:,.2f} {currency}"


def _tidy(ax: Axes) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_axisbelow(True)


def _top_and_other(totals: dict[str, float], top: int) -> tuple[list[str], list[str]]:
    """At most ``top`` groups (>= 2): the biggest keys by value (ties by key), and when
    there are more, the rest, to be drawn as one "other" group in the last place."""
    top = max(top, 2)
    ranked = sorted(totals, key=lambda key: (-totals[key], key))
    if len(ranked) <= top:
        return ranked, []
    return ranked[: top - 1], ranked[top - 1 :]


def _other_label(count: int) -> str:
    return f"{count} other tenant{'s' if count != 1 else ''}"


def plot_cost_per_tenant(
    ax: Axes, lines: pl.DataFrame, currency: str = "USD", top: int = 15
) -> pl.DataFrame:
    """Each tenant line's cost as a horizontal bar, largest on top, amount and share labelled.

    ``lines``: tenant_month rows (tenant_id, tenant_name, cost_exact, amount, share). Bar
    lengths are the exact costs; labels show the billed (rounded) amounts. Beyond ``top``
    lines the smallest are grouped into one "N other tenants" bar.
    Returns label, cost, amount, share_pct, text per bar, top bar first.
    """
    costs = {row["tenant_id"]: float(row["cost_exact"]) for row in lines.iter_rows(named=True)}
    shown, rest = _top_and_other(costs, top)
    by_id = {row["tenant_id"]: row for row in lines.iter_rows(named=True)}
    bars: list[tuple[str, float, float, float, str]] = []
    for tenant in shown:
        row = by_id[tenant]
        bars.append(
            (
                _tenant_label(tenant, row["tenant_name"], row.get("registered", True)),
                float(row["cost_exact"]),
                float(row["amount"]),
                float(row["share"]) * 100,
                GREY if tenant == UNATTRIBUTED else BASE,
            )
        )
    if rest:
        bars.append(
            (
                _other_label(len(rest)),
                sum(float(by_id[t]["cost_exact"]) for t in rest),
                sum(float(by_id[t]["amount"]) for t in rest),
                sum(float(by_id[t]["share"]) for t in rest) * 100,
                GREY,
            )
        )
    labels = [b[0] for b in bars]
    values = [b[1] for b in bars]
    texts = [
        f"{b[2]:,.2f} {currency}"
        + (f" (exact {_small(b[1])})" if b[2] == 0 and b[1] > 0 else "")  # a line billed 0.00
        + f"  ({b[3]:.1f} %)"
        for b in bars
    ]
    positions = list(range(len(bars)))
    ax.barh(positions, values, color=[b[4] for b in bars], height=0.7)
    ax.set_yticks(positions, labels)
    ax.invert_yaxis()
    largest = max(values, default=0.0) or 1.0
    for y, value, text in zip(positions, values, texts, strict=True):
        ax.text(value + largest * 0.01, y, text, va="center", ha="left", fontsize=9)
    room = 1.35 + 0.01 * max((len(t) for t in texts), default=0)  # for the labels
    ax.set_xlim(0, largest * room)
    _money_axis(ax.xaxis, largest * room)
    ax.set_xlabel(f"Cost ({currency})")
    ax.set_title("Cost per tenant", loc="left", fontweight="bold")
    ax.grid(axis="x", alpha=0.3)
    _tidy(ax)
    return pl.DataFrame(
        {
            "label": labels,
            "cost": values,
            "amount": [b[2] for b in bars],
            "share_pct": [b[3] for b in bars],
            "text": texts,
        },
        schema={
            "label": pl.Utf8,
            "cost": pl.Float64,
            "amount": pl.Float64,
            "share_pct": pl.Float64,
            "text": pl.Utf8,
        },
    )


def plot_daily_calls(
    ax: Axes, days: pl.DataFrame, names: dict[str, str] | None = None, top: int = 6
) -> pl.DataFrame:
    """Calls per day of the busiest tenants, one line each; the rest summed as "other".

    ``days``: tenant_day rows (day, tenant_id, calls); ``names``: tenant_id -> name for
    the legend. Days a tenant made no call count 0. Returns series, day, calls (long form,
    series in legend order).
    """
    names = names or {}
    totals = {
        str(t): float(c)
        for t, c in days.group_by("tenant_id").agg(pl.col("calls").sum()).iter_rows()
    }
    shown, rest = _top_and_other(totals, top)
    all_days = sorted(set(days["day"].to_list()))
    if all_days:
        first, last = all_days[0], all_days[-1]
        all_days = [date.fromordinal(d) for d in range(first.toordinal(), last.toordinal() + 1)]
    per = {(row["tenant_id"], row["day"]): int(row["calls"]) for row in days.iter_rows(named=True)}
    series: list[tuple[str, list[int], str]] = []
    for index, tenant in enumerate(shown):
        color = GREY if tenant == UNATTRIBUTED else PALETTE[index % len(PALETTE)]
        label = _tenant_label(tenant, names.get(tenant, ""))
        series.append((label, [per.get((tenant, d), 0) for d in all_days], color))
    if rest:
        counts = [sum(per.get((t, d), 0) for t in rest) for d in all_days]
        series.append((_other_label(len(rest)), counts, GREY))
    legend = [f"{label}: {sum(counts):,}" for label, counts, _ in series]
    positions = list(range(len(all_days)))
    for (_label, counts, color), text in zip(series, legend, strict=True):
        style = "--" if color == GREY else "-"
        ax.plot(positions, counts, style, label=text, color=color, linewidth=2)
    for x, day in zip(positions, all_days, strict=True):
        if day.weekday() >= 5:  # weekends shaded: weekly patterns show at a glance
            ax.axvspan(x - 0.5, x + 0.5, color="#EEEEEE", linewidth=0, zorder=0)
    step = 7 if len(all_days) > 14 else 1
    ax.set_xticks(positions[::step], [f"{d.day} {d:%b}" for d in all_days[::step]])
    ax.set_xticks(positions, minor=True)
    ax.yaxis.set_major_formatter(FuncFormatter(_count))
    ax.set_ylim(bottom=0)
    if positions:
        ax.set_xlim(-0.5, positions[-1] + 0.5)
    ax.set_ylabel("Calls per day")
    ax.set_xlabel("Day (UTC; weekends shaded)")
    ax.set_title("Daily Data API calls per tenant", loc="left", fontweight="bold")
    ax.grid(alpha=0.3)
    ax.legend(
        loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="Tenant: calls in total"
    )
    _tidy(ax)
    return pl.DataFrame(
        {
            "series": [label for label, counts, _ in series for _ in counts],
            "day": [d for _label, counts, _ in series for d in all_days[: len(counts)]],
            "calls": [c for _, counts, _ in series for c in counts],
        },
        schema={"series": pl.Utf8, "day": pl.Date, "calls": pl.Int64},
    )


def plot_payload_sizes(
    ax: Axes,
    sizes: pl.DataFrame,
    block_bytes: int,
    margin_bytes: int,
    max_blocks: int = 4,
    measure: str = "request + response",
) -> pl.DataFrame:
    """Calls by billed payload size against the block edges; calls just past an edge stand out.

    ``sizes``: tenant_id, bytes, calls (all tenants are summed). Bars are ``block/32`` wide
    (1 KiB for 32 KiB blocks), right-closed like the billing rule: a bar covers sizes in
    ``(a, b]``. The y axis is logarithmic: small calls outnumber big ones by orders of
    magnitude. Calls beyond ``max_blocks`` blocks are counted in the note, not drawn.
    Returns bin_start_kib, bin_end_kib, calls, near_edge_calls per drawn bin.
    """
    width = block_bytes // 32
    limit = block_bytes * max_blocks
    size = pl.col("bytes")
    overshoot = (size - 1) % block_bytes + 1
    near = (size > block_bytes) & (overshoot <= margin_bytes)
    binned = (
        sizes.filter(size <= limit)
        .with_columns(bin=pl.when(size <= 0).then(0).otherwise((size - 1) // width))
        .group_by("bin")
        .agg(calls=pl.col("calls").sum(), near_edge_calls=pl.col("calls").filter(near).sum())
        .sort("bin")
    )
    bins = binned["bin"].to_list()
    starts = [b * width / KIB for b in bins]
    calls = binned["calls"].to_list()
    near_calls = binned["near_edge_calls"].to_list()
    step = width / KIB
    ax.bar(starts, calls, width=step, align="edge", color=BASE, label="Other calls")
    ax.bar(
        starts,
        near_calls,
        width=step,
        align="edge",
        color=EDGE,
        label=f"Just past an edge (at most {margin_bytes / KIB:.1f} KiB over)",
    )
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(_count))
    top = max(calls, default=1)
    ax.set_ylim(0.8, top * 6)
    block_kib = block_bytes / KIB
    labels = ax.get_xaxis_transform()  # x in KiB, y in axes fractions: labels along the top
    for k in range(max_blocks):
        edge = k * block_kib
        if k:
            ax.axvline(edge, color="#333333", linestyle="--", linewidth=1)
            ax.axvspan(edge, edge + margin_bytes / KIB, color=EDGE, alpha=0.12, linewidth=0)
        ax.text(
            edge + block_kib / 2,
            0.97,
            f"{k + 1} unit{'s' if k else ''}",
            transform=labels,
            ha="center",
            va="top",
            fontsize=9,
            color="#333333",
        )
    ax.set_xlim(0, limit / KIB)
    ax.xaxis.set_major_locator(MultipleLocator(block_kib))
    ax.xaxis.set_minor_locator(MultipleLocator(block_kib / 4))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f} KiB"))
    ax.set_xlabel(f"Billed payload size per call ({measure}; dashed lines: block edges)")
    ax.set_ylabel("Calls (log scale)")
    ax.set_title(
        f"Payload sizes against the {block_kib:g} KiB block edges",
        loc="left",
        fontweight="bold",
    )
    ax.legend(loc="upper right", bbox_to_anchor=(1.0, 0.9), framealpha=1.0, edgecolor="#CCCCCC")
    ax.grid(axis="y", alpha=0.3)
    _tidy(ax)
    return pl.DataFrame(
        {
            "bin_start_kib": starts,
            "bin_end_kib": [s + step for s in starts],
            "calls": calls,
            "near_edge_calls": near_calls,
        },
        schema={
            "bin_start_kib": pl.Float64,
            "bin_end_kib": pl.Float64,
            "calls": pl.Int64,
            "near_edge_calls": pl.Int64,
        },
    )


def plot_edge_savings(
    ax: Axes,
    savings: pl.DataFrame,
    names: dict[str, str] | None = None,
    unit_cost: Fraction | float | None = None,
    currency: str = "USD",
    top: int = 10,
) -> pl.DataFrame:
    """Units each tenant would save by trimming its calls just past an edge under it.

    ``savings``: ``metering.rate.edges.edge_savings`` rows; ``unit_cost``: the month's
    blended cost per unit, to show the money too. Only tenants with savings are drawn,
    the biggest ``top`` of them. Returns label, units_saved, pct_of_units, text.
    """
    names = names or {}
    rows = savings.filter(pl.col("units_saved") > 0).sort(
        ["units_saved", "tenant_id"], descending=[True, False]
    )
    rows = rows.head(top)
    labels = [_tenant_label(t, names.get(t, "")) for t in rows["tenant_id"]]
    saved = [int(v) for v in rows["units_saved"]]
    pct = [100 * s / u if u else 0.0 for s, u in zip(saved, rows["units"].to_list(), strict=True)]
    texts = []
    for units, share in zip(saved, pct, strict=True):
        text = f"{units:,} units ({share:.1f} % of its units)"
        if unit_cost is not None:
            text += f", worth {_about(float(units * unit_cost), currency)}"  # (for the eye)
        texts.append(text)
    positions = list(range(len(rows)))
    ax.set_title(
        "Units saved by trimming calls just past an edge under it, per tenant",
        loc="left",
        fontweight="bold",
    )
    if not positions:
        ax.text(0.5, 0.5, "No call went just past a block edge", ha="center", va="center")
        ax.set_axis_off()
    else:
        ax.barh(positions, saved, color=EDGE, height=0.6)
        ax.set_yticks(positions, labels)
        largest = max(saved)
        for y, value, text in zip(positions, saved, texts, strict=True):
            ax.text(value + largest * 0.01, y, text, va="center", ha="left", fontsize=9)
        ax.set_xlim(0, largest * 1.6)
        ax.set_ylim(max(len(positions), 4) - 0.5, -0.5)  # bars keep their thickness
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.xaxis.set_major_formatter(FuncFormatter(_count))
        ax.set_xlabel("Billed units saved in the month (one per trimmed call)")
        ax.grid(axis="x", alpha=0.3)
        _tidy(ax)
    return pl.DataFrame(
        {"label": labels, "units_saved": saved, "pct_of_units": pct, "text": texts},
        schema={
            "label": pl.Utf8,
            "units_saved": pl.Int64,
            "pct_of_units": pl.Float64,
            "text": pl.Utf8,
        },
    )


def plot_trend(ax: Axes, trend: pl.DataFrame, currency: str = "USD", top: int = 6) -> pl.DataFrame:
    """Cost per month, stacked by tenant (the biggest ``top`` over the months, the rest as
    "other"), each month's total on top of its bar.

    ``trend``: tenant_month rows of several months (month, tenant_id, tenant_name,
    cost_exact, amount). Returns month, series, cost (long form), then one
    ``series = "total"`` row per month holding the billed total.
    """
    months = sorted(set(trend["month"].to_list()))
    totals = {
        str(t): float(c)
        for t, c in trend.group_by("tenant_id").agg(pl.col("cost_exact").sum()).iter_rows()
    }
    shown, rest = _top_and_other(totals, top)
    names = {
        row["tenant_id"]: row["tenant_name"] for row in trend.sort("month").iter_rows(named=True)
    }
    per = {
        (row["month"], row["tenant_id"]): float(row["cost_exact"])
        for row in trend.iter_rows(named=True)
    }
    series: list[tuple[str, list[float], str]] = [
        (
            _tenant_label(t, names.get(t, "")),
            [per.get((m, t), 0.0) for m in months],
            GREY if t == UNATTRIBUTED else PALETTE[i % len(PALETTE)],
        )
        for i, t in enumerate(shown)
    ]
    if rest:
        series.append(
            (
                _other_label(len(rest)),
                [sum(per.get((m, t), 0.0) for t in rest) for m in months],
                "#D0D0D0",
            )
        )
    billed = {
        m: float(trend.filter(pl.col("month") == m)["amount"].cast(pl.Float64).sum())
        for m in months
    }
    positions = list(range(len(months)))
    bottom = [0.0] * len(months)
    for label, values, color in series:
        ax.bar(positions, values, bottom=bottom, color=color, label=label, width=0.65)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    largest = max(bottom, default=0.0) or 1.0
    for x, height, month in zip(positions, bottom, months, strict=True):
        ax.text(
            x,
            height + largest * 0.015,
            f"{billed[month]:,.2f} {currency}",
            ha="center",
            va="bottom",
            fontsize=9,
            fontweight="bold",
        )
    ax.set_xticks(positions, [_short_month(m) for m in months])
    ax.set_ylim(0, largest * 1.15)
    _money_axis(ax.yaxis, largest * 1.15)
    ax.set_ylabel(f"Cost ({currency})")
    ax.set_title("Cost per month, by tenant", loc="left", fontweight="bold")
    ax.grid(axis="y", alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(
        handles[::-1],
        labels[::-1],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
        title="Tenant",
    )
    _tidy(ax)
    return pl.DataFrame(
        {
            "month": [m for _ in series for m in months] + months,
            "series": [label for label, values, _ in series for _ in values]
            + ["total"] * len(months),
            "cost": [v for _, values, _ in series for v in values] + [billed[m] for m in months],
        },
        schema={"month": pl.Utf8, "series": pl.Utf8, "cost": pl.Float64},
    )


@dataclass(frozen=True, slots=True)
class ChartData:
    """Everything the month's charts show, read from the warehouse by the pipeline."""

    month: str  # YYYY-MM
    currency: str
    tenant_month: pl.DataFrame  # the month's tenant lines
    tenant_days: pl.DataFrame  # day, tenant_id, calls
    payload_sizes: pl.DataFrame  # tenant_id, bytes, calls
    edge_savings: pl.DataFrame  # metering.rate.edges.EDGE_SAVINGS
    trend: pl.DataFrame  # tenant_month rows of up to 12 months through ``month``
    block_bytes: int
    margin_bytes: int
    measure: str
    unit_cost: Fraction | None  # blended cost of one unit, for "about N USD" labels


@dataclass(frozen=True, slots=True)
class Chart:
    """One written chart and the data behind each of its axes."""

    path: Path
    plotted: dict[str, pl.DataFrame]


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # No "Software" metadata: the same data gives the same bytes on one matplotlib version.
    fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})
    return path


def _blocks_to_show(sizes: pl.DataFrame, block_bytes: int) -> int:
    """Enough blocks for 99.9 % of calls (at least 2, at most 8)."""
    total = int(sizes["calls"].sum() or 0)
    if total == 0:
        return 2
    ordered = sizes.group_by("bytes").agg(pl.col("calls").sum()).sort("bytes")
    cumulative = ordered["calls"].cum_sum()
    index = int((cumulative >= math.ceil(total * 0.999)).arg_max() or 0)
    p999 = int(ordered["bytes"][index])
    return max(2, min(8, -(-p999 // block_bytes)))


def _headline(fig: Figure, title: str) -> None:
    fig.suptitle(title, x=0.01, ha="left", fontsize=14, fontweight="bold")


def _subtitle(ax: Axes, text: str) -> None:
    """A grey line under the headline, wrapped to the axes' width."""
    inches = ax.get_figure().get_figwidth() * ax.get_position().width  # type: ignore[union-attr]
    ax.set_title(
        textwrap.fill(text, width=max(40, int(inches * 12))),
        loc="left",
        fontsize=10,
        color="#444444",
    )


def draw_charts(data: ChartData, out: Path) -> list[Chart]:
    """Write the month's charts to ``out`` and return them with the data they show."""
    when = month_label(data.month)
    names = dict(data.tenant_month.select("tenant_id", "tenant_name").iter_rows())
    total = sum(float(a) for a in data.tenant_month["amount"])
    exact = sum(float(c) for c in data.tenant_month["cost_exact"])
    lines = len(data.tenant_month)
    charts: list[Chart] = []

    fig = Figure(figsize=(11, max(3.8, 1.6 + 0.45 * min(lines, 15))), layout="constrained")
    ax = fig.add_subplot()
    cost = plot_cost_per_tenant(ax, data.tenant_month, data.currency)
    _headline(fig, f"Cost per tenant, {when}")
    _subtitle(
        ax,
        f"{total:,.2f} {data.currency} billed"
        + (f" (exact cost {_small(exact)} {data.currency})" if total == 0 and exact > 0 else "")
        + f" over {lines} tenant line{'s' if lines != 1 else ''}."
        " Bars: each line's exact share of the account cost; labels: the billed amount"
        " (rounded, lines sum to the total) and the share.",
    )
    charts.append(Chart(_save(fig, out / f"{data.month}-cost-per-tenant.png"), {"cost": cost}))

    fig = Figure(figsize=(12, 5.5), layout="constrained")
    ax = fig.add_subplot()
    daily = plot_daily_calls(ax, data.tenant_days, names)
    calls = int(data.tenant_days["calls"].sum() or 0)
    _headline(fig, f"Daily Data API calls per tenant, {when}")
    _subtitle(ax, f"{calls:,} billed calls; the busiest tenants, the rest grouped")
    charts.append(Chart(_save(fig, out / f"{data.month}-daily-calls.png"), {"daily": daily}))

    fig = Figure(figsize=(12, 9.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, height_ratios=[3, 2])
    blocks = _blocks_to_show(data.payload_sizes, data.block_bytes)
    sizes = plot_payload_sizes(
        top, data.payload_sizes, data.block_bytes, data.margin_bytes, blocks, data.measure
    )
    savings = plot_edge_savings(bottom, data.edge_savings, names, data.unit_cost, data.currency)
    units = int(data.edge_savings["units"].sum() or 0)
    near_units = int(data.edge_savings["near_edge_units"].sum() or 0)
    saved = int(data.edge_savings["units_saved"].sum() or 0)
    _headline(fig, f"Payload sizes against the {data.block_bytes / KIB:g} KiB block edges, {when}")
    _subtitle(
        top,
        f"Calls just past an edge (orange) carry {_pct(near_units, units)} of the billed units"
        " of calls of known size",
    )
    if saved:
        _subtitle(
            bottom,
            f"Trimming them under the edge would save {saved:,} units ({_pct(saved, units)})"
            " a month; per tenant:",
        )
    charts.append(
        Chart(
            _save(fig, out / f"{data.month}-payload-edges.png"),
            {"sizes": sizes, "savings": savings},
        )
    )

    if data.trend["month"].n_unique() >= 2:
        months = data.trend["month"].n_unique()
        fig = Figure(figsize=(max(9.0, 3 + 0.9 * months), 5.5), layout="constrained")
        ax = fig.add_subplot()
        trend = plot_trend(ax, data.trend, data.currency)
        first, last = data.trend["month"].min(), data.trend["month"].max()
        _headline(
            fig,
            f"Cost per month by tenant, {_short_month(str(first))} to {_short_month(str(last))}",
        )
        _subtitle(ax, "Billed totals on top of the bars; the biggest tenants, the rest grouped")
        charts.append(Chart(_save(fig, out / f"{data.month}-trend.png"), {"trend": trend}))
    return charts


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "0.0 %"


def render_charts(
    data: ChartData, out: Path, plotted: dict[str, pl.DataFrame] | None = None
) -> list[Path]:
    """Write the month's charts as PNGs to ``out``; return their paths.

    ``plotted``, when given, receives the frames each axes drew (``cost``, ``daily``,
    ``sizes``, ``savings``, ``trend``), for tests and notebooks.
    """
    charts = draw_charts(data, out)
    if plotted is not None:
        for one in charts:
            plotted.update(one.plotted)
    return [one.path for one in charts]
