"""CloudTrail query results (Athena, CloudTrail Lake CSVs) as a CloudTrail input: the same
calls and money as the log files they were queried from; bad rows quarantined."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import tempfile
import zlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import duckdb
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from metering.collect.cloudtrail import find_trail_files, read_cloudtrail, trail_filter
from metering.collect.exports import read_exports
from metering.collect.trailcsv import NOT_A_RESULT
from metering.config import load_config
from metering.errors import ConfigError
from metering.month import Month
from metering.outputs import export
from metering.pipeline import bill
from metering.schemas import BillResult
from tests.collect.test_cloudtrail import OTHER_CLUSTER, big_batch
from tests.collect.test_fuzz import (
    IDS,
    TRAIL,
    Damage,
    _check,
    _damaged,
    _trail_rows,
    damages,
    picks,
)
from tests.conftest import REPO
from tests.helpers import copy_sample

OCT = Month(2026, 10)
NOV = Month(2026, 11)
ACCOUNT = "123456789012"
CLUSTER = f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster:main"
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:tenant-acme-AbCdEf"
USER = f"arn:aws:sts::{ACCOUNT}:assumed-role/tenant-acme/app"
ISSUER = f"arn:aws:iam::{ACCOUNT}:role/tenant-acme"
LAKE = f"AWSLogs/{ACCOUNT}/CloudTrail-Lake/Query/2026/11/05/0f3a6c1e-8a2b-4c7d-9e10-5b6a7c8d9e0f"


# -- query results written the way Athena and CloudTrail Lake write them -------------------


def lowered(value: Any) -> Any:
    """A struct as Athena's ``json_format(CAST(x AS JSON))`` writes it: lower-case keys."""
    if isinstance(value, dict):
        return {k.lower(): lowered(v) for k, v in value.items()}
    if isinstance(value, list):
        return [lowered(v) for v in value]
    return value


def path(record: dict[str, Any], *names: str) -> Any:
    for name in names:
        record = record.get(name) if isinstance(record, dict) else None  # type: ignore[assignment]
    return record


def as_json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def athena_row(record: dict[str, Any], form: str) -> dict[str, str | None]:
    """One record of the documented table as the README's Athena query selects it (``flat``),
    or as a query selecting more columns and the userIdentity struct as JSON (``json``)."""
    row: dict[str, str | None] = {
        "eventid": record.get("eventID"),
        "eventtime": record.get("eventTime"),
        "eventsource": record.get("eventSource"),
        "eventname": record.get("eventName"),
        "errorcode": record.get("errorCode"),
        "requestid": record.get("requestID"),
    }
    if form == "flat":
        row["useridentity.arn"] = path(record, "userIdentity", "arn")
        row["useridentity.sessioncontext.sessionissuer.arn"] = path(
            record, "userIdentity", "sessionContext", "sessionIssuer", "arn"
        )
    else:
        row |= {
            "eventversion": record.get("eventVersion"),
            "awsregion": record.get("awsRegion"),
            "errormessage": record.get("errorMessage"),
            "useridentity": as_json(lowered(record.get("userIdentity"))),
        }
    # The table's requestparameters column is CloudTrail's JSON text, as it was.
    row["requestparameters"] = as_json(record.get("requestParameters"))
    resources = record.get("resources")
    row["resources"] = as_json(
        None
        if resources is None
        else [
            {"arn": r.get("ARN"), "accountid": r.get("accountId"), "type": r.get("type")}
            for r in resources
        ]
    )
    return row


def readme_query(engine: str) -> list[str]:
    """The names of the columns the README's query for ``engine`` selects."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## CloudTrail query results", 1)[1]
    query = section.split(f"The {engine} query", 1)[1].split("```sql\n", 1)[1].split("FROM", 1)[0]
    items = re.split(r",\s*(?![^()]*\))", query.removeprefix("SELECT").strip().rstrip(","))
    return [item.split(" AS ")[-1].strip().strip('"') for item in items]


def test_the_readme_queries_select_the_columns_these_tests_write() -> None:
    record = event("e1", "2026-10-05T12:00:00Z")
    assert readme_query("Athena") == list(athena_row(record, "flat"))
    assert readme_query("CloudTrail Lake") == list(lake_row(record))


def athena_csv(rows: list[dict[str, str | None]]) -> bytes:
    """Athena's CSV: every value in double quotes, NULL as an empty cell."""

    def cell(value: str | None) -> str:
        return "" if value is None else '"' + value.replace('"', '""') + '"'

    header = ",".join(cell(name) for name in rows[0])
    lines = [header, *(",".join(cell(v) for v in row.values()) for row in rows)]
    return "".join(line + "\n" for line in lines).encode()


def lake_time(when: str) -> str:
    parsed = datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ")
    return parsed.strftime("%Y-%m-%d %H:%M:%S.000")


def lake_row(record: dict[str, Any]) -> dict[str, str | None]:
    """The README's CloudTrail Lake query: camelCase names, flattened fields, timestamps
    without a zone."""
    return {
        "eventID": record.get("eventID"),
        "eventTime": lake_time(record["eventTime"]),
        "eventSource": record.get("eventSource"),
        "eventName": record.get("eventName"),
        "errorCode": record.get("errorCode"),
        "requestID": record.get("requestID"),
        "userIdentity.arn": path(record, "userIdentity", "arn"),
        "userIdentity.sessionContext.sessionIssuer.arn": path(
            record, "userIdentity", "sessionContext", "sessionIssuer", "arn"
        ),
        "requestParameters.resourceArn": path(record, "requestParameters", "resourceArn"),
        "requestParameters.secretArn": path(record, "requestParameters", "secretArn"),
        "resources": as_json(record.get("resources")),
    }


def lake_csv(rows: list[dict[str, str | None]]) -> bytes:
    """Quoted only where a cell needs it (a comma, a quote, a line break)."""

    def cell(value: str | None) -> str:
        if value is None:
            return ""
        if any(c in value for c in ',"\n\r'):
            return '"' + value.replace('"', '""') + '"'
        return value

    lines = [",".join(rows[0]), *(",".join(cell(v) for v in row.values()) for row in rows)]
    return "\r\n".join(lines).encode() + b"\r\n"


def trail_records(root: Path, month: Month = OCT) -> list[dict[str, Any]]:
    """Every record of the log files meter reads for ``month`` under ``root``, in order."""
    records = []
    for obj in find_trail_files([str(root)], month, 3).objects:
        body = Path(obj.uri).read_bytes()
        records += json.loads(gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body)["Records"]
    return records


def write_athena(folder: Path, records: list[dict[str, Any]], form: str) -> None:
    folder.mkdir(parents=True)
    name = "6a1f0e52-3c1b-4f43-9f9e-2d4e7c1b0a11"
    (folder / f"{name}.csv").write_bytes(athena_csv([athena_row(r, form) for r in records]))
    (folder / f"{name}.csv.metadata").write_bytes(b"\n\x1b20261105_120000_00001_abcde\x00\xff")


def write_lake(folder: Path, records: list[dict[str, Any]]) -> None:
    results = folder / LAKE
    results.mkdir(parents=True)
    half = len(records) // 2
    for number, part in enumerate((records[:half], records[half:]), start=1):
        body = lake_csv([lake_row(r) for r in part])
        (results / f"result_{number}.csv.gz").write_bytes(gzip.compress(body, mtime=0))
    sign = {"region": "us-east-1", "filesHashList": [{"fileName": "result_1.csv.gz"}]}
    (results / "result_sign.json").write_text(json.dumps(sign))


# -- the same events bill the same ---------------------------------------------------------


def without_run_id(result: BillResult, config: Path) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The finance CSV without its run_id column, and every billed call without its run."""
    finance = export(load_config(config), result.month, "finance").decode().splitlines()
    con = duckdb.connect(str(result.warehouse), read_only=True)
    try:
        calls = con.execute(
            "SELECT * EXCLUDE (run_id) FROM calls ORDER BY request_id, event_id"
        ).fetchall()
    finally:
        con.close()
    return [line.rsplit(",", 1)[0] for line in finance], calls


def relative(result: BillResult, config: Path) -> list[tuple[str, str, str]]:
    root = str(config.parent)
    return [(q.source_uri.removeprefix(root), q.locator, q.reason) for q in result.quarantine]


@pytest.fixture(scope="module")
def from_logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[BillResult, Path]:
    config = copy_sample(tmp_path_factory.mktemp("logs") / "sample")
    return bill(load_config(config), OCT), config


WRITERS: dict[str, Callable[[Path, list[dict[str, Any]]], None]] = {
    "athena-flat": lambda folder, records: write_athena(folder, records, "flat"),
    "athena-json": lambda folder, records: write_athena(folder, records, "json"),
    "lake": write_lake,
}


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_query_results_bill_exactly_as_the_log_files(
    tmp_path: Path, from_logs: tuple[BillResult, Path], kind: str
) -> None:
    logs, logs_config = from_logs
    config = copy_sample(tmp_path / "sample")
    records = trail_records(config.parent / "cloudtrail")
    export = read_exports([str(config.parent / "dynamodb")]).counters.records_seen
    assert len(records) == logs.counters.records_seen - export == 13033
    shutil.rmtree(config.parent / "cloudtrail")
    WRITERS[kind](config.parent / "results", records)
    config.write_text(config.read_text().replace('uris = ["cloudtrail"]', 'uris = ["results"]'))

    result = bill(load_config(config), OCT)
    files = 1 if kind.startswith("athena") else 2
    # the DynamoDB export's 5 files, the CUR export's data file and manifest, the results
    expected = logs.counters.as_dict() | {"files_read": 5 + 2 + files}
    assert result.counters.as_dict() == expected
    assert relative(result, config) == relative(logs, logs_config)  # the export's 5 bad records
    assert result.bill == logs.bill
    assert without_run_id(result, config) == without_run_id(logs, logs_config)

    again = bill(load_config(config), OCT)  # query results are spooled and reused like logs
    assert (again.decoded_files, again.reused_files) == (0, 5 + files)
    assert again.counters == result.counters


def test_query_results_are_read_for_every_month(tmp_path: Path) -> None:
    """A query's results are not in the delivery layout: read whole, months by eventTime."""
    records = [
        {**event("sep", "2026-09-30T23:59:59Z")},
        event("oct", "2026-10-15T00:00:00Z"),
        event("nov", "2026-11-01T00:00:00Z"),
    ]
    write_lake(tmp_path / "results", records)
    (tmp_path / "meter.toml").write_text(
        '[warehouse]\npath = "meter.duckdb"\n[sources.cloudtrail]\nuris = ["results"]\n'
    )
    for month, billed in ((OCT, "oct"), (NOV, "nov")):
        result = bill(load_config(tmp_path / "meter.toml"), month)
        assert (result.counters.calls_billed, result.counters.out_of_month) == (1, 2)
        con = duckdb.connect(str(result.warehouse), read_only=True)
        assert con.execute(
            "SELECT event_id FROM calls WHERE month = ?", [str(month)]
        ).fetchall() == [(billed,)]
        con.close()


# -- rows ----------------------------------------------------------------------------------


def event(event_id: str, when: str, **fields: Any) -> dict[str, Any]:
    """A Data API record as CloudTrail writes it."""
    return {
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "arn": USER,
            "accountId": ACCOUNT,
            "sessionContext": {"sessionIssuer": {"type": "Role", "arn": ISSUER}},
        },
        "eventTime": when,
        "eventSource": "rdsdataapi.amazonaws.com",
        "eventName": "ExecuteStatement",
        "requestParameters": {"resourceArn": CLUSTER, "secretArn": SECRET, "sql": "**********"},
        "responseElements": None,
        "requestID": f"req-{event_id}",
        "eventID": event_id,
        "resources": [{"accountId": ACCOUNT, "type": "AWS::RDS::DBCluster", "ARN": CLUSTER}],
        "eventType": "Rds Data Service",
        **fields,
    }


def athena_lines(*rows: dict[str, str | None]) -> list[str]:
    return athena_csv(list(rows)).decode().splitlines(keepends=True)


def counters(got: Any) -> dict[str, int]:
    return {k: v for k, v in got.counters.as_dict().items() if v}


def test_bad_rows_are_quarantined_and_the_rest_read(tmp_path: Path) -> None:
    good = athena_row(event("good", "2026-10-05T12:00:00Z"), "json")
    header, good_line = athena_lines(good)
    printed = dict(good, eventid="printed", useridentity=f"{{type=AssumedRole, arn={USER}}}")
    mistyped = dict(good, eventid="mistyped", useridentity='{"arn":7}')
    resources = dict(good, eventid="resources", resources='[{"arn":"x"')
    cased = {"Arn": USER, "SessionContext": {"SESSIONISSUER": {"type": "Role", "ARN": ISSUER}}}
    late = dict(
        good,
        eventid="late",
        eventtime="2026-10-05 12:00:00.000 UTC",  # Athena: from_iso8601_timestamp(eventtime)
        useridentity=json.dumps(cased),  # keys in any case
    )
    multiline = dict(good, eventid="multiline", errormessage="line one\nline two")
    bad_time = dict(good, eventid="bad-time", eventtime="yesterday")
    other = dict(good, eventid="s3", eventsource="s3.amazonaws.com", useridentity="{x=")
    bad_utf8 = athena_lines(dict(good, eventid="bad-utf8"))[1].encode().replace(b"bad-", b"\xff-")
    text = b"".join([
        header.encode(),
        good_line.encode(),
        b'"short","row"\n',
        *(line.encode() for row in (printed, mistyped, resources, late, multiline, bad_time, other)
          for line in athena_lines(row)[1:]),
        bad_utf8,
    ])  # fmt: skip
    (tmp_path / "result.csv").write_bytes(text)

    got = read_cloudtrail([str(tmp_path)], OCT, 3)
    assert got.frame["event_id"].to_list() == ["good", "late", "multiline"]
    assert got.frame["event_time"].to_list() == [datetime(2026, 10, 5, 12, tzinfo=UTC)] * 3
    assert got.frame["user_arn"].to_list() == [USER] * 3
    assert got.frame["issuer_arn"].to_list() == [ISSUER] * 3
    assert got.frame.row(0, named=True) | {"event_id": "x"} == {
        "event_id": "x",
        "request_id": "req-good",
        "event_time": datetime(2026, 10, 5, 12, tzinfo=UTC),
        "event_source": "rdsdataapi.amazonaws.com",
        "operation": "ExecuteStatement",
        "error_code": None,
        "user_arn": USER,
        "issuer_arn": ISSUER,
        "source_identity": None,
        "secret_arn": SECRET,
        "resource_arn": CLUSTER,
    }
    uri = str(tmp_path / "result.csv")
    printed_reason = (
        "userIdentity is not JSON but a struct or map as Athena and CloudTrail Lake print them "
        "({key=value, ...}), which meter does not read (a value can hold ', key='); select "
        'useridentity.arn AS "useridentity.arn", useridentity.sessioncontext.sessionissuer.arn '
        'AS "useridentity.sessioncontext.sessionissuer.arn" instead (README, "CloudTrail query '
        'results")'
    )
    assert [(q.source_uri, q.locator, q.reason) for q in got.quarantine] == [
        (uri, "row 2", "has 2 cells where the header names 12 columns"),
        (uri, "row 3", printed_reason),
        (
            uri,
            "row 4",
            "mistyped field: Expected `str | null`, got `int` - at `$.userIdentity.arn`",
        ),
        (uri, "row 5", "resources is not JSON text: Input data was truncated"),
        (uri, "row 8", "eventTime is not a UTC ISO-8601 time like 2026-10-31T23:59:59Z: yesterday"),
        (uri, "row 10", "not UTF-8 text"),
    ]
    assert counters(got) == {
        "files_read": 1,
        "records_seen": 10,
        "skipped_non_data_api": 1,
        "quarantined": 6,
    }


def test_a_truncated_gzip_result_keeps_the_rows_before_the_break(tmp_path: Path) -> None:
    rows = [athena_row(event(f"e{i:04d}", "2026-10-05T12:00:00Z"), "flat") for i in range(2000)]
    data = gzip.compress(athena_csv(rows), mtime=0)
    cut = data[: len(data) // 2]
    (tmp_path / "result.csv.gz").write_bytes(cut)
    readable = zlib.decompressobj(31).decompress(cut)
    whole_rows = readable.count(b"\n") - 1  # the header's line end not counted

    got = read_cloudtrail([str(tmp_path)], OCT, 3)
    assert got.frame["event_id"].to_list() == [f"e{i:04d}" for i in range(whole_rows)]
    assert 500 < whole_rows < 2000
    assert [(q.locator, q.reason) for q in got.quarantine] == [
        (f"after row {whole_rows}", "truncated gzip: the file ends before the gzip stream does")
    ]
    assert counters(got) == {"files_read": 1, "records_seen": whole_rows + 1, "quarantined": 1}


@pytest.mark.parametrize(
    ("name", "body", "reason"),
    [
        ("tenants.csv", b"tenant_id,tenant_name\nacme,Acme\n", NOT_A_RESULT),
        (
            "result_1.csv",
            b"eventID,eventTime,eventSource,eventName\ne1,2026-10-05T12:00:00Z,x,y\n",
            "a CloudTrail query result without the column(s) errorCode, requestID, which meter "
            'needs to bill its rows; select them (README, "CloudTrail query results")',
        ),
    ],
)
def test_a_csv_that_is_no_usable_query_result_is_one_entry(
    tmp_path: Path, name: str, body: bytes, reason: str
) -> None:
    (tmp_path / name).write_bytes(gzip.compress(body, mtime=0))
    got = read_cloudtrail([str(tmp_path)], OCT, 3)
    assert [(q.locator, q.reason) for q in got.quarantine] == [("file", reason)]
    assert counters(got) == {"files_read": 1, "records_seen": 1, "quarantined": 1}
    # Read to its end all the same: the run's fingerprint is of the whole file.
    assert got.inputs[0].digest == hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()


def test_an_empty_file_and_a_result_of_no_rows_hold_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_bytes(b"")
    header = b'"eventid","eventtime","eventsource","eventname","errorcode","requestid"'
    (tmp_path / "no-rows.csv").write_bytes(header)  # no line end either
    got = read_cloudtrail([str(tmp_path)], OCT, 3)
    assert got.quarantine == []
    assert counters(got) == {"files_read": 2}


# -- fuzzed query results ------------------------------------------------------------------


def fuzz_text(picked: list[int]) -> tuple[bytes, list[tuple[int, int]]]:
    """An Athena result of the fuzz records (eventid last: every row ends in a quote), and
    where each row lies in it (its line end not included)."""
    rows = []
    for i in picked:
        row = athena_row(TRAIL[i], "flat")
        rows.append({**{k: v for k, v in row.items() if k != "eventid"}, "eventid": row["eventid"]})
    columns = list(athena_row(TRAIL[0], "flat"))
    header = ",".join(f'"{name}"' for name in [*(c for c in columns if c != "eventid"), "eventid"])
    text = header.encode() + b"\n"
    spans = []
    for row in rows:
        line = athena_csv([row]).split(b"\n", 1)[1].rstrip(b"\n")
        spans.append((len(text), len(text) + len(line)))
        text += line + b"\n"
    return text, spans


@settings(deadline=None, max_examples=300)
@example(picked=[0, 1], gz=True, damage=Damage("cut", (400,)))
@example(picked=[0], gz=False, damage=Damage("flip", (300,), (ord('"') ^ ord("x"),)))
# A flip that garbles the second row into one ending in a copy of the first row's eventid.
@example(picked=[1, 0], gz=True, damage=Damage("flip", (977,), (162,)))
@given(picked=picks, gz=st.booleans(), damage=damages)
def test_a_damaged_query_result_loses_only_what_the_damage_touched(
    picked: list[int], gz: bool, damage: Damage
) -> None:
    text, spans = fuzz_text(picked)
    data = gzip.compress(text, mtime=0) if gz else text
    damaged = _damaged(data, damage)
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "result.csv.gz" if gz else "result.csv").write_bytes(damaged)
        got = read_cloudtrail([folder], OCT, 3)
    c = got.counters
    assert (c.files_read, c.quarantined) == (1, len(got.quarantine))
    assert c.records_seen == c.quarantined + c.skipped_non_data_api + got.frame.height
    parts = [(IDS[i], span) for i, span in zip(picked, spans, strict=True)]
    header = text.index(b"\n") + 1
    if damage.kind == "flip" and not gz and any(at % len(data) < header for at in damage.at):
        # A column renamed (an unknown column is no error: Athena's SELECT * has dozens)
        # changes every row alike; only the accounting holds.
        assert got.frame.height <= len(parts)
        return
    # The rows of the log file's records: a query result reads as the log file does.
    _check(got.frame.to_dicts(), "event_id", _trail_rows(), parts, text, data, damaged, damage, gz)


# -- which files are query results ---------------------------------------------------------

DIGEST = f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/us-east-1/2026/10/02/x.json.gz"


@pytest.mark.parametrize(
    ("form", "name", "kept"),
    [
        ("auto", f"{LAKE}/result_1.csv.gz", True),
        ("auto", f"{LAKE}/result_sign.json", False),  # the signature: skipped, not quarantined
        ("auto", f"{LAKE}/notes.json", False),  # only results in CloudTrail Lake's folder
        ("auto", "athena/6a1f0e52.csv", True),
        ("auto", "athena/6a1f0e52.csv.metadata", False),
        ("auto", "athena/RESULT.CSV.GZ", True),
        ("auto", "downloads/result_sign.json", False),
        ("auto", "downloads/result.txt", False),
        ("auto", f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/12/05/x.csv", True),  # any month
        ("auto", f"AWSLogs/{ACCOUNT}/elasticloadbalancing/us-east-1/2026/10/02/x.csv", False),
        ("auto", DIGEST.replace(".json.gz", ".csv"), False),
        ("json", "athena/6a1f0e52.csv", False),
        ("json", "loose/attack.json", True),
        ("csv", "exports/result.txt", True),
        ("csv", "exports/no-extension", True),
        ("csv", "exports/6a1f0e52.csv.metadata", False),
        ("csv", "exports/result_sign.json", False),
        ("csv", DIGEST, False),
        ("csv", f"AWSLogs/{ACCOUNT}/elasticloadbalancing/us-east-1/2026/10/02/x.log.gz", False),
        ("csv", f"AWSLogs/{ACCOUNT}/CloudTrail/us-east-1/2026/12/05/x.json.gz", True),
    ],
)
def test_query_results_are_listed(form: str, name: str, kept: bool) -> None:
    assert trail_filter(OCT, 3, form)(name) is kept  # type: ignore[arg-type]


def test_a_uri_of_format_csv_reads_any_name_and_json_skips_results(tmp_path: Path) -> None:
    rows = [athena_row(event("e1", "2026-10-05T12:00:00Z"), "flat")]
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "result.txt").write_bytes(athena_csv(rows))
    (tmp_path / "exports" / "copy.csv").write_bytes(athena_csv(rows))
    config = tmp_path / "meter.toml"
    for formats, files in (('"auto"', 1), ('"csv"', 2), ('"json"', 0)):
        config.write_text(
            '[warehouse]\npath = "meter.duckdb"\n[sources.cloudtrail]\n'
            f'uris = [{{ uri = "exports", format = {formats} }}]\n'
        )
        source = load_config(config).sources.cloudtrail
        assert source is not None
        got = read_cloudtrail(source.paths, OCT, 3, formats=source.formats)
        assert counters(got) == ({"files_read": files, "records_seen": files} if files else {})
        assert got.frame["event_id"].to_list() == ["e1"] * files  # one event, each copy read


def test_lake_results_are_read_from_s3_beside_their_signature(aws: str) -> None:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="lake")
    body = lake_csv([lake_row(event("e1", "2026-10-05T12:00:00Z"))])
    s3.put_object(Bucket="lake", Key=f"q/{LAKE}/result_1.csv.gz", Body=gzip.compress(body))
    s3.put_object(Bucket="lake", Key=f"q/{LAKE}/result_sign.json", Body=b'{"region": "x"}')
    got = read_cloudtrail(["s3://lake/q"], OCT, 3)
    assert counters(got) == {"files_read": 1, "records_seen": 1}
    assert got.quarantine == []
    assert got.frame.select("event_id", "event_time", "resource_arn").rows() == [
        ("e1", datetime(2026, 10, 5, 12, tzinfo=UTC), CLUSTER)
    ]
    assert [i.uri for i in got.inputs] == [f"s3://lake/q/{LAKE}/result_1.csv.gz"]


# -- config --------------------------------------------------------------------------------


def test_config_takes_plain_uris_and_tables_with_a_format(tmp_path: Path) -> None:
    (tmp_path / "meter.toml").write_text(
        '[sources.cloudtrail]\nuris = ["trail", { uri = "athena" , format = "csv" }, '
        '{ uri = "s3://lake/q" }]\n'
    )
    source = load_config(tmp_path / "meter.toml").sources.cloudtrail
    assert source is not None
    assert source.paths == [str(tmp_path / "trail"), str(tmp_path / "athena"), "s3://lake/q"]
    assert source.formats == {
        str(tmp_path / "trail"): "auto",
        str(tmp_path / "athena"): "csv",
        "s3://lake/q": "auto",
    }


@pytest.mark.parametrize(
    ("uris", "message"),
    [
        (
            '[{ uri = "a", format = "tsv" }]',
            "sources.cloudtrail.uris.0.format: Input should be 'auto', 'json' or 'csv', not \"tsv\"",
        ),
        ('[{ uri = "a", form = "csv" }]', "sources.cloudtrail.uris.0.form: unknown key"),
        ('[{ format = "csv" }]', "sources.cloudtrail.uris.0.uri: Field required"),
        ("[7]", "sources.cloudtrail.uris.0: Input should be a valid dictionary or instance"),
        (
            '["a", { uri = "a", format = "csv" }]',
            "sources.cloudtrail.uris: {root}/a is listed with format 'auto' and 'csv'; keep one",
        ),
    ],
)
def test_a_bad_uri_entry_is_a_config_error_naming_the_key(
    tmp_path: Path, uris: str, message: str
) -> None:
    (tmp_path / "meter.toml").write_text(f"[sources.cloudtrail]\nuris = {uris}\n")
    with pytest.raises(ConfigError) as error:
        load_config(tmp_path / "meter.toml")
    assert message.format(root=tmp_path) in str(error.value)
    assert str(error.value).startswith(str(tmp_path / "meter.toml"))


# -- the cluster ARN of a call whose request parameters CloudTrail dropped -----------------


@pytest.mark.parametrize("kind", ["athena-flat", "athena-json", "lake"])
def test_resources_name_the_cluster_in_query_results_too(tmp_path: Path, kind: str) -> None:
    records = [
        big_batch("batch", "2026-10-05T12:00:01Z"),  # requestParameters dropped
        event("small", "2026-10-05T12:00:02Z"),
    ]
    WRITERS[kind](tmp_path / "results", records)
    got = read_cloudtrail([str(tmp_path / "results")], OCT, 3)
    assert got.quarantine == []
    assert got.frame.select("event_id", "secret_arn", "resource_arn").rows() == [
        ("batch", None, OTHER_CLUSTER),
        ("small", SECRET, CLUSTER),
    ]
