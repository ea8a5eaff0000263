"""The library's public surface: what pipelines, notebooks and users import from ``metering``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import metering
from tests.conftest import REPO

# Pinned: a name added or taken away is a change users see; make it here on purpose.
PUBLIC = [
    "Bill",
    "BillResult",
    "Config",
    "ConfigError",
    "EmptyMonthError",
    "InputError",
    "MeteringError",
    "Month",
    "MonthClosedError",
    "MonthReport",
    "PublishBusyError",
    "PublishError",
    "Published",
    "UsageError",
    "WarehouseBusyError",
    "WarehouseError",
    "__version__",
    "alt_text",
    "amount_text",
    "bill",
    "billed_months",
    "call_rates",
    "chart",
    "close_month",
    "diff",
    "export",
    "health",
    "load_config",
    "minor_units",
    "month_changes",
    "month_report",
    "month_trend",
    "plot_cost_per_tenant",
    "plot_daily_calls",
    "plot_daily_cost",
    "plot_edge_savings",
    "plot_month_change",
    "plot_payload_sizes",
    "plot_trend",
    "publish_month",
    "reopen_month",
    "tenant_days",
    "tenant_operations",
]


def test_the_public_names_are_pinned_sorted_and_all_there() -> None:
    assert metering.__all__ == PUBLIC == sorted(PUBLIC)
    assert dir(metering) == PUBLIC
    for name in PUBLIC:
        assert getattr(metering, name) is not None, name
    errors = [name for name in PUBLIC if name.endswith("Error")]
    assert all(issubclass(getattr(metering, e), metering.MeteringError) for e in errors)


def test_importing_metering_imports_nothing_heavy() -> None:
    """``import metering`` (what ``meter --help`` starts with) loads a name only when used."""
    probe = "import sys, metering; print(sorted(m for m in ('polars', 'duckdb', 'boto3', 'matplotlib') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    assert done.stdout.strip() == "[]", done.stderr


def test_pipelines_and_notebooks_use_only_the_public_surface() -> None:
    """They compose the library through ``metering``, not its deeper modules."""
    for path in [*Path(REPO, "pipelines").glob("*.py"), *Path(REPO, "notebooks").glob("*.py")]:
        tree = ast.parse(path.read_text())
        deep = [
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.startswith("metering.")
        ]
        used = {
            node.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "metering"
        }
        assert deep == [], f"{path.name} imports {deep}"
        assert used <= set(PUBLIC), f"{path.name} uses metering.{used - set(PUBLIC)}"
