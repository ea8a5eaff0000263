"""What meter prints: text from outside shows its control characters as visible escapes."""

from __future__ import annotations

import io
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import polars as pl
from rich.console import Console

from metering.month import Month
from metering.outputs import MonthReport
from metering.rate import Bill
from metering.render import bill_summary, report_table, run_diff
from metering.schemas import BillResult, Counters, QuarantineEntry
from metering.text import printable

OCT = Month(2026, 10)
EVIL = "t1\x1b[2J"  # ESC [2J clears the screen
NAME = "Evil\u202eCorp [red]x[/]"  # a bidi override, and brackets rich must not read as markup


def test_printable_escapes_controls_and_bidi_and_keeps_letters() -> None:
    assert printable(EVIL) == "t1\\x1b[2J"
    assert printable("a\tb\nc\rd\x00e\x7ff\x85g") == "a\\x09b\\x0ac\\x0dd\\x00e\\x7ff\\x85g"
    assert printable("\u202a\u202e\u2066\u2069") == "\\u202a\\u202e\\u2066\\u2069"
    assert printable("Zoë Ltd, 東京 [x] \\ é\u00a0") == "Zoë Ltd, 東京 [x] \\ é\u00a0"


def _terminal() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, color_system="truecolor", width=200), out


def _assert_escaped(shown: str) -> None:
    """The data's ESC and bidi override are visible text; rich styles, but never clears."""
    assert "\x1b[" in shown  # rich's own styling is there ...
    assert "t1\\x1b[2J" in shown and "\x1b[2J" not in shown  # ... the data's ESC is not
    assert "Evil\\u202eCorp [red]x[/]" in shown and "\u202e" not in shown


def _lines() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "tenant_id": [EVIL, "acme"],
            "tenant_name": [NAME, "Acme"],
            "calls": [3, 4],
            "units": [5, 6],
            "amount": pl.Series([Decimal("1.25"), Decimal("1.50")], dtype=pl.Decimal(18, 2)),
            "share": pl.Series([Decimal("0.45"), Decimal("0.55")], dtype=pl.Decimal(18, 12)),
            "peak_rps": [1, 2],
        }
    )


def test_bill_summary_escapes_outside_text() -> None:
    bill = Bill("USD", 11, Decimal("2.75"), Decimal("2.75"), Fraction(1, 4), {})
    result = BillResult(
        OCT,
        "2026-10-r1",
        Path("/data/[prod]/meter.duckdb"),
        bill,
        _lines(),
        Counters(),
        [QuarantineEntry(f"s3://b/{EVIL}.json.gz", "line 3", f"bad tenant {NAME}")],
        unregistered=[EVIL, "b[/]"],
    )
    console, out = _terminal()
    bill_summary(result, console)
    shown = out.getvalue()
    _assert_escaped(shown)
    assert "s3://b/t1\\x1b[2J.json.gz line 3: bad tenant Evil\\u202eCorp" in shown
    assert "t1\\x1b[2J, b[/]" in shown
    assert "warehouse: /data/[prod]/meter.duckdb" in shown


def test_month_report_escapes_outside_text() -> None:
    savings = pl.DataFrame(
        {
            "tenant_id": [EVIL],
            "near_edge_calls": [2],
            "units_saved": [2],
            "units": [5],
            "cost_saved": pl.Series([Decimal("0.50")], dtype=pl.Decimal(18, 2)),
        }
    )
    run: dict[str, object] = {"run_id": "r1", "currency": "USD", "account_cost": "2.75"}
    console, out = _terminal()
    report_table(MonthReport(OCT, run, _lines(), savings, 32768, 3276), console)
    shown = out.getvalue()
    _assert_escaped(shown)
    assert shown.count("t1\\x1b[2J") == 2  # its line, and its payload-edge savings


def test_run_diff_escapes_outside_text() -> None:
    frame = pl.DataFrame(
        {
            "tenant_id": [EVIL, NAME],
            **{f"{field}_before": [1, 1] for field in ("calls", "units")},
            **{f"{field}_after": [2, 1] for field in ("calls", "units")},
            "amount_before": [Decimal(1), Decimal(1)],
            "amount_after": [Decimal(2), Decimal(1)],
            "currency": ["USD", "USD"],
        }
    )
    console, out = _terminal()
    run_diff("2026-10", [1, 2], frame, console)
    _assert_escaped(out.getvalue())


def test_the_tie_out_shows_regions_from_the_invoice_escaped() -> None:
    from metering.config import InvoiceConfig
    from metering.rate.tieout import tie_out
    from metering.schemas import Invoice, InvoiceRegion

    regions = {EVIL: InvoiceRegion(requests=Decimal(7)), "us-east-1": InvoiceRegion()}
    frame = tie_out(
        Invoice("USD", regions), InvoiceConfig(uris=("x",)), "2026-10", "r1", 7, Decimal(0),
        Decimal(0), 2,
    )  # fmt: skip
    bill = Bill("USD", 11, Decimal("2.75"), Decimal("2.75"), Fraction(1, 4), {})
    result = BillResult(OCT, "r1", Path("w"), bill, _lines(), Counters(), [], invoice=frame)
    console, out = _terminal()
    bill_summary(result, console)
    shown = out.getvalue()
    _assert_escaped(shown)
    assert "by region, as AWS invoiced: t1\\x1b[2J 7 requests, 0.00; us-east-1 0 requests" in shown
