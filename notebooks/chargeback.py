# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # RDS Data API chargeback: one billed month
#
# Who costs what, when, and why, and what changed since the month before. Everything is read
# from the `meter` warehouse through the `metering` library: this notebook defines no prices
# and no attribution rules, so its numbers are the bill's numbers.
#
# Settings (environment variables, all optional):
#
# | variable | meaning | default |
# |---|---|---|
# | `METER_CONFIG` | the `meter.toml` that finds the warehouse | `sample_data/meter.toml` |
# | `METER_MONTH` | billing month `YYYY-MM` | the newest billed month |
# | `METER_TENANT` | tenant to drill into | the most expensive tenant |
# | `METER_NOTEBOOK_OUT` | folder to keep the figures (PNG) and tables (Parquet) in | not kept |
#
# Open it in Jupyter: `pip install -e '.[notebook]'`, then `jupyter lab` and open this file
# with "Open With > Jupytext Notebook", or `jupytext --to ipynb notebooks/chargeback.py`.
# It also runs as a script: `python notebooks/chargeback.py`. Each figure carries alt text
# (what it shows, in words) for screen readers; as a script, the alt text is printed.
# Tables show the columns that fit a screen; the Parquet files hold every column, with the
# money as exact decimals.

# %%
import base64
import html
import io
import os
import textwrap
from pathlib import Path

import polars as pl
from matplotlib.figure import Figure

import metering
from metering import Month

try:  # in Jupyter, frames render as tables and figures as images with their alt text
    from IPython import get_ipython
    from IPython.display import display

    IN_JUPYTER = get_ipython() is not None
except ImportError:
    IN_JUPYTER = False
if not IN_JUPYTER:
    display = print

pl.Config.set_tbl_rows(20)
pl.Config.set_tbl_width_chars(100)
pl.Config.set_fmt_str_lengths(24)  # long names end in "…" rather than wrap the table
pl.Config.set_tbl_hide_column_data_types(True)
pl.Config.set_tbl_hide_dataframe_shape(True)
pl.Config.set_tbl_cell_numeric_alignment("RIGHT")
pl.Config.set_thousands_separator(",")


def _config_path() -> Path:
    if "METER_CONFIG" in os.environ:
        return Path(os.environ["METER_CONFIG"])
    for candidate in (Path("sample_data/meter.toml"), Path("../sample_data/meter.toml")):
        if candidate.exists():
            return candidate
    raise SystemExit("set METER_CONFIG to your meter.toml")


config = metering.load_config(_config_path())
warehouse = config.warehouse.path
months = metering.billed_months(config)
month = Month.parse(os.environ["METER_MONTH"]) if os.environ.get("METER_MONTH") else months[-1]
when = f"{month.start:%B %Y}"
out = Path(os.environ["METER_NOTEBOOK_OUT"]) if os.environ.get("METER_NOTEBOOK_OUT") else None
if out is not None:
    out.mkdir(parents=True, exist_ok=True)


def figure(width: float, height: float, title: str) -> Figure:
    """A figure of its own (no pyplot state) headed ``title``: the plot functions draw on
    its axes."""
    fig = Figure(figsize=(width, height), layout="constrained")
    fig.suptitle(title, x=0.01, ha="left", fontweight="bold")
    return fig


class Picture:
    """A PNG and its alt text: Jupyter and HTML exports show an ``<img alt="...">``; the
    notebook file also keeps the PNG itself, the alt text in its metadata."""

    def __init__(self, png: bytes, alt: str) -> None:
        self.png, self.alt = png, alt

    def _repr_png_(self) -> tuple[bytes, dict[str, str]]:
        return self.png, {"alt": self.alt}

    def _repr_html_(self) -> str:
        data = base64.b64encode(self.png).decode()
        return f'<img src="data:image/png;base64,{data}" alt="{html.escape(self.alt)}">'


def show(fig: Figure, name: str) -> None:
    """Show a figure with its alt text, and keep it as a PNG when METER_NOTEBOOK_OUT is set."""
    alt = metering.alt_text(fig)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100, metadata={"Description": alt})
    if out is not None:
        (out / f"{month}-{name}.png").write_bytes(png.getvalue())
    if IN_JUPYTER:
        display(Picture(png.getvalue(), alt))
    else:
        print(textwrap.fill(f"[figure {name}] {alt}", width=100, subsequent_indent="    "))


def keep(frame: pl.DataFrame, name: str) -> None:
    """Keep a table, every column, as Parquet when METER_NOTEBOOK_OUT is set."""
    if out is not None:
        frame.write_parquet(out / f"{month}-{name}.parquet")


def table(frame: pl.DataFrame, name: str, *shown: str | pl.Expr, rows: int = 0) -> None:
    """Show a table (the columns ``shown``, or all; the first ``rows``, or all) and keep
    every column and row as Parquet."""
    keep(frame, name)
    frame = frame.head(rows) if rows else frame
    display(frame.select(shown) if shown else frame)


print(f"warehouse {warehouse}: billed months {', '.join(map(str, months))}; looking at {month}")

# %% [markdown]
# ## The month at a glance
#
# The bill as `meter bill` wrote it: the account cost (exact), and the lines, rounded to the
# currency's minor unit (the cent) so that they add up exactly to the account total.

# %%
month_report = metering.month_report(config, month)
lines = month_report.lines
currency = month_report.currency


def money(amount) -> str:
    """An amount with exactly the currency's decimals (0.01 USD, 1 JPY, 0.001 KWD)."""
    return metering.amount_text(amount, currency, grouped=True)


names = dict(lines.select("tenant_id", "tenant_name").iter_rows())
print(
    f"{month}: {month_report.calls:,} calls, {month_report.units:,} billed units, "
    f"account cost {month_report.account_cost} {currency}, "
    f"billed total {money(month_report.amount)} {currency} over {lines.height} lines"
)
unattributed = month_report.unattributed
print(
    f"unattributed: {unattributed.calls:,} calls, {unattributed.unit_share:.2%} of units, "
    f"{money(unattributed.amount)} {currency}"
)

# %%
fig = figure(11, max(3.8, 0.45 * min(lines.height, 15) + 1.6), f"Cost per tenant, {when}")
plotted = metering.plot_cost_per_tenant(fig.add_subplot(), lines, currency)
show(fig, "cost-per-tenant")
print(f"cost per tenant: {plotted.height} bars, largest {plotted['label'][0]}")

# %%
fig = figure(13, 5.5, f"Cost per day by tenant, {when}")
daily_cost = metering.plot_daily_cost(
    fig.add_subplot(), metering.tenant_days(config, month), lines, currency
)
show(fig, "daily-cost")

# %% [markdown]
# ## Cost profiles
#
# Per tenant: what it pays, and what drives it. `units/call` above 1 means big payloads
# (every started 32 KiB block of a call is a billed unit); `KiB/call` is the average
# request + response size; `peak/s` the most calls in one second.

# %%
profiles = lines.select(
    "tenant_id",
    "tenant_name",
    "cost_center",
    "calls",
    "units",
    units_per_call=(pl.col("units") / pl.col("calls")).round(3),
    kib_per_call=((pl.col("request_bytes") + pl.col("response_bytes")) / pl.col("calls") / 1024)
    .round(1),
    cost_exact="cost_exact",
    amount="amount",
    share_pct=(pl.col("share") * 100).cast(pl.Float64).round(2),
    peak_rps="peak_rps",
).sort(["amount", "units", "tenant_id"], descending=[True, True, False])
table(
    profiles,
    "profiles",
    "tenant_id",
    "calls",
    "units",
    pl.col("units_per_call").alias("units/call"),
    pl.col("kib_per_call").alias("KiB/call"),
    "amount",
    pl.col("share_pct").alias("share %"),
    pl.col("peak_rps").alias("peak/s"),
)

# %% [markdown]
# ## Month over month
#
# The billed months up to this one (at most 12): what each cost, by tenant, and what changed
# since the month before, tenant by tenant. `change` is the difference of the billed amounts
# (what two invoices show); `change_pct` is of last month's billed amount (empty for a tenant
# new this month). The Parquet tables keep the exact costs too.

# %%
trend = metering.month_trend(config, month).filter(pl.col("currency") == currency)
changes = metering.month_changes(config, month)
by_month = (
    trend.group_by("month")
    .agg(
        tenants=pl.len(),
        calls=pl.col("calls").sum(),
        units=pl.col("units").sum(),
        amount=pl.col("amount").sum(),
    )
    .sort("month")
    .with_columns(start=pl.col("month").str.to_date("%Y-%m"))
    .with_columns(
        change_pct=pl.when(
            pl.col("start").shift(1) == pl.col("start").dt.offset_by("-1mo")
        ).then(
            (100 * (pl.col("amount").cast(pl.Float64) / pl.col("amount").shift(1).cast(pl.Float64) - 1))
            .round(1)
        )
    )
    .drop("start")
)
print(
    f"{by_month.height} billed month{'s' if by_month.height != 1 else ''} "
    f"in {currency} up to {month}"
)
keep(trend, "trend")
if by_month.height >= 2:
    display(by_month)

# %%
if by_month.height >= 2:
    fig = figure(
        max(10.0, 4.5 + by_month.height),
        5.5,
        f"Cost per month by tenant, {by_month['month'][0]} to {month}",
    )
    metering.plot_trend(fig.add_subplot(), trend, currency)
    show(fig, "trend")
else:
    print(f"no trend yet: {month} is the only billed month up to it")

# %%
if changes.height:
    before = sum(changes["previous_amount"])
    after = sum(changes["amount"])
    print(
        f"{month.previous()} to {month}: {money(before)} to {money(after)} {currency} "
        f"({'+' if after >= before else ''}{money(after - before)}); "
        f"{int(changes['new'].sum())} new, "
        f"{int(changes['gone'].sum())} without calls, the biggest changes:"
    )
    table(
        changes,
        "month-over-month",
        "tenant_id",
        pl.col("previous_amount").alias(str(month.previous())),
        pl.col("amount").alias(str(month)),
        "change",
        pl.col("change_pct").round(1),
        "new",
        "gone",
        rows=12,
    )
    fig = figure(
        12,
        max(3.8, 0.45 * min(changes.height, 12) + 1.9),
        f"Change in cost per tenant, {month.previous().start:%B %Y} to {when}",
    )
    metering.plot_month_change(fig.add_subplot(), changes, currency)
    show(fig, "month-over-month")
else:
    print(f"no change to show: {month.previous()} is not billed")

# %% [markdown]
# ## Drill-down: one tenant's days and operations
#
# The most expensive tenant unless `METER_TENANT` names another. Spikes in the daily calls
# are batch jobs or retries; the operations show where the units go (a `BatchExecuteStatement`
# with big result sets costs several units per call).

# %%
tenant_id = os.environ.get("METER_TENANT") or str(profiles["tenant_id"][0])
row = lines.filter(pl.col("tenant_id") == tenant_id)
if row.is_empty():
    raise SystemExit(
        f"{tenant_id} has no line in {month}; choose one of {lines['tenant_id'].to_list()}"
    )
days = metering.tenant_days(config, month, tenant_id)
operations = metering.tenant_operations(config, month, tenant_id).with_columns(
    units_per_call=(pl.col("units") / pl.col("calls")).round(3),
    share_of_units_pct=(100 * pl.col("units") / pl.col("units").sum()).round(2),
)
print(
    f"drill-down {tenant_id}: {int(row['calls'][0]):,} calls on {days.height} "
    f"day{'s' if days.height != 1 else ''}, "
    f"{int(row['units'][0]):,} units, {money(row['amount'][0])} {currency}"
)
keep(days, f"days-{tenant_id}")
display(days.sort(["calls", "day"], descending=[True, False]).head(3).drop("tenant_id"))
table(
    operations,
    f"operations-{tenant_id}",
    "operation",
    "calls",
    "units",
    pl.col("units_per_call").alias("units/call"),
    pl.col("share_of_units_pct").alias("units %"),
    pl.col("size_estimated_calls").alias("size unknown"),
)

# %%
fig = figure(11, 4, f"Daily calls of {tenant_id}, {when}")
metering.plot_daily_calls(fig.add_subplot(), days, names)
show(fig, f"daily-calls-{tenant_id}")

# %% [markdown]
# ## Calls per second: a guide for API rate limits
#
# Per tenant, over the seconds in which it made calls: the busiest second (`peak_rps`) and
# the busiest second once the top 1 % / 5 % are set aside (`p99_rps`, `p95_rps`). A per-tenant
# limit at `p99_rps` would throttle about 1 % of the tenant's busy seconds; at `peak_rps` it
# would never have throttled this month. A large `burst_ratio` (peak over p99) means short
# bursts, which a token bucket absorbs better than a flat limit.

# %%
rates = metering.call_rates(config, month).with_columns(
    burst_ratio=(pl.col("peak_rps") / pl.col("p99_rps")).round(1)
)
table(
    rates,
    "call-rates",
    "tenant_id",
    pl.col("active_seconds").alias("active s"),
    pl.col("peak_rps").alias("peak/s"),
    pl.col("p99_rps").alias("p99/s"),
    pl.col("p95_rps").alias("p95/s"),
    pl.col("burst_ratio").alias("burst"),
    pl.col("busiest_second").dt.strftime("%d %b %H:%M:%S").alias("busiest (UTC)"),
)
top = rates.row(0, named=True)
print(
    f"busiest tenant: {top['tenant_id']} peaked at {top['peak_rps']:,} calls/s "
    f"({top['busiest_second']:%Y-%m-%d %H:%M:%S} UTC); p99 {top['p99_rps']:,} calls/s"
)

# %% [markdown]
# ## Money left on the table: payloads just past a block edge
#
# A call of 32 KiB + 1 byte is billed two units. Calls at most a tenth of a block past an
# edge could be trimmed under it (smaller pages, fewer columns, compression), saving one unit
# each: `cost_saved` at the month's average cost per unit.

# %%
savings = month_report.savings.filter(pl.col("units_saved") > 0)
table(
    savings,
    "edge-savings",
    "tenant_id",
    "calls",
    "units",
    pl.col("near_edge_calls").alias("near edge"),
    "units_saved",
    "cost_saved",
)
if savings.height:
    fig = figure(
        12,
        max(3.6, 0.45 * min(savings.height, 10) + 1.9),
        f"Units saved by trimming payloads just past an edge, {when}",
    )
    metering.plot_edge_savings(fig.add_subplot(), savings, names, currency=currency)
    show(fig, "edge-savings")
print(f"units saved by trimming: {int(savings['units_saved'].sum()):,} of {month_report.units:,}")
