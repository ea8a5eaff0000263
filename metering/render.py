"""Terminal rendering of command results (rich).

Text from outside (tenant ids, names, cost centres, quarantined sources and reasons) is
shown through ``_outside``: control characters as visible escapes, never as rich markup.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table
from rich.text import Text

from metering.outputs import MonthReport
from metering.overhead import Overhead
from metering.rate.money import amount_text, shown_places
from metering.report.finance import shared_charges, tenant_totals
from metering.schemas import MONTH_ROW, BillResult
from metering.text import printable


def _outside(text: str) -> Text:
    """Outside text as a cell or line: escapes shown, brackets never read as markup."""
    return Text(printable(text))


def _money(amount: Decimal, currency: str) -> str:
    """A rounded amount with its currency's decimals and thousands separators."""
    return amount_text(amount, currency, grouped=True)


def _line_cells(row: dict[str, Any], currency: str) -> tuple[Text | str, ...]:
    """A tenant line as bill and report print it: tenant, name, calls, units, amount, share."""
    return (
        _outside(row["tenant_id"]),
        _outside(row["tenant_name"]),
        f"{row['calls']:,}",
        f"{row['units']:,}",
        _money(row["amount"], currency),
        f"{row['share'] * 100:.2f} %",
    )


def _with_shared(lines: pl.DataFrame, charges: pl.DataFrame) -> dict[str, Decimal] | None:
    """Each tenant's total over all its charges (the finance CSV's amount), when the month
    has shared costs; else None (the amount is the Data API line's)."""
    if shared_charges(charges) is None:
        return None
    return {tenant: amount for tenant, (amount, _) in tenant_totals(lines, charges).items()}


def _total(totals: dict[str, Decimal], currency: str) -> str:
    """The month's total over all charges (the tenants' ``_with_shared`` totals)."""
    return _money(sum(totals.values(), Decimal(0)), currency)


def bill_summary(result: BillResult, console: Console | None = None) -> None:
    """The summary ``meter bill`` prints: lines, totals, counters, quarantine, warehouse."""
    console = console or Console()
    bill = result.bill
    table = Table(title=f"meter bill {result.month}  (run {result.run_id})", title_justify="left")
    totals = _with_shared(result.tenant_month, result.charges)
    for name, justify in (
        ("tenant", "left"), ("name", "left"), ("calls", "right"), ("units", "right"),
        ("amount", "right"), ("share", "right"),
    ):  # fmt: skip
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    if totals is not None:
        table.add_column("all charges", justify="right")
    for row in result.tenant_month.iter_rows(named=True):
        shared = () if totals is None else (_money(totals[row["tenant_id"]], bill.currency),)
        table.add_row(*_line_cells(row, bill.currency), *shared)
    table.add_section()
    whole = () if totals is None else (f"{_total(totals, bill.currency)} {bill.currency}",)
    table.add_row(
        "total", "", f"{result.tenant_month['calls'].sum():,}", f"{bill.total_units:,}",
        f"{_money(bill.amount, bill.currency)} {bill.currency}", "", *whole,
    )  # fmt: skip
    console.print(table)
    counters = result.counters.as_dict()
    console.print(  # (one line, never cut inside a pair: a log keeps it whole for grep)
        "  ".join(f"{name} [bold]{value:,}[/]" for name, value in counters.items()),
        highlight=False,
        soft_wrap=True,
    )
    for line in _why_calls(result):
        console.print(f"  {line}", highlight=False, soft_wrap=True)
    console.print(f"account cost (exact) {bill.account_cost} {bill.currency}", highlight=False)
    if result.overhead is not None:
        _print_overhead(console, result.overhead, bill.account_cost, bill.currency)
    tie_out(result.invoice, console)
    shared_costs(result.shared_costs, console)
    if result.reused_files:
        again = result.joined_again
        kept = "" if again is None else f"; {again:,} calls joined again, the rest kept"
        console.print(
            f"input files: {result.decoded_files:,} decoded, {result.reused_files:,} unchanged "
            f"since an earlier run and reused{kept} (meter bill --fresh decodes all)",
            highlight=False,
        )
    if result.unregistered:
        console.print(
            Text("unregistered tenants", style="yellow"),
            Text(" (billed, not in the registry): "),
            _outside(", ".join(result.unregistered)),
            sep="",
        )
    if result.quarantine:
        console.print(f"[yellow]quarantined {len(result.quarantine)} input(s):[/]")
        withheld = sum(q.withheld is not None for q in result.quarantine)
        if withheld:
            console.print(
                f"  {withheld:,} of them: metering records whose size is past its bound; had "
                f"they been billed, the month would have {result.counters.withheld_units:,} "
                "more units (withheld_units)",
                highlight=False,
                soft_wrap=True,
            )
        for entry in result.quarantine[:10]:
            console.print(
                _outside(f"  {entry.source_uri} {entry.locator}: {entry.reason}"),
                soft_wrap=True,  # a path cut over two lines cannot be copied
            )
        if len(result.quarantine) > 10:
            console.print(f"  ... {len(result.quarantine) - 10} more in the quarantine table")
    conflicts = result.conflicts
    if conflicts.height:
        console.print(
            f"[yellow]{conflicts.height} call(s) whose copies disagree[/] (billed once, from "
            "the copy the dedup rule keeps):"
        )
        for request_id, event_id, reason in conflicts.head(10).iter_rows():
            call = f"request {request_id}" if request_id is not None else f"event {event_id}"
            console.print(_outside(f"  {call}: {reason}"), soft_wrap=True)
        if conflicts.height > 10:
            console.print(f"  ... {conflicts.height - 10} more in the conflicts table")
    console.print(_outside(f"warehouse: {result.warehouse}"), soft_wrap=True)
    if result.calls_at is not None:
        where = f"calls: {result.calls_at} (Parquet by day, read by the warehouse's calls view)"
        console.print(_outside(where), soft_wrap=True)


def _exact(amount: Decimal) -> str:
    """An exact amount without the trailing zeros of its column (0.015994, not 0.0159940...)."""
    return format(amount.normalize(), "f") if amount else "0"


def overhead_lines(overhead: Overhead | None, account_cost: Decimal, currency: str) -> list[str]:
    """What the month's own evidence cost, as ``meter bill`` and ``meter report`` print it:
    the estimate rounded once to the minor unit beside the Data API cost, then each source."""
    if overhead is None:
        return [
            "metering overhead: not estimated (the month was billed by an older meter; "
            "bill it again to see it)"
        ]
    cloudtrail, dynamodb, total = overhead.rounded(currency)
    lines = [
        "metering overhead, estimated (never billed to tenants): "
        f"{_money(total, currency)} {currency}"
    ]
    for name, count, what, amount in (
        ("CloudTrail", overhead.data_events, "data events", cloudtrail),
        ("DynamoDB", overhead.writes, "metering writes", dynamodb),
    ):
        if count is None:
            lines.append(f"  {name}: not a configured source, not counted")
        else:
            money = _money(amount or Decimal(0), currency)
            lines.append(f"  {name}: {count:,} {what}, {money} {currency}")
    ratio = overhead.ratio(account_cost)
    exact = f"  exact {_exact(overhead.total)} {currency}"
    lines.append(
        f"{exact}: {ratio * 100:,.1f} % of the month's Data API cost, "
        f"{_exact(account_cost)} {currency}"
        if ratio is not None
        else f"{exact}; the month's Data API cost is 0"
    )
    return lines


def _print_overhead(
    console: Console, overhead: Overhead | None, account_cost: Decimal, currency: str
) -> None:
    for line in overhead_lines(overhead, account_cost, currency):
        console.print(line, highlight=False, markup=False)


def _why_calls(result: BillResult) -> list[str]:
    """What makes the calls billed differ from the metering records read, counter by
    counter (only those that did)."""
    c, days = result.counters, result.reconciliation
    only = {
        source: int(days[f"{source}_only"].sum()) if f"{source}_only" in days.columns else 0
        for source in ("cloudtrail", "metering")
    }
    lines = [
        (only["cloudtrail"], "calls only CloudTrail saw: billed unknown_size_units each "
         "(their size is unknown: size_estimated)"),
        (only["metering"], "calls only metering records saw (their CloudTrail event is late, "
         "filtered out, or the trail does not select the cluster): billed from the record"),
        (c.duplicates, "duplicate copies (same eventID or request id): counted once"),
        (c.out_of_month, f"calls outside {result.month} (out_of_month): billed in their own "
         "month"),
        (c.errored_calls, "calls that failed (errored_calls): billed only with bill_errors"),
        (c.skipped_operations, "calls of operations not billed (skipped_operations)"),
        (c.quarantined, "records that could not be read (quarantined): not billed"),
    ]  # fmt: skip
    if not any(n for n, _ in lines):
        return []
    return ["why calls_billed differs from the records read:"] + [
        f"  {n:,} {what}" for n, what in lines if n
    ]


def _quantity(value: Decimal) -> str:
    """Requests as AWS metered them: whole numbers without decimals."""
    return f"{value.normalize():,f}"


def _signed(value: Decimal | int, pct: Decimal | None, currency: str | None = None) -> str:
    """A variance (an amount in ``currency``, or a count) and its percentage: ``+27
    (+45.00 %)``."""
    if currency is not None:
        text = ("+" if value >= 0 else "") + _money(Decimal(value), currency)
    else:
        text = f"{Decimal(value).normalize():+,f}"
    return text if pct is None else f"{text} ({pct:+.2f} %)"


def tie_out(frame: pl.DataFrame, console: Console) -> None:
    """The month's tie-out with the AWS invoice (the ``invoice`` table's rows), when there
    is one: requests and net cost, AWS's against meter's, per region when there are
    several; what the net cost is made of, the tax, and what the tenant lines split."""
    if frame.is_empty():
        return
    rows = frame.to_dicts()
    month = next(row for row in rows if row["region"] == MONTH_ROW)
    regions = [row for row in rows if row["region"] != MONTH_ROW]
    currency = month["currency"]
    title = f"tie-out with the AWS invoice, {month['month']} ({currency}; variance = meter - AWS)"
    table = Table(title=title, title_justify="left")
    table.add_column("")
    for name in ("AWS invoiced", "meter", "variance"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_row(
        "Data API requests",
        _quantity(month["invoiced_requests"]),
        f"{month['meter_units']:,} units",
        _signed(month["request_variance"], month["request_variance_pct"]),
    )
    table.add_row(
        "net cost before tax",
        _money(month["invoiced_net_cost"], currency),
        _money(month["modelled_cost"], currency),
        _signed(month["cost_variance"], month["cost_variance_pct"], currency),
    )
    console.print(table)
    if len(regions) > 1:
        console.print(
            Text("by region, as AWS invoiced: ").append_text(
                _outside(
                    "; ".join(
                        f"{row['region'] or '(none)'} {_quantity(row['invoiced_requests'])} "
                        f"requests, {_money(row['invoiced_net_cost'], currency)}"
                        for row in regions
                    )
                )
            ),
            soft_wrap=True,
        )
    parts = (
        ("usage", "usage_cost"),
        ("Savings Plans", "savings_plan_negation"),
        ("credits", "credits"),
        ("refunds", "refunds"),
        ("discounts", "discounts"),
        ("other charges", "other_charges"),
    )
    places = shown_places(currency)  # (exact sums, shown to the minor unit)
    made_of = ", ".join(f"{name} {month[key]:,.{places}f}" for name, key in parts if month[key])
    tax = month["tax"] or Decimal(0)
    console.print(
        f"AWS net cost: {made_of or 'no charges'} ({month['lines']:,} Data API lines); tax "
        f"{tax:,.{places}f}",
        highlight=False,
    )
    if month["allocate"] == "invoice":
        console.print(
            f"tenant lines split what AWS invoiced: {_money(month['allocated_total'], currency)} "
            f'{currency} (allocate = "invoice")',
            highlight=False,
        )
    if month["within_tolerance"] is False:
        console.print(
            f"[yellow]requests differ from AWS's by more than the tolerance "
            f"({month['tolerance'] * 100:.2f} %)[/]: calibrate \\[pricing] measure and "
            'block_bytes against AWS\'s meter (README, "Tying out to the AWS invoice")',
            highlight=False,
        )


def _figure(value: Decimal | int, currency: str | None) -> str:
    """A count, or an amount in ``currency``, with thousands separators."""
    return f"{value:,}" if currency is None else _money(Decimal(value), currency)


def shared_costs(frame: pl.DataFrame, console: Console) -> None:
    """The month's shared costs (the ``shared_costs`` table's rows), when it has any: what
    AWS invoiced of each, what was split over the tenants, and what could not be."""
    if frame.is_empty():
        return
    rows = frame.to_dicts()
    currency = rows[0]["currency"]
    places = shown_places(currency)  # (an exact cost, shown to the minor unit)
    table = Table(
        title=f"shared costs, {rows[0]['month']} ({currency}; split by each tenant's driver)",
        title_justify="left",
    )
    for name, justify in (
        ("charge", "left"), ("driver", "left"), ("lines", "right"), ("AWS invoiced", "right"),
        ("allocated", "right"), ("unallocated", "right"),
    ):  # fmt: skip
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(
            row["charge"],
            row["driver"],
            f"{row['lines']:,}",
            f"{row['invoiced_cost']:,.{places}f}",
            _money(row["allocated"], currency),
            _money(row["unallocated"], currency),
        )
    console.print(table)
    for row in rows:
        if not row["unallocated_lines"]:
            continue
        console.print(
            Text(f"unallocated {_money(row['unallocated'], currency)} {currency}", style="yellow")
            + Text(f" of {row['charge']}: {row['unallocated_lines']:,} line(s) of ")
            + _outside(row["unallocated_resources"].replace(",", ", "))
            + Text(
                ": no tenant's call to split them by (no call on the cluster this month, or "
                "no resource named): not spread over the tenants (the shared_costs table)"
            ),
            soft_wrap=True,
        )
    console.print(
        "the finance CSV's amounts are each tenant's total over its charges "
        "(meter export --format charges lists them)",
        highlight=False,
    )


def run_diff(
    month: str, runs: list[int], frame: pl.DataFrame, console: Console | None = None
) -> None:
    """``meter diff``: per tenant, before -> after, changed rows highlighted."""
    console = console or Console()
    if len(runs) < 2:
        console.print(f"{month} has {len(runs)} run(s) in the warehouse: nothing to compare yet")
        return
    table = Table(
        title=f"meter diff {month}: run #{runs[0]} -> run #{runs[1]}", title_justify="left"
    )
    for name in ("tenant", "calls", "units", "amount"):
        table.add_column(name, justify="left" if name == "tenant" else "right")
    changed = 0
    for row in frame.iter_rows(named=True):
        cells = []
        moved = False
        for field in ("calls", "units", "amount"):
            before, after = row[f"{field}_before"], row[f"{field}_after"]
            currency = row["currency"] if field == "amount" else None
            text = _figure(after, currency)
            if before != after:
                moved = True
                delta = after - before
                sign = "+" if delta >= 0 else ""
                text = f"{_figure(before, currency)} -> {text} ({sign}{_figure(delta, currency)})"
            cells.append(text)
        changed += moved
        table.add_row(_outside(row["tenant_id"]), *cells, style="bold yellow" if moved else None)
    console.print(table)
    console.print(f"{changed} of {frame.height} tenant line(s) changed")


def report_table(report: MonthReport, console: Console | None = None, top: int = 5) -> None:
    """What ``meter report`` prints: tenant lines, totals, unattributed share, edge savings."""
    console = console or Console()
    currency = report.currency
    table = Table(
        title=(
            f"meter report {report.month}  (amounts in {currency}; "
            f"run {report.run.get('run_id', '?')})"
        ),
        title_justify="left",
    )
    totals = _with_shared(report.lines, report.charges)
    rows = [
        (
            *_line_cells(row, currency),
            f"{row['peak_rps']:,}",
            *(() if totals is None else (_money(totals[row["tenant_id"]], currency),)),
        )
        for row in report.lines.iter_rows(named=True)
    ]
    amount = _money(report.amount, currency)
    total: tuple[str, ...] = ("total", "", f"{report.calls:,}", f"{report.units:,}", amount, "", "")
    headers: tuple[str, ...] = ("tenant", "name", "calls", "units", "amount", "share", "peak/s")
    if totals is not None:
        total += (_total(totals, currency),)
        headers += ("all charges",)
    # Numbers are never cut: each numeric column is as wide as its widest cell; the name
    # column takes what is left of the terminal, and long names end in an ellipsis.
    widths = [max(len(cells[i]) for cells in [*rows, total]) for i in range(len(total))]
    widths = [max(w, len(h)) for w, h in zip(widths, headers, strict=True)]
    spare = console.width - sum(widths) + widths[1] - 3 * len(headers) - 1
    table.add_column("tenant", no_wrap=True, min_width=widths[0])
    table.add_column("name", overflow="ellipsis", no_wrap=True, max_width=max(5, spare))
    for name, width in zip(headers[2:], widths[2:], strict=True):
        table.add_column(name, justify="right", no_wrap=True, min_width=width)
    for cells in rows:
        table.add_row(*cells)
    table.add_section()
    table.add_row(*total)
    console.print(table, markup=False)
    console.print(
        f"account cost (exact) {report.account_cost} {currency}; billed total {amount} {currency}",
        highlight=False,
    )
    _print_overhead(console, report.overhead, report.account_cost, currency)
    un = report.unattributed
    if un.calls:
        console.print(
            f"[yellow]unattributed[/]: {un.calls:,} calls, {un.units:,} units "
            f"({un.unit_share * 100:.2f} % of units), {_money(un.amount, currency)} {currency}",
            highlight=False,
        )
    else:
        console.print("unattributed: none (every call was attributed to a tenant)")
    quarantined = int(str(report.run.get("quarantined", 0)))
    if quarantined:
        console.print(
            f"[yellow]quarantined input[/]: {quarantined:,} (not billed; see the quarantine table)",
            highlight=False,
        )
    tie_out(report.invoice, console)
    shared_costs(report.shared_costs, console)
    block_kib = f"{report.block_bytes / 1024:g} KiB"
    saving = report.savings.filter(report.savings["units_saved"] > 0).head(top)
    if saving.is_empty():
        console.print(f"payload-edge savings: no call went just past a {block_kib} block edge")
        return
    edges = Table(
        title=(
            f"payload-edge savings: calls at most {report.margin_bytes / 1024:.1f} KiB past a "
            f"{block_kib} block edge, trimmed under it"
        ),
        title_justify="left",
    )
    edges.add_column("tenant", no_wrap=True)
    for name in ("calls past an edge", "units saved", "of its units", f"about {currency}"):
        edges.add_column(name, justify="right")
    for row in saving.iter_rows(named=True):
        edges.add_row(
            _outside(row["tenant_id"]),
            f"{row['near_edge_calls']:,}",
            f"{row['units_saved']:,}",
            f"{100 * row['units_saved'] / row['units']:.1f} %" if row["units"] else "",
            _money(row["cost_saved"], currency),
        )
    console.print(edges, markup=False)
