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
# Who costs what, when, and why. Everything is read from the `meter` warehouse through the
# `metering` library: this notebook defines no prices and no attribution rules, so its
# numbers are the bill's numbers.
#
# Settings (environment variables, all optional):
#
# | variable | meaning | default |
# |---|---|---|
# | `METER_CONFIG` | the `meter.toml` that finds the warehouse | `sample_data/meter.toml` |
# | `METER_MONTH` | billing month `YYYY-MM` | the newest billed month |
# | `METER_TENANT` | tenant to drill into | the most expensive tenant |
# | `METER_NOTEBOOK_OUT` | folder to save the figures into | not saved |
#
# Open it in Jupyter with jupytext (`jupytext --to ipynb notebooks/chargeback.py`), or run it
# as a script: `python notebooks/chargeback.py`.

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import polars as pl

import metering
from metering import Month

try:  # in Jupyter, frames render as tables; as a script, they print
    from IPython.display import display
except ImportError:
    display = print

pl.Config.set_tbl_rows(40)
pl.Config.set_tbl_cols(12)
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
out = Path(os.environ["METER_NOTEBOOK_OUT"]) if os.environ.get("METER_NOTEBOOK_OUT") else None


def save(fig: plt.Figure, name: str) -> None:
    """Keep a figure as a PNG when METER_NOTEBOOK_OUT is set."""
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        fig.savefig(out / f"{month}-{name}.png", dpi=100)


print(f"warehouse {warehouse}: billed months {', '.join(map(str, months))}; looking at {month}")

# %% [markdown]
# ## The month at a glance
#
# The bill as `meter bill` wrote it: the account cost (exact), and the lines, rounded to the
# cent so that they add up exactly to the account total.

# %%
month_report = metering.month_report(config, month)
lines = month_report.lines
currency = month_report.currency
print(
    f"{month}: {month_report.calls:,} calls, {month_report.units:,} billed units, "
    f"account cost {month_report.account_cost} {currency}, "
    f"billed total {month_report.amount:,.2f} {currency} over {lines.height} lines"
)
unattributed = month_report.unattributed
print(
    f"unattributed: {unattributed.calls:,} calls, {unattributed.unit_share:.2%} of units, "
    f"{unattributed.amount:,.2f} {currency}"
)

# %% [markdown]
# ## Cost profiles
#
# Per tenant: what it pays, and what drives it. `units_per_call` above 1 means big payloads
# (every started 32 KiB block of a call is a billed unit); `kib_per_call` is the average
# request + response size.

# %%
profiles = (
    lines.select(
        "tenant_id",
        "tenant_name",
        "cost_center",
        "calls",
        "units",
        units_per_call=(pl.col("units") / pl.col("calls")).round(3),
        kib_per_call=((pl.col("request_bytes") + pl.col("response_bytes")) / pl.col("calls") / 1024)
        .round(1),
        amount="amount",
        share_pct=(pl.col("share") * 100).cast(pl.Float64).round(2),
        peak_rps="peak_rps",
    )
    .sort(["amount", "units", "tenant_id"], descending=[True, True, False])
)
display(profiles)

# %%
fig, ax = plt.subplots(figsize=(10, max(3.5, 0.45 * lines.height + 1.5)), layout="constrained")
plotted = metering.plot_cost_per_tenant(ax, lines, currency)
ax.set_title(f"Cost per tenant, {month}", loc="left", fontweight="bold")
save(fig, "cost-per-tenant")
print(f"cost per tenant: {plotted.height} bars, largest {plotted['label'][0]}")

# %% [markdown]
# ## Drill-down: one tenant's days and operations
#
# The most expensive tenant unless `METER_TENANT` names another. Spikes in the daily calls
# are batch jobs or retries; the operations show where the units go (a `BatchExecuteStatement`
# with big result sets costs several units per call).

# %%
tenant = os.environ.get("METER_TENANT") or str(profiles["tenant_id"][0])
row = lines.filter(pl.col("tenant_id") == tenant)
if row.is_empty():
    raise SystemExit(f"{tenant} has no line in {month}; choose one of {lines['tenant_id'].to_list()}")
days = metering.tenant_days(config, month, tenant)
operations = metering.tenant_operations(config, month, tenant)
print(
    f"drill-down {tenant}: {int(row['calls'][0]):,} calls on {days.height} "
    f"day{'s' if days.height != 1 else ''}, "
    f"{int(row['units'][0]):,} units, {row['amount'][0]:,.2f} {currency}"
)
busiest = days.sort(["calls", "day"], descending=[True, False]).head(3)
display(busiest)
display(
    operations.with_columns(
        units_per_call=(pl.col("units") / pl.col("calls")).round(3),
        share_of_units_pct=(100 * pl.col("units") / pl.col("units").sum()).round(2),
    )
)

# %%
fig, ax = plt.subplots(figsize=(10, 4), layout="constrained")
metering.plot_daily_calls(ax, days, dict(lines.select("tenant_id", "tenant_name").iter_rows()))
ax.set_title(f"Daily calls of {tenant}, {month}", loc="left", fontweight="bold")
save(fig, f"daily-calls-{tenant}")

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
display(rates)
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
# each.

# %%
savings = month_report.savings.filter(pl.col("units_saved") > 0)
display(savings)
if savings.height:
    fig, ax = plt.subplots(figsize=(10, max(3.0, 0.5 * savings.height + 1.5)), layout="constrained")
    metering.plot_edge_savings(ax, savings, dict(lines.select("tenant_id", "tenant_name").iter_rows()))
    save(fig, "edge-savings")
print(f"units saved by trimming: {int(savings['units_saved'].sum()):,} of {month_report.units:,}")

# %%
plt.close("all")
