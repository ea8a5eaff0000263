"""``meter bill`` end to end on metering-record exports: counters, quarantine, warehouse."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metering.config import load_config
from metering.month import Month
from metering.pipeline import bill
from tests.helpers import (
    copy_sample,
    dump,
    export_records,
    lines_of,
    record,
    write_config,
    write_data_file,
)

OCT = Month(2026, 10)


def _records() -> list[dict[str, object]]:
    return [
        record("r1", "acme", "2026-10-01T00:00:00.000Z", 100, 200),
        record("r2", "acme", "2026-10-31T23:59:59.999Z", 32768, 1),  # 2 units
        record("r3", "globex", "2026-10-15T12:00:00.000Z", 40000, 30000),  # 3 units
        record("r4", "globex", "2026-09-30T23:59:59.999Z"),  # September
        record("r5", "globex", "2026-11-01T00:00:00.000Z"),  # November
    ]


def test_bill_counts_every_record_and_fills_the_warehouse(tmp_path: Path) -> None:
    export_records(tmp_path / "dynamodb", _records())
    result = bill(load_config(write_config(tmp_path)), OCT)
    c = result.counters
    assert (c.files_read, c.records_seen, c.calls_billed, c.out_of_month, c.quarantined) == (
        3,
        5,
        3,
        2,
        0,
    )
    assert result.exit_code == 0
    assert result.bill.total_units == 1 + 2 + 3
    con = duckdb.connect(str(tmp_path / "meter.duckdb"), read_only=True)
    rows = con.execute(
        "SELECT tenant_id, calls, units, request_bytes, response_bytes, amount FROM tenant_month ORDER BY 1"
    ).fetchall()
    assert rows == [
        ("acme", 2, 3, 32868, 201, Decimal("0.00")),
        ("globex", 1, 3, 40000, 30000, Decimal("0.00")),
    ]
    units = con.execute(
        "SELECT request_id, units, attribution, source FROM calls ORDER BY 1"
    ).fetchall()
    assert units == [
        ("r1", 1, "metering_record", "metering"),
        ("r2", 2, "metering_record", "metering"),
        ("r3", 3, "metering_record", "metering"),
    ]
    run = con.execute(
        "SELECT status, total_calls, total_units, records_seen, out_of_month FROM bill_runs"
    ).fetchall()
    assert run == [("billed", 3, 6, 5, 2)]


def test_peak_calls_per_second_and_days_are_utc_seconds_and_days(tmp_path: Path) -> None:
    """peak_rps counts the calls in one UTC second (.000 to .999); a day ends at midnight UTC."""
    seconds = ["00:00:00.000", "00:00:00.500", "00:00:00.999", "00:00:01.000", "00:00:01.001"]
    calls = [record(f"a{i}", "acme", f"2026-10-01T{s}Z") for i, s in enumerate(seconds)]
    calls += [record("g1", "globex", "2026-10-01T23:59:59.999Z")]
    calls += [record("g2", "globex", "2026-10-02T00:00:00.000Z")]
    export_records(tmp_path / "dynamodb", calls)
    bill(load_config(write_config(tmp_path)), OCT)
    con = duckdb.connect(str(tmp_path / "meter.duckdb"), read_only=True)
    peaks = con.execute("SELECT tenant_id, peak_rps FROM tenant_month ORDER BY 1").fetchall()
    assert peaks == [("acme", 3), ("globex", 1)]
    days = con.execute("SELECT day::VARCHAR, tenant_id, calls FROM tenant_day ORDER BY ALL")
    assert days.fetchall() == [
        ("2026-10-01", "acme", 5),
        ("2026-10-01", "globex", 1),
        ("2026-10-02", "globex", 1),
    ]
    matched = con.execute("SELECT day::VARCHAR, metering_only FROM reconciliation ORDER BY 1")
    assert matched.fetchall() == [("2026-10-01", 6), ("2026-10-02", 1)]


def test_rebilling_replaces_the_month(tmp_path: Path) -> None:
    export_records(tmp_path / "dynamodb", _records())
    config = load_config(write_config(tmp_path))
    first = bill(config, OCT)
    second = bill(config, OCT)
    assert first.run_id == second.run_id  # same inputs and config: same run id
    con = duckdb.connect(str(tmp_path / "meter.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM calls").fetchall() == [(3,)]
    assert con.execute("SELECT count(*) FROM tenant_month").fetchall() == [(2,)]
    assert con.execute("SELECT count(*) FROM bill_runs").fetchall() == [(2,)]


def test_quarantine_truncated_gzip_and_mistyped_attribute(tmp_path: Path) -> None:
    good = lines_of([record(f"g{i}", "acme", "2026-10-02T00:00:00.000Z") for i in range(10)])
    mistyped = dump(
        {
            "Item": {
                **{k: v for k, v in __import__("json").loads(good[0])["Item"].items()},
                "request_id": {"S": "bad-1"},
                "request_bytes": {"S": "100"},
            }
        }
    )
    data = tmp_path / "dynamodb" / "AWSDynamoDB" / "x" / "data"
    write_data_file(data / "a.json.gz", [*good[:5], mistyped])
    truncated = write_data_file(data / "b.json.gz", good[5:]).read_bytes()
    (data / "b.json.gz").write_bytes(truncated[: len(truncated) - 30])
    result = bill(load_config(write_config(tmp_path)), OCT)

    reasons = {(Path(q.source_uri).name, q.locator, q.reason) for q in result.quarantine}
    assert ("a.json.gz", "line 6", "request_bytes has DynamoDB type S, expected N") in reasons
    truncated_entries = [q for q in result.quarantine if Path(q.source_uri).name == "b.json.gz"]
    assert len(truncated_entries) == 1
    assert "truncated gzip" in truncated_entries[0].reason
    c = result.counters
    # Every good record before the damage is billed; the counters add up.
    assert c.calls_billed == 5 + int(truncated_entries[0].locator.split()[-1])
    assert c.quarantined == 2
    assert c.records_seen == c.calls_billed + c.quarantined
    assert result.exit_code == 3
    con = duckdb.connect(str(tmp_path / "meter.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM quarantine").fetchall() == [(2,)]


def test_bounds_and_bad_values_are_quarantined(tmp_path: Path) -> None:
    rows = [
        record("ok", "acme", "2026-10-02T00:00:00.000Z"),
        record("big-req", "acme", "2026-10-02T00:00:00.000Z", req=4 * 1024 * 1024 + 1),
        record("max-req", "acme", "2026-10-02T00:00:00.000Z", req=4 * 1024 * 1024),
        record("neg", "acme", "2026-10-02T00:00:00.000Z", resp=-1),
        record("big-resp", "acme", "2026-10-02T00:00:00.000Z", resp=16 * 1024 * 1024 + 1),
        record("bad-ts", "acme", "2026-10-02 00:00:00"),
        record("max-resp", "acme", "2026-10-02T00:00:00.000Z", req=0, resp=16 * 1024 * 1024),
    ]
    write_data_file(tmp_path / "dynamodb" / "data" / "a.json.gz", lines_of(rows))
    result = bill(load_config(write_config(tmp_path)), OCT)
    assert sorted(q.locator for q in result.quarantine) == ["line 2", "line 4", "line 5", "line 6"]
    assert result.counters.calls_billed == 3
    assert result.bill.total_units == 1 + 129 + 512
    # What the two records past a bound would have billed (request+response, 32 KiB blocks);
    # the negative size and the bad time say nothing of units.
    assert [q.locator for q in result.quarantine if q.withheld] == ["line 2", "line 5"]
    assert (
        result.counters.withheld_units
        == (4 * 1024 * 1024 + 1 + 100 + 32767) // 32768
        + (16 * 1024 * 1024 + 1 + 100 + 32767) // 32768
    )
    # A record of another month, or of an operation not billed, withholds nothing.
    rows = [
        record("sep", "acme", "2026-09-30T23:59:59.999Z", resp=17 * 1024 * 1024),
        record("op", "acme", "2026-10-02T00:00:00.000Z", resp=17 * 1024 * 1024, op="Other"),
        record("oct", "acme", "2026-10-02T00:00:00.000Z", req=0, resp=17 * 1024 * 1024),
    ]
    write_data_file(tmp_path / "dynamodb" / "data" / "a.json.gz", lines_of(rows))
    result = bill(load_config(write_config(tmp_path)), OCT, allow_empty=True)
    assert result.counters.withheld_units == 17 * 32


def test_duplicate_request_ids_count_once(tmp_path: Path) -> None:
    rows = [record("same", "acme", "2026-10-02T00:00:00.000Z")] * 3
    write_data_file(tmp_path / "dynamodb" / "data" / "a.json.gz", lines_of(rows))
    result = bill(load_config(write_config(tmp_path)), OCT)
    assert (result.counters.calls_billed, result.counters.duplicates) == (1, 2)


def test_records_that_share_a_request_id_but_disagree_are_counted_and_listed(
    tmp_path: Path,
) -> None:
    """Exact copies are plain duplicates; copies that differ are billed once, from the same
    copy whatever the order of files and lines, and listed."""
    same = record("same", "acme", "2026-10-02T00:00:00.000Z")
    other_tenant = record("two", "acme", "2026-10-02T00:00:01.000Z")
    rows = [same, same, other_tenant, other_tenant | {"tenant_id": "globex", "request_bytes": 9}]
    chosen = None
    for order in (rows, rows[::-1]):
        folder = tmp_path / str(len(list(tmp_path.iterdir())))
        for index, row in enumerate(order):  # a file per record: order and split both vary
            write_data_file(folder / "dynamodb" / "data" / f"{index}.json.gz", lines_of([row]))
        result = bill(load_config(write_config(folder)), OCT)
        assert (result.counters.calls_billed, result.counters.duplicates) == (2, 2)
        assert result.counters.conflicting_duplicates == 1
        assert result.exit_code == 3
        assert result.conflicts.rows() == [
            (
                "two",
                None,
                "metering: 2 different records share request_id two "
                "(tenant_id, request_bytes differ)",
            )
        ]
        con = duckdb.connect(str(folder / "meter.duckdb"), read_only=True)
        got = con.execute(
            "SELECT tenant_id, request_bytes FROM calls WHERE request_id = 'two'"
        ).fetchall()
        chosen = chosen or got
        assert got == chosen == [("acme", 100)]  # the smallest copy wins, in either order
        stored = con.execute("SELECT request_id, reason FROM conflicts").fetchall()
        assert [r for r, _ in stored] == ["two"]
        con.close()


def test_events_that_share_an_id_but_disagree_are_counted_and_listed(tmp_path: Path) -> None:
    from tests.collect.test_cloudtrail import event, key, put, trail_config

    e1 = event("e1", "2026-10-05T12:00:00Z")
    e1_rejected = event("e1", "2026-10-05T12:00:00Z", error="BadRequestException")
    e2 = event("e2", "2026-10-05T12:00:01Z", request_id="shared")
    e3 = event("e3", "2026-10-05T12:00:01Z", request_id="shared")
    put(tmp_path / "trail", key("2026-10-05", "a"), [e1, e2])
    put(tmp_path / "trail", key("2026-10-05", "b"), [e1_rejected, e3, e1])
    result = bill(load_config(trail_config(tmp_path)), OCT)
    # e1's smallest copy (a NULL sorts last) is the rejected one: counted, not billed.
    assert (result.counters.calls_billed, result.counters.errored_calls) == (1, 1)
    assert result.counters.duplicates == 3
    assert result.counters.conflicting_duplicates == 2
    assert sorted(result.conflicts.rows()) == [
        ("req-e1", "e1", "cloudtrail: 2 different copies share event_id e1 (error_code differ)"),
        (
            "shared",
            "e2",
            "cloudtrail: 2 different events share request_id shared (event_id differ)",
        ),
    ]


def test_unregistered_tenants_are_billed_and_listed(tmp_path: Path) -> None:
    export_records(tmp_path / "dynamodb", _records())
    config = write_config(
        tmp_path, registry="tenant_id,tenant_name,cost_center,plan\nacme,Acme,CC1,pro\n"
    )
    result = bill(load_config(config), OCT)
    assert result.unregistered == ["globex"]
    names = dict(result.tenant_month.select("tenant_id", "tenant_name").iter_rows())
    assert names == {"acme": "Acme", "globex": ""}


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 10_000), files=st.integers(1, 5))
def test_results_do_not_depend_on_row_order_or_file_split(
    tmp_path_factory, seed: int, files: int
) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    rows = [
        record(
            f"r{i % 40}",
            rng.choice(["a", "b", "c"]),
            f"2026-10-{rng.randint(1, 31):02d}T01:02:03.004Z",
            rng.randint(0, 100_000),
            rng.randint(0, 100_000),
        )
        for i in range(60)  # 20 duplicated request ids, possibly with different content
    ]
    baseline_dir = tmp_path_factory.mktemp("base")
    write_data_file(baseline_dir / "dynamodb" / "data" / "all.json.gz", lines_of(rows))
    expected = bill(load_config(write_config(baseline_dir)), OCT)

    rng.shuffle(rows)
    split_dir = tmp_path_factory.mktemp("split")
    for k in range(files):
        write_data_file(
            split_dir / "dynamodb" / "data" / f"part{k}.json.gz", lines_of(rows[k::files])
        )
    got = bill(load_config(write_config(split_dir)), OCT)
    assert got.tenant_month.drop("run_id").equals(expected.tenant_month.drop("run_id"))
    assert got.bill == expected.bill


def test_days_are_utc_days_whatever_the_machine_time_zone(tmp_path: Path) -> None:
    """SPEC 1.6: months (and so their days) are UTC. On a machine set to New York time
    (UTC-4 in October), a call at 02:00 UTC on October 1st is still a call of October 1st."""
    found = {}
    for zone in ("UTC", "America/New_York"):
        folder = tmp_path / zone.replace("/", "-")
        copy_sample(folder)
        command = [sys.executable, "-m", "metering", "bill", "--month", "2026-10"]
        command += ["--config", str(folder / "meter.toml")]
        done = subprocess.run(command, env={**os.environ, "TZ": zone}, capture_output=True)
        assert done.returncode == 3, done.stderr  # the sample quarantines on purpose
        con = duckdb.connect(str(folder / "meter.duckdb"), read_only=True)
        found[zone] = [
            con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
            for table in ("tenant_day", "reconciliation")
        ]
        days = con.execute("SELECT min(day)::VARCHAR, max(day)::VARCHAR FROM tenant_day")
        assert days.fetchall() == [("2026-10-01", "2026-10-31")], zone
        con.close()
    assert found["America/New_York"] == found["UTC"]


def test_an_error_either_source_saw_is_one_rule(tmp_path: Path) -> None:
    """SPEC 1.1: a call erred when CloudTrail's errorCode or the record's error_code says so;
    ``bill_errors`` decides for both; a call the two sources see fail and succeed is
    counted and listed in reconciliation."""
    from tests.collect.test_cloudtrail import event, key, put, trail_config

    at = "2026-10-05T12:00:0{}.000Z"
    records = [
        record("ok", "acme", at.format(0)),  # both sources: success
        record("rec-err", "acme", at.format(1)) | {"error_code": "BadRequestException"},
        record("ct-err", "acme", at.format(2)),  # the trail says it failed
        record("both-err", "acme", at.format(3)) | {"error_code": "StatementTimeoutException"},
        record("only-rec-err", "globex", at.format(4)) | {"error_code": "503"},  # metering only
        record("only-rec-ok", "globex", at.format(5)),
    ]
    events = [
        event("e-ok", at.format(0).replace(".000", ""), request_id="ok"),
        event("e-rec", at.format(1).replace(".000", ""), request_id="rec-err"),
        event("e-ct", at.format(2).replace(".000", ""), request_id="ct-err", error="Forbidden"),
        event(
            "e-both",
            at.format(3).replace(".000", ""),
            request_id="both-err",
            error="StatementTimeoutException",
        ),
    ]
    for bill_errors, billed in ((False, ["ok", "only-rec-ok"]), (True, None)):
        folder = tmp_path / str(bill_errors)
        put(folder / "trail", key("2026-10-05", "a"), events)
        write_data_file(folder / "dynamodb" / "data" / "a.json.gz", lines_of(records))
        pricing = f"\n[pricing]\nbill_errors = {str(bill_errors).lower()}\n"
        result = bill(load_config(trail_config(folder, pricing, metering=True)), OCT)
        c = result.counters
        assert c.errored_calls == 4  # rec-err, ct-err, both-err, only-rec-err
        assert c.error_disagreements == 2  # rec-err (only metering), ct-err (only CloudTrail)
        assert c.calls_billed == (2 if not bill_errors else 6)
        con = duckdb.connect(str(folder / "meter.duckdb"), read_only=True)
        got = [r for (r,) in con.execute("SELECT request_id FROM calls ORDER BY 1").fetchall()]
        assert got == sorted(billed or [r["request_id"] for r in records])  # type: ignore[type-var]
        assert con.execute(
            "SELECT day, matched, cloudtrail_only, metering_only, error_disagreements "
            "FROM reconciliation"
        ).fetchall() == [(date(2026, 10, 5), 4, 0, 2, 2)]
        codes = con.execute(
            "SELECT request_id, error_code, error_seen_by FROM call_rows "
            "WHERE error_code IS NOT NULL ORDER BY 1"
        ).fetchall()
        assert codes == [
            ("both-err", "StatementTimeoutException", "both"),
            ("ct-err", "Forbidden", "cloudtrail"),
            ("only-rec-err", "503", "metering"),
            ("rec-err", "BadRequestException", "metering"),
        ]
        con.close()
