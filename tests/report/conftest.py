"""Warehouses for the report tests: the bundled sample, and a small one with known numbers.

matplotlib is forced to the Agg renderer here, before any test draws: no window can open.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import matplotlib
import polars as pl
import pytest

from metering.config import Config, load_config
from metering.month import Month
from metering.pipeline import bill
from tests.helpers import copy_sample, export_records, record, write_config

matplotlib.use("Agg", force=True)

SEP, OCT = Month(2026, 9), Month(2026, 10)
KIB = 1024
BLOCK = 32 * KIB

# One unit costs 0.35 USD (350,000 per million), so the small warehouse has real money in it.
PRICING = """
[pricing]
tiers = [ { per_million = "350000" } ]
"""
REGISTRY = "tenant_id,tenant_name,cost_center\nacme,Acme Ltd,CC-1\nglobex,Globex Inc.,CC-2\n"


# Text an export must carry intact: CR, LF, CRLF, a quote, a comma, ESC, a formula.
HOSTILE = ("a\rb", "a\nb", "a\r\nb", 'say "hi"', "B, Inc.", "t1\x1b[2J", "=1+1")


def hostile_lines() -> pl.DataFrame:
    """``tenant_month`` rows whose ids, names and cost centres each hold every HOSTILE text."""
    n = len(HOSTILE)

    def turned(k: int) -> list[str]:
        return list(HOSTILE[k:] + HOSTILE[:k])

    return pl.DataFrame(
        {
            "month": ["2026-10"] * n,
            "tenant_id": turned(0),
            "tenant_name": turned(1),
            "cost_center": turned(2),
            "calls": [1] * n,
            "units": [2] * n,
            "request_bytes": [3] * n,
            "response_bytes": [4] * n,
            "cost_exact": pl.Series([Decimal("0.5")] * n, dtype=pl.Decimal(38, 12)),
            "amount": pl.Series([Decimal("0.5")] * n, dtype=pl.Decimal(18, 2)),
            "currency": ["USD"] * n,
            "share": pl.Series([Decimal(1) / n] * n, dtype=pl.Decimal(18, 12)),
            "run_id": ["r"] * n,
            "size_estimated_calls": [0] * n,
        }
    )


def read_back(data: bytes) -> list[list[list[str]]]:
    """A CSV's rows, header first, as two readers see them: Python's csv module and polars."""
    by_csv = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    frame = pl.read_csv(io.BytesIO(data), infer_schema=False, empty_string_is_null=False)
    return [by_csv, [frame.columns, *[list(row) for row in frame.rows()]]]


def small_records(with_september: bool) -> list[dict[str, object]]:
    """October: acme 10 small calls (10 units): 4 in one second of 1 Oct, 4 of 2 Oct, 2 of
    3 Oct; globex 5 calls of 1-2 blocks
    (11 units, 3 of the calls just past an edge) on 3 Oct; 2 unattributed calls (2 units) on
    31 Oct. Total 23 units = 8.05 USD. September (optional): acme 2 calls, 0.70 USD."""
    rows = [record(f"a{i}", "acme", f"2026-10-0{1 + i // 4}T10:00:00.000Z") for i in range(10)]
    sizes = [BLOCK + 1, BLOCK + 3276, BLOCK + 3277, 2 * BLOCK + 10, 40_000]
    rows += [
        record(f"g{i}", "globex", f"2026-10-03T12:00:0{i}.000Z", req=200, resp=size - 200)
        for i, size in enumerate(sizes)
    ]
    rows += [
        record(f"u{i}", "__unattributed__", "2026-10-31T23:00:00.000Z", 500, 500, "ExecuteSql")
        for i in range(2)
    ]
    if with_september:
        rows += [record(f"s{i}", "acme", "2026-09-15T08:00:00.000Z") for i in range(2)]
    return rows


def small_warehouse(folder: Path, with_september: bool = False) -> Config:
    """The small warehouse, billed (October, and September when asked)."""
    folder.mkdir(parents=True, exist_ok=True)
    export_records(folder / "dynamodb", small_records(with_september))
    config = load_config(write_config(folder, PRICING, registry=REGISTRY))
    for month in [SEP, OCT] if with_september else [OCT]:
        bill(config, month)
    return config


@pytest.fixture(scope="session")
def small(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return small_warehouse(tmp_path_factory.mktemp("small"))


@pytest.fixture(scope="session")
def small_two_months(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return small_warehouse(tmp_path_factory.mktemp("small2"), with_september=True)


@pytest.fixture(scope="session")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """A copy of the bundled sample, billed for October 2026."""
    folder = tmp_path_factory.mktemp("sample") / "s"
    copy_sample(folder)
    config = load_config(folder / "meter.toml")
    bill(config, OCT)
    return config
