"""The analyst notebook, run end to end as a script against billed warehouses."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

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
    assert f"2026-10-daily-calls-{tenant}.png" in figures


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
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == [
        "2026-10-cost-per-tenant.png",
        "2026-10-daily-calls-globex.png",
        "2026-10-edge-savings.png",
    ]


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
    assert imported == {"os", "pathlib", "matplotlib", "polars", "metering", "IPython"}
    for defined_elsewhere in ("per_million", "tiers", "block_bytes =", "pattern", "duckdb"):
        assert defined_elsewhere not in text
