"""CloudTrail collector: listing, bodies, quarantine, month edges, S3 over HTTP, real files."""

from __future__ import annotations

import gzip
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import boto3
import duckdb
import msgspec
import polars as pl
import pytest

from metering.collect.cloudtrail import NOT_A_LOG, read_cloudtrail, trail_filter
from metering.collect.exports import read_exports
from metering.collect.trailrecord import Record
from metering.config import load_config
from metering.errors import EmptyMonthError
from metering.month import Month
from metering.pipeline import bill
from metering.sample import generate
from metering.sample.cloudtrail import ANALYTICS_CLUSTER_ARN
from tests.conftest import CORPORA
from tests.helpers import export_records, record

OCT = Month(2026, 10)
NOV = Month(2026, 11)
ACCOUNT = "123456789012"
CLUSTER = f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster:main"
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:tenant-acme-AbCdEf"


def event(
    event_id: str,
    when: str,
    *,
    name: str = "ExecuteStatement",
    source: str = "rdsdataapi.amazonaws.com",
    request_id: str | None = "",
    user: str | None = f"arn:aws:sts::{ACCOUNT}:assumed-role/tenant-acme/app",
    issuer: str | None = f"arn:aws:iam::{ACCOUNT}:role/tenant-acme",
    error: str | None = None,
) -> dict[str, object]:
    """A CloudTrail record as AWS writes it (v2 data event unless ``source`` says v1)."""
    identity: dict[str, object] = {"type": "AssumedRole", "accountId": ACCOUNT}
    if user is not None:
        identity["arn"] = user
    if issuer is not None:
        identity["sessionContext"] = {
            "sessionIssuer": {"type": "Role", "arn": issuer, "accountId": ACCOUNT},
            "attributes": {"creationDate": "2026-10-01T00:00:00Z", "mfaAuthenticated": "false"},
        }
    rec: dict[str, object] = {
        "eventVersion": "1.09",
        "userIdentity": identity,
        "eventTime": when,
        "eventSource": source,
        "eventName": name,
        "awsRegion": "us-east-1",
        "requestParameters": {
            "database": "**********",
            "resourceArn": CLUSTER,
            "secretArn": SECRET,
            "sql": "**********",
        },
        "responseElements": None,
        "requestID": f"req-{event_id}" if request_id == "" else request_id,
        "eventID": event_id,
        "eventType": "Rds Data Service" if source.startswith("rdsdataapi") else "AwsApiCall",
        "recipientAccountId": ACCOUNT,
    }
    if error is not None:
        rec["errorCode"] = error
        rec["errorMessage"] = "failed"
    return rec


def noise(event_id: str, when: str) -> dict[str, object]:
    return {
        "eventVersion": "1.08",
        "userIdentity": {"type": "AWSService", "invokedBy": "secretsmanager.amazonaws.com"},
        "eventTime": when,
        "eventSource": "kms.amazonaws.com",
        "eventName": "Decrypt",
        "requestParameters": {"encryptionContext": {"SecretARN": SECRET}},
        "eventID": event_id,
    }


def key(day: str, name: str = "f", org: str | None = None) -> str:
    """A delivery-layout object name for a file delivered on ``day`` (YYYY-MM-DD)."""
    org_part = f"{org}/" if org else ""
    stamp = day.replace("-", "") + "T0005Z"
    return (
        f"AWSLogs/{org_part}{ACCOUNT}/CloudTrail/us-east-1/{day.replace('-', '/')}/"
        f"{ACCOUNT}_CloudTrail_us-east-1_{stamp}_{name}.json.gz"
    )


def body(records: list[dict[str, object]], form: str = "records") -> bytes:
    if form == "records":
        return json.dumps({"Records": records}).encode()
    if form == "array":
        return json.dumps(records).encode()
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)  # JSON Lines


def put(
    root: Path, name: str, records: list[dict[str, object]], form: str = "records", gz: bool = True
) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    data = body(records, form)
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return path


def trail_config(
    folder: Path, body_text: str = "", uris: str = '["trail"]', metering: bool = False
) -> Path:
    """A meter.toml reading CloudTrail (and, with ``metering``, the export in dynamodb/)."""
    text = f'[warehouse]\npath = "meter.duckdb"\n\n[sources.cloudtrail]\nuris = {uris}\n'
    if metering:
        text += '\n[sources.metering]\nexports = ["dynamodb"]\n'
    path = folder / "meter.toml"
    path.write_text(text + body_text)
    return path


def counters(result: object) -> dict[str, int]:
    got = result.counters.as_dict()  # type: ignore[attr-defined]
    return {k: v for k, v in got.items() if v and k != "aws_retries"}


# -- listing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "late_days", "kept"),
    [
        (key("2026-10-01"), 3, True),
        (key("2026-10-31"), 3, True),
        (key("2026-11-03"), 3, True),
        (key("2026-11-04"), 3, False),
        (key("2026-11-01"), 0, False),
        (key("2026-09-30"), 3, False),  # delivered before the month: cannot hold its events
        (key("2026-10-15", org="o-abc123def4"), 3, True),
        (key("2026-12-15", org="o-abc123def4"), 3, False),
        (f"prefix/{key('2026-10-02')}", 3, True),
        (key("2026-10-02").replace("/CloudTrail/", "/CloudTrail-Digest/"), 3, False),
        (key("2026-10-02").replace("/CloudTrail/", "/CloudTrail-Insight/"), 3, False),
        (f"AWSLogs/{ACCOUNT}/elasticloadbalancing/us-east-1/2026/10/02/x.log.gz", 3, False),
        (f"AWSLogs/{ACCOUNT}/vpcflowlogs/us-east-1/2026/10/02/x.json.gz", 3, False),
        (f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/10/02/notes.txt", 3, False),
        ("us-east-1/2026/10/05/x.json.gz", 3, True),  # root set inside the layout
        ("us-east-1/2026/12/05/x.json.gz", 3, False),
        ("loose/attack.json", 3, True),  # no dated layout: always read
        ("loose/lake-export.jsonl.gz", 3, True),
        ("loose/LICENSE", 3, False),
        ("loose/README.md", 3, False),
    ],
)
def test_only_the_folders_a_month_needs_are_listed(name: str, late_days: int, kept: bool) -> None:
    assert trail_filter(OCT, late_days)(name) is kept


# -- bodies --------------------------------------------------------------------------------

EXPECTED_ROW = {
    "event_id": "e1",
    "request_id": "req-e1",
    "event_time": datetime(2026, 10, 5, 12, 0, 1, tzinfo=UTC),
    "event_source": "rdsdataapi.amazonaws.com",
    "operation": "ExecuteStatement",
    "error_code": None,
    "user_arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/tenant-acme/app",
    "issuer_arn": f"arn:aws:iam::{ACCOUNT}:role/tenant-acme",
    "source_identity": None,
    "secret_arn": SECRET,
    "resource_arn": CLUSTER,
}


@pytest.mark.parametrize("form", ["records", "array", "lines"])
@pytest.mark.parametrize("gz", [True, False])
def test_every_body_form_gives_the_same_events(tmp_path: Path, form: str, gz: bool) -> None:
    records = [noise("n1", "2026-10-05T12:00:00Z"), event("e1", "2026-10-05T12:00:01Z")]
    put(tmp_path, "loose/file.json" + (".gz" if gz else ""), records, form, gz)
    got = read_cloudtrail([str(tmp_path)], OCT, 3)
    assert got.frame.to_dicts() == [EXPECTED_ROW]
    assert counters(got) == {"files_read": 1, "records_seen": 2, "skipped_non_data_api": 1}
    assert got.quarantine == []


def test_json_lines_of_whole_delivery_bodies(tmp_path: Path) -> None:
    """``zcat *.json.gz > all.jsonl``: each line a ``{"Records": [...]}`` body."""
    lines = [
        json.dumps(
            {"Records": [noise("n1", "2026-10-05T12:00:00Z"), event("e1", "2026-10-05T12:00:01Z")]}
        ),
        json.dumps({"Records": [event("e2", "2026-10-05T12:00:02Z", error="BadRequestException")]}),
    ]
    (tmp_path / "all.jsonl").write_text("\n".join(lines) + "\n")
    got = read_cloudtrail([str(tmp_path)], OCT, 3)
    assert got.frame["event_id"].to_list() == ["e1", "e2"]
    assert got.frame["error_code"].to_list() == [None, "BadRequestException"]
    assert counters(got) == {"files_read": 1, "records_seen": 3, "skipped_non_data_api": 1}


def test_identity_fields_and_missing_optional_fields(tmp_path: Path) -> None:
    v1 = event("v1", "2026-10-05T12:00:00Z", source="rdsdata.amazonaws.com", name="ExecuteSql")
    v1["userIdentity"]["sessionContext"]["sourceIdentity"] = "alice"  # type: ignore[index]
    bare = event("bare", "2026-10-05T12:00:00.250Z", request_id=None, user=None, issuer=None)
    del bare["requestParameters"]  # CloudTrail drops parameters over 100 KB
    del bare["requestID"]
    top = event("top", "2026-10-05T12:00:00Z", user=None, issuer=None)
    top["sourceIdentity"] = "bob"
    put(tmp_path, "loose/a.json", [v1, bare, top], gz=False)
    rows = {r["event_id"]: r for r in read_cloudtrail([str(tmp_path)], OCT, 3).frame.to_dicts()}
    assert rows["v1"]["event_source"] == "rdsdata.amazonaws.com"
    assert rows["v1"]["operation"] == "ExecuteSql"
    assert rows["v1"]["source_identity"] == "alice"
    assert rows["bare"] == {
        "event_id": "bare",
        "request_id": None,
        "event_time": datetime(2026, 10, 5, 12, 0, 0, 250_000, tzinfo=UTC),
        "event_source": "rdsdataapi.amazonaws.com",
        "operation": "ExecuteStatement",
        "error_code": None,
        "user_arn": None,
        "issuer_arn": None,
        "source_identity": None,
        "secret_arn": None,
        "resource_arn": None,
    }
    assert rows["top"]["source_identity"] == "bob"


def test_empty_request_ids_neither_join_nor_dedupe(tmp_path: Path) -> None:
    events = [event(name, "2026-10-05T12:00:00Z", request_id="  ") for name in "abc"]
    events[0]["requestID"] = events[1]["requestID"] = ""
    put(tmp_path / "trail", key("2026-10-05"), events)
    export_records(tmp_path / "dynamodb", [record("", "acme", "2026-10-05T12:00:00.000Z")])
    result = bill(load_config(trail_config(tmp_path, metering=True)), OCT)
    assert result.counters.calls_billed == 3
    assert result.counters.duplicates == 0
    assert result.counters.joined == 0
    assert result.counters.quarantined == 1  # the record with an empty request_id


# -- quarantine ----------------------------------------------------------------------------


def test_bad_data_api_records_are_quarantined_others_skipped(tmp_path: Path) -> None:
    no_id = event("x", "2026-10-05T12:00:00Z")
    del no_id["eventID"]
    no_time = event("no-time", "2026-10-05T12:00:00Z")
    del no_time["eventTime"]
    local_time = event("local", "2026-10-05T12:00:00+02:00")  # an offset, not UTC Z
    mistyped = event("mistyped", "2026-10-05T12:00:00Z")
    mistyped["errorCode"] = 500
    no_name = event("no-name", "2026-10-05T12:00:00Z")
    del no_name["eventName"]
    odd_noise = noise("odd", "2026-10-05T12:00:00Z")
    odd_noise["requestParameters"] = {"resourceArn": ["a", "b"]}  # another service's shape
    records = [
        event("good", "2026-10-05T12:00:00Z"),  # record 1
        no_id,  # 2
        no_time,  # 3
        local_time,  # 4
        mistyped,  # 5
        odd_noise,  # 6: skipped, not quarantined
        None,  # 7
        no_name,  # 8
        {"eventSource": "s3.amazonaws.com"},  # 9: no eventID, but not ours: skipped
    ]
    path = put(tmp_path, key("2026-10-05"), records)  # type: ignore[arg-type]
    got = read_cloudtrail([str(tmp_path)], OCT, 3)
    assert got.frame["event_id"].to_list() == ["good"]
    assert [(q.source_uri, q.locator) for q in got.quarantine] == [
        (str(path), f"record {n}") for n in (2, 3, 4, 5, 7, 8)
    ]
    reasons = {q.locator: q.reason for q in got.quarantine}
    assert reasons == {
        "record 2": "eventID is missing",
        "record 3": "eventTime is missing",
        "record 4": "eventTime is not a UTC ISO-8601 time like 2026-10-31T23:59:59Z: 2026-10-05T12:00:00+02:00",
        "record 5": "mistyped field: Expected `str | null`, got `int` - at `$.errorCode`",
        "record 7": "not a JSON object: NoneType",
        "record 8": "eventName is missing",
    }
    assert counters(got) == {
        "files_read": 1,
        "records_seen": 9,
        "skipped_non_data_api": 2,
        "quarantined": 6,
    }


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (
            {"awsAccountId": ACCOUNT, "digestStartTime": "2026-10-01T00:00:00Z", "logFiles": []},
            NOT_A_LOG,
        ),
        ({"Records": {"eventID": "x"}}, "Records is not a list but dict"),
        ("just a string", NOT_A_LOG),
    ],
)
def test_a_file_that_is_no_trail_body_is_one_quarantine_entry(
    tmp_path: Path, content: object, reason: str
) -> None:
    (tmp_path / "digest.json").write_text(json.dumps(content))
    got = read_cloudtrail([str(tmp_path)], OCT, 3)
    assert [(q.locator, q.reason) for q in got.quarantine] == [("file", reason)]
    assert counters(got) == {"files_read": 1, "records_seen": 1, "quarantined": 1}


def test_invalid_json_file(tmp_path: Path) -> None:
    """A cut body: the record before the cut is read (not ours: skipped), the cut is one
    quarantine entry."""
    (tmp_path / "broken.json").write_text('{"Records": [{"eventID": "a"},')
    (tmp_path / "junk.json").write_text("this is not JSON\n")
    got = read_cloudtrail([str(tmp_path)], OCT, 3)
    assert [(Path(q.source_uri).name, q.locator, q.reason) for q in got.quarantine] == [
        ("broken.json", "after record 1", "truncated: the text ends after record 1"),
        ("junk.json", "line 1", "not JSON: text outside any JSON value"),
    ]
    assert counters(got) == {
        "files_read": 2,
        "records_seen": 3,
        "skipped_non_data_api": 1,
        "quarantined": 2,
    }


def test_json_lines_with_a_bad_line_keeps_the_good_ones(tmp_path: Path) -> None:
    lines = [
        json.dumps(event("e1", "2026-10-05T12:00:00Z")),
        '{"eventID": "cut", "eventSou',
        json.dumps(event("e3", "2026-10-05T12:00:00Z") | {"errorCode": 7}),
        json.dumps(noise("n4", "2026-10-05T12:00:00Z") | {"requestID": 7}),
        json.dumps(event("e5", "2026-10-05T12:00:00Z")),
    ]
    (tmp_path / "lake.jsonl").write_text("\n".join(lines) + "\n")
    got = read_cloudtrail([str(tmp_path)], OCT, 3)
    assert got.frame["event_id"].to_list() == ["e1", "e5"]
    assert [(q.locator, q.reason) for q in got.quarantine] == [
        ("line 2", "invalid JSON: Input data was truncated"),
        ("line 3", "mistyped field: Expected `str | null`, got `int` - at `$.errorCode`"),
    ]
    assert counters(got) == {
        "files_read": 1,
        "records_seen": 5,
        "skipped_non_data_api": 1,
        "quarantined": 2,
    }


def test_truncated_gzip_delivery_file(tmp_path: Path) -> None:
    """A delivery body is one line: a cut file still yields every record complete before
    the cut, and one quarantine entry for the cut."""
    records = [event(f"e{i}", "2026-10-05T12:00:00Z") for i in range(20)]
    path = put(tmp_path, key("2026-10-05", "cut"), records)
    path.write_bytes(path.read_bytes()[:-40])
    put(tmp_path, key("2026-10-05", "whole"), [event("w", "2026-10-05T12:00:00Z")])
    got = read_cloudtrail([str(tmp_path)], OCT, 3)
    kept = got.frame.height - 1
    assert 10 < kept < 20
    assert got.frame["event_id"].to_list() == [f"e{i}" for i in range(kept)] + ["w"]
    assert [(Path(q.source_uri).name, q.locator, q.reason) for q in got.quarantine] == [
        (
            path.name,
            f"record {kept + 1}",
            "truncated gzip: the file ends before the gzip stream does",
        )
    ]
    assert counters(got) == {"files_read": 2, "records_seen": kept + 2, "quarantined": 1}


def test_truncated_gzip_json_lines_keeps_the_complete_lines(tmp_path: Path) -> None:
    records = [event(f"e{i}", "2026-10-05T12:00:00Z") for i in range(200)]
    path = put(tmp_path, "loose/lake.jsonl.gz", records, form="lines")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    got = read_cloudtrail([str(tmp_path)], OCT, 3)
    kept = got.frame.height
    assert 0 < kept < 200
    assert got.frame["event_id"].to_list() == [f"e{i}" for i in range(kept)]
    assert [(q.locator, q.reason) for q in got.quarantine] == [
        (f"after line {kept}", "truncated gzip: the file ends before the gzip stream does")
    ]
    assert counters(got) == {"files_read": 1, "records_seen": kept + 1, "quarantined": 1}


def test_inputs_are_fingerprinted_by_content(tmp_path: Path) -> None:
    put(tmp_path, key("2026-10-05"), [event("e1", "2026-10-05T12:00:00Z")])
    put(tmp_path, key("2026-10-05").replace("/CloudTrail/", "/CloudTrail-Digest/"), [])
    path = tmp_path / key("2026-10-05")
    got = read_cloudtrail([str(tmp_path)], OCT, 3)
    import hashlib

    assert [(i.uri, i.name, i.digest, i.size) for i in got.inputs] == [
        (
            str(path),
            key("2026-10-05"),
            hashlib.sha256(path.read_bytes()).hexdigest(),
            path.stat().st_size,
        )
    ]


def test_progress_is_reported_per_file(tmp_path: Path) -> None:
    for day in ("2026-10-01", "2026-10-02", "2026-10-03"):
        put(tmp_path, key(day), [event(day, f"{day}T00:00:00Z")])
    seen: list[tuple[str, int, int]] = []
    read_cloudtrail([str(tmp_path)], OCT, 3, lambda *a: seen.append(a))
    assert seen == [
        ("cloudtrail files", 1, 3),
        ("cloudtrail files", 2, 3),
        ("cloudtrail files", 3, 3),
    ]


def test_overlapping_roots_read_each_file_once(tmp_path: Path) -> None:
    put(tmp_path, key("2026-10-05"), [event("e1", "2026-10-05T12:00:00Z")])
    got = read_cloudtrail([str(tmp_path), str(tmp_path / "AWSLogs")], OCT, 3)
    assert counters(got) == {"files_read": 1, "records_seen": 1}


# -- month edges, duplicates, late delivery (full pipeline) -------------------------------


def _bill(tmp_path: Path, month: Month = OCT, body_text: str = "") -> object:
    return bill(load_config(trail_config(tmp_path, body_text)), month)


def test_month_edge_goes_by_event_time_not_folder(tmp_path: Path) -> None:
    trail = tmp_path / "trail"
    put(trail, key("2026-10-01"), [
        event("sep-last", "2026-09-30T23:59:59Z"),  # September's late delivery
        event("oct-first", "2026-10-01T00:00:00Z"),
    ])  # fmt: skip
    put(trail, key("2026-11-01"), [
        event("oct-last", "2026-10-31T23:59:59Z"),  # October's, delivered in November
        event("nov-first", "2026-11-01T00:00:00Z"),
    ])  # fmt: skip
    put(trail, key("2026-09-30"), [event("sep-mid", "2026-09-30T23:50:00Z")])  # not read

    oct_result = _bill(tmp_path)
    assert counters(oct_result) == {
        "files_read": 2,
        "records_seen": 4,
        "calls_billed": 2,
        "out_of_month": 2,
    }
    con = duckdb.connect(str(tmp_path / "meter.duckdb"), read_only=True)
    assert con.sql(
        "SELECT event_id, event_time, units, source, size_estimated FROM calls "
        "WHERE month = '2026-10' ORDER BY event_time"
    ).pl().rows() == [
        ("oct-first", datetime(2026, 10, 1, tzinfo=UTC), 1, "cloudtrail", True),
        ("oct-last", datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC), 1, "cloudtrail", True),
    ]
    con.close()

    nov_result = _bill(tmp_path, NOV)
    assert counters(nov_result) == {
        "files_read": 1,
        "records_seen": 2,
        "calls_billed": 1,
        "out_of_month": 1,
    }


def test_duplicate_deliveries_count_each_event_once(tmp_path: Path) -> None:
    records = [event(f"e{i}", "2026-10-05T12:00:00Z") for i in range(5)] + [
        noise("n", "2026-10-05T12:00:00Z")
    ]
    trail = tmp_path / "trail"
    put(trail, key("2026-10-05", "first"), records)
    put(trail, key("2026-10-05", "again"), records[::-1])  # same records, another file
    put(trail, key("2026-10-06", "third"), records[:2])  # delivered once more a day later
    result = _bill(tmp_path)
    assert counters(result) == {
        "files_read": 3,
        "records_seen": 14,
        "calls_billed": 5,
        "skipped_non_data_api": 2,
        "duplicates": 7,
    }
    assert result.bill.total_units == 5  # type: ignore[attr-defined]


def test_late_delivery_read_within_late_days(tmp_path: Path) -> None:
    trail = tmp_path / "trail"
    put(trail, key("2026-11-03"), [event("late", "2026-10-31T22:00:00Z")])
    put(trail, key("2026-11-04"), [event("too-late", "2026-10-31T22:00:00Z")])
    assert counters(_bill(tmp_path)) == {"files_read": 1, "records_seen": 1, "calls_billed": 1}
    config = trail_config(tmp_path)
    config.write_text(config.read_text().replace("uris =", "late_days = 4\nuris ="))
    result = bill(load_config(config), OCT)
    assert counters(result) == {"files_read": 2, "records_seen": 2, "calls_billed": 2}


def test_cloudtrail_only_bills_unknown_size_units(tmp_path: Path) -> None:
    trail = tmp_path / "trail"
    put(trail, key("2026-10-05"), [
        event("a", "2026-10-05T12:00:00Z"),
        event("b", "2026-10-05T12:00:01Z", name="BeginTransaction"),
        event("c", "2026-10-05T12:00:02Z", error="BadRequestException"),
        event("d", "2026-10-05T12:00:03Z", name="DescribeSomething"),
        event("e", "2026-10-05T12:00:04Z", user="arn:aws:iam::123456789012:user/ops", issuer=None),
    ])  # fmt: skip
    rules = (
        "\n[pricing]\nunknown_size_units = 2\n\n[attribution]\n[[attribution.rules]]\n"
        'kind = "principal"\npattern = "assumed-role/tenant-(?P<tenant>[a-z0-9-]+)/"\n'
    )
    result = _bill(tmp_path, body_text=rules)
    assert counters(result) == {
        "files_read": 1,
        "records_seen": 5,
        "calls_billed": 3,
        "errored_calls": 1,
        "skipped_operations": 1,
    }
    con = duckdb.connect(str(tmp_path / "meter.duckdb"), read_only=True)
    assert con.execute(
        "SELECT event_id, request_id, tenant_id, request_bytes, response_bytes, units, "
        "attribution, source, size_estimated FROM calls ORDER BY event_id"
    ).fetchall() == [
        ("a", "req-a", "acme", None, None, 2, "principal", "cloudtrail", True),
        ("b", "req-b", "acme", None, None, 2, "principal", "cloudtrail", True),
        ("e", "req-e", "__unattributed__", None, None, 2, "unattributed", "cloudtrail", True),
    ]
    assert con.execute(
        "SELECT tenant_id, calls, units FROM tenant_month ORDER BY 1"
    ).fetchall() == [
        ("__unattributed__", 1, 2),
        ("acme", 2, 4),
    ]
    con.close()

    billed_errors = _bill(
        tmp_path,
        body_text=rules.replace(
            "unknown_size_units = 2", "unknown_size_units = 2\nbill_errors = true"
        ),
    )
    assert billed_errors.counters.calls_billed == 4  # type: ignore[attr-defined]
    assert billed_errors.counters.errored_calls == 1  # type: ignore[attr-defined]


def test_both_sources_joined_and_reconciled(tmp_path: Path) -> None:
    trail = tmp_path / "trail"
    put(trail, key("2026-10-05"), [
        event("both", "2026-10-05T12:00:00Z", request_id="r-both"),
        event("trail-only", "2026-10-05T12:00:01Z", request_id="r-trail"),
    ])  # fmt: skip
    export_records(tmp_path / "dynamodb", [
        record("r-both", "globex", "2026-10-05T12:00:00.300Z", 40000, 1),
        record("r-meter", "globex", "2026-10-06T08:00:00.000Z"),
    ])  # fmt: skip
    rules = (
        '\n[attribution]\n[[attribution.rules]]\nkind = "metering_record"\n'
        '[[attribution.rules]]\nkind = "principal"\n'
        'pattern = "assumed-role/tenant-(?P<tenant>[a-z0-9-]+)/"\n'
    )
    config = trail_config(tmp_path, rules, metering=True)
    result = bill(load_config(config), OCT)
    assert counters(result) == {
        "files_read": 3 + 1,  # two export data files + its empty partition file, one trail file
        "records_seen": 4,
        "calls_billed": 3,
        "joined": 1,
    }
    con = duckdb.connect(str(tmp_path / "meter.duckdb"), read_only=True)
    assert con.execute(
        "SELECT request_id, event_id, tenant_id, units, attribution, source, size_estimated "
        "FROM calls ORDER BY request_id"
    ).fetchall() == [
        ("r-both", "both", "globex", 2, "metering_record", "both", False),
        ("r-meter", None, "globex", 1, "metering_record", "metering", False),
        ("r-trail", "trail-only", "acme", 1, "principal", "cloudtrail", True),
    ]
    assert con.execute(
        "SELECT day, matched, cloudtrail_only, metering_only FROM reconciliation ORDER BY day"
    ).fetchall() == [
        (datetime(2026, 10, 5).date(), 1, 1, 0),
        (datetime(2026, 10, 6).date(), 0, 0, 1),
    ]


# -- S3 over HTTP (moto server) ------------------------------------------------------------


def _upload(bucket: str, objects: dict[str, bytes]) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(
            pool.map(
                lambda kv: s3.put_object(Bucket=bucket, Key=kv[0], Body=kv[1]), objects.items()
            )
        )


def test_s3_listing_pages_and_reading(aws: str) -> None:
    """1,000 digest objects fill the first listing page (``CloudTrail-Digest/`` sorts before
    ``CloudTrail/``): the trail files are all on later pages."""
    objects: dict[str, bytes] = {}
    for i in range(1000):
        digest_key = key(f"2026-10-{i % 31 + 1:02d}", f"d{i:04d}")
        objects["trails/" + digest_key.replace("/CloudTrail/", "/CloudTrail-Digest/")] = b"{}"
    wanted = [key(f"2026-10-{day:02d}", f"t{day}") for day in (1, 9, 17, 25, 31)]
    for name in wanted:
        day = name.split("/")[-2]
        objects[f"trails/{name}"] = gzip.compress(
            body(
                [
                    event(f"e{day}", f"2026-10-{day}T01:00:00Z"),
                    noise(f"n{day}", "2026-10-01T00:00:00Z"),
                ]
            ),
            mtime=0,
        )
    org = key("2026-11-02", "org", org="o-abc123def4")
    wanted.append(org)
    objects[f"trails/{org}"] = gzip.compress(
        body([event("org-late", "2026-10-31T23:59:59Z")]), mtime=0
    )
    objects[f"trails/{key('2026-09-15', 'sep')}"] = b"{}"  # before the month: not read
    for i in range(10):  # another service's logs in the same bucket
        objects[
            f"trails/AWSLogs/{ACCOUNT}/elasticloadbalancing/us-east-1/2026/10/02/{i}.log.gz"
        ] = b"x"
    objects["elsewhere/x.json"] = b"{}"  # outside the prefix
    _upload("logs", objects)

    from metering.collect.files import list_objects

    assert len(list_objects("s3://logs/trails").objects) == 1000 + 6 + 1 + 10
    got = read_cloudtrail(["s3://logs/trails"], OCT, 3)
    assert counters(got) == {"files_read": 6, "records_seen": 11, "skipped_non_data_api": 5}
    assert got.quarantine == []
    assert [i.name for i in got.inputs] == sorted(wanted)
    assert got.frame["event_id"].to_list() == ["e01", "e09", "e17", "e25", "e31", "org-late"]
    assert got.frame["event_time"].to_list()[-1] == datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC)
    first = got.inputs[0]
    assert first.uri == f"s3://logs/trails/{wanted[0]}"
    assert first.digest == boto3.client("s3").head_object(Bucket="logs", Key=f"trails/{wanted[0]}")[
        "ETag"
    ].strip('"')


def test_s3_bill_end_to_end(aws: str, tmp_path: Path) -> None:
    _upload("logs", {
        key("2026-10-05"): gzip.compress(body([event("a", "2026-10-05T12:00:00Z")]), mtime=0),
        key("2026-11-01"): gzip.compress(body([event("b", "2026-10-31T23:59:59Z")]), mtime=0),
        key("2026-11-01", "cut"): gzip.compress(body([event("c", "2026-10-31T23:59:59Z")]), mtime=0)[:-30],
    })  # fmt: skip
    result = bill(load_config(trail_config(tmp_path, uris='["s3://logs"]')), OCT)
    assert counters(result) == {
        "files_read": 3,
        "records_seen": 3,
        "calls_billed": 2,
        "quarantined": 1,
    }
    assert [(q.source_uri, q.locator) for q in result.quarantine] == [  # type: ignore[attr-defined]
        (f"s3://logs/{key('2026-11-01', 'cut')}", "record 1")  # cut inside its one record
    ]
    assert result.exit_code == 3  # type: ignore[attr-defined]


# -- real files and AWS's own examples -----------------------------------------------------

REAL = CORPORA / "cloudtrail_real"
DOCS = CORPORA / "aws_doc_examples"


@pytest.mark.skipif(not REAL.is_dir(), reason="corpora not present")
def test_real_cloudtrail_files_read_nothing_billed(tmp_path: Path) -> None:
    got = read_cloudtrail([str(REAL)], OCT, 3)
    json_files = [p for p in REAL.rglob("*") if p.is_file() and ".json" in p.name]
    assert len(json_files) == 91
    assert counters(got) == {"files_read": 91, "records_seen": 3212, "skipped_non_data_api": 3212}
    assert got.quarantine == []
    assert got.frame.height == 0

    # Not one Data API call in July 2023: an empty month, refused unless asked for.
    with pytest.raises(
        EmptyMonthError, match="no source holds a single record of 2023-07: read 91"
    ):
        _bill_uris(tmp_path, [str(REAL)], Month(2023, 7))
    result = _bill_uris(tmp_path, [str(REAL)], Month(2023, 7), allow_empty=True)
    assert counters(result) == {
        "files_read": 91,
        "records_seen": 3212,
        "skipped_non_data_api": 3212,
    }
    assert result.bill.total_units == 0  # type: ignore[attr-defined]


def _bill_uris(
    tmp_path: Path, uris: list[str], month: Month, rules: str = "", allow_empty: bool = False
) -> object:
    config = load_config(trail_config(tmp_path, rules, uris=json.dumps(uris)))
    return bill(config, month, allow_empty=allow_empty)


@pytest.mark.skipif(not DOCS.is_dir(), reason="corpora not present")
@pytest.mark.parametrize("form", ["serverless-v1", "v2-provisioned"])
def test_aws_documentation_examples_are_billed(tmp_path: Path, form: str) -> None:
    example = json.loads((DOCS / f"aws-doc_rds-data-api_{form}_ExecuteStatement.json").read_text())
    put(tmp_path / "trail", "example.json", [example], gz=False)
    rules = (
        '\n[attribution]\n[[attribution.rules]]\nkind = "secret_arn"\n'
        '[attribution.rules.map]\n"arn:aws:secretsmanager:us-east-1:123456789012:secret:dataapisecret-ABC123" = "docs"\n'
    )
    result = _bill_uris(tmp_path, [str(tmp_path / "trail")], Month(2019, 12), rules)
    assert counters(result) == {"files_read": 1, "records_seen": 1, "calls_billed": 1}
    con = duckdb.connect(str(tmp_path / "meter.duckdb"), read_only=True)
    assert con.sql(
        "SELECT request_id, event_id, event_time, tenant_id, operation, units, attribution, source "
        "FROM calls"
    ).pl().rows() == [
        (
            "6ba9a36e-b3aa-4ca8-9a2e-15a9eada988e",
            "a2c7a357-ee8e-4755-a0d0-aed11ed4253a",
            datetime(2019, 12, 18, 0, 49, 34, tzinfo=UTC),
            "docs",
            "ExecuteStatement",
            1,
            "secret_arn",
            "cloudtrail",
        )
    ]


@pytest.mark.skipif(not DOCS.is_dir(), reason="corpora not present")
def test_both_documentation_examples_are_one_request(tmp_path: Path) -> None:
    """AWS prints the same eventID and requestID in both forms: one call, one duplicate."""
    for form in ("serverless-v1", "v2-provisioned"):
        example = json.loads(
            (DOCS / f"aws-doc_rds-data-api_{form}_ExecuteStatement.json").read_text()
        )
        put(tmp_path / "trail", f"{form}.json", [example], gz=False)
    result = _bill_uris(tmp_path, [str(tmp_path / "trail")], Month(2019, 12))
    assert counters(result) == {
        "files_read": 2,
        "records_seen": 2,
        "calls_billed": 1,
        "duplicates": 1,
    }


# -- the generated sample ------------------------------------------------------------------


def test_sample_trail_exercises_the_join(tmp_path: Path) -> None:
    summary = generate(tmp_path, OCT, tenant_count=8, calls=2000, seed=11)
    trail = tmp_path / "cloudtrail" / "AWSLogs" / "123456789012"
    assert sorted(p.name for p in trail.iterdir()) == ["CloudTrail", "CloudTrail-Digest"]
    assert len(list((trail / "CloudTrail-Digest").rglob("*.json.gz"))) == 24

    # Which files meter must read: delivered from Oct 1 to Nov 3 (late_days = 3).
    logs = sorted((trail / "CloudTrail").rglob("*.json.gz"))
    days = {p: "-".join(p.parts[-4:-1]) for p in logs}
    wanted = [p for p in logs if "2026-10-01" <= days[p] <= "2026-11-03"]
    assert any(days[p] == "2026-09-30" for p in logs)  # September's edge, not read
    assert any(days[p] == "2026-11-02" for p in logs)  # the late batch
    bodies = [p.read_bytes() for p in wanted]
    repeated = {b for b in bodies if bodies.count(b) == 2}
    assert len(repeated) == 1  # one duplicate delivery
    duplicated = sum(
        r["eventSource"] == "rdsdataapi.amazonaws.com"
        or r["eventSource"] == "rdsdata.amazonaws.com"
        for r in json.loads(gzip.decompress(repeated.pop()))["Records"]
    )

    records = read_exports([str(tmp_path / "dynamodb")]).frame
    in_month = records.filter(pl.col("ts").dt.month() == 10)
    analytics = in_month.filter(pl.col("resource_arn") == ANALYTICS_CLUSTER_ARN).height
    assert analytics > 0

    result = bill(load_config(summary.config), OCT)
    c = result.counters
    # + the export's 4 data files and its empty one, the CUR export's data file and manifest
    assert c.files_read == len(wanted) + 5 + 2
    assert c.duplicates == duplicated
    assert c.errored_calls == 6
    assert c.calls_billed == 2000 + 20  # the metered month + the unmetered calls
    assert c.records_seen == (
        c.quarantined + c.skipped_non_data_api + c.skipped_operations + c.duplicates
        + c.out_of_month + c.errored_calls + c.calls_billed + c.joined
    )  # fmt: skip
    con = duckdb.connect(str(tmp_path / "meter.duckdb"), read_only=True)
    assert con.execute(
        "SELECT sum(matched), sum(cloudtrail_only), sum(metering_only) FROM reconciliation"
    ).fetchall() == [(2000 - analytics, 20 + 6, analytics)]
    assert con.execute(
        "SELECT attribution, source, size_estimated, count(*) FROM calls GROUP BY ALL ORDER BY ALL"
    ).fetchall() == [
        ("metering_record", "both", False, 2000 - analytics),
        ("metering_record", "metering", False, analytics),
        ("principal", "cloudtrail", True, 20),
    ]
    # The month's last three calls, at 23:59:5x, came in next month's first folder.
    latest = (
        con.sql("SELECT event_time, source FROM calls ORDER BY event_time DESC LIMIT 3").pl().rows()
    )
    assert latest == [
        (datetime(2026, 10, 31, 23, 59, second, tzinfo=UTC), "both") for second in (59, 57, 55)
    ]
    november_first = [
        r["eventTime"]
        for p in logs
        if days[p] == "2026-11-01"
        for r in json.loads(gzip.decompress(p.read_bytes()))["Records"]
    ]
    assert {"2026-10-31T23:59:55Z", "2026-10-31T23:59:57Z", "2026-10-31T23:59:59Z"} <= set(
        november_first
    )


def test_cloudtrail_lake_time_format_is_read_as_utc(tmp_path: Path) -> None:
    lake = event("lake-1", "2026-10-31 23:59:59.500")
    (tmp_path / "lake.jsonl").write_text(json.dumps(lake) + "\n")
    got = read_cloudtrail([str(tmp_path)], OCT, 3)
    assert got.quarantine == []
    assert got.frame["event_time"].to_list() == [
        datetime(2026, 10, 31, 23, 59, 59, 500000, tzinfo=UTC)
    ]


# -- the cluster ARN: requestParameters.resourceArn, else resources[] ------------------------

OTHER_CLUSTER = f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster:reports"


def big_batch(event_id: str, when: str) -> dict[str, object]:
    """A call whose request parameters passed 100 KB: CloudTrail dropped them (and says
    so in ``additionalEventData``), but ``resources`` still names the cluster."""
    rec = event(event_id, when)
    del rec["requestParameters"]
    rec["additionalEventData"] = {"requestParametersTruncated": True}
    rec["resources"] = [
        {"accountId": ACCOUNT, "type": "AWS::SecretsManager::Secret", "ARN": SECRET},
        {"accountId": ACCOUNT, "type": "AWS::RDS::DBCluster", "ARN": OTHER_CLUSTER},
    ]
    return rec


@pytest.mark.parametrize("form", ["records", "array", "lines"])
def test_resources_name_the_cluster_when_request_parameters_are_gone(
    tmp_path: Path, form: str
) -> None:
    both = event("both", "2026-10-05T12:00:02Z")  # both: requestParameters.resourceArn wins
    both["resources"] = [
        {"accountId": ACCOUNT, "type": "AWS::RDS::DBCluster", "ARN": OTHER_CLUSTER}
    ]
    no_cluster = big_batch("no-cluster", "2026-10-05T12:00:03Z")
    no_cluster["resources"] = [{"type": "AWS::RDS::DBCluster"}, {"ARN": CLUSTER}]  # no ARN; no type
    records = [big_batch("batch", "2026-10-05T12:00:01Z"), both, no_cluster]
    put(tmp_path, "loose/file.json", records, form)
    got = read_cloudtrail([str(tmp_path)], OCT, 3)
    assert got.quarantine == []
    assert got.frame.select("event_id", "secret_arn", "resource_arn").rows() == [
        ("batch", None, OTHER_CLUSTER),
        ("both", SECRET, CLUSTER),
        ("no-cluster", None, None),
    ]


def test_a_mistyped_resources_entry_is_quarantined_only_on_a_data_api_record(
    tmp_path: Path,
) -> None:
    bad = big_batch("bad", "2026-10-05T12:00:01Z")
    bad["resources"] = [{"type": "AWS::RDS::DBCluster", "ARN": 12}]
    other = noise("n1", "2026-10-05T12:00:00Z")
    other["resources"] = [{"type": "AWS::KMS::Key", "ARN": ["not", "text"]}]
    put(tmp_path, "loose/file.json", [other, bad, big_batch("good", "2026-10-05T12:00:02Z")])
    got = read_cloudtrail([str(tmp_path)], OCT, 3)
    assert got.frame.select("event_id", "resource_arn").rows() == [("good", OTHER_CLUSTER)]
    assert [(q.locator, q.reason) for q in got.quarantine] == [
        ("record 2", "mistyped field: Expected `str | null`, got `int` - at `$.resources[0].ARN`")
    ]
    assert counters(got) == {
        "files_read": 1,
        "records_seen": 3,
        "skipped_non_data_api": 1,
        "quarantined": 1,
    }


def test_resource_arn_rule_bills_a_big_batch_to_its_clusters_tenant(tmp_path: Path) -> None:
    put(tmp_path / "trail", key("2026-10-05"), [
        big_batch("batch", "2026-10-05T12:00:01Z"),
        event("small", "2026-10-05T12:00:02Z"),
    ])  # fmt: skip
    rules = (
        '\n[attribution]\n[[attribution.rules]]\nkind = "resource_arn"\n'
        f'[attribution.rules.map]\n"{CLUSTER}" = "main-tenant"\n"{OTHER_CLUSTER}" = "reports"\n'
    )
    result = _bill_uris(tmp_path, [str(tmp_path / "trail")], OCT, rules)
    assert counters(result) == {"files_read": 1, "records_seen": 2, "calls_billed": 2}
    con = duckdb.connect(str(tmp_path / "meter.duckdb"), read_only=True)
    assert con.sql(
        "SELECT event_id, tenant_id, attribution FROM calls ORDER BY event_id"
    ).pl().rows() == [
        ("batch", "reports", "resource_arn"),
        ("small", "main-tenant", "resource_arn"),
    ]


@pytest.mark.skipif(not REAL.is_dir(), reason="corpora not present")
def test_real_resources_entries_are_read_as_cloudtrail_wrote_them() -> None:
    """Real records carry ``resources`` in several shapes (with and without ``type``): the
    typed decode reads each entry's ARN and type, and refuses no file for them."""
    decode = msgspec.json.Decoder(dict[str, list[Record]])
    entries = untyped = 0
    for path in sorted((REAL / "invictus-ir_aws_dataset").glob("*.json")):
        plain = json.loads(path.read_bytes())["Records"]
        typed = decode.decode(path.read_bytes())["Records"]
        for raw, rec in zip(plain, typed, strict=True):
            got = [(r.ARN, r.type) for r in rec.resources or []]
            assert got == [(r["ARN"], r.get("type")) for r in raw.get("resources") or []]
            entries += len(got)
            untyped += sum(r.type is None for r in rec.resources or [])
    assert (entries, untyped) == (739, 226)
