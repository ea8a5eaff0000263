"""``meter report`` and the library's ``report``: the totals are the warehouse's."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from metering.cli import app
from metering.config import Config
from metering.errors import UsageError
from metering.month import Month
from metering.outputs import export, month_report
from tests.report.conftest import OCT

runner = CliRunner()


def _warehouse_totals(config: Config, month: str) -> tuple[object, ...]:
    con = duckdb.connect(str(config.warehouse.path), read_only=True)
    try:
        lines = con.execute(
            "SELECT sum(calls), sum(units), sum(amount), count(*) FROM tenant_month WHERE month = ?",
            [month],
        ).fetchone()
        run = con.execute(
            "SELECT total_calls, total_units, amount, account_cost FROM bill_runs WHERE month = ? "
            "ORDER BY finished_at DESC LIMIT 1",
            [month],
        ).fetchone()
    finally:
        con.close()
    assert lines is not None and run is not None
    return (*lines, *run)


@pytest.mark.parametrize("name", ["small", "sample"])
def test_report_totals_equal_the_warehouse(name: str, request: pytest.FixtureRequest) -> None:
    config: Config = request.getfixturevalue(name)
    got = month_report(config, OCT)
    calls, units, amount, lines, run_calls, run_units, run_amount, account_cost = _warehouse_totals(
        config, "2026-10"
    )
    assert (got.calls, got.units, got.amount, got.lines.height) == (calls, units, amount, lines)
    assert (got.calls, got.units, got.amount) == (run_calls, run_units, run_amount)
    assert got.account_cost == account_cost
    assert got.currency == "USD"


def test_small_report_numbers(small: Config) -> None:
    got = month_report(small, OCT)
    assert (got.calls, got.units, got.amount, got.account_cost) == (
        17,
        23,
        Decimal("8.05"),
        Decimal("8.05"),
    )
    un = got.unattributed
    assert (un.calls, un.units, un.amount) == (2, 2, Decimal("0.70"))
    assert un.unit_share == Decimal(2) / Decimal(23)
    assert got.savings.select(
        "tenant_id", "near_edge_calls", "units_saved", "cost_saved"
    ).rows() == [
        ("globex", 3, 3, Decimal("1.05")),  # 3 units at 0.35 USD
        ("__unattributed__", 0, 0, Decimal("0.00")),
        ("acme", 0, 0, Decimal("0.00")),
    ]
    assert (got.block_bytes, got.margin_bytes) == (32768, 3276)


def _cells(out: str, first: str) -> list[str]:
    line = next(row for row in out.splitlines() if row.startswith(f"│ {first} "))
    return [c.strip() for c in line.strip().strip("│").split("│")]


def test_meter_report_prints_lines_totals_unattributed_and_savings(small: Config) -> None:
    result = runner.invoke(
        app, ["report", "--month", "2026-10", "--config", str(small.path)], env={"COLUMNS": "120"}
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "meter report 2026-10  (amounts in USD; run 2026-10-" in out
    assert _cells(out, "acme") == ["acme", "Acme Ltd", "10", "10", "3.50", "43.48 %", "4"]
    assert _cells(out, "globex") == ["globex", "Globex Inc.", "5", "11", "3.85", "47.83 %", "1"]
    assert _cells(out, "__unattributed__") == [
        "__unattributed__", "Unattributed calls", "2", "2", "0.70", "8.70 %", "2"
    ]  # fmt: skip
    assert _cells(out, "total") == ["total", "", "17", "23", "8.05", "", ""]
    assert "account cost (exact) 8.050000000000 USD; billed total 8.05 USD" in out
    assert "unattributed: 2 calls, 2 units (8.70 % of units), 0.70 USD" in out
    assert "payload-edge savings: calls at most 3.2 KiB past a 32 KiB block edge" in out
    savings = out[out.index("payload-edge savings") :]
    assert _cells(savings, "globex") == ["globex", "3", "3", "27.3 %", "1.05"]


def test_a_narrow_terminal_shortens_names_never_numbers(small: Config) -> None:
    result = runner.invoke(
        app, ["report", "--month", "2026-10", "--config", str(small.path)], env={"COLUMNS": "80"}
    )
    assert result.exit_code == 0, result.output
    assert all(len(line) <= 80 for line in result.output.splitlines())
    cells = _cells(result.output, "__unattributed__")
    assert cells[1].endswith("…") and "Unattributed calls".startswith(cells[1][:-1])
    assert cells[2:] == ["2", "2", "0.70", "8.70 %", "2"]


def test_meter_chart_writes_the_pngs(small: Config, tmp_path: Path) -> None:
    out = tmp_path / "charts"
    result = runner.invoke(
        app, ["chart", "--month", "2026-10", "--out", str(out), "--config", str(small.path)]
    )
    assert result.exit_code == 0, result.output
    names = [  # in the order they are written
        "2026-10-cost-per-tenant.png",
        "2026-10-daily-cost.png",
        "2026-10-daily-calls.png",
        "2026-10-payload-sizes.png",
        "2026-10-edge-savings.png",
    ]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    assert result.stdout.splitlines() == [f"wrote {out / name}" for name in names]


def test_meter_export_focus(small: Config, tmp_path: Path) -> None:
    out = tmp_path / "focus.csv"
    result = runner.invoke(
        app,
        [
            "export",
            "--month",
            "2026-10",
            "--format",
            "focus",
            "--out",
            str(out),
            "--config",
            str(small.path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == export(small, OCT, "focus")
    assert out.read_bytes().startswith(b"BilledCost,BillingAccountId,")


@pytest.mark.parametrize("command", ["report", "chart"])
def test_an_unbilled_month_says_what_to_do(small: Config, command: str) -> None:
    result = runner.invoke(app, [command, "--month", "2026-08", "--config", str(small.path)])
    assert result.exit_code == 2
    assert f"run `meter bill --month 2026-08 --config {small.path}` first" in result.output
    with pytest.raises(UsageError):
        month_report(small, Month(2026, 8))


def test_report_shows_what_a_past_month_s_evidence_cost(small_two_months: Config) -> None:
    """September was billed before October: its estimate is the one its own bill kept."""
    from metering.overhead import Overhead
    from tests.report.conftest import SEP, small_records

    writes = sum(str(r["ts"]).startswith("2026-09-") for r in small_records(with_september=True))
    cost = Decimal(writes) * Decimal("0.625") / 10**6
    assert month_report(small_two_months, SEP).overhead == Overhead(None, writes, None, cost)
    result = runner.invoke(
        app,
        ["report", "--month", "2026-09", "--config", str(small_two_months.path)],
        env={"COLUMNS": "120"},
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = lines.index("metering overhead, estimated (never billed to tenants): 0.00 USD")
    assert lines[start + 1 : start + 4] == [
        "  CloudTrail: not a configured source, not counted",
        f"  DynamoDB: {writes} metering writes, 0.00 USD",
        f"  exact {cost.normalize():f} USD: 0.0 % of the month's Data API cost, 0.7 USD",
    ]
