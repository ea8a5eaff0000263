"""What the metering itself costs: CloudTrail data events and DynamoDB writes, estimated per
month beside the bill, never allocated to tenants."""

from __future__ import annotations

import gzip
import io
import json
import re
from decimal import Decimal, Inexact, localcontext
from pathlib import Path

import duckdb
from rich.console import Console

from metering.collect.trailbody import DATA_API_SOURCES
from metering.config import Config, PricingConfig, load_config
from metering.month import Month
from metering.outputs import month_report
from metering.overhead import V1_EVENT_SOURCE, Overhead
from metering.pipeline import bill
from metering.rate import price
from metering.render import bill_summary, overhead_lines
from tests.collect.test_cloudtrail import event, key, put, trail_config
from tests.helpers import copy_sample, export_records, record, write_config

OCT = Month(2026, 10)


def _config(tmp_path: Path, overhead: str = "") -> Config:
    path = tmp_path / "meter.toml"
    path.write_text(f'[sources.metering]\nexports = ["dynamodb"]\n{overhead}')
    return load_config(path)


def _run(config: Config, month: str) -> tuple[object, ...]:
    con = duckdb.connect(config.warehouse.path, read_only=True)
    try:
        row = con.execute(
            "SELECT overhead_data_events, overhead_writes, overhead_cloudtrail_cost, "
            "overhead_dynamodb_cost FROM bill_runs WHERE month = ?",
            [month],
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    return row


def test_the_worked_example_costs_more_to_record_than_to_bill(tmp_path: Path) -> None:
    """SPEC 1's month: 26,280,000 + 15,760,000 calls cost 20.23 USD of Data API requests;
    one CloudTrail data event and one metering write each cost more than that."""
    calls = 26_280_000 + 15_760_000
    data_api = price({"t1": 26_280_000, "t2": 2 * 15_760_000}, PricingConfig())
    assert data_api.account_cost == Decimal("20.23")
    got = Overhead.estimate(_config(tmp_path), calls, calls)
    assert got.cloudtrail_cost == Decimal(calls) * Decimal("0.10") / 100_000 == Decimal("42.04")
    assert got.dynamodb_cost == Decimal(calls) * Decimal("0.625") / 10**6 == Decimal("26.275")
    assert got.total == Decimal("68.315")
    # Rounded once: the total half-up, the parts by largest remainder so they add up to it.
    assert got.rounded("USD") == (Decimal("42.04"), Decimal("26.28"), Decimal("68.32"))
    assert got.rounded("JPY") == (Decimal("42"), Decimal("26"), Decimal("68"))
    assert got.ratio(data_api.account_cost) == Decimal("68.315") / Decimal("20.23")
    assert overhead_lines(got, data_api.account_cost, "USD") == [
        "metering overhead, estimated (never billed to tenants): 68.32 USD",
        "  CloudTrail: 42,040,000 data events, 42.04 USD",
        "  DynamoDB: 42,040,000 metering writes, 26.28 USD",
        "  exact 68.315 USD: 337.7 % of the month's Data API cost, 20.23 USD",
    ]


def test_prices_come_from_the_overhead_section(tmp_path: Path) -> None:
    config = _config(
        tmp_path,
        '[overhead]\ncloudtrail_per_100k_events = "2.5"\ndynamodb_per_million_writes = "1.25"\n',
    )
    got = Overhead.estimate(config, 3, 7)
    assert (got.cloudtrail_cost, got.dynamodb_cost) == (
        Decimal(3) * Decimal("2.5") / 100_000,
        Decimal(7) * Decimal("1.25") / 10**6,
    )
    assert Overhead.estimate(config, None, 7).cloudtrail_cost is None


def test_the_largest_counts_at_the_highest_prices_are_exact_and_fit(tmp_path: Path) -> None:
    """10^13 events and writes (10^5 months of 10^8 calls) at the highest prices the config
    allows: exact, and inside bill_runs' DECIMAL(38, 12)."""
    config = _config(
        tmp_path,
        '[overhead]\ncloudtrail_per_100k_events = "999999.999999"\n'
        'dynamodb_per_million_writes = "1000000"\n',
    )
    count = 10**13
    with localcontext() as context:
        context.traps[Inexact] = True
        got = Overhead.estimate(config, count, count)
        total = got.total
    assert got.cloudtrail_cost == Decimal(10**14 - 100)  # (10^6 - 10^-6) * 10^8
    assert got.dynamodb_cost == Decimal(10**13)
    con = duckdb.connect()
    for amount in (got.cloudtrail_cost, got.dynamodb_cost, total):
        stored = con.execute("SELECT ?::VARCHAR::DECIMAL(38, 12)", [str(amount)]).fetchone()
        assert stored == (amount,)


def test_every_data_api_source_but_v1_s_is_charged_as_data_events() -> None:
    assert DATA_API_SOURCES - {V1_EVENT_SOURCE} == {"rdsdataapi.amazonaws.com"}


def test_v1_events_second_deliveries_and_other_months_are_not_counted(tmp_path: Path) -> None:
    trail = tmp_path / "trail"
    e1 = event("e1", "2026-10-05T12:00:00Z")
    put(trail, key("2026-10-05", "a"), [e1, event("e2", "2026-10-05T12:00:01Z", error="X")])
    put(trail, key("2026-10-06", "b"), [e1])  # a second delivery of e1
    # Two events of one request (CloudTrail would charge both): one call, counted once.
    put(
        trail,
        key("2026-10-07"),
        [
            event("e3", "2026-10-07T00:00:00Z", request_id="shared"),
            event("e4", "2026-10-07T00:00:01Z", request_id="shared"),
            event("v1a", "2026-10-07T00:00:02Z", source="rdsdata.amazonaws.com"),
            event("v1b", "2026-10-07T00:00:03Z", source="rdsdata.amazonaws.com", name="ExecuteSql"),
        ],
    )
    put(trail, key("2026-11-01"), [event("nov", "2026-11-01T00:00:00Z")])  # late folder
    config = load_config(trail_config(tmp_path, '[overhead]\ncloudtrail_per_100k_events = "3"\n'))
    result = bill(config, OCT)
    assert result.counters.calls_billed == 4  # e1, e3 (= e4), v1a, v1b; e2 was rejected
    expected = Overhead(3, None, Decimal(3) * 3 / Decimal(100_000), None)  # e1, e2, e3
    assert result.overhead == expected
    assert _run(config, "2026-10") == (3, None, Decimal("0.00009"), None)
    out = io.StringIO()
    bill_summary(result, Console(file=out, width=200))
    shown = out.getvalue().splitlines()
    start = shown.index("metering overhead, estimated (never billed to tenants): 0.00 USD")
    assert shown[start + 1 : start + 4] == [
        "  CloudTrail: 3 data events, 0.00 USD",
        "  DynamoDB: not a configured source, not counted",
        f"  exact 0.00009 USD: {Decimal('0.00009') / result.bill.account_cost * 100:,.1f} % of "
        f"the month's Data API cost, {result.bill.account_cost.normalize():f} USD",
    ]


def test_writes_are_the_month_s_distinct_metering_records(tmp_path: Path) -> None:
    records = [
        record("r1", "acme", "2026-10-01T00:00:00.000Z"),
        record("r1", "acme", "2026-10-01T00:00:00.000Z"),  # the same record read twice
        record("r2", "acme", "2026-10-31T23:59:59.999Z"),
        record("r3", "globex", "2026-10-15T12:00:00.000Z", op="Unknown"),  # not billed: written
        record("r4", "globex", "2026-09-30T23:59:59.999Z"),  # September
        record("r5", "globex", "2026-11-01T00:00:00.000Z"),  # November
    ]
    export_records(tmp_path / "dynamodb", records)
    config = load_config(write_config(tmp_path, '[overhead]\ndynamodb_per_million_writes = "2"\n'))
    result = bill(config, OCT)
    assert result.overhead == Overhead(None, 3, None, Decimal(3) * 2 / Decimal(10**6))
    assert _run(config, "2026-10") == (None, 3, None, Decimal("0.000006"))


# -- the sample month, counted from its files ----------------------------------------------

TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def _readable(item: dict[str, dict[str, str]]) -> bool:
    """A metering item meter can bill (SPEC 2.2): every attribute there, typed and bounded."""
    strings = ("request_id", "tenant_id", "ts", "operation")
    if any(set(item.get(name, {})) != {"S"} for name in strings):
        return False
    sizes = (("request_bytes", 4 * 2**20), ("response_bytes", 16 * 2**20))
    if any(set(item.get(name, {})) != {"N"} for name, _ in sizes):
        return False
    return bool(TS.fullmatch(item["ts"]["S"])) and all(
        0 <= int(item[name]["N"]) <= bound for name, bound in sizes
    )


def _sample_counts(root: Path) -> tuple[set[str], set[str], set[str]]:
    """The sample's October v2 eventIDs, v1 eventIDs and readable metering records."""
    v2, v1, records = set(), set(), set()
    for path in (root / "cloudtrail").rglob("*.json.gz"):
        if "CloudTrail-Digest" in path.parts:
            continue
        for rec in json.loads(gzip.decompress(path.read_bytes()))["Records"]:
            if rec["eventTime"].startswith("2026-10-"):
                chosen = {"rdsdataapi.amazonaws.com": v2, "rdsdata.amazonaws.com": v1}
                chosen.get(rec["eventSource"], set()).add(rec["eventID"])
    for path in (root / "dynamodb").rglob("data/*.json.gz"):
        for line in gzip.decompress(path.read_bytes()).decode().splitlines():
            try:
                item = json.loads(line)["Item"]
            except (json.JSONDecodeError, KeyError):
                continue
            if _readable(item) and item["ts"]["S"].startswith("2026-10-"):
                records.add(item["request_id"]["S"])
    return v2, v1, records


def test_the_sample_month_overhead_is_its_v2_events_and_its_records(tmp_path: Path) -> None:
    config = load_config(copy_sample(tmp_path / "s"))
    result = bill(config, OCT)
    v2, v1, records = _sample_counts(tmp_path / "s")
    assert v1  # the sample has Serverless v1 calls: billed, but no data event of theirs
    cloudtrail = Decimal(len(v2)) * Decimal("0.10") / 100_000
    dynamodb = Decimal(len(records)) * Decimal("0.625") / 1_000_000
    assert result.overhead == Overhead(len(v2), len(records), cloudtrail, dynamodb)
    assert _run(config, "2026-10") == (len(v2), len(records), cloudtrail, dynamodb)
    report = month_report(config, OCT)
    assert report.overhead == result.overhead
    assert result.overhead.ratio(report.account_cost) == (cloudtrail + dynamodb) / Decimal(
        str(report.run["account_cost"])
    )


def test_a_month_billed_before_the_estimate_or_free_says_so() -> None:
    old_run = {"run_id": "r", "account_cost": Decimal(1), "overhead_writes": None}
    assert Overhead.of_run(old_run) is None
    assert Overhead.of_run({"run_id": "r"}) is None
    assert overhead_lines(None, Decimal(1), "USD") == [
        "metering overhead: not estimated (the month was billed by an older meter; "
        "bill it again to see it)"
    ]
    free = Overhead(50, None, Decimal("0.00005"), None)
    assert overhead_lines(free, Decimal(0), "USD")[-1] == (
        "  exact 0.00005 USD; the month's Data API cost is 0"
    )
    assert Overhead.of_run(free.columns()) == free


def test_the_readme_documents_the_overhead_keys_with_their_defaults(tmp_path: Path) -> None:
    from tests.conftest import REPO

    readme = (REPO / "README.md").read_text()
    block = readme[readme.index("[overhead]") :]
    block = block[: block.index("```")]
    documented = _config(tmp_path, block).overhead
    assert documented == _config(tmp_path).overhead
    assert set(type(documented).model_fields) == {
        "cloudtrail_per_100k_events",
        "dynamodb_per_million_writes",
    }
