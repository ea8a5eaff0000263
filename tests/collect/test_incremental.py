"""Incremental DynamoDB exports (SPEC 2.2, issue 17): AWS's layout (manifests per export,
data files in the prefix's shared ``AWSDynamoDB/data/`` folder named by full keys), puts,
updates and TTL deletes, over a full export, on local files and on S3 (moto over HTTP).

The month: a full export as of Oct 10, then two incremental exports over one another.

    full  (exportTime 2026-10-10)  a1, a2 (40 KB response), b1, old1 (July)
    inc1  Oct 10 -> Oct 20, NEW_AND_OLD_IMAGES: a2 updated (100 B response), a3 and b2 put,
          old1 deleted (TTL: Keys + OldImage)
    inc2  Oct 20 -> Nov 1 06:00, NEW_IMAGE: b2 updated (33 KB response), c1 and n1 (Nov 1)
          put, a1 deleted (TTL: Keys only)

Billed: acme a1 (1 unit, deleted but never un-billed), a2 as updated (1), a3 (3); beta b1
(1), b2 as updated last (2); gamma c1 (1). old1 and n1 are other months' calls.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3
import duckdb
import pytest

from metering import export
from metering.collect.exports import read_exports
from metering.config import load_config
from metering.errors import InputError
from metering.month import Month
from metering.pipeline import bill
from metering.sample.dynamodb import item_line
from metering.schemas import BillResult
from tests.helpers import (
    Change,
    change_line,
    create_metering_table,
    dump,
    full_export,
    incremental_export,
    micros,
    record,
    upload,
    write_config,
    write_data_file,
)

OCT = Month(2026, 10)
FULL_ID = "01760054400000-f0f0f0f0"
INC1_ID = "01760918400000-a1a1a1a1"
INC2_ID = "01761976800000-b2b2b2b2"
S3_PREFIX = "metering"

A1 = record("a1", "acme", "2026-10-02T08:00:00.000Z")
A2 = record("a2", "acme", "2026-10-03T09:00:00.000Z", 100, 40000)
A2_FIXED = record("a2", "acme", "2026-10-03T09:00:00.000Z", 100, 100)
A3 = record("a3", "acme", "2026-10-12T12:00:00.000Z", 70000, 100)
B1 = record("b1", "beta", "2026-10-05T10:00:00.000Z", 5000, 5000)
B2 = record("b2", "beta", "2026-10-15T00:00:00.000Z", 100, 100)
B2_BIG = record("b2", "beta", "2026-10-15T00:00:00.000Z", 100, 33000)
C1 = record("c1", "gamma", "2026-10-31T23:59:59.999Z", 10, 10)
N1 = record("n1", "gamma", "2026-11-01T00:00:00.000Z")
OLD = record("old1", "beta", "2026-07-15T00:00:00.000Z")

INC1 = [
    Change("2026-10-11T08:00:00.000001Z", new=A2_FIXED, old=A2),  # update
    Change("2026-10-12T12:00:00.000250Z", new=A3),  # put
    Change("2026-10-15T00:00:00.004000Z", new=B2),  # put
    Change("2026-10-15T03:00:00.000000Z", old=OLD),  # TTL delete
]
INC2 = [
    Change("2026-10-21T00:00:00.000001Z", new=B2_BIG, old=B2),  # update (NEW_IMAGE: no old)
    Change("2026-10-31T23:59:59.999500Z", new=C1),
    Change("2026-11-01T00:00:00.000100Z", new=N1),
    Change("2026-11-01T02:00:00.000000Z", old=A1),  # TTL delete: Keys only
]

# tenant_id, calls, units, request_bytes, response_bytes
LINES = [
    ("acme", 3, 5, 100 + 100 + 70000, 100 + 100 + 100),
    ("beta", 2, 3, 5000 + 100, 5000 + 33000),
    ("gamma", 1, 1, 10, 10),
]
COUNTERS = {
    "files_read": 9,  # 2 + 2 data files and an empty partition per export
    "records_seen": 12,  # 4 full export items, 4 + 4 changes
    "calls_billed": 6,
    "duplicates": 2,  # a2's and b2's older versions
    "out_of_month": 2,  # old1 (July), n1 (Nov 1)
    "deleted_records": 2,  # old1, a1
}


def _month(prefix: Path) -> dict[str, Path]:
    """The month's three exports under ``prefix`` (a folder mirroring the S3 prefix)."""
    return {
        "full": full_export(
            prefix, S3_PREFIX, FULL_ID, [A1, A2, B1, OLD], "2026-10-10T00:00:00.000Z"
        ),
        "inc1": incremental_export(
            prefix,
            S3_PREFIX,
            INC1_ID,
            INC1,
            ("2026-10-10T00:00:00.000Z", "2026-10-20T00:00:00.000Z"),
        ),
        "inc2": incremental_export(
            prefix,
            S3_PREFIX,
            INC2_ID,
            INC2,
            ("2026-10-20T00:00:00.000Z", "2026-11-01T06:00:00.000Z"),
            view="NEW_IMAGE",
        ),
    }


def _lines(result: BillResult) -> list[tuple[object, ...]]:
    columns = ["tenant_id", "calls", "units", "request_bytes", "response_bytes"]
    return sorted(result.tenant_month.select(columns).iter_rows())


def _counters(result: BillResult) -> dict[str, int]:
    return {k: v for k, v in result.counters.as_dict().items() if v}


def _adds_up(result: BillResult) -> None:
    """SPEC 5: every record read lands in exactly one bucket (schemas.Counters)."""
    c = result.counters
    assert c.records_seen == (
        c.quarantined + c.skipped_non_data_api + c.skipped_operations + c.duplicates
        + c.out_of_month + c.errored_calls + c.calls_billed + c.joined + c.deleted_records
    )  # fmt: skip


def _exports(uris: list[str]) -> str:
    return f"exports = {json.dumps(uris)}"


def _bill(folder: Path, uris: list[str], fresh: bool = False) -> BillResult:
    folder.mkdir(exist_ok=True)
    return bill(load_config(write_config(folder, metering=_exports(uris))), OCT, fresh=fresh)


def _assert_the_month(result: BillResult) -> None:
    assert _lines(result) == LINES
    assert _counters(result) == COUNTERS
    assert result.quarantine == []
    assert result.conflicts.height == 0
    assert result.exit_code == 0
    _adds_up(result)


@pytest.mark.parametrize("roots", ["prefix", "bucket", "export folders"])
def test_incremental_exports_on_local_files(tmp_path: Path, roots: str) -> None:
    """A folder mirroring the bucket: configured as the prefix, as the bucket above it, or
    as the three export folders (the shared data folder then lies outside every root)."""
    prefix = tmp_path / "bucket" / S3_PREFIX
    folders = _month(prefix)
    uris = {
        "prefix": [str(prefix)],
        "bucket": [str(tmp_path / "bucket")],
        "export folders": [str(f) for f in folders.values()],
    }[roots]
    result = _bill(tmp_path / "run", uris)
    _assert_the_month(result)
    con = duckdb.connect(str(tmp_path / "run" / "meter.duckdb"), read_only=True)
    run = con.execute("SELECT deleted_records, duplicates, calls_billed FROM bill_runs")
    assert run.fetchall() == [(2, 2, 6)]
    billed = con.execute("SELECT request_id, units FROM calls ORDER BY 1").fetchall()
    assert billed == [("a1", 1), ("a2", 1), ("a3", 3), ("b1", 1), ("b2", 2), ("c1", 1)]
    con.close()


@pytest.mark.parametrize("roots", ["prefix", "export folders"])
def test_incremental_exports_on_s3(aws: str, tmp_path: Path, roots: str) -> None:
    boto3.client("s3").create_bucket(Bucket="exports")
    folders = _month(tmp_path / "bucket" / S3_PREFIX)
    upload(tmp_path / "bucket", "exports", "")
    base = f"s3://exports/{S3_PREFIX}"
    uris = {
        "prefix": [base],
        "export folders": [f"{base}/AWSDynamoDB/{f.name}" for f in folders.values()],
    }[roots]
    _assert_the_month(_bill(tmp_path / "run", uris))


def test_exports_bill_what_a_live_table_read_bills(aws: str, tmp_path: Path) -> None:
    """A full export and the incremental exports after it give what a read of the live
    table gives: the table holding each item's last version (as it stood before TTL removed
    the expired ones: a delete never un-bills a call)."""
    _month(tmp_path / "bucket" / S3_PREFIX)
    ddb = boto3.client("dynamodb")
    create_metering_table(ddb, "Metering")
    for row in (A1, A2_FIXED, A3, B1, B2_BIG, C1, N1, OLD):
        ddb.put_item(TableName="Metering", Item=json.loads(item_line(row))["Item"])
    configs = {}
    for name, source in (
        ("table", 'table = "Metering"'),
        ("exports", _exports([str(tmp_path / "bucket" / S3_PREFIX)])),
    ):
        (tmp_path / name).mkdir()
        configs[name] = load_config(write_config(tmp_path / name, metering=source))
    table, exports = (bill(configs[name], OCT) for name in ("table", "exports"))
    assert _lines(exports) == _lines(table) == LINES
    assert (exports.bill.account_cost, exports.bill.amount) == (
        table.bill.account_cost,
        table.bill.amount,
    )
    csv = {
        name: [
            line.rsplit(",", 1)[0] for line in export(config, OCT, "finance").decode().splitlines()
        ]
        for name, config in configs.items()
    }  # every column but run_id
    assert csv["exports"] == csv["table"]
    assert len(csv["table"]) == 1 + 3


def test_a_rebill_after_the_next_incremental_export_joins_only_what_it_changes(
    tmp_path: Path,
) -> None:
    prefix = tmp_path / "bucket" / S3_PREFIX
    full_export(prefix, S3_PREFIX, FULL_ID, [A1, A2, B1, OLD], "2026-10-10T00:00:00.000Z")
    window = ("2026-10-10T00:00:00.000Z", "2026-10-20T00:00:00.000Z")
    incremental_export(prefix, S3_PREFIX, INC1_ID, INC1, window)
    first = _bill(tmp_path / "run", [str(prefix)])
    assert ("beta", 2, 2, 5100, 5100) in _lines(first)  # b2 as inc1 left it
    window = ("2026-10-20T00:00:00.000Z", "2026-11-01T06:00:00.000Z")
    incremental_export(prefix, S3_PREFIX, INC2_ID, INC2, window, view="NEW_IMAGE")
    again = _bill(tmp_path / "run", [str(prefix)])
    assert again.joined_again == 3  # b2 (a newer version), c1, n1: a delete is no row
    assert again.reused_files == 6 and again.decoded_files == 3
    _assert_the_month(again)
    fresh = _bill(tmp_path / "run", [str(prefix)], fresh=True)
    assert fresh.joined_again is None
    assert _lines(fresh) == _lines(again) and _counters(fresh) == _counters(again)


def test_a_full_export_is_as_of_its_export_time(tmp_path: Path) -> None:
    """A full export's items are the version as of its exportTime: newer than a change an
    earlier incremental export holds, older than a later one; without an exportTime (older
    tools) they rank below every version of known time."""
    x = record("x", "acme", "2026-10-05T00:00:00.000Z", 100, 100)
    x_big = record("x", "acme", "2026-10-05T00:00:00.000Z", 100, 40000)
    window = ("2026-10-10T00:00:00.000Z", "2026-10-20T00:00:00.000Z")
    cases = {"2026-10-25T00:00:00.000Z": 2, "2026-10-09T00:00:00.000Z": 1, None: 1}
    for case, (export_time, units) in enumerate(cases.items()):
        prefix = tmp_path / f"case{case}" / S3_PREFIX
        incremental_export(
            prefix, S3_PREFIX, INC1_ID, [Change("2026-10-11T00:00:00.000000Z", new=x)], window
        )
        full_export(prefix, S3_PREFIX, FULL_ID, [x_big], export_time)
        result = _bill(tmp_path / f"run{case}", [str(prefix)])
        assert _lines(result) == [("acme", 1, units, 100, 40000 if units == 2 else 100)], (
            export_time
        )
        assert result.counters.duplicates == 1
        assert result.conflicts.height == 0


def test_a_shared_data_file_no_manifest_lists_is_not_read(tmp_path: Path) -> None:
    prefix = tmp_path / "bucket" / S3_PREFIX
    _month(prefix)
    stray = write_data_file(
        prefix / "AWSDynamoDB" / "data" / "stray.json.gz",
        [
            change_line(
                Change(
                    "2026-10-12T00:00:00.000000Z",
                    new=record("s", "acme", "2026-10-12T00:00:00.000Z"),
                )
            )
        ],
    )
    got = read_exports([str(prefix)])
    assert [(q.source_uri, q.locator, q.reason) for q in got.quarantine] == [
        (
            str(stray),
            "file",
            f"no manifest-files.json under {prefix}/AWSDynamoDB lists it: not part of an "
            "export, not read (remove it, or copy the exports again)",
        )
    ]
    assert got.counters.unlisted_files == 1
    assert "s" not in got.frame["request_id"].to_list()
    assert got.counters.records_seen == 12 + 1  # the stray file: one record, quarantined


def test_a_broken_incremental_manifest_reads_the_shared_files_no_export_lists(
    tmp_path: Path,
) -> None:
    """inc2's manifest-files.json lost all but its first line: its other data files, in
    the shared folder, are read all the same (no other export lists them) and the run says
    so."""
    prefix = tmp_path / "bucket" / S3_PREFIX
    folders = _month(prefix)
    manifest = folders["inc2"] / "manifest-files.json"
    manifest.write_text(manifest.read_text().splitlines()[0] + "\n")
    result = _bill(tmp_path / "run", [str(prefix)])
    assert _lines(result) == LINES
    assert [(q.source_uri, q.locator, q.reason) for q in result.quarantine] == [
        (
            str(manifest),
            "file",
            "lists 1 data file(s) of 2 items in all, but manifest-summary.json says the "
            "export holds 4; every data file of the export was read instead",
        )
    ]
    expected = COUNTERS | {"records_seen": 13, "quarantined": 1, "unlisted_files": 2}
    assert _counters(result) == expected
    _adds_up(result)


def test_a_listed_shared_data_file_that_is_missing_is_an_error_naming_it(tmp_path: Path) -> None:
    prefix = tmp_path / "bucket" / S3_PREFIX
    folders = _month(prefix)
    entry = json.loads((folders["inc1"] / "manifest-files.json").read_text().splitlines()[1])
    victim = prefix.parent / entry["dataFileS3Key"]
    victim.unlink()
    with pytest.raises(InputError, match=f"lists {entry['dataFileS3Key']}, but {victim} does not"):
        _bill(tmp_path / "run", [str(prefix)])
    shutil.rmtree(tmp_path / "run")
    with pytest.raises(InputError, match=victim.name):  # the export folder as the root
        _bill(tmp_path / "run", [str(folders["inc1"])])


def test_bad_incremental_lines_are_quarantined_deletes_are_counted(tmp_path: Path) -> None:
    put = json.loads(change_line(Change("2026-10-12T00:00:00.000000Z", new=A3)))
    keys = put["Keys"]
    lines = [
        dump(put),
        dump({"Metadata": put["Metadata"], "Keys": keys}),  # a delete, NEW_IMAGE view
        dump({"Metadata": put["Metadata"], "Keys": keys, "OldImage": put["NewImage"]}),
        dump({**put, "Metadata": {"WriteTimestampMicros": {"N": "soon"}}}),
        dump({**put, "Metadata": {"WriteTimestampMicros": {"S": "1"}}}),
        dump({**put, "Metadata": {"WriteTimestampMicros": {"N": "-5"}}}),
        dump({"Metadata": put["Metadata"]}),
        dump({"Metadata": put["Metadata"], "Keys": 5}),
    ]
    write_data_file(tmp_path / "AWSDynamoDB" / "data" / "d.json.gz", lines)
    got = read_exports([str(tmp_path)])
    assert [(q.locator, q.reason) for q in got.quarantine] == [
        ("line 5", "WriteTimestampMicros has DynamoDB type S, expected N"),
        ("line 7", "no Item, NewImage or Keys in the line"),
        ("line 8", "Keys: Expected `object | null`, got `int`"),
        ("line 4", "Metadata.WriteTimestampMicros is not a whole number of microseconds: soon"),
        ("line 6", "Metadata.WriteTimestampMicros is not a whole number of microseconds: -5"),
    ]
    assert got.frame.select("request_id", "written_us").rows() == [
        ("a3", micros("2026-10-12T00:00:00.000000Z"))
    ]
    c = got.counters
    assert (c.records_seen, c.deleted_records, c.quarantined) == (8, 2, 5)


def test_a_relative_root_reads_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``read_exports`` given a path spelt otherwise than its listing spells it (``./``)."""
    folders = _month(tmp_path / "bucket" / S3_PREFIX)
    monkeypatch.chdir(tmp_path)
    for root in ("./bucket/metering/", f"./bucket/metering/AWSDynamoDB/{folders['inc2'].name}"):
        got = read_exports([root])
        assert got.quarantine == [], root
        assert got.counters.deleted_records == (2 if root.endswith("/") else 1)
    assert sorted(read_exports(["./bucket/metering"]).frame["request_id"]) == [
        "a1", "a2", "a2", "a3", "b1", "b2", "b2", "c1", "n1", "old1"
    ]  # fmt: skip
