"""The metering hook over real HTTP: boto3 -> wire tap -> moto (see conftest.py).

Every size and request id the hook records is compared with what the tap saw on the
socket, independently of botocore. moto's rds-data answers ExecuteStatement with canned
results; the tap answers the transaction calls moto lacks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import threading
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import polars as pl
import pytest

from metering.collect.records import decode_export_lines, decode_table_items, items_frame, validate
from metering.errors import UsageError
from metering.hook import SET_TENANT_SQL, MeteredDataApi, sql_parameters

CLUSTER_ARN = "arn:aws:rds:us-east-1:123456789012:cluster:app-db"
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app-db-AbCdEf"
TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
BLOCK = 32768


@pytest.fixture
def spill(tmp_path: Path) -> Path:
    return tmp_path / "spill" / "data" / "records.json"


@pytest.fixture
def api(rds_data: Any, dynamodb: Any, table: str, spill: Path) -> Any:
    metered = MeteredDataApi(
        rds_data,
        table=table,
        resource_arn=CLUSTER_ARN,
        secret_arn=SECRET_ARN,
        database="app",
        dynamodb_client=dynamodb,
        spill_path=spill,
        backoff_base=0.001,
        max_age=3600,
    )
    yield metered
    metered.close()


def attr(item: dict[str, Any], name: str) -> str:
    return next(iter(item[name].values()))


def by_request_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {attr(i, "request_id"): i for i in items}


def spilled(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line)["Item"] for line in path.read_text().splitlines()]


def assert_matches_wire(
    items: list[dict[str, Any]], wire: list[Any], tenant: str, cluster: str = CLUSTER_ARN
) -> None:
    """Each item is exactly one exchange seen on the wire: same id, operation and bytes."""
    assert len(items) == len(wire)
    recorded = by_request_id(items)
    assert set(recorded) == {s.request_id for s in wire}
    for seen in wire:
        item = recorded[seen.request_id]
        ts = attr(item, "ts")
        shard = int(hashlib.blake2b(seen.request_id.encode(), digest_size=2).hexdigest(), 16) % 16
        assert TS.match(ts)
        errored = {"error_code": {"S": seen.error_type.split(":")[0]}} if seen.error_type else {}
        assert seen.status < 300 or errored  # every error answer here names its code
        assert item == {
            **errored,
            "pk": {"S": f"METER#{ts[:10]}#{shard:02d}"},
            "sk": {"S": f"{ts}#{seen.request_id}"},
            "tenant_id": {"S": tenant},
            "request_id": {"S": seen.request_id},
            "ts": {"S": ts},
            "operation": {"S": seen.operation},
            "request_bytes": {"N": str(seen.request_bytes)},
            "response_bytes": {"N": str(seen.response_bytes)},
            "resource_arn": {"S": cluster},
        }


def test_a_transaction_is_recorded_byte_for_byte(api: Any, tap: Any, table: str, scan: Any) -> None:
    now = datetime.now(UTC)
    started = now.replace(microsecond=now.microsecond // 1000 * 1000)  # ts holds milliseconds
    with api.tenant("42") as t:
        result = t.execute("SELECT tenant_name FROM tenant WHERE id = :id", {"id": 7})
    api.flush()

    assert result["records"] == []  # moto's canned answer came back to the caller
    wire = tap.seen("rds-data")
    assert [s.operation for s in wire] == [
        "BeginTransaction",
        "ExecuteStatement",
        "ExecuteStatement",
        "CommitTransaction",
    ]
    begin, set_tenant, statement, commit = wire
    transaction = begin.response["transactionId"]
    # The tenant travels as a bound parameter, never inside the SQL text.
    assert set_tenant.request["sql"] == SET_TENANT_SQL
    assert set_tenant.request["parameters"] == [
        {"name": "tenant_id", "value": {"stringValue": "42"}}
    ]
    assert "42" not in set_tenant.request["sql"]
    assert statement.request["parameters"] == [{"name": "id", "value": {"longValue": 7}}]
    assert {s.request.get("transactionId") for s in (set_tenant, statement, commit)} == {
        transaction
    }
    assert tap.state.transactions[transaction] == "committed"

    items = scan(table)
    assert_matches_wire(items, wire, "42")
    for item in items:
        assert started <= datetime.strptime(attr(item, "ts"), "%Y-%m-%dT%H:%M:%S.%f%z")
    assert api.stats.calls_metered == 4
    assert api.stats.records_written == 4
    assert api.stats.write_requests == 1

    # What meter's reader makes of the live table's items: four good records, no quarantine.
    decoded, numbers, bad = decode_table_items(items, f"dynamodb://{table}")
    frame, invalid = validate(items_frame(decoded, numbers), table)
    assert bad == [] and invalid == []
    assert frame.height == 4
    assert frame["request_bytes"].sum() == sum(s.request_bytes for s in wire)
    assert frame["response_bytes"].sum() == sum(s.response_bytes for s in wire)


def test_large_payloads_are_measured_exactly(
    rds_data: Any, dynamodb: Any, tap: Any, table: str, scan: Any, moto_server: str, spill: Path
) -> None:
    import urllib.request

    # moto hands queued results out last-first, and keeps each for its (cluster, SQL): a
    # cluster of this test's own, an empty result for set_config, then 100 kB for the query.
    cluster = f"{CLUSTER_ARN}-{table[-8:]}"
    big = "x" * 100_000
    results = [{"records": [[{"stringValue": big}]]}, {"records": []}]
    document = json.dumps({"region": "us-east-1", "results": results}).encode()
    request = urllib.request.Request(
        f"{moto_server}/moto-api/static/rds-data/statement-results", data=document, method="POST"
    )
    with urllib.request.urlopen(request) as response:
        assert response.status == 201
    sql = "SELECT " + " + ".join(["1"] * 20_000) + " AS big_request"

    with (
        MeteredDataApi(
            rds_data,
            table=table,
            resource_arn=cluster,
            secret_arn=SECRET_ARN,
            dynamodb_client=dynamodb,
            spill_path=spill,
            max_age=3600,
        ) as api,
        api.tenant("7") as t,
    ):
        answer = t.execute(sql)

    assert answer["records"][0][0]["stringValue"] == big
    wire = tap.seen("rds-data")
    statement = wire[2]
    assert statement.request["sql"] == sql
    assert statement.request_bytes > 2 * BLOCK  # 80 kB of SQL: three 32 KiB blocks
    assert statement.response_bytes > 3 * BLOCK  # 100 kB of result: four blocks
    items = scan(table)
    assert_matches_wire(items, wire, "7", cluster)
    recorded = by_request_id(items)[statement.request_id]
    assert int(attr(recorded, "request_bytes")) == statement.request_bytes
    assert int(attr(recorded, "response_bytes")) == statement.response_bytes


def test_an_exception_rolls_back_is_recorded_and_re_raised(
    api: Any, tap: Any, table: str, scan: Any
) -> None:
    with pytest.raises(ValueError, match="application bug"), api.tenant("9") as t:
        t.execute("UPDATE orders SET paid = true")
        raise ValueError("application bug")
    api.flush()

    wire = tap.seen("rds-data")
    operations = [s.operation for s in wire]
    assert operations == [
        "BeginTransaction",
        "ExecuteStatement",
        "ExecuteStatement",
        "RollbackTransaction",
    ]
    assert tap.state.transactions[wire[0].response["transactionId"]] == "rolled back"
    assert_matches_wire(scan(table), wire, "9")


def test_a_failed_statement_is_recorded_rolled_back_and_raised(
    api: Any, rds_data: Any, tap: Any, table: str, scan: Any
) -> None:
    with pytest.raises(rds_data.exceptions.BadRequestException), api.tenant("9") as t:
        t.execute("SELECT * FROM FAIL")
    api.flush()

    wire = tap.seen("rds-data")
    assert [(s.operation, s.status) for s in wire] == [
        ("BeginTransaction", 200),
        ("ExecuteStatement", 200),
        ("ExecuteStatement", 400),
        ("RollbackTransaction", 200),
    ]
    assert_matches_wire(scan(table), wire, "9")  # the rejected call too, with its RequestId


def test_each_retried_attempt_is_one_record(api: Any, tap: Any, table: str, scan: Any) -> None:
    """botocore retries a 503; AWS saw two requests with two ids, so there are two records."""
    with api.tenant("5") as t:
        tap.state.faults.data_api_unavailable = 1
        t.execute("SELECT 1")
    api.flush()

    wire = tap.seen("rds-data")
    assert [(s.operation, s.status) for s in wire] == [
        ("BeginTransaction", 200),
        ("ExecuteStatement", 200),  # set_config
        ("ExecuteStatement", 503),  # SELECT 1, first attempt
        ("ExecuteStatement", 200),  # SELECT 1, retried by botocore
        ("CommitTransaction", 200),
    ]
    assert len({s.request_id for s in wire}) == 5
    assert_matches_wire(scan(table), wire, "5")


def test_batch_execute(api: Any, tap: Any, table: str, scan: Any) -> None:
    with api.tenant("11") as t:
        answer = t.batch_execute(
            "INSERT INTO orders (id, note) VALUES (:id, :note)",
            [{"id": 1, "note": "a"}, {"id": 2, "note": None}],
        )
    api.flush()

    assert len(answer["updateResults"]) == 2
    wire = tap.seen("rds-data")
    batch = wire[2]
    assert batch.operation == "BatchExecuteStatement"
    assert batch.request["parameterSets"] == [
        [
            {"name": "id", "value": {"longValue": 1}},
            {"name": "note", "value": {"stringValue": "a"}},
        ],
        [{"name": "id", "value": {"longValue": 2}}, {"name": "note", "value": {"isNull": True}}],
    ]
    assert_matches_wire(scan(table), wire, "11")


def test_records_are_written_in_chunks_of_25(api: Any, tap: Any, table: str, scan: Any) -> None:
    # A transaction is 4 calls: Begin, set_config, the statement, Commit.
    for n in range(7):  # 28 records
        with api.tenant(str(n)) as t:
            t.execute("SELECT 1")
    writes = [len(s.request["RequestItems"][table]) for s in tap.seen("dynamodb")]
    assert writes == [25]  # written as soon as a full chunk waited, after the block
    assert api.stats.buffered == 3

    for n in range(8):  # 32 more: 60 in all
        with api.tenant(str(n)) as t:
            t.execute("SELECT 1")
    api.close()  # flushes the rest

    writes = [len(s.request["RequestItems"][table]) for s in tap.seen("dynamodb")]
    assert writes == [25, 25, 10]
    assert len(scan(table)) == 60
    stats = api.stats
    assert (stats.calls_metered, stats.records_written, stats.buffered) == (60, 60, 0)
    assert (stats.records_spilled, stats.records_lost, stats.write_retries) == (0, 0, 0)


def test_unprocessed_items_are_retried_with_backoff(
    api: Any, tap: Any, table: str, scan: Any
) -> None:
    """The tap makes DynamoDB hand back half of each batch, three times in a row."""
    for n in range(7):
        with api.tenant(str(n)) as t:
            t.execute("SELECT 1")  # 28 records; the first 25 are written after the 7th block
            if n == 6:
                tap.state.faults.unprocessed_rounds = 3
    api.close()

    writes = [len(s.request["RequestItems"][table]) for s in tap.seen("dynamodb")]
    # 25 sent, 12 kept; 13 again, 6 kept; 7 again, 3 kept; the last 4 go through; then 3.
    assert writes == [25, 13, 7, 4, 3]
    assert len(scan(table)) == 28
    stats = api.stats
    assert (stats.records_written, stats.write_retries, stats.records_spilled) == (28, 3, 0)


def test_what_stays_unprocessed_is_spilled_not_lost(
    rds_data: Any, dynamodb: Any, tap: Any, table: str, scan: Any, spill: Path
) -> None:
    api = MeteredDataApi(
        rds_data,
        table=table,
        resource_arn=CLUSTER_ARN,
        secret_arn=SECRET_ARN,
        dynamodb_client=dynamodb,
        spill_path=spill,
        max_attempts=3,
        backoff_base=0.001,
        max_age=3600,
    )
    for n in range(3):
        with api.tenant(str(n)) as t:
            t.execute("SELECT 1")
    tap.state.faults.unprocessed_rounds = 100
    api.close()

    written = by_request_id(scan(table))
    kept = by_request_id(spilled(spill))
    wire = {s.request_id for s in tap.seen("rds-data")}
    # 12 sent: 6 kept, 6 back; 6 sent: 3 kept, 3 back; 3 sent: 1 kept, 2 back -> spilled.
    assert (len(written), len(kept)) == (10, 2)
    assert set(written) | set(kept) == wire
    assert not set(written) & set(kept)
    stats = api.stats
    assert (stats.records_written, stats.records_spilled, stats.write_retries) == (10, 2, 2)


def test_a_missing_table_spills_and_the_queries_still_work(
    rds_data: Any, dynamodb: Any, tap: Any, spill: Path, caplog: pytest.LogCaptureFixture
) -> None:
    api = MeteredDataApi(
        rds_data,
        table="NoSuchTable",
        resource_arn=CLUSTER_ARN,
        secret_arn=SECRET_ARN,
        dynamodb_client=dynamodb,
        spill_path=spill,
        backoff_base=0.001,
        max_age=0,  # write after every block
    )
    with caplog.at_level(logging.WARNING, logger="metering.hook"):
        for tenant in ("1", "2"):
            with api.tenant(tenant) as t:
                assert t.execute("SELECT 1")["records"] == []
    api.close()

    stats = api.stats
    assert (stats.calls_metered, stats.records_spilled, stats.records_written) == (8, 8, 0)
    assert (stats.write_requests, stats.write_errors, stats.write_retries) == (2, 2, 0)  # final
    assert "ResourceNotFoundException" in caplog.text
    assert str(spill) in caplog.text
    wire = tap.seen("rds-data")
    items = spilled(spill)
    assert_matches_wire([i for i in items if attr(i, "tenant_id") == "1"], wire[:4], "1")
    assert_matches_wire([i for i in items if attr(i, "tenant_id") == "2"], wire[4:], "2")


def test_throttled_writes_are_retried_then_spilled(
    rds_data: Any, dynamodb: Any, tap: Any, table: str, spill: Path
) -> None:
    api = MeteredDataApi(
        rds_data,
        table=table,
        resource_arn=CLUSTER_ARN,
        secret_arn=SECRET_ARN,
        dynamodb_client=dynamodb,
        spill_path=spill,
        max_attempts=4,
        backoff_base=0.001,
    )
    with api.tenant("3") as t:
        t.execute("SELECT 1")
    tap.state.faults.dynamodb_error = "ProvisionedThroughputExceededException"
    api.close()

    stats = api.stats
    assert (stats.write_requests, stats.write_errors, stats.write_retries) == (4, 4, 3)
    assert (stats.records_spilled, stats.records_written) == (4, 0)
    assert len(spilled(spill)) == 4


def test_the_spill_file_is_an_export_meter_can_read(
    rds_data: Any, dynamodb: Any, tap: Any, tmp_path: Path
) -> None:
    spill = tmp_path / "spill" / "data" / "records.json"
    api = MeteredDataApi(
        rds_data,
        table="NoSuchTable",
        resource_arn=CLUSTER_ARN,
        secret_arn=SECRET_ARN,
        dynamodb_client=dynamodb,
        spill_path=spill,
    )
    with api.tenant("1") as t:
        t.execute("SELECT " + "1, " * 20_000 + "1")  # one call over a 32 KiB block
    for _ in range(2):
        with api.tenant("2") as t:
            t.execute("SELECT 2")
    api.close()
    wire = tap.seen("rds-data")

    lines = list(enumerate(spill.read_bytes().splitlines(), start=1))
    decoded = decode_export_lines(lines, str(spill))
    frame, invalid = validate(items_frame(decoded.items, decoded.numbers), str(spill))
    assert decoded.bad == [] and invalid == []
    assert frame.height == len(wire) == 12
    assert frame.sort("request_id")["request_id"].to_list() == sorted(s.request_id for s in wire)

    # And through the export reader `meter bill` uses, folder and all.
    from metering.collect.exports import read_exports

    collected = read_exports([str(tmp_path / "spill")])
    assert collected.quarantine == []
    assert collected.frame.sort("request_id").equals(frame.sort("request_id"))


def test_spilled_records_bill_through_meter(
    rds_data: Any, dynamodb: Any, tap: Any, tmp_path: Path
) -> None:
    """Records the hook spilled, billed by the pipeline behind `meter bill`."""
    from metering.config import load_config
    from metering.month import Month
    from metering.pipeline import bill

    spill = tmp_path / "spill" / "data" / "records.json"
    with MeteredDataApi(
        rds_data,
        table="NoSuchTable",
        resource_arn=CLUSTER_ARN,
        secret_arn=SECRET_ARN,
        dynamodb_client=dynamodb,
        spill_path=spill,
    ) as api:
        with api.tenant("1") as t:
            t.execute("SELECT " + "1, " * 20_000 + "1")
        with api.tenant("2") as t:
            t.execute("SELECT 2")
    wire = tap.seen("rds-data")
    tenant_of = {attr(i, "request_id"): attr(i, "tenant_id") for i in spilled(spill)}
    expected = {"1": [0, 0], "2": [0, 0]}  # tenant -> [calls, units]
    for seen in wire:
        tenant = tenant_of[seen.request_id]
        expected[tenant][0] += 1
        expected[tenant][1] += max(1, math.ceil((seen.request_bytes + seen.response_bytes) / BLOCK))

    (tmp_path / "meter.toml").write_text(
        '[warehouse]\npath = "meter.duckdb"\n[sources.metering]\nexports = ["spill"]\n'
    )
    month = Month.parse(attr(next(iter(spilled(spill))), "ts")[:7])
    result = bill(load_config(tmp_path / "meter.toml"), month)

    assert result.quarantine == []
    lines = result.tenant_month.sort("tenant_id").select("tenant_id", "calls", "units")
    assert lines.rows() == [("1", *expected["1"]), ("2", *expected["2"])]
    assert expected["1"][1] > expected["1"][0]  # the big call took more than one unit


def test_concurrent_tenants_are_not_mixed_up(api: Any, tap: Any, table: str, scan: Any) -> None:
    errors: list[BaseException] = []

    def work(tenant: str) -> None:
        try:
            for _ in range(5):
                with api.tenant(tenant) as t:
                    t.execute("SELECT 1")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(str(n),)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    api.flush()

    assert errors == []
    wire = tap.seen("rds-data")
    # Which tenant each transaction was for, as sent on the wire by set_config.
    tenant_of_transaction = {
        s.request["transactionId"]: s.request["parameters"][0]["value"]["stringValue"]
        for s in wire
        if s.request.get("sql") == SET_TENANT_SQL
    }
    begun = {
        s.request_id: s.response["transactionId"] for s in wire if s.operation == "BeginTransaction"
    }
    items = by_request_id(scan(table))
    assert len(items) == len(wire) == 4 * 5 * 4
    for seen in wire:
        transaction = begun.get(seen.request_id) or seen.request["transactionId"]
        assert attr(items[seen.request_id], "tenant_id") == tenant_of_transaction[transaction]
        assert attr(items[seen.request_id], "request_bytes") == str(seen.request_bytes)
        assert attr(items[seen.request_id], "response_bytes") == str(seen.response_bytes)


def test_calls_outside_a_tenant_block_and_after_close_are_not_metered(
    api: Any, rds_data: Any, tap: Any, table: str, scan: Any
) -> None:
    rds_data.execute_statement(resourceArn=CLUSTER_ARN, secretArn=SECRET_ARN, sql="SELECT 1")
    with api.tenant("1") as t:
        t.execute("SELECT 1")
    api.close()
    rds_data.execute_statement(resourceArn=CLUSTER_ARN, secretArn=SECRET_ARN, sql="SELECT 1")

    assert len(tap.seen("rds-data")) == 6
    assert len(scan(table)) == 4
    assert api.stats.calls_metered == 4
    with pytest.raises(UsageError, match="closed"), api.tenant("1"):
        pass


def test_a_statement_after_the_block_is_refused(api: Any) -> None:
    with api.tenant("1") as t:
        pass
    with pytest.raises(UsageError, match="finished"):
        t.execute("SELECT 1")


def test_records_that_cannot_be_spilled_are_logged_in_full(
    rds_data: Any, dynamodb: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "data").write_text("a file where the spill folder should be")
    api = MeteredDataApi(
        rds_data,
        table="NoSuchTable",
        resource_arn=CLUSTER_ARN,
        secret_arn=SECRET_ARN,
        dynamodb_client=dynamodb,
        spill_path=tmp_path / "data" / "records.json",
    )
    with api.tenant("1") as t:
        t.execute("SELECT 1")
    with caplog.at_level(logging.ERROR, logger="metering.hook"):
        api.close()

    assert (api.stats.records_lost, api.stats.records_spilled) == (4, 0)
    logged = [line for line in caplog.text.splitlines() if line.startswith('{"Item"')]
    assert len(logged) == 4
    decoded = decode_export_lines(list(enumerate(map(str.encode, logged), 1)), "log")
    assert decoded.bad == [] and len(decoded.items) == 4


def test_the_default_dynamodb_client_uses_the_data_api_region(
    rds_data: Any, tmp_path: Path
) -> None:
    with MeteredDataApi(
        rds_data,
        table="T",
        resource_arn=CLUSTER_ARN,
        secret_arn=SECRET_ARN,
        spill_path=tmp_path / "data" / "x.json",
    ) as api:
        assert api._writer.dynamodb.meta.region_name == "us-east-1"
        assert api._writer.dynamodb.meta.service_model.service_name == "dynamodb"
        api._writer.dynamodb.close()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spill_path": "spill.jsonl"}, "FOLDER/data/NAME.json"),
        ({"shards": 17}, "1 to 16"),
        ({"shards": 0}, "1 to 16"),
        ({"table": ""}, "metering table"),
        ({"max_attempts": 0}, "at least 1"),
    ],
)
def test_bad_settings_are_refused(
    rds_data: Any, dynamodb: Any, kwargs: dict[str, Any], message: str
) -> None:
    settings: dict[str, Any] = {
        "table": "T",
        "resource_arn": CLUSTER_ARN,
        "secret_arn": SECRET_ARN,
        "dynamodb_client": dynamodb,
        "spill_path": "x/data/y.json",
    }
    with pytest.raises(UsageError, match=re.escape(message)):
        MeteredDataApi(rds_data, **{**settings, **kwargs})


def test_only_an_rds_data_client_is_accepted(dynamodb: Any) -> None:
    with pytest.raises(UsageError, match="rds-data"):
        MeteredDataApi(dynamodb, table="T", resource_arn=CLUSTER_ARN, secret_arn=SECRET_ARN)


@pytest.mark.parametrize("tenant", ["", "  ", None, 1.5, True])
def test_a_tenant_id_must_be_given(api: Any, tap: Any, tenant: Any) -> None:
    with pytest.raises(UsageError, match="tenant id"), api.tenant(tenant):
        pass
    assert tap.seen() == []  # nothing was sent


def test_an_int_tenant_id_is_sent_as_text(api: Any, tap: Any) -> None:
    with api.tenant(42):
        pass
    assert tap.seen()[1].request["parameters"][0]["value"] == {"stringValue": "42"}


def test_sql_parameters() -> None:
    stamp = datetime(2026, 10, 31, 23, 59, 59, 120000, tzinfo=UTC)
    given = {
        "n": None,
        "b": True,
        "i": 7,
        "f": 0.5,
        "s": "x",
        "blob": b"\x00\x01",
        "d": Decimal("1.10"),
        "u": UUID(int=1),
        "ts": stamp,
        "day": date(2026, 10, 31),
    }
    assert sql_parameters(given) == [
        {"name": "n", "value": {"isNull": True}},
        {"name": "b", "value": {"booleanValue": True}},
        {"name": "i", "value": {"longValue": 7}},
        {"name": "f", "value": {"doubleValue": 0.5}},
        {"name": "s", "value": {"stringValue": "x"}},
        {"name": "blob", "value": {"blobValue": b"\x00\x01"}},
        {"name": "d", "value": {"stringValue": "1.10"}, "typeHint": "DECIMAL"},
        {
            "name": "u",
            "value": {"stringValue": "00000000-0000-0000-0000-000000000001"},
            "typeHint": "UUID",
        },
        {
            "name": "ts",
            "value": {"stringValue": "2026-10-31 23:59:59.120000"},
            "typeHint": "TIMESTAMP",
        },
        {"name": "day", "value": {"stringValue": "2026-10-31"}, "typeHint": "DATE"},
    ]
    raw = [{"name": "a", "value": {"longValue": 1}}]
    assert sql_parameters(raw) == raw
    assert sql_parameters(None) == []
    with pytest.raises(UsageError, match="'x': cannot send a set"):
        sql_parameters({"x": {1}})
    with pytest.raises(UsageError, match="give a mapping"):
        sql_parameters("id = 7")  # type: ignore[arg-type]


def test_frame_helpers_agree_with_records_module() -> None:
    """The ts format the hook writes is the one meter's decoder parses, at the edges of a day."""
    from metering.hook.records import CallRecord, export_line

    record = CallRecord(
        "t",
        "rid",
        datetime(2026, 10, 31, 23, 59, 59, 999999, tzinfo=UTC),
        "ExecuteStatement",
        0,
        10_000_000,
    )
    line = export_line(record.item()).encode()
    decoded = decode_export_lines([(1, line)], "x")
    frame, invalid = validate(items_frame(decoded.items, decoded.numbers), "x")
    assert invalid == []
    assert frame["ts"].to_list() == [datetime(2026, 10, 31, 23, 59, 59, 999000, tzinfo=UTC)]
    assert json.loads(line)["Item"]["pk"]["S"].startswith("METER#2026-10-31#")
    assert frame.schema["request_bytes"] == pl.Int64


def test_records_are_flushed_when_the_process_exits(
    tap: Any, table: str, scan: Any, tmp_path: Path
) -> None:
    """A program that never calls close() still writes its records on a normal exit."""
    import subprocess
    import sys

    program = f"""
import boto3
from metering.hook import MeteredDataApi

def client(service):
    return boto3.session.Session().client(
        service, region_name="us-east-1", endpoint_url={tap.url!r},
        aws_access_key_id="testing", aws_secret_access_key="testing")

api = MeteredDataApi(client("rds-data"), table={table!r}, resource_arn={CLUSTER_ARN!r},
                     secret_arn={SECRET_ARN!r}, dynamodb_client=client("dynamodb"),
                     spill_path={str(tmp_path / "data" / "spill.json")!r}, max_age=3600)
with api.tenant("77") as t:
    t.execute("SELECT 1")
assert api.stats.buffered == 4
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    subprocess.run([sys.executable, "-c", program], check=True, env=env, timeout=120)

    assert_matches_wire(scan(table), tap.seen("rds-data"), "77")
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("status", "parsed", "recorded"),
    [
        (200, {"ResponseMetadata": {"RequestId": "r"}}, None),
        (400, {"Error": {"Code": "BadRequestException", "Message": "no"}}, "BadRequestException"),
        (502, {"Error": {"Code": "", "Message": "Bad Gateway"}}, "502"),  # no code: the status
        (503, None, "503"),
    ],
)
def test_the_error_code_recorded(status: int, parsed: Any, recorded: str | None) -> None:
    """SPEC 2.2: the Data API error code, the HTTP status for an error without one, nothing
    on success."""
    from metering.hook._wire import error_code

    assert error_code(status, parsed) == recorded


def test_a_tenant_reads_its_usage_in_its_own_transaction(api: Any, tap: Any) -> None:
    """``usage()`` sends the statement ``meter publish``'s tables answer (tested against
    PostgreSQL in test_publish), with the tenant set first and the month bound."""
    from metering.publish import usage_sql

    with api.tenant("42") as t:
        assert t.usage("2026-10") == []  # moto's canned answer holds no records
    begin, set_tenant, statement, _ = tap.seen("rds-data")
    assert set_tenant.request["sql"] == SET_TENANT_SQL
    assert statement.request["sql"] == usage_sql("meter_usage", month=True)
    assert statement.request["parameters"] == [
        {"name": "month", "value": {"stringValue": "2026-10"}}
    ]
    assert statement.request["formatRecordsAs"] == "JSON"
    assert statement.request["transactionId"] == begin.response["transactionId"]
