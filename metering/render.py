"""Terminal rendering of command results (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from metering.pipeline import BillResult


def bill_summary(result: BillResult, console: Console | None = None) -> None:
    """The summary ``meter bill`` prints: lines, totals, counters, quarantine, warehouse."""
    console = console or Console()
    bill = result.bill
    table = Table(title=f"meter bill {result.month}  (run {result.run_id})", title_justify="left")
    for name, justify in (
        ("tenant", "left"), ("name", "left"), ("calls", "right"), ("units", "right"),
        ("amount", "right"), ("share", "right"),
    ):  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in result.tenant_month.iter_rows(named=True):
        table.add_row(
            row["tenant_id"],
            row["tenant_name"],
            f"{row['calls']:,}",
            f"{row['units']:,}",
            f"{row['amount']:,.2f}",
            f"{row['share'] * 100:.2f} %",
        )
    table.add_section()
    table.add_row(
        "total", "", f"{result.tenant_month['calls'].sum():,}", f"{bill.total_units:,}",
        f"{bill.amount:,.2f} {bill.currency}", "",
    )  # fmt: skip
    console.print(table)
    counters = result.counters.as_dict()
    console.print(
        "  ".join(f"{name} [bold]{value:,}[/]" for name, value in counters.items()), highlight=False
    )
    console.print(f"account cost (exact) {bill.account_cost} {bill.currency}", highlight=False)
    if result.unregistered:
        console.print(
            f"[yellow]unregistered tenants[/] (billed, not in the registry): "
            f"{', '.join(result.unregistered)}"
        )
    if result.quarantine:
        console.print(f"[yellow]quarantined {len(result.quarantine)} input(s):[/]")
        for entry in result.quarantine[:10]:
            console.print(
                f"  {entry.source_uri} {entry.locator}: {entry.reason}",
                highlight=False,
                markup=False,
            )
        if len(result.quarantine) > 10:
            console.print(f"  ... {len(result.quarantine) - 10} more in the quarantine table")
    console.print(f"warehouse: {result.warehouse}", highlight=False)
