"""The finance CSV: column set, formatting, formula-injection safety."""

from __future__ import annotations

from decimal import Decimal

import polars as pl

from metering.report import finance_csv, neutralise
from metering.report.finance import COLUMNS, csv_bytes
from tests.report.conftest import hostile_lines, read_back


def test_dangerous_cells_are_neutralised() -> None:
    for bad in ('=HYPERLINK("x")', "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert neutralise(bad) == "'" + bad
    assert neutralise("Acme") == "Acme"


def test_rows_sorted_and_amounts_two_decimals() -> None:
    frame = pl.DataFrame(
        {
            "month": ["2026-10", "2026-10"],
            "tenant_id": ["b", "=cmd|' /C calc'!A0"],
            "tenant_name": ["B, Inc.", "Evil"],
            "cost_center": ["", "@x"],
            "calls": [1, 2],
            "units": [1, 2],
            "request_bytes": [10, 20],
            "response_bytes": [1, 2],
            "amount": pl.Series([Decimal("1.5"), Decimal("0")], dtype=pl.Decimal(18, 2)),
            "currency": ["USD", "USD"],
            "share": pl.Series(
                [Decimal("0.333333333333"), Decimal("0.666666666667")], dtype=pl.Decimal(18, 12)
            ),
            "run_id": ["r", "r"],
        }
    )
    text = finance_csv(frame).decode()
    assert text.splitlines() == [
        ",".join(COLUMNS),
        "2026-10,'=cmd|' /C calc'!A0,Evil,'@x,2,2,20,2,0.00,USD,66.6667,r",
        '2026-10,b,"B, Inc.",,1,1,10,1,1.50,USD,33.3333,r',
    ]


def test_a_cell_is_quoted_when_it_holds_a_comma_a_quote_or_a_control_character() -> None:
    row = ["a", 'b"c', "d,e", "f\rg", "h\ni", "tab\there", "t1\x1b[2J", "\x85", "é", None, 7]
    assert csv_bytes([row, ["x"]]) == (
        'a,"b""c","d,e","f\rg","h\ni","tab\there","t1\x1b[2J","\x85",é,,7\nx\n'.encode()
    )


def test_any_text_round_trips_through_two_csv_readers() -> None:
    lines = hostile_lines().sort("tenant_id")
    data = finance_csv(lines)
    assert b',"a\rb",' in data  # a bare CR is quoted, never left for a reader to split on
    for rows in read_back(data):
        assert rows[0] == list(COLUMNS)
        assert [len(row) for row in rows] == [len(COLUMNS)] * (1 + lines.height)
        for column in ("tenant_id", "tenant_name", "cost_center"):
            cells = [row[COLUMNS.index(column)] for row in rows[1:]]
            assert cells == [neutralise(text) for text in lines[column]], column
