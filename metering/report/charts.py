"""Charts of a billed month for people who pay the bill (matplotlib, object style).

The only module that imports matplotlib. Each ``plot_x(ax, frame, ...)`` draws on an axes
it is given and returns what it drew (labels and values) as a polars frame, so tests and
notebooks can check the picture's numbers; it also describes what it drew in words, which
``alt_text(fig)`` gives back (alt text for a screen reader, in a notebook or a PNG's
``Description``). ``render_charts`` lays the axes out on figures and writes PNGs; it never
touches pyplot, so no window opens (figures are drawn by the Agg renderer).

Money is exact up to the plot: amounts arrive as ``Decimal`` columns, are summed as
decimals (a day's "other tenants", a month's total) and become floats only where a bar is
drawn; labels show billed amounts, rounded once by the bill.
"""

from __future__ import annotations

import math
import textwrap
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path

import polars as pl
from matplotlib.axes import Axes
from matplotlib.axis import Axis
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, MultipleLocator

from metering.rate.money import amount_text, shown_places
from metering.schemas import AMOUNT, UNATTRIBUTED, Progress

__all__ = [
    "ChartData",
    "alt_text",
    "month_label",
    "plot_cost_per_tenant",
    "plot_daily_calls",
    "plot_daily_cost",
    "plot_edge_savings",
    "plot_month_change",
    "plot_payload_sizes",
    "plot_trend",
    "render_charts",
]

# Okabe-Ito: tells tenants apart for colour-blind readers too.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
GREY = "#9E9E9E"  # unattributed calls
OTHERS = "#D0D0D0"  # "N other tenants"
EDGE = "#D55E00"  # calls just past a block edge
BASE = "#0072B2"
UP = "#D55E00"  # a cost that grew
DOWN = "#0072B2"  # a cost that fell
DPI = 150
KIB = 1024
MINUS = "\u2212"  # the minus sign, as matplotlib's ticks write it
# A tenant whose share of a stack is under this gets no colour of its own: its slice
# would be thinner than a line, and its legend entry would name nothing one can see.
LEAST_SHARE = 0.01
LABEL_CHARS = 40  # the longest tenant label an axis or legend shows

_ALT: weakref.WeakKeyDictionary[Axes, str] = weakref.WeakKeyDictionary()


def _describe(ax: Axes, text: str) -> None:
    _ALT[ax] = text


def alt_text(fig: Figure) -> str:
    """What ``fig`` shows, in words: its headline, then what each ``plot_*`` drew on it.

    For a screen reader: a notebook shows it as the image's alt text, ``meter chart``
    writes it into each PNG's ``Description``.
    """
    parts = [fig.get_suptitle().strip()]
    for ax in fig.axes:
        if ax in _ALT:
            parts.append(_ALT[ax])
    text = " ".join(p if p.endswith(".") else p + "." for p in parts if p)
    return " ".join(text.split())  # one line: no double spaces, no line breaks


def month_label(month: str) -> str:
    """``2026-10`` -> ``October 2026``."""
    return datetime.strptime(month, "%Y-%m").strftime("%B %Y")


def _short_month(month: str) -> str:
    return datetime.strptime(month, "%Y-%m").strftime("%b %Y")


def _count(value: float, _pos: object = None) -> str:
    return f"{value:,.0f}"


def _money_axis(axis: Axis, currency: str, largest: float, smallest: float = 0.0) -> None:
    """Money ticks from ``smallest`` to ``largest``: as many decimals as the tick step
    needs (at least the currency's minor unit under 100: cents, fils), thousands
    separators, a real minus sign."""
    locator = MaxNLocator(nbins=6, steps=[1, 2, 5, 10])  # one significant digit per step
    ticks = locator.tick_values(smallest, largest or 1.0)
    step = float(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    places = max(0, -math.floor(math.log10(step))) if step > 0 else 2
    if max(abs(largest), abs(smallest)) < 100:
        places = max(places, shown_places(currency))

    def text(value: float, _pos: object) -> str:
        shown = f"{abs(value):,.{places}f}"
        return MINUS + shown if value < 0 and float(shown.replace(",", "")) else shown

    axis.set_major_locator(locator)
    axis.set_major_formatter(FuncFormatter(text))


def _exact(amount: float | Decimal | Fraction) -> Decimal:
    if isinstance(amount, Fraction):
        return Decimal(amount.numerator) / Decimal(amount.denominator)
    return amount if isinstance(amount, Decimal) else Decimal(str(amount))


def _small(amount: float | Decimal | Fraction, currency: str) -> str:
    """A small amount in plain decimals, two significant digits (half up), at least the
    currency's minor unit: 0.000083, not 8.3e-05."""
    value = _exact(amount)
    least = shown_places(currency)
    places = max(least, 1 - value.adjusted()) if value else least
    return f"{value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP):f}"


def _billed(amount: Decimal, exact: Decimal, currency: str) -> str:
    """A billed amount, and the exact cost beside it when the bill rounded it to 0.00."""
    text = f"{amount_text(amount, currency, grouped=True)} {currency}"
    if amount == 0 and exact > 0:
        text += f" (exact {_small(exact, currency)})"
    return text


def _signed(amount: Decimal | float, places: int = 2) -> str:
    sign = "+" if amount > 0 else MINUS if amount < 0 else "\u00b1"
    return f"{sign}{abs(amount):,.{places}f}"


def _tenant_label(tenant_id: str, tenant_name: str, registered: bool = True) -> str:
    """``Name (id)``, shortened to ``LABEL_CHARS`` (the name first, then the id) so that
    axes and legends keep their room."""
    if tenant_id == UNATTRIBUTED:
        return "Unattributed calls"
    if not registered:
        return f"{_clip(tenant_id, LABEL_CHARS - 22)} (not in the registry)"
    if not tenant_name:
        return _clip(tenant_id, LABEL_CHARS)
    shown_id = _clip(tenant_id, LABEL_CHARS // 2)
    return f"{_clip(tenant_name, LABEL_CHARS - len(shown_id) - 3)} ({shown_id})"


def _clip(text: str, most: int) -> str:
    return text if len(text) <= most else text[: max(1, most - 1)].rstrip() + "\u2026"


def _about(amount: float | Decimal | Fraction, currency: str) -> str:
    """An estimate of money to the minor unit (half up), or to two significant digits when
    it is less."""
    return f"about {_money(_exact(amount), currency)}"


def _money(amount: Decimal, currency: str) -> str:
    """An exact amount shown to the currency's minor unit (the cent), half up, or to two
    significant digits when less than half of it."""
    places = shown_places(currency)
    if 0 < abs(amount) < Decimal(5).scaleb(-places - 1):
        return f"{_small(amount, currency)} {currency}"
    rounded = amount.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    return f"{amount_text(rounded, currency, grouped=True)} {currency}"


def _stack_legend(ax: Axes, title: str) -> None:
    """The legend of a stacked chart, beside it, top of the stack first, as the eye meets
    it."""
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(
        handles[::-1],
        labels[::-1],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
        title=title,
    )


def _tidy(ax: Axes) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_axisbelow(True)


def _top_and_other(
    totals: Mapping[str, Decimal | float], top: int, least: float = 0.0
) -> tuple[list[str], list[str]]:
    """At most ``top`` groups (>= 2): the biggest keys by value (ties by key), and when
    there are more, the rest, to be drawn as one "other" group in the last place.

    With ``least``, a key under that share of the whole goes to the rest too (a slice too
    thin to see); one key alone is never grouped.
    """
    top = max(top, 2)
    ranked = sorted(totals, key=lambda key: (-totals[key], key))
    shown = ranked if len(ranked) <= top else ranked[: top - 1]
    whole = float(sum(totals.values()))
    if least > 0 and whole > 0:
        shown = [key for key in shown if float(totals[key]) >= least * whole]
    if len(ranked) - len(shown) == 1:
        shown = ranked
    return shown, ranked[len(shown) :]


def _other_label(count: int, alone: bool = False) -> str:
    """``N other tenants``, or ``N tenants`` when no tenant is shown beside them."""
    return f"{count} {'' if alone else 'other '}tenant{'s' if count != 1 else ''}"


def _listing(items: Sequence[str], most: int = 5) -> str:
    """The first ``most`` items, joined; then how many more."""
    text = "; ".join(items[:most])
    if len(items) > most:
        text += f"; and {len(items) - most} more"
    return text


def _decimals(frame: pl.DataFrame, column: str) -> list[Decimal]:
    return [Decimal(v) for v in frame[column]] if frame.height else []


def plot_cost_per_tenant(
    ax: Axes, lines: pl.DataFrame, currency: str = "USD", top: int = 15
) -> pl.DataFrame:
    """Each tenant line's cost as a horizontal bar, largest on top, amount and share labelled.

    ``lines``: tenant_month rows (tenant_id, tenant_name, cost_exact, amount, share). Bar
    lengths are the exact costs; labels show the billed (rounded) amounts. Beyond ``top``
    lines the smallest are grouped into one "N other tenants" bar.
    Returns label, cost, amount, share_pct, text per bar, top bar first.
    """
    rows = {row["tenant_id"]: row for row in lines.iter_rows(named=True)}
    costs = {tenant: Decimal(row["cost_exact"]) for tenant, row in rows.items()}
    shown, rest = _top_and_other(costs, top)
    bars: list[tuple[str, Decimal, Decimal, Decimal, str]] = []
    for tenant in shown:
        row = rows[tenant]
        bars.append(
            (
                _tenant_label(tenant, row["tenant_name"], row.get("registered", True)),
                costs[tenant],
                Decimal(row["amount"]),
                Decimal(row["share"]) * 100,
                GREY if tenant == UNATTRIBUTED else BASE,
            )
        )
    if rest:
        bars.append(
            (
                _other_label(len(rest)),
                sum((costs[t] for t in rest), Decimal(0)),
                sum((Decimal(rows[t]["amount"]) for t in rest), Decimal(0)),
                sum((Decimal(rows[t]["share"]) for t in rest), Decimal(0)) * 100,
                OTHERS,
            )
        )
    labels = [b[0] for b in bars]
    values = [float(b[1]) for b in bars]
    texts = [f"{_billed(b[2], b[1], currency)}  ({b[3]:.1f} %)" for b in bars]
    positions = list(range(len(bars)))
    ax.barh(positions, values, color=[b[4] for b in bars], height=0.7)
    ax.set_yticks(positions, labels)
    ax.invert_yaxis()
    largest = max(values, default=0.0) or 1.0
    for y, value, text in zip(positions, values, texts, strict=True):
        ax.text(value + largest * 0.01, y, text, va="center", ha="left", fontsize=9)
    room = 1.35 + 0.01 * max((len(t) for t in texts), default=0)  # for the labels
    ax.set_xlim(0, largest * room)
    _money_axis(ax.xaxis, currency, largest * room)
    ax.set_xlabel(f"Cost in the month ({currency})")
    ax.set_title("Cost per tenant", loc="left", fontweight="bold")
    ax.grid(axis="x", alpha=0.3)
    _tidy(ax)
    _describe(
        ax,
        "Horizontal bars, one per tenant line, largest first, labelled with the billed "
        "amount and its share of the month: "
        + _listing([f"{a}: {t}" for a, t in zip(labels, texts, strict=True)]),
    )
    return pl.DataFrame(
        {
            "label": labels,
            "cost": values,
            "amount": [float(b[2]) for b in bars],
            "share_pct": [float(b[3]) for b in bars],
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


def _calendar(days: Sequence[date]) -> list[date]:
    """Every day of the calendar months ``days`` fall in, in order."""
    if not days:
        return []
    first = min(days).replace(day=1)
    last = max(days)
    end = date(last.year + last.month // 12, last.month % 12 + 1, 1)
    return [first + timedelta(days=n) for n in range((end - first).days)]


def _day_axis(ax: Axes, all_days: Sequence[date], labels: bool = True) -> None:
    """Days along x: a bar or point per day, weekends shaded, a label every 7 days."""
    positions = list(range(len(all_days)))
    for x, day in zip(positions, all_days, strict=True):
        if day.weekday() >= 5:  # weekends shaded: weekly patterns show at a glance
            ax.axvspan(x - 0.5, x + 0.5, color="#EEEEEE", linewidth=0, zorder=0)
    step = 7 if len(all_days) > 14 else 1
    ax.set_xticks(
        positions[::step], [f"{d.day} {d:%b}" for d in all_days[::step]] if labels else []
    )
    ax.set_xticks(positions, minor=True)
    if positions:
        ax.set_xlim(-0.5, positions[-1] + 0.5)


def plot_daily_cost(
    ax: Axes,
    days: pl.DataFrame,
    lines: pl.DataFrame | None = None,
    currency: str = "USD",
    top: int = 8,
) -> pl.DataFrame:
    """Cost per day as stacked bars: the most expensive tenants of the month, each a colour,
    the rest summed as one grey "N other tenants" slice on top.

    ``days``: tenant_day rows (day, tenant_id, cost_exact); ``lines``: the month's
    tenant_month rows (tenant_id, tenant_name, amount), for names and each tenant's billed
    amount in the legend (without them: ids and exact sums). At most ``top`` slices; a
    tenant under 1 % of the month joins the grey slice. Every day of the month has a bar.
    Returns series, day, cost (exact ``Decimal``; long form, series from the bottom of the
    stack up).
    """
    names: dict[str, str] = {}
    amounts: dict[str, Decimal] = {}
    registered: dict[str, bool] = {}
    if lines is not None:
        for row in lines.iter_rows(named=True):
            names[row["tenant_id"]] = row.get("tenant_name") or ""
            amounts[row["tenant_id"]] = Decimal(row["amount"])
            registered[row["tenant_id"]] = bool(row.get("registered", True))
    per: dict[tuple[str, date], Decimal] = {}
    totals: dict[str, Decimal] = {}
    for day, tenant, cost in days.select("day", "tenant_id", "cost_exact").iter_rows():
        per[tenant, day] = per.get((tenant, day), Decimal(0)) + Decimal(cost)
        totals[tenant] = totals.get(tenant, Decimal(0)) + Decimal(cost)
    shown, rest = _top_and_other(totals, top, LEAST_SHARE)
    all_days = _calendar(sorted({day for _, day in per}))

    def month_text(group: list[str]) -> str:
        exact = sum((totals[t] for t in group), Decimal(0))
        if all(t in amounts for t in group):
            return _billed(sum((amounts[t] for t in group), Decimal(0)), exact, currency)
        return _money(exact, currency)

    zero = Decimal(0)
    series: list[tuple[str, list[Decimal], str]] = []
    for index, tenant in enumerate(shown):
        label = _tenant_label(tenant, names.get(tenant, ""), registered.get(tenant, True))
        color = GREY if tenant == UNATTRIBUTED else PALETTE[index % len(PALETTE)]
        values = [per.get((tenant, d), zero) for d in all_days]
        series.append((f"{label}: {month_text([tenant])}", values, color))
    if rest:
        values = [sum((per.get((t, d), zero) for t in rest), zero) for d in all_days]
        label = _other_label(len(rest), alone=not shown)
        series.append((f"{label}: {month_text(rest)}", values, OTHERS if shown else BASE))
    positions = list(range(len(all_days)))
    bottom = [0.0] * len(all_days)
    for label, values, color in series:
        heights = [float(v) for v in values]
        ax.bar(positions, heights, bottom=bottom, width=0.8, color=color, label=label)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    _day_axis(ax, all_days)
    largest = max(bottom, default=0.0) or 1.0
    ax.set_ylim(0, largest * 1.08)
    _money_axis(ax.yaxis, currency, largest * 1.08)
    ax.set_ylabel(f"Cost per day ({currency})")
    ax.set_xlabel("Day (UTC; weekends shaded)")
    ax.set_title("Cost per day by tenant", loc="left", fontweight="bold")
    ax.grid(axis="y", alpha=0.3)
    _stack_legend(ax, "Tenant: cost in the month")
    _tidy(ax)
    daily = [sum((v[i] for _, v, _ in series), zero) for i in range(len(all_days))]
    if all_days:
        busiest = max(range(len(all_days)), key=lambda i: (daily[i], -i))
        first, last = all_days[0], all_days[-1]
        _describe(
            ax,
            f"Stacked bars of cost per day in {currency}, one bar for each day from "
            f"{first.day} {first:%b} to {last.day} {last:%b %Y}, one colour per tenant "
            f"(cost in the month): {_listing([label for label, _, _ in series], 9)}; the "
            f"busiest day {_day_name(all_days[busiest])} with {_money(daily[busiest], currency)}",
        )
    return pl.DataFrame(
        {
            "series": [label.rsplit(": ", 1)[0] for label, v, _ in series for _ in v],
            "day": [d for _, _, _ in series for d in all_days],
            "cost": [c for _, values, _ in series for c in values],
        },
        schema={"series": pl.Utf8, "day": pl.Date, "cost": pl.Decimal(38, 12)},
    )


def _day_name(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b}"


def plot_daily_calls(
    ax: Axes | Sequence[Axes],
    days: pl.DataFrame,
    names: dict[str, str] | None = None,
    top: int = 6,
) -> pl.DataFrame:
    """Calls per day of the busiest tenants; the rest summed as "N other tenants".

    ``days``: tenant_day rows (day, tenant_id, calls); ``names``: tenant_id -> name. On
    one axes, one line per series (``top`` of them at most). Given several axes, one
    panel of daily bars per series, each on its own scale, so a small tenant's pattern
    shows as well as a big one's and no two series share a band (as many series as axes;
    unused axes are hidden). Days without a call count 0; every day of the month is drawn. Returns
    series, day, calls (long form, series in legend or panel order).
    """
    names = names or {}
    panels = [ax] if isinstance(ax, Axes) else list(ax)
    totals = {
        str(t): int(c) for t, c in days.group_by("tenant_id").agg(pl.col("calls").sum()).iter_rows()
    }
    shown, rest = _top_and_other(totals, top if len(panels) == 1 else len(panels))
    per = {(row["tenant_id"], row["day"]): int(row["calls"]) for row in days.iter_rows(named=True)}
    all_days = _calendar(sorted({day for _, day in per}))
    series: list[tuple[str, list[int], str]] = []
    for index, tenant in enumerate(shown):
        color = GREY if tenant == UNATTRIBUTED else PALETTE[index % len(PALETTE)]
        label = _tenant_label(tenant, names.get(tenant, ""))
        series.append((label, [per.get((tenant, d), 0) for d in all_days], color))
    if rest:
        counts = [sum(per.get((t, d), 0) for t in rest) for d in all_days]
        series.append((_other_label(len(rest)), counts, GREY))
    if len(panels) == 1:
        _calls_lines(panels[0], series, all_days)
    else:
        _calls_panels(panels, series, all_days)
    return pl.DataFrame(
        {
            "series": [label for label, counts, _ in series for _ in counts],
            "day": [d for _label, counts, _ in series for d in all_days[: len(counts)]],
            "calls": [c for _, counts, _ in series for c in counts],
        },
        schema={"series": pl.Utf8, "day": pl.Date, "calls": pl.Int64},
    )


def _peak(counts: list[int], all_days: list[date]) -> str:
    index = max(range(len(counts)), key=lambda i: (counts[i], -i))
    return f"busiest {_day_name(all_days[index])} with {counts[index]:,}"


def _calls_lines(ax: Axes, series: list[tuple[str, list[int], str]], all_days: list[date]) -> None:
    positions = list(range(len(all_days)))
    for label, counts, color in series:
        style = "--" if color == GREY else "-"
        ax.plot(
            positions, counts, style, label=f"{label}: {sum(counts):,}", color=color, linewidth=2
        )
    _day_axis(ax, all_days)
    ax.yaxis.set_major_formatter(FuncFormatter(_count))
    ax.set_ylim(bottom=0)
    ax.set_ylabel("Calls per day")
    ax.set_xlabel("Day (UTC; weekends shaded)")
    ax.set_title("Daily Data API calls per tenant", loc="left", fontweight="bold")
    ax.grid(alpha=0.3)
    ax.legend(
        loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="Tenant: calls in total"
    )
    _tidy(ax)
    if all_days:
        _describe(
            ax,
            "Lines of Data API calls per day, one per tenant: "
            + _listing([f"{s[0]}, {sum(s[1]):,} calls, {_peak(s[1], all_days)}" for s in series]),
        )


def _calls_panels(
    panels: list[Axes], series: list[tuple[str, list[int], str]], all_days: list[date]
) -> None:
    positions = list(range(len(all_days)))
    bottom_row = {id(ax) for ax in panels[len(series) - 2 : len(series)]} if series else set()
    for index, ax in enumerate(panels):
        if index >= len(series):
            ax.set_visible(False)
            continue
        label, counts, color = series[index]
        ax.bar(positions, counts, width=0.8, color=color)
        _day_axis(ax, all_days, labels=id(ax) in bottom_row or len(series) == 1)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=3, integer=True))
        ax.yaxis.set_major_formatter(FuncFormatter(_count))
        ax.set_ylim(0, max(max(counts, default=0), 1) * 1.15)
        ax.set_title(f"{label}: {sum(counts):,} calls", loc="left", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        _tidy(ax)
        if all_days:
            _describe(
                ax,
                f"Panel {index + 1}, {label}: {sum(counts):,} calls in the month, "
                f"{_peak(counts, all_days)}, on its own scale",
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

    ``sizes``: tenant_id, bytes, calls (all tenants are summed). Bars are ``block/32``
    wide (1 KiB for 32 KiB blocks), right-closed like the billing rule: a bar covers sizes
    in ``(a, b]``. The y axis is logarithmic: small calls outnumber big ones by orders of
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
    margin_kib = margin_bytes / KIB
    ax.bar(starts, calls, width=step, align="edge", color=BASE, label="Calls")
    ax.bar(
        starts,
        near_calls,
        width=step,
        align="edge",
        color=EDGE,
        label=f"Calls just past an edge\n(at most {margin_kib:.1f} KiB over: one unit more)",
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
            ax.axvspan(edge, edge + margin_kib, color=EDGE, alpha=0.12, linewidth=0)
        ax.text(
            edge + block_kib / 2,
            0.97,
            f"billed {k + 1} unit{'s' if k else ''}",
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
    drawn, near_drawn = sum(calls), sum(near_calls)
    _describe(
        ax,
        f"Histogram of calls by billed payload size, {step:g} KiB bars from 0 to "
        f"{limit / KIB:,.0f} KiB on a logarithmic count, dashed lines at each "
        f"{block_kib:g} KiB block edge: {drawn:,} calls drawn, {near_drawn:,} of them just "
        f"past an edge (orange)",
    )
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
    """What each tenant would save by trimming its calls just past an edge under it.

    ``savings``: ``metering.rate.edges.edge_savings`` rows; ``unit_cost``: the month's
    blended cost per unit. With it, bars are money (a month's saving at that cost, an
    estimate), labelled with the units saved; without it, bars are units. Only tenants
    with savings are drawn: the biggest ``top``, or past that the biggest ``top - 1`` and
    one grey bar for the others. Returns label, units_saved, pct_of_units (of the
    tenant's units of known size), text.
    """
    names = names or {}
    rows = savings.filter(pl.col("units_saved") > 0).sort(
        ["units_saved", "tenant_id"], descending=[True, False]
    )
    shown, rest = rows.head(top - 1 if rows.height > top else top), rows.slice(top - 1)
    labels = [_tenant_label(t, names.get(t, "")) for t in shown["tenant_id"]]
    saved = [int(v) for v in shown["units_saved"]]
    units_of = [int(v) for v in shown["units"]]
    if rows.height > top:
        labels.append(_other_label(rest.height))
        saved.append(int(rest["units_saved"].sum()))
        units_of.append(int(rest["units"].sum()))
    pct = [100 * s / u if u else 0.0 for s, u in zip(saved, units_of, strict=True)]
    worth = [units * Fraction(unit_cost) for units in saved] if unit_cost is not None else None
    money = [float(w) for w in worth] if worth is not None else None
    texts = []
    for index, (units, share) in enumerate(zip(saved, pct, strict=True)):
        whose = "their" if index == top - 1 and rows.height > top else "its"
        text = f"{units:,} unit{'s' if units != 1 else ''} ({share:.1f} % of {whose} units)"
        if worth is not None:
            text = f"{_about(worth[index], currency)} a month: {text}"
        texts.append(text)
    positions = list(range(len(labels)))
    ax.set_title(
        "Saving per tenant from trimming calls just past an edge under it",
        loc="left",
        fontweight="bold",
    )
    if not positions:
        ax.text(0.5, 0.5, "No call went just past a block edge", ha="center", va="center")
        ax.set_axis_off()
        _describe(ax, "No call went just past a block edge: nothing to save")
    else:
        values: list[float] = money if money is not None else [float(s) for s in saved]
        colors = [EDGE] * len(values)
        if rows.height > top:
            colors[-1] = OTHERS
        ax.barh(positions, values, color=colors, height=0.6)
        ax.set_yticks(positions, labels)
        largest = max(values) or 1.0
        for y, value, text in zip(positions, values, texts, strict=True):
            ax.text(value + largest * 0.01, y, text, va="center", ha="left", fontsize=9)
        room = 1.25 + 0.011 * max(len(t) for t in texts)
        ax.set_xlim(0, largest * room)
        ax.set_ylim(max(len(positions), 4) - 0.5, -0.5)  # bars keep their thickness
        if money is not None:
            _money_axis(ax.xaxis, currency, largest * room)
            ax.set_xlabel(
                f"Saving in a month ({currency}, at the month's average cost per unit: "
                "one unit per trimmed call)"
            )
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.xaxis.set_major_formatter(FuncFormatter(_count))
            ax.set_xlabel("Billed units saved in the month (one per trimmed call)")
        ax.grid(axis="x", alpha=0.3)
        _tidy(ax)
        _describe(
            ax,
            "Horizontal bars, one per tenant, of what trimming its calls just past an edge "
            "would save: " + _listing([f"{a}: {t}" for a, t in zip(labels, texts, strict=True)]),
        )
    return pl.DataFrame(
        {"label": labels, "units_saved": saved, "pct_of_units": pct, "text": texts},
        schema={
            "label": pl.Utf8,
            "units_saved": pl.Int64,
            "pct_of_units": pl.Float64,
            "text": pl.Utf8,
        },
    )


def _compact(amount: Decimal, currency: str) -> str:
    """A large amount in few characters (``117.10 M EUR``), for labels that sit side by
    side; "" when it is short already."""
    for size, suffix in ((Decimal(10) ** 9, "bn"), (Decimal(10) ** 6, "M")):
        if abs(amount) >= size:
            return f"{amount / size:,.2f} {suffix} {currency}"
    if abs(amount) >= 100_000:
        return f"{amount / 1000:,.1f} k {currency}"
    return ""


def _consecutive(earlier: str, later: str) -> bool:
    a, b = datetime.strptime(earlier, "%Y-%m"), datetime.strptime(later, "%Y-%m")
    return (b.year - a.year) * 12 + b.month - a.month == 1


def _pct_change(before: Decimal, after: Decimal) -> str:
    return f"{_signed(100 * (after - before) / before, 1)} %" if before else "new"


def _total_change(
    before: Decimal, after: Decimal, before_exact: Decimal, after_exact: Decimal
) -> str:
    """A month's change from the one before: of the billed totals, or of the exact costs
    (and said so) when the billed totals round the change away."""
    if before and after != before:
        return _pct_change(before, after)
    if before_exact and after_exact != before_exact:
        return f"{_pct_change(before_exact, after_exact)} exact"
    return _pct_change(before, after)


def plot_trend(ax: Axes, trend: pl.DataFrame, currency: str = "USD", top: int = 6) -> pl.DataFrame:
    """Cost per month, stacked by tenant (the biggest ``top`` over the months, the rest as
    "other"), each month's billed total on top of its bar with its change from the month
    before (when that month is the bar before).

    ``trend``: tenant_month rows of several months (month, tenant_id, tenant_name,
    cost_exact, amount). A tenant under 1 % of the months' cost joins "other". Returns
    month, series, cost (long form), then one ``series = "total"`` row per month holding
    the billed total.
    """
    months = sorted(set(trend["month"].to_list()))
    totals: dict[str, Decimal] = {}
    per: dict[tuple[str, str], Decimal] = {}
    billed = dict.fromkeys(months, Decimal(0))
    exact = dict.fromkeys(months, Decimal(0))
    names: dict[str, str] = {}
    for row in trend.sort("month").iter_rows(named=True):
        cost = Decimal(row["cost_exact"])
        totals[row["tenant_id"]] = totals.get(row["tenant_id"], Decimal(0)) + cost
        per[row["month"], row["tenant_id"]] = cost
        billed[row["month"]] += Decimal(row["amount"])
        exact[row["month"]] += cost
        names[row["tenant_id"]] = row["tenant_name"]
    shown, rest = _top_and_other(totals, top, LEAST_SHARE)
    zero = Decimal(0)
    series: list[tuple[str, list[Decimal], str]] = [
        (
            _tenant_label(t, names.get(t, "")),
            [per.get((m, t), zero) for m in months],
            GREY if t == UNATTRIBUTED else PALETTE[i % len(PALETTE)],
        )
        for i, t in enumerate(shown)
    ]
    if rest:
        series.append(
            (
                _other_label(len(rest), alone=not shown),
                [sum((per.get((m, t), zero) for t in rest), zero) for m in months],
                OTHERS if shown else BASE,
            )
        )
    positions = list(range(len(months)))
    bottom = [0.0] * len(months)
    for label, values, color in series:
        heights = [float(v) for v in values]
        ax.bar(positions, heights, bottom=bottom, color=color, label=label, width=0.65)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    largest = max(bottom, default=0.0) or 1.0
    tops: list[str] = []
    for index, (x, height, month) in enumerate(zip(positions, bottom, months, strict=True)):
        text = _compact(billed[month], currency) if len(months) > 6 else ""
        text = text or f"{amount_text(billed[month], currency, grouped=True)} {currency}"
        if index and _consecutive(months[index - 1], month):
            last = months[index - 1]
            text += "\n" + _total_change(billed[last], billed[month], exact[last], exact[month])
        tops.append(text.replace("\n", ", "))
        ax.text(
            x,
            height + largest * 0.015,
            text,
            ha="center",
            va="bottom",
            fontsize=9 if len(months) <= 6 else 8,
            fontweight="bold",
            linespacing=1.3,
        )
    ax.set_xticks(positions, [_short_month(m) for m in months])
    ax.set_ylim(0, largest * 1.2)
    _money_axis(ax.yaxis, currency, largest * 1.2)
    ax.set_ylabel(f"Cost per month ({currency})")
    ax.set_title("Cost per month, by tenant", loc="left", fontweight="bold")
    ax.grid(axis="y", alpha=0.3)
    _stack_legend(ax, "Tenant")
    _tidy(ax)
    if months:
        _describe(
            ax,
            f"Stacked bars of cost per month from {_short_month(months[0])} to "
            f"{_short_month(months[-1])}, one colour per tenant "
            f"({'; '.join(label for label, _, _ in series)}); billed totals: "
            + "; ".join(f"{_short_month(m)} {t}" for m, t in zip(months, tops, strict=True)),
        )
    return pl.DataFrame(
        {
            "month": [m for _ in series for m in months] + months,
            "series": [label for label, values, _ in series for _ in values]
            + ["total"] * len(months),
            "cost": [float(v) for _, values, _ in series for v in values]
            + [float(billed[m]) for m in months],
        },
        schema={"month": pl.Utf8, "series": pl.Utf8, "cost": pl.Float64},
    )


def _change_text(
    change: Decimal,
    exact: Decimal,
    before: Decimal,
    before_exact: Decimal,
    currency: str,
    status: str = "",
) -> tuple[str, float | None]:
    """A change of a billed amount, in words, and the percentage it shows.

    The percentage is of last month's billed amount, as finance would work it out from
    the two invoices; when the bill rounded the change away (amounts of a few cents or
    less), the exact change and its percentage of last month's exact cost are shown.
    """
    places = shown_places(currency)
    text = f"{_signed(change, places) if change else amount_text(change, currency)} {currency}"
    detail = [status] if status else []
    pct: Decimal | None = None
    if status:
        pass  # "new" or "no calls this month" says it better than +inf or -100 %
    elif change and before > 0:
        pct = 100 * change / before
        detail.append(f"{_signed(pct, 1)} %")
    elif exact and change == 0:
        detail.append(
            f"exact {_signed(exact, max(places, 1 - math.floor(math.log10(abs(exact)))))}"
        )
        if before_exact > 0:
            pct = 100 * exact / before_exact
            detail.append(f"{_signed(pct, 1)} %")
    if detail:
        text += f" ({', '.join(detail)})"
    return text, float(pct) if pct is not None else None


def plot_month_change(
    ax: Axes, changes: pl.DataFrame, currency: str = "USD", top: int = 12
) -> pl.DataFrame:
    """Each tenant's change in cost from one month to the next, as bars either side of 0:
    increases to the right (vermilion), decreases to the left (blue), biggest increase on
    top; past ``top`` tenants, the smallest changes net as one grey bar at the bottom.

    ``changes``: ``month_changes`` rows (tenant_id, tenant_name, previous_amount, amount,
    change, previous_cost_exact, cost_exact, change_exact, new, gone). Bars are the exact
    change; labels the change of the billed amounts and its percentage (of last month's
    billed amount), "new" or "no calls this month" (where the bill rounded a change to
    0.00, the exact one). Returns label, change, change_exact (``Decimal``), change_pct
    (the percentage shown, or None), text, top bar first.
    """
    rows = {row["tenant_id"]: row for row in changes.iter_rows(named=True)}
    size = {t: abs(Decimal(r["change_exact"])) for t, r in rows.items()}
    shown, rest = _top_and_other(size, top)
    shown.sort(key=lambda t: (-Decimal(rows[t]["change_exact"]), t))
    zero = Decimal(0)
    bars: list[tuple[str, Decimal, Decimal, Decimal, Decimal, str, str]] = []
    for tenant in shown:
        row = rows[tenant]
        status = "new this month" if row["new"] else "no calls this month" if row["gone"] else ""
        bars.append(
            (
                _tenant_label(tenant, row["tenant_name"], row.get("registered", True)),
                Decimal(row["change"]),
                Decimal(row["change_exact"]),
                Decimal(row["previous_amount"]),
                Decimal(row["previous_cost_exact"]),
                status,
                GREY if tenant == UNATTRIBUTED else "",
            )
        )
    if rest:

        def total(column: str) -> Decimal:
            return sum((Decimal(rows[t][column]) for t in rest), zero)

        bars.append(
            (
                f"{_other_label(len(rest))} (net)",
                total("change"),
                total("change_exact"),
                total("previous_amount"),
                total("previous_cost_exact"),
                "",
                OTHERS,
            )
        )
    labels, texts, pcts, colors = [], [], [], []
    for label, change, exact, before, before_exact, status, color in bars:
        text, pct = _change_text(change, exact, before, before_exact, currency, status)
        labels.append(label)
        texts.append(text)
        pcts.append(pct)
        colors.append(color or (UP if exact > 0 else DOWN))
    values = [float(b[2]) for b in bars]
    positions = list(range(len(bars)))
    ax.barh(positions, values, color=colors, height=0.65)
    ax.set_yticks(positions, labels)
    ax.set_ylim(max(len(positions), 4) - 0.5, -0.5)
    ax.axvline(0, color="#333333", linewidth=1)
    high = max([*values, 0.0])
    low = min([*values, 0.0])
    span = (high - low) or 1.0
    room = span * (0.12 + 0.011 * max((len(t) for t in texts), default=0))
    for y, value, text in zip(positions, values, texts, strict=True):
        right = value >= 0
        ax.text(
            value + (span * 0.01 if right else -span * 0.01),
            y,
            text,
            va="center",
            ha="left" if right else "right",
            fontsize=9,
        )
    left = low - room if low < 0 else -span * 0.02
    right_edge = high + room if high > 0 else span * 0.02
    ax.set_xlim(left, right_edge)
    _money_axis(ax.xaxis, currency, right_edge, left)
    ax.set_xlabel(f"Change in cost from the month before ({currency})")
    ax.set_title("Change in cost per tenant", loc="left", fontweight="bold")
    ax.grid(axis="x", alpha=0.3)
    _tidy(ax)
    _describe(
        ax,
        "Horizontal bars of each tenant's change in cost from the month before, increases "
        "to the right, decreases to the left: "
        + _listing([f"{a}: {t}" for a, t in zip(labels, texts, strict=True)], 8),
    )
    return pl.DataFrame(
        {
            "label": labels,
            "change": [b[1] for b in bars],
            "change_exact": [b[2] for b in bars],
            "change_pct": pcts,
            "text": texts,
        },
        schema={
            "label": pl.Utf8,
            "change": AMOUNT,
            "change_exact": pl.Decimal(38, 12),
            "change_pct": pl.Float64,
            "text": pl.Utf8,
        },
    )


@dataclass(frozen=True, slots=True)
class ChartData:
    """Everything the month's charts show, read from the warehouse by ``outputs.chart``."""

    month: str  # YYYY-MM
    currency: str  # the bill's
    tenant_month: pl.DataFrame  # the month's tenant lines
    tenant_days: pl.DataFrame  # day, tenant_id, calls, units, cost_exact
    payload_sizes: pl.DataFrame  # tenant_id, bytes, calls
    edge_savings: pl.DataFrame  # metering.rate.edges.EDGE_SAVINGS
    trend: pl.DataFrame  # tenant_month rows of up to 12 months through ``month``
    changes: pl.DataFrame  # store.queries.month_changes (empty: the month before unbilled)
    block_bytes: int
    margin_bytes: int
    measure: str
    unit_cost: Fraction | None  # blended cost of one unit, for "about N USD" labels


@dataclass(frozen=True, slots=True)
class Chart:
    """One written chart, the data behind each of its axes, and its alt text."""

    path: Path
    plotted: dict[str, pl.DataFrame]
    alt: str


def _save(fig: Figure, path: Path, plotted: dict[str, pl.DataFrame]) -> Chart:
    path.parent.mkdir(parents=True, exist_ok=True)
    alt = alt_text(fig)
    # No "Software" metadata: the same data gives the same bytes on one matplotlib version.
    fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None, "Description": alt})
    return Chart(path, plotted, alt)


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


def _previous_month(month: str) -> str:
    year, number = (int(part) for part in month.split("-"))
    return f"{year - (number == 1):04d}-{(number - 2) % 12 + 1:02d}"


def _pct(part: int | Decimal, whole: int | Decimal) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "0.0 %"


class _Written:
    """The charts written so far, told to ``progress`` one by one."""

    def __init__(self, expected: int, progress: Progress | None) -> None:
        self.charts: list[Chart] = []
        self._expected, self._progress = expected, progress

    def add(self, chart: Chart) -> None:
        self.charts.append(chart)
        if self._progress is not None:
            self._progress("charts", len(self.charts), self._expected)


def draw_charts(data: ChartData, out: Path, progress: Progress | None = None) -> list[Chart]:
    """Write the month's charts to ``out`` and return them with the data they show
    (``progress`` hears of each chart written)."""
    when = month_label(data.month)
    lines = data.tenant_month
    names = dict(lines.select("tenant_id", "tenant_name").iter_rows())
    total = sum(_decimals(lines, "amount"), Decimal(0))
    exact = sum(_decimals(lines, "cost_exact"), Decimal(0))
    count = lines.height
    currency = data.currency
    months = data.trend.filter(pl.col("currency") == currency)["month"].n_unique()
    expected = 5 + (months >= 2) + (data.changes.height > 0)
    charts = _Written(expected, progress)

    fig = Figure(figsize=(11, max(3.8, 1.6 + 0.45 * min(count, 15))), layout="constrained")
    ax = fig.add_subplot()
    cost = plot_cost_per_tenant(ax, lines, currency)
    _headline(fig, f"Cost per tenant, {when}")
    _subtitle(
        ax,
        f"{amount_text(total, currency, grouped=True)} {currency} billed"
        + (
            f" (exact cost {_small(exact, currency)} {currency})"
            if total == 0 and exact > 0
            else ""
        )
        + f" over {count} tenant line{'s' if count != 1 else ''}."
        " Bars: each line's exact share of the account cost; labels: the billed amount"
        " (rounded, lines sum to the total) and the share.",
    )
    charts.add(_save(fig, out / f"{data.month}-cost-per-tenant.png", {"cost": cost}))

    fig = Figure(figsize=(13, 6), layout="constrained")
    ax = fig.add_subplot()
    daily = plot_daily_cost(ax, data.tenant_days, lines, currency)
    per_day = daily.group_by("day").agg(pl.col("cost").sum()).sort("day")
    _headline(fig, f"Cost per day by tenant, {when}")
    if per_day.height:
        peak = per_day.sort(["cost", "day"], descending=[True, False]).row(0)
        _subtitle(
            ax,
            f"{amount_text(total, currency, grouped=True)} {currency} billed"
            + (f" (exact {_small(exact, currency)})" if total == 0 and exact > 0 else "")
            + f": {_money(exact / per_day.height, currency)} a day on average, the most on"
            f" {_day_name(peak[0])} ({_money(Decimal(peak[1]), currency)}). The most"
            " expensive tenants each have a colour; the others share the grey slice.",
        )
    charts.add(_save(fig, out / f"{data.month}-daily-cost.png", {"daily_cost": daily}))

    tenants = data.tenant_days["tenant_id"].n_unique()
    panels = max(1, min(tenants, 6))
    rows = -(-panels // 2)
    fig = Figure(figsize=(13, 1.6 + 2.1 * rows), layout="constrained")
    body = fig.add_subfigure(fig.add_gridspec(1, 1)[0])  # under the headline: subtitle, panels
    axes = body.subplots(rows, 2 if panels > 1 else 1, sharex=True, squeeze=False)
    calls_drawn = plot_daily_calls(list(axes.flat), data.tenant_days, names)
    calls = int(data.tenant_days["calls"].sum() or 0)
    grouped = tenants - panels + 1 if tenants > panels else 0
    _headline(fig, f"Daily Data API calls per tenant, {when}")
    body.suptitle(
        f"{calls:,} billed calls. One panel per tenant, each on its own scale"
        + (f"; the {grouped} least busy tenants together in the last" if grouped else "")
        + ". Days in UTC; weekends shaded.",
        x=0.01,
        ha="left",
        fontsize=10,
        color="#444444",
    )
    body.supylabel("Calls per day", fontsize=10)
    charts.add(_save(fig, out / f"{data.month}-daily-calls.png", {"daily": calls_drawn}))

    fig = Figure(figsize=(12, 6.5), layout="constrained")
    ax = fig.add_subplot()
    blocks = _blocks_to_show(data.payload_sizes, data.block_bytes)
    sizes = plot_payload_sizes(
        ax, data.payload_sizes, data.block_bytes, data.margin_bytes, blocks, data.measure
    )
    known = int(data.edge_savings["calls"].sum() or 0)
    near = int(data.edge_savings["near_edge_calls"].sum() or 0)
    kib = data.block_bytes / KIB
    _headline(fig, f"Payload sizes against the {kib:g} KiB block edges, {when}")
    _subtitle(
        ax,
        f"{near:,} of the {known:,} calls of known size ({_pct(near, known)} of the calls) went"
        f" at most {data.margin_bytes / KIB:.1f} KiB past a block edge (orange): each was"
        " billed one unit more than it would be if trimmed under the edge.",
    )
    charts.add(_save(fig, out / f"{data.month}-payload-sizes.png", {"sizes": sizes}))

    shown = int((data.edge_savings["units_saved"] > 0).sum())
    fig = Figure(figsize=(12, max(3.6, 1.9 + 0.45 * min(max(shown, 4), 10))), layout="constrained")
    ax = fig.add_subplot()
    savings = plot_edge_savings(ax, data.edge_savings, names, data.unit_cost, currency)
    units = int(data.edge_savings["units"].sum() or 0)
    saved = int(data.edge_savings["units_saved"].sum() or 0)
    _headline(fig, f"What trimming payloads just past a block edge would save, {when}")
    if saved:
        worth = (
            f", {_about(saved * data.unit_cost, currency)} a month at the month's"
            " average cost per unit"
            if data.unit_cost is not None
            else ""
        )
        _subtitle(
            ax,
            f"Trimming the {near:,} calls just past an edge under it saves one unit each:"
            f" {saved:,} units ({_pct(saved, units)} of the units of calls of known size){worth}."
            " The tenants that would save most:",
        )
    charts.add(_save(fig, out / f"{data.month}-edge-savings.png", {"savings": savings}))

    trend_frame = data.trend.filter(pl.col("currency") == currency)
    if months >= 2:
        fig = Figure(figsize=(max(10.0, 4.5 + 1.0 * months), 6), layout="constrained")
        ax = fig.add_subplot()
        trend = plot_trend(ax, trend_frame, currency)
        first, last = str(trend_frame["month"].min()), str(trend_frame["month"].max())
        _headline(fig, f"Cost per month by tenant, {_short_month(first)} to {_short_month(last)}")
        other = data.trend["month"].n_unique() - months
        _subtitle(
            ax,
            "On each bar: the month's billed total and its change from the month before."
            " The most expensive tenants each have a colour; the others share the grey."
            + (
                f" {other} month{'s' if other != 1 else ''} billed in another currency left out."
                if other
                else ""
            ),
        )
        charts.add(_save(fig, out / f"{data.month}-trend.png", {"trend": trend}))

    if data.changes.height:
        previous = _previous_month(data.month)
        before = sum(_decimals(data.changes, "previous_amount"), Decimal(0))
        after = sum(_decimals(data.changes, "amount"), Decimal(0))
        shown = min(data.changes.height, 12)
        fig = Figure(figsize=(12, max(3.8, 1.9 + 0.45 * shown)), layout="constrained")
        ax = fig.add_subplot()
        change = plot_month_change(ax, data.changes, currency)
        _headline(fig, f"Change in cost per tenant, {month_label(previous)} to {when}")
        _subtitle(
            ax,
            f"Billed {amount_text(before, currency, grouped=True)} {currency} in "
            f"{month_label(previous)}, {amount_text(after, currency, grouped=True)}"
            f" {currency} in {when}: "
            + _change_text(
                after - before,
                sum(_decimals(data.changes, "change_exact"), Decimal(0)),
                before,
                sum(_decimals(data.changes, "previous_cost_exact"), Decimal(0)),
                currency,
            )[0]
            + ". Bars right: cost grew; left: it fell. Labels: the change of the billed"
            " amounts.",
        )
        charts.add(_save(fig, out / f"{data.month}-month-over-month.png", {"change": change}))
    return charts.charts


def render_charts(
    data: ChartData,
    out: Path,
    plotted: dict[str, pl.DataFrame] | None = None,
    progress: Progress | None = None,
) -> list[Path]:
    """Write the month's charts as PNGs to ``out``; return their paths.

    ``plotted``, when given, receives the frames each axes drew (``cost``,
    ``daily_cost``, ``daily``, ``sizes``, ``savings``, ``trend``, ``change``), for tests
    and notebooks.
    """
    charts = draw_charts(data, out, progress)
    if plotted is not None:
        for one in charts:
            plotted.update(one.plotted)
    return [one.path for one in charts]
