"""The analyst notebook, run end to end as a script against billed warehouses."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tomllib
from decimal import Decimal
from pathlib import Path

import polars as pl
from PIL import Image
from polars.testing import assert_frame_equal

import metering
from metering.config import Config
from metering.outputs import month_report
from tests.conftest import REPO
from tests.report.conftest import OCT

NOTEBOOK = REPO / "notebooks" / "chargeback.py"


def _run(config: Config, out: Path, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-W", "error", str(NOTEBOOK)],
        env={
            **os.environ,
            "METER_CONFIG": str(config.path),
            "METER_NOTEBOOK_OUT": str(out),
            "MPLBACKEND": "Agg",
            **env,
        },
        cwd=out.parent,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _printed_alt(out: str, name: str) -> str:
    """The alt text the notebook printed for figure ``name`` (wrapped over indented lines)."""
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(f"[figure {name}] "))
    text = [lines[first].removeprefix(f"[figure {name}] ")]
    for line in lines[first + 1 :]:
        if not line.startswith("    "):
            break
        text.append(line.strip())
    return " ".join(text)


def _tables(out: str) -> list[list[str]]:
    """The tables the notebook printed, each as its lines from top border to bottom."""
    tables, current = [], None
    for line in out.splitlines():
        if line.startswith("┌"):
            current = [line]
        elif current is not None:
            current.append(line)
            if line.startswith("└"):
                tables.append(current)
                current = None
    return tables


def _check_tables_fit(out: str) -> None:
    """Every table fits in 100 columns without wrapping a cell onto a second line: its
    header is one line, and no body line continues the row above (an empty first cell)."""
    tables = _tables(out)
    assert tables
    for lines in tables:
        assert all(len(line) <= 100 for line in lines), lines[0]
        assert lines[2].startswith("╞"), lines[:3]  # the header took one line
        for line in lines[3:-1]:
            assert line.split("┆")[0].strip("│ "), lines  # a row is one line


def test_notebook_on_the_sample(sample: Config, tmp_path: Path) -> None:
    out = _run(sample, tmp_path / "figures", METER_MONTH="2026-10")
    month = month_report(sample, OCT)
    top = month.lines.sort(["amount", "units", "tenant_id"], descending=[True, True, False])
    tenant = top["tenant_id"][0]
    assert (
        f"2026-10: {month.calls:,} calls, {month.units:,} billed units, "
        f"account cost {month.account_cost} USD, billed total {month.amount:,.2f} USD "
        f"over {month.lines.height} lines"
    ) in out
    assert f"drill-down {tenant}: {int(top['calls'][0]):,} calls on " in out
    assert (
        f"units saved by trimming: {int(month.savings['units_saved'].sum()):,} of {month.units:,}"
        in out
    )
    figures = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert "2026-10-cost-per-tenant.png" in figures
    assert "2026-10-daily-cost.png" in figures
    assert f"2026-10-daily-calls-{tenant}.png" in figures
    _check_tables_fit(out)


def test_notebook_drills_into_the_tenant_asked_for(small: Config, tmp_path: Path) -> None:
    out = _run(small, tmp_path / "figures", METER_TENANT="globex")
    lines = out.splitlines()
    assert lines[0].endswith("billed months 2026-10; looking at 2026-10")
    assert (
        "2026-10: 17 calls, 23 billed units, account cost 8.050000000000 USD, "
        "billed total 8.05 USD over 3 lines"
    ) in lines
    assert "unattributed: 2 calls, 8.70% of units, 0.70 USD" in lines
    assert "drill-down globex: 5 calls on 1 day, 11 units, 3.85 USD" in lines
    assert (
        "busiest tenant: acme peaked at 4 calls/s (2026-10-01 10:00:00 UTC); p99 4 calls/s" in lines
    )
    assert "units saved by trimming: 3 of 23" in lines
    # One billed month: the trend section says so rather than draw one bar.
    assert "no trend yet: 2026-10 is the only billed month up to it" in lines
    assert "no change to show: 2026-09 is not billed" in lines
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        "2026-10-call-rates.parquet",
        "2026-10-cost-per-tenant.png",
        "2026-10-daily-calls-globex.png",
        "2026-10-daily-cost.png",
        "2026-10-days-globex.parquet",
        "2026-10-edge-savings.parquet",
        "2026-10-edge-savings.png",
        "2026-10-operations-globex.parquet",
        "2026-10-profiles.parquet",
        "2026-10-trend.parquet",
    ]
    _check_tables_fit(out)


def test_notebook_trend_section_and_its_parquet_tables(
    small_two_months: Config, tmp_path: Path
) -> None:
    folder = tmp_path / "figures"
    out = _run(small_two_months, folder)
    lines = out.splitlines()
    assert "2 billed months in USD up to 2026-10" in lines
    assert (
        "2026-09 to 2026-10: 0.70 to 8.05 USD (+7.35); 2 new, 0 without calls, the biggest changes:"
        in lines
    )
    # The tables are the library's, every column and the exact money (Decimal) kept.
    changes = pl.read_parquet(folder / "2026-10-month-over-month.parquet")
    assert_frame_equal(changes, metering.month_changes(small_two_months, OCT))
    assert changes["change"].dtype == pl.Decimal(20, 4)
    trend = pl.read_parquet(folder / "2026-10-trend.parquet")
    assert_frame_equal(trend, metering.month_trend(small_two_months, OCT))
    profiles = pl.read_parquet(folder / "2026-10-profiles.parquet")
    assert profiles.columns == [
        "tenant_id",
        "tenant_name",
        "cost_center",
        "calls",
        "units",
        "units_per_call",
        "kib_per_call",
        "cost_exact",
        "amount",
        "share_pct",
        "peak_rps",
    ]
    assert profiles.select("tenant_id", "cost_exact", "amount").rows() == [
        ("globex", Decimal("3.85"), Decimal("3.85")),
        ("acme", Decimal("3.50"), Decimal("3.50")),
        ("__unattributed__", Decimal("0.70"), Decimal("0.70")),
    ]
    # Every figure carries its alt text: printed as a script, and in the PNG.
    for name in ("cost-per-tenant", "daily-cost", "trend", "month-over-month", "edge-savings"):
        with Image.open(folder / f"2026-10-{name}.png") as image:
            assert _printed_alt(out, name) == str(image.info["Description"])
    assert _printed_alt(out, "trend") == (
        "Cost per month by tenant, 2026-09 to 2026-10. Stacked bars of cost per month from "
        "Sep 2026 to Oct 2026, one colour per tenant (Acme Ltd (acme); Globex Inc. (globex); "
        "Unattributed calls); billed totals: Sep 2026 0.70 USD; Oct 2026 8.05 USD, +1,050.0 %."
    )
    with Image.open(folder / "2026-10-month-over-month.png") as image:
        assert str(image.info["Description"]) == (
            "Change in cost per tenant, September 2026 to October 2026. Horizontal bars of each "
            "tenant's change in cost from the month before, increases to the right, decreases "
            "to the left: Globex Inc. (globex): +3.85 USD (new this month); Acme Ltd (acme): "
            "+2.80 USD (+400.0 %); Unattributed calls: +0.70 USD (new this month)."
        )
    _check_tables_fit(out)


def test_notebook_is_jupytext_percent_and_imports_metering_only() -> None:
    text = NOTEBOOK.read_text()
    assert text.startswith("# ---\n# jupyter:\n#   jupytext:\n#     formats: py:percent\n")
    assert text.count("\n# %%") >= 8
    imported = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    # The warehouse is read through metering only; no SQL engine, no AWS, no rules of its own.
    assert imported == {
        "base64",
        "html",
        "io",
        "os",
        "pathlib",
        "textwrap",
        "matplotlib",
        "polars",
        "metering",
        "IPython",
    }
    for defined_elsewhere in ("per_million", "tiers", "block_bytes =", "pattern", "duckdb"):
        assert defined_elsewhere not in text


def test_the_notebook_extra_installs_jupyter_and_jupytext() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    notebook = project["optional-dependencies"]["notebook"]
    assert sorted(requirement.split(">")[0] for requirement in notebook) == ["jupyter", "jupytext"]
    assert all("<" in requirement for requirement in notebook)  # bounded both ways
