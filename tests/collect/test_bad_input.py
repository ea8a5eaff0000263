"""Broken and hostile input (issue 15, SPEC 5): a bad record or file is quarantined with a
reason, everything readable around it is still billed, memory stays bounded and nothing
hangs the run.

No test here times anything. Memory is measured in a child process (its own peak RSS), so
that a regression fails the test instead of the machine; the child also runs under an
address-space limit and a generous timeout, as a guard against a regression that hangs.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import socket
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from isal import isal_zlib

from metering import limits
from metering.collect.cloudtrail import read_cloudtrail
from metering.collect.exports import read_exports
from metering.config import load_config
from metering.pipeline import bill
from tests.collect.test_cloudtrail import OCT, body, counters, event, key, put, trail_config
from tests.conftest import REPO
from tests.helpers import export_records, lines_of, record, write_config, write_data_file

MIB = 1024 * 1024
GZIP_CUT = "truncated gzip: the file ends before the gzip stream does"
GARBAGE = "trailing garbage after the gzip stream"
READ_INSTEAD = "every data file of the export was read instead"
TOO_DEEP = "nested too deeply for meter to decode (thousands of levels)"
DEEP = "[" * 100_000 + "]" * 100_000


def _gzip_prefix(text: bytes, cut: int) -> bytes:
    """A gzip file that ends early, such that exactly ``text[:cut]`` can be read from it."""
    packer = zlib.compressobj(wbits=16 + zlib.MAX_WBITS)
    return packer.compress(text[:cut]) + packer.flush(zlib.Z_SYNC_FLUSH)


def _entries(got: object) -> list[tuple[str, str, str]]:
    """(file name, locator, reason) of each quarantine entry."""
    return [(Path(q.source_uri).name, q.locator, q.reason) for q in got.quarantine]  # type: ignore[attr-defined]


def _adds_up(result: object) -> None:
    """SPEC 5: every record read lands in exactly one bucket."""
    c = result.counters  # type: ignore[attr-defined]
    assert c.records_seen == (
        c.quarantined + c.skipped_non_data_api + c.skipped_operations + c.duplicates
        + c.out_of_month + c.errored_calls + c.calls_billed + c.joined + c.deleted_records
    )  # fmt: skip


# -- 1. a broken export manifest never turns the export into ignored strays ----------------

CALLS = [record(f"r{i}", "acme", f"2026-10-0{i + 1}T12:00:00.000Z") for i in range(6)]
IDS = [f"r{i}" for i in range(6)]
FILES = "manifest-files.json"
SUMMARY = "manifest-summary.json"
FEWER = (
    f"lists 1 data file(s) of 3 items in all, but {SUMMARY} says the export holds 6; "
    + READ_INSTEAD
)


def _export(root: Path) -> Path:
    """An export of six October calls: data files of 3 and 3 items and an empty one, each
    listed in manifest-files.json, 6 items in manifest-summary.json."""
    return export_records(root / "dynamodb", CALLS)


def _cut_in_line_2(path: Path) -> None:
    text = path.read_text()
    path.write_text(text[: text.index("\n") + 40])


def _first_line_only(path: Path) -> None:
    path.write_text(path.read_text().splitlines(keepends=True)[0])


@pytest.mark.parametrize(
    ("manifest", "damage", "entries", "unlisted"),
    [
        (
            FILES,
            lambda p: p.write_text(""),
            [(FILES, "file", f"lists no data file, but its data/ folder holds 3; {READ_INSTEAD}")],
            3,
        ),
        (
            FILES,
            _cut_in_line_2,
            [
                (
                    FILES,
                    "line 2",
                    f"not a manifest entry: Input data was truncated; {READ_INSTEAD}",
                ),
                (FILES, "file", FEWER),
            ],
            2,
        ),
        (FILES, _first_line_only, [(FILES, "file", FEWER)], 2),
        (FILES, Path.unlink, [(FILES, "file", f"{FILES} is missing; {READ_INSTEAD}")], 3),
        (
            SUMMARY,
            lambda p: p.write_text(""),
            [(SUMMARY, "file", f"not a {SUMMARY}: Input data was truncated; {READ_INSTEAD}")],
            0,
        ),
        (
            SUMMARY,
            lambda p: p.write_text(p.read_text()[:100]),
            [(SUMMARY, "file", f"not a {SUMMARY}: Input data was truncated; {READ_INSTEAD}")],
            0,
        ),
        (SUMMARY, Path.unlink, [(SUMMARY, "file", f"{SUMMARY} is missing; {READ_INSTEAD}")], 0),
    ],
    ids=[
        "files-empty",
        "files-cut-mid-line",
        "files-cut-at-a-line-end",
        "files-missing",
        "summary-empty",
        "summary-cut",
        "summary-missing",
    ],
)
def test_a_broken_manifest_reads_every_data_file_and_says_so(
    tmp_path: Path,
    manifest: str,
    damage: Callable[[Path], None],
    entries: list[tuple[str, str, str]],
    unlisted: int,
) -> None:
    folder = _export(tmp_path)
    damage(folder / manifest)
    got = read_exports([str(tmp_path / "dynamodb")])
    assert sorted(got.frame["request_id"]) == IDS
    assert _entries(got) == entries
    assert [Path(q.source_uri) for q in got.quarantine] == [folder / name for name, _, _ in entries]
    expected = {"files_read": 3, "records_seen": 6 + len(entries), "quarantined": len(entries)}
    assert counters(got) == expected | ({"unlisted_files": unlisted} if unlisted else {})


def test_a_broken_manifest_is_billed_and_the_run_says_so(tmp_path: Path) -> None:
    _cut_in_line_2(_export(tmp_path) / FILES)
    result = bill(load_config(write_config(tmp_path)), OCT)
    assert result.exit_code == 3
    assert result.counters.calls_billed == 6
    assert result.bill.total_units == 6
    assert [(q.locator, q.reason) for q in result.quarantine] == [
        ("file", FEWER),
        ("line 2", f"not a manifest entry: Input data was truncated; {READ_INSTEAD}"),
    ]
    _adds_up(result)
    con = duckdb.connect(str(tmp_path / "meter.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM calls").fetchall() == [(6,)]
    assert con.execute("SELECT locator FROM quarantine ORDER BY 1").fetchall() == [
        ("file",),
        ("line 2",),
    ]
    con.close()


def test_a_data_file_a_whole_manifest_does_not_list_is_not_read(tmp_path: Path) -> None:
    folder = _export(tmp_path)
    stray = write_data_file(
        folder / "data" / "stray.json.gz",
        lines_of([record("r9", "acme", "2026-10-09T12:00:00.000Z")]),
    )
    got = read_exports([str(tmp_path / "dynamodb")])
    assert sorted(got.frame["request_id"]) == IDS
    assert [(q.source_uri, q.locator, q.reason) for q in got.quarantine] == [
        (
            str(stray),
            "file",
            f"{FILES} of its export does not list it: not part of the export, not read "
            "(remove it, or copy the export again)",
        )
    ]
    assert counters(got) == {
        "files_read": 3,
        "records_seen": 7,
        "quarantined": 1,
        "unlisted_files": 1,
    }


def test_an_export_without_any_manifest_is_read_from_its_data_files(tmp_path: Path) -> None:
    folder = _export(tmp_path)
    (folder / FILES).unlink()
    (folder / SUMMARY).unlink()
    got = read_exports([str(tmp_path / "dynamodb")])
    assert sorted(got.frame["request_id"]) == IDS
    assert got.quarantine == []
    assert counters(got) == {"files_read": 3, "records_seen": 6}
    result = bill(load_config(write_config(tmp_path)), OCT)
    assert (result.exit_code, result.counters.calls_billed) == (0, 6)


# -- 2. damage after good data keeps the good data -----------------------------------------

FOUR = [event(f"e{i}", "2026-10-05T12:00:00Z") for i in range(4)]
INSIDE_3 = "inside record 3"
AFTER_3 = "after record 3's closing brace"  # its text is whole; what follows it is cut
IN_3 = ("record 3", "truncated: the text ends inside record 3")
PAST_3 = ("after record 3", "truncated: the text ends after record 3")


def _cut_at(text: bytes, where: str) -> int:
    third = json.dumps(FOUR[2]).encode()
    start = text.index(third)
    return start + len(third) // 2 if where == INSIDE_3 else start + len(third)


@pytest.mark.parametrize(
    ("form", "gz", "where", "kept", "entries"),
    [
        ("records", False, INSIDE_3, 2, [IN_3]),
        ("records", True, INSIDE_3, 2, [("record 3", GZIP_CUT)]),
        ("array", False, INSIDE_3, 2, [IN_3]),
        ("array", True, INSIDE_3, 2, [("record 3", GZIP_CUT)]),
        ("lines", False, INSIDE_3, 2, [("line 3", "invalid JSON: Input data was truncated")]),
        ("lines", True, INSIDE_3, 2, [("after line 2", GZIP_CUT)]),
        ("records", False, AFTER_3, 3, [PAST_3]),
        ("records", True, AFTER_3, 3, [("after record 3", GZIP_CUT)]),
        ("array", False, AFTER_3, 3, [PAST_3]),
        ("array", True, AFTER_3, 3, [("after record 3", GZIP_CUT)]),
        ("lines", False, AFTER_3, 3, []),  # a last line without its line end is whole
        ("lines", True, AFTER_3, 3, [("after line 3", GZIP_CUT)]),
    ],
)
def test_a_cut_trail_file_keeps_every_record_before_the_cut(
    tmp_path: Path, form: str, gz: bool, where: str, kept: int, entries: list[tuple[str, str]]
) -> None:
    text = body(FOUR, form)
    cut = _cut_at(text, where)
    (tmp_path / "cut.json").write_bytes(_gzip_prefix(text, cut) if gz else text[:cut])
    got = read_cloudtrail([str(tmp_path)], OCT, 3)
    assert got.frame["event_id"].to_list() == [f"e{i}" for i in range(kept)]
    assert [(q.locator, q.reason) for q in got.quarantine] == entries
    assert counters(got) == {
        "files_read": 1,
        "records_seen": kept + len(entries),
        **({"quarantined": len(entries)} if entries else {}),
    }


def test_a_cut_json_lines_file_of_whole_bodies_keeps_the_records_of_its_cut_line(
    tmp_path: Path,
) -> None:
    """``zcat *.json.gz | gzip > all.jsonl.gz``, cut inside its second body: the records
    complete before the cut are read, from the cut line too."""
    lines = [body(FOUR[:2]), body(FOUR[2:])]
    text = b"\n".join(lines) + b"\n"
    cut = text.index(b'"e3"')
    for name, data in (("plain.jsonl", text[:cut]), ("gzip.jsonl.gz", _gzip_prefix(text, cut))):
        (tmp_path / name).write_bytes(data)
    got = read_cloudtrail([str(tmp_path)], OCT, 3)
    assert got.frame["event_id"].to_list() == ["e0", "e1", "e2"] * 2
    assert _entries(got) == [
        ("gzip.jsonl.gz", "line 2 record 2", "truncated: the text ends inside record 2"),
        ("gzip.jsonl.gz", "after line 2", GZIP_CUT),
        ("plain.jsonl", "line 2 record 2", "truncated: the text ends inside record 2"),
    ]
    assert counters(got) == {"files_read": 2, "records_seen": 9, "quarantined": 3}


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("where", [INSIDE_3, AFTER_3])
def test_a_cut_export_data_file_keeps_every_line_before_the_cut(
    tmp_path: Path, gz: bool, where: str
) -> None:
    lines = lines_of([record(f"r{i}", "acme", "2026-10-05T12:00:00.000Z") for i in range(4)])
    text = "".join(line + "\n" for line in lines).encode()
    third = lines[2].encode()
    cut = text.index(third) + (len(third) // 2 if where == INSIDE_3 else len(third))
    path = tmp_path / "dynamodb" / "data" / "cut.json.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(_gzip_prefix(text, cut) if gz else text[:cut])
    got = read_exports([str(tmp_path / "dynamodb")])
    kept = 2 if where == INSIDE_3 else 3
    assert got.frame["request_id"].to_list() == [f"r{i}" for i in range(kept)]
    entries = {
        (False, INSIDE_3): [("line 3", "invalid JSON: Input data was truncated")],
        (True, INSIDE_3): [("after line 2", GZIP_CUT)],
        (False, AFTER_3): [],  # a last line without its line end is whole
        (True, AFTER_3): [("after line 3", GZIP_CUT)],
    }[gz, where]
    assert [(q.locator, q.reason) for q in got.quarantine] == entries
    assert got.counters.records_seen == kept + len(entries)
    assert got.counters.quarantined == len(entries)


@pytest.mark.parametrize(
    ("form", "after"),
    [("records", "after record 4"), ("array", "after record 4"), ("lines", "after line 4")],
)
def test_junk_after_a_gzip_member_keeps_the_member(tmp_path: Path, form: str, after: str) -> None:
    """Members joined with NUL padding (as some tools write them) are all read; junk after
    the last one is quarantined."""
    text = body(FOUR, form)
    member = gzip.compress(text, mtime=0)
    (tmp_path / "padded.json.gz").write_bytes(member + b"\x00" * 512 + member)
    (tmp_path / "tail.json.gz").write_bytes(member + b"garbage\x00\xff")
    got = read_cloudtrail([str(tmp_path)], OCT, 3)
    assert got.frame["event_id"].to_list() == [f"e{i}" for i in range(4)] * 3
    assert _entries(got) == [("tail.json.gz", after, GARBAGE)]
    assert counters(got) == {"files_read": 2, "records_seen": 13, "quarantined": 1}


@pytest.mark.parametrize(
    ("form", "entry"),
    [
        ("records", ("line 1", "not JSON: text outside any JSON value")),
        ("array", ("line 1", "not JSON: text outside any JSON value")),
        ("lines", ("line 5", "invalid JSON: JSON is malformed: invalid character (byte 0)")),
    ],
)
def test_junk_after_a_plain_body_keeps_the_body(
    tmp_path: Path, form: str, entry: tuple[str, str]
) -> None:
    (tmp_path / "tail.json").write_bytes(body(FOUR, form) + b"garbage\x00\xff")
    got = read_cloudtrail([str(tmp_path)], OCT, 3)
    assert got.frame["event_id"].to_list() == [f"e{i}" for i in range(4)]
    assert [(q.locator, q.reason) for q in got.quarantine] == [entry]
    assert counters(got) == {"files_read": 1, "records_seen": 5, "quarantined": 1}


@pytest.mark.parametrize(("form", "line"), [("records", 2), ("array", 2), ("lines", 5)])
def test_junk_on_the_line_after_a_plain_body_keeps_the_body(
    tmp_path: Path, form: str, line: int
) -> None:
    """The file reads as JSON Lines then (its first line is whole JSON): a line holding a
    whole body, a ``{"Records": [...]}`` object or a bare array, gives its records."""
    text = body(FOUR, form)
    (tmp_path / "tail.json").write_bytes(text + (b"" if form == "lines" else b"\n") + b"\x00junk")
    got = read_cloudtrail([str(tmp_path)], OCT, 3)
    assert got.frame["event_id"].to_list() == [f"e{i}" for i in range(4)]
    assert [(q.locator, q.reason) for q in got.quarantine] == [
        (f"line {line}", "invalid JSON: JSON is malformed: invalid character (byte 0)")
    ]
    assert counters(got) == {"files_read": 1, "records_seen": 5, "quarantined": 1}


def test_a_record_whose_first_brace_is_flipped_is_quarantined_not_a_crash(tmp_path: Path) -> None:
    """``[z"eventVersion": ...``: the record's fields are read as records of the array; a
    field that is a string followed by more text is invalid JSON, not an exception."""
    text = body(FOUR, "array")
    (tmp_path / "flipped.json").write_bytes(text[:1] + b"z" + text[2:])
    got = read_cloudtrail([str(tmp_path)], OCT, 3)
    assert got.frame.height == 0
    assert [(q.locator, q.reason) for q in got.quarantine][:2] == [
        ("record 1", "invalid JSON: JSON is malformed: invalid character (byte 0)"),
        ("record 2", "invalid JSON: JSON is malformed: trailing characters (byte 15)"),
    ]
    assert got.quarantine[-1].reason == "invalid JSON at line 1: '}' closes nothing"
    assert counters(got) == {"files_read": 1, "records_seen": 12, "quarantined": 12}


def test_a_line_cut_inside_a_string_never_runs_on_into_the_next(tmp_path: Path) -> None:
    """A line end inside a string (one flipped byte) breaks a line in two: both halves are
    quarantined, never glued together into a record, even when a line of two values
    elsewhere makes the count of lines and values agree."""
    e = [json.dumps(record).encode() for record in FOUR]
    (tmp_path / "trail.jsonl").write_bytes(
        b"\n".join([e[0], e[1][:60], e[1][60:], e[2] + b", " + e[3]]) + b"\n"
    )
    r = lines_of(CALLS[:5])
    lines = [r[0], r[1][:60], r[1][60:], f"{r[2]},{r[3]}", r[4]]
    write_data_file(tmp_path / "dynamodb" / "data" / "a.json", lines, compress=False)
    events = read_cloudtrail([str(tmp_path / "trail.jsonl")], OCT, 3)
    assert events.frame["event_id"].to_list() == ["e0", "e2"]  # line 4's first value is whole
    assert [(q.locator, q.reason) for q in events.quarantine] == [
        ("line 2", "invalid JSON: Input data was truncated"),
        ("line 3", "invalid JSON: JSON is malformed: invalid character (byte 0)"),
        ("line 4", "not JSON: text outside any JSON value"),
    ]
    records = read_exports([str(tmp_path / "dynamodb")])
    assert records.frame["request_id"].to_list() == ["r0", "r4"]
    assert [(q.locator, q.reason) for q in records.quarantine] == [
        ("line 2", "invalid JSON: Input data was truncated"),
        ("line 3", "invalid JSON: JSON is malformed: invalid number (byte 2)"),
        ("line 4", f"invalid JSON: JSON is malformed: trailing characters (byte {len(r[2]) + 1})"),
    ]


def test_export_line_numbers_stay_right_past_blank_lines_and_doubled_lines(tmp_path: Path) -> None:
    r = lines_of(CALLS[:4])
    bad = r[3].replace('"N":"100"', '"N":"-1"', 1)
    write_data_file(
        tmp_path / "data" / "a.json", [r[0], "   ", f"{r[1]} {r[2]}", bad], compress=False
    )
    got = read_exports([str(tmp_path)])
    assert got.frame["request_id"].to_list() == ["r0"]
    assert [(q.locator, q.reason) for q in got.quarantine] == [
        ("line 3", f"invalid JSON: JSON is malformed: trailing characters (byte {len(r[1]) + 2})"),
        ("line 4", "request_bytes = -1 is outside [0, 4,194,304]"),
    ]


def _data_file(folder: Path) -> Path:
    """The export's data file of r0, r2 and r4 (the first manifest-files.json lists)."""
    first = json.loads((folder / FILES).read_text().splitlines()[0])
    return folder / "data" / Path(first["dataFileS3Key"]).name


def _md5(path: Path) -> str:
    return base64.b64encode(hashlib.md5(path.read_bytes()).digest()).decode()


def _manifest_md5(folder: Path) -> str:
    return str(json.loads((folder / FILES).read_text().splitlines()[0])["md5Checksum"])


def test_export_damage_after_good_lines_bills_them_and_says_which(tmp_path: Path) -> None:
    """A changed, a shortened, a cut and a junk-tailed copy of the same data file: each
    entry says exactly which lines were billed anyway."""
    results = {}
    for case in ("changed", "shortened", "cut", "junk"):
        folder = _export(tmp_path / case)
        path = _data_file(folder)
        text = gzip.decompress(path.read_bytes())
        if case == "changed":  # the same lines, compressed again: another MD5
            path.write_bytes(gzip.compress(text, mtime=1))
        elif case == "shortened":
            path.write_bytes(gzip.compress(b"".join(text.splitlines(keepends=True)[:2]), mtime=0))
        elif case == "cut":
            first, second = text.splitlines(keepends=True)[:2]
            path.write_bytes(_gzip_prefix(text, len(first) + len(second) // 2))
        else:
            path.write_bytes(path.read_bytes() + b"junk")
        got = read_exports([str(tmp_path / case / "dynamodb")])
        md5 = (
            f"MD5 {_md5(path)} differs from the manifest's {_manifest_md5(folder)}: the file is "
            "not the one the export wrote; its {n} items (lines 1 to {n}) were read and billed "
            "anyway, each line being a whole item (copy the export again to be sure)"
        )
        results[case] = (sorted(got.frame["request_id"]), _entries(got), md5, path.name)
        assert got.counters.records_seen == got.frame.height + got.counters.quarantined

    rows, entries, md5, name = results["changed"]
    assert rows == IDS
    assert entries == [(name, "file", md5.format(n=3))]

    rows, entries, md5, name = results["shortened"]
    assert rows == ["r0", "r1", "r2", "r3", "r5"]
    assert entries == [
        (name, "file", md5.format(n=2)),
        (
            name,
            "file",
            "the manifest says 3 items, the file holds 2: its 2 items (lines 1 to 2) were read "
            "and billed anyway",
        ),
    ]

    rows, entries, md5, name = results["cut"]
    assert rows == ["r0", "r1", "r3", "r5"]
    assert entries == [(name, "after line 1", GZIP_CUT), (name, "file", md5.format(n=1))]

    rows, entries, md5, name = results["junk"]
    assert rows == IDS
    assert entries == [(name, "after line 3", GARBAGE)]  # not read to its end: no MD5


def test_an_md5_mismatch_does_not_claim_a_quarantined_line_was_billed(tmp_path: Path) -> None:
    folder = _export(tmp_path)
    path = _data_file(folder)
    lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"N":"100"', b'"N":"-1"', 1)  # r2's request_bytes
    path.write_bytes(gzip.compress(b"".join(lines), mtime=0))
    got = read_exports([str(tmp_path / "dynamodb")])
    assert sorted(got.frame["request_id"]) == ["r0", "r1", "r3", "r4", "r5"]
    assert _entries(got) == [
        (path.name, "line 2", "request_bytes = -1 is outside [0, 4,194,304]"),
        (
            path.name,
            "file",
            f"MD5 {_md5(path)} differs from the manifest's {_manifest_md5(folder)}: the file is "
            "not the one the export wrote; its 3 items (lines 1 to 3) were read: 2 billed "
            "anyway, 1 quarantined by line, each line being a whole item (copy the export "
            "again to be sure)",
        ),
    ]


# -- 3. one poisoned record never fails the month ------------------------------------------

THREE = [event(f"e{i}", "2026-10-05T12:00:00Z") for i in range(3)]


def _poisoned(records: list[dict[str, object]], form: str, field: bytes) -> bytes:
    """``records`` as a body whose second record's ``sql`` parameter is ``field``."""
    text = body(records, form)
    second = json.dumps(records[1]).encode()
    return text.replace(second, second.replace(b'"sql": "**********"', b'"sql": ' + field), 1)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    ("form", "where"), [("records", "record 2"), ("array", "record 2"), ("lines", "line 2")]
)
def test_a_record_nested_100000_deep_is_quarantined_the_rest_billed(
    tmp_path: Path, form: str, where: str, gz: bool
) -> None:
    text = _poisoned(THREE, form, DEEP.encode())
    (tmp_path / "deep.json").write_bytes(gzip.compress(text, mtime=0) if gz else text)
    got = read_cloudtrail([str(tmp_path)], OCT, 3)
    assert got.frame["event_id"].to_list() == ["e0", "e2"]
    assert [(q.locator, q.reason) for q in got.quarantine] == [(where, TOO_DEEP)]
    assert counters(got) == {"files_read": 1, "records_seen": 3, "quarantined": 1}


def _item_lines(count: int, **extra: str) -> list[str]:
    """Export lines of ``count`` calls; ``extra`` is pasted into the second one's item."""
    lines = lines_of([record(f"r{i}", "acme", "2026-10-05T12:00:00.000Z") for i in range(count)])
    for name, value in extra.items():
        lines[1] = f'{lines[1][:-2]},"{name}":{value}}}}}'
    return lines


def test_an_export_line_nested_100000_deep_is_quarantined_the_rest_billed(tmp_path: Path) -> None:
    write_data_file(tmp_path / "data" / "deep.json.gz", _item_lines(3, blob='{"L":' + DEEP + "}"))
    got = read_exports([str(tmp_path)])
    assert got.frame["request_id"].to_list() == ["r0", "r2"]
    assert [(q.locator, q.reason) for q in got.quarantine] == [("line 2", TOO_DEEP)]
    assert counters(got) == {"files_read": 1, "records_seen": 3, "quarantined": 1}


def test_an_export_line_of_40_mb_is_quarantined_unread(tmp_path: Path) -> None:
    """Over limits.MAX_RECORD_BYTES (8 MiB): skipped without being held."""
    blob = '{"S":"' + "a" * (40 * MIB) + '"}'
    write_data_file(tmp_path / "data" / "big.json.gz", _item_lines(3, blob=blob))
    got = read_exports([str(tmp_path)])
    assert got.frame["request_id"].to_list() == ["r0", "r2"]
    assert [(q.locator, q.reason) for q in got.quarantine] == [
        ("line 2", f"the line is longer than {limits.MAX_RECORD_BYTES:,} bytes: not read")
    ]
    assert counters(got) == {"files_read": 1, "records_seen": 3, "quarantined": 1}


def test_a_trail_record_of_40_mb_read_piece_by_piece_is_quarantined_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file over limits.WHOLE_FILE_BYTES is read piece by piece: a record over
    limits.MAX_RECORD_BYTES in it is skipped without being held. (The field is random hex,
    which gzip cannot shrink much: no gzip bomb.)"""
    monkeypatch.setattr(limits, "WHOLE_FILE_BYTES", 4 * MIB)
    field = b'"' + os.urandom(20 * MIB).hex().encode() + b'"'
    path = tmp_path / "big.json.gz"
    path.write_bytes(isal_zlib.compress(_poisoned(THREE, "records", field), 1, 16 + 15))
    try:
        got = read_cloudtrail([str(tmp_path)], OCT, 3)
    finally:
        path.unlink()
    assert got.frame["event_id"].to_list() == ["e0", "e2"]
    assert [(q.locator, q.reason) for q in got.quarantine] == [
        ("record 2", f"the record is larger than {limits.MAX_RECORD_BYTES:,} bytes: not read")
    ]
    assert counters(got) == {"files_read": 1, "records_seen": 3, "quarantined": 1}


@pytest.mark.parametrize(
    ("form", "entry"),
    [
        ("records", ("record 2", "the record is larger than 8,192 bytes: not read")),
        ("array", ("record 2", "the record is larger than 8,192 bytes: not read")),
        ("lines", ("line 2", "the line is longer than 8,192 bytes: not read")),
        ("export", ("line 2", "the line is longer than 8,192 bytes: not read")),
    ],
)
def test_the_bounds_are_read_when_a_file_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str, entry: tuple[str, str]
) -> None:
    """Small bounds (monkeypatched) take effect: the piecewise paths with small pieces."""
    monkeypatch.setattr(limits, "WHOLE_FILE_BYTES", 4096)
    monkeypatch.setattr(limits, "PIECE_BYTES", 1024)
    monkeypatch.setattr(limits, "MAX_RECORD_BYTES", 8192)
    monkeypatch.setattr(limits, "MAX_LINE_BYTES", 8192)
    many = [event(f"e{i}", "2026-10-05T12:00:00Z") for i in range(12)]
    if form == "export":
        write_data_file(
            tmp_path / "data" / "a.json.gz", _item_lines(12, blob='"' + "a" * 20_000 + '"')
        )
        got = read_exports([str(tmp_path)])
        kept = got.frame["request_id"].to_list()
    else:
        (tmp_path / "a.json.gz").write_bytes(
            gzip.compress(_poisoned(many, form, b'"' + b"a" * 20_000 + b'"'), mtime=0)
        )
        got = read_cloudtrail([str(tmp_path)], OCT, 3)
        kept = got.frame["event_id"].to_list()
    assert kept == [f"{'r' if form == 'export' else 'e'}{i}" for i in range(12) if i != 1]
    assert [(q.locator, q.reason) for q in got.quarantine] == [entry]
    assert got.counters.records_seen == 12
    assert got.counters.quarantined == 1


def test_strings_past_their_bounds_are_quarantined_naming_field_and_bound(tmp_path: Path) -> None:
    cluster = "arn:aws:rds:us-east-1:123456789012:cluster:"
    calls = [
        record("ok", "acme", "2026-10-05T12:00:00.000Z"),
        record("long-tenant", "t" * 100_000, "2026-10-05T12:00:00.000Z"),
        record("control", "ac\x1bme", "2026-10-05T12:00:00.000Z"),
        record("long-arn", "acme", "2026-10-05T12:00:00.000Z")
        | {"resource_arn": cluster + "c" * (2049 - len(cluster))},
        record("at-bounds", "t" * 256, "2026-10-05T12:00:00.000Z")
        | {"resource_arn": cluster + "c" * (2048 - len(cluster))},
    ]
    write_data_file(tmp_path / "dynamodb" / "data" / "a.json.gz", lines_of(calls))
    long_arn = event("long-arn", "2026-10-05T12:00:00Z")
    long_arn["requestParameters"]["resourceArn"] = cluster + "c" * (2049 - len(cluster))  # type: ignore[index]
    put(tmp_path / "trail", key("2026-10-05"), [
        event("ok", "2026-10-05T12:00:00Z", request_id="ok"),
        long_arn,
        event("bell\x07", "2026-10-05T12:00:00Z"),
        event("e" * 129, "2026-10-05T12:00:00Z"),
    ])  # fmt: skip
    records = read_exports([str(tmp_path / "dynamodb")])
    assert records.frame["request_id"].to_list() == ["ok", "at-bounds"]
    assert [(q.locator, q.reason) for q in records.quarantine] == [
        ("line 2", "tenant_id is longer than 256 characters (100000)"),
        ("line 3", "tenant_id contains a control character"),
        ("line 4", "resource_arn is longer than 2,048 characters (2049)"),
    ]
    events = read_cloudtrail([str(tmp_path / "trail")], OCT, 3)
    assert events.frame["event_id"].to_list() == ["ok"]
    assert [(q.locator, q.reason) for q in events.quarantine] == [
        (
            "record 2",
            "the cluster ARN (requestParameters.resourceArn or resources[].ARN) is longer than "
            "2,048 characters (2049)",
        ),
        ("record 3", "eventID contains a control character"),
        ("record 4", "eventID is longer than 128 characters (129)"),
    ]

    result = bill(load_config(trail_config(tmp_path, metering=True)), OCT)
    assert result.exit_code == 3
    assert (result.counters.calls_billed, result.counters.joined) == (2, 1)  # "ok" in both
    assert result.counters.quarantined == 6
    _adds_up(result)


def test_a_poisoned_record_of_each_kind_never_fails_the_month(tmp_path: Path) -> None:
    trail = tmp_path / "trail" / key("2026-10-05")
    trail.parent.mkdir(parents=True)
    trail.write_bytes(gzip.compress(_poisoned(THREE, "records", DEEP.encode()), mtime=0))
    write_data_file(
        tmp_path / "dynamodb" / "data" / "a.json.gz",
        [*_item_lines(3, blob='{"L":' + DEEP + "}"), '{"Item": {"tenant_id": {"N": "1"}}}'],
    )
    result = bill(load_config(trail_config(tmp_path, metering=True)), OCT)
    assert result.exit_code == 3
    assert result.counters.calls_billed == 4  # e0, e2, r0, r2
    assert sorted((Path(q.source_uri).suffix, q.locator) for q in result.quarantine) == [
        (".gz", "line 2"),
        (".gz", "line 4"),
        (".gz", "record 2"),
    ]
    _adds_up(result)


def test_the_byte_bounds_of_a_call_are_read_when_it_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_REQUEST_BYTES", 1000)
    monkeypatch.setattr(limits, "MAX_RESPONSE_BYTES", 2000)
    calls = [
        record("at-bounds", "acme", "2026-10-05T12:00:00.000Z", req=1000, resp=2000),
        record("request", "acme", "2026-10-05T12:00:00.000Z", req=1001),
        record("response", "acme", "2026-10-05T12:00:00.000Z", resp=2001),
    ]
    write_data_file(tmp_path / "data" / "a.json.gz", lines_of(calls))
    got = read_exports([str(tmp_path)])
    assert got.frame["request_id"].to_list() == ["at-bounds"]
    assert [(q.locator, q.reason) for q in got.quarantine] == [
        ("line 2", "request_bytes = 1001 is outside [0, 1,000]"),
        ("line 3", "response_bytes = 2001 is outside [0, 2,000]"),
    ]


# -- 4. bounded memory, and no hang, on any input ------------------------------------------

MAX_PEAK_MB = 400  # the child's own peak RSS, its imports (about 60 MB) included
CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))  # a regression fails, not the machine
from metering.collect.cloudtrail import read_cloudtrail
from metering.collect.exports import read_exports
from metering.month import Month
def peak_mb():
    # VmHWM is this program's own peak (exec starts it anew); ru_maxrss would carry over the
    # peak of the pytest process that forked it.
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) // 1024
kind, root = sys.argv[1:]
got = read_cloudtrail([root], Month(2026, 10), 3) if kind == "cloudtrail" else read_exports([root])
print(json.dumps({
    "rows": got.frame.height,
    "entries": [[q.source_uri, q.locator, q.reason] for q in got.quarantine],
    "counters": {k: v for k, v in got.counters.as_dict().items() if v},
    "peak_mb": peak_mb(),
}))
"""


def _read_in_child(kind: str, root: Path) -> dict[str, object]:
    """Read ``root`` with the ``kind`` collector in a child process: what it found, and its
    peak memory. The timeout only turns a hang into a failure; nothing is timed."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, kind, str(root)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found: dict[str, object] = json.loads(done.stdout)
    return found


def _gzip_bomb(path: Path, unit: bytes, size: int = 1 << 30) -> None:
    """A gzip file of ``size`` bytes of ``unit`` repeated, written without holding it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    packer = isal_zlib.compressobj(1, isal_zlib.DEFLATED, 16 + 15)
    chunk = unit * max(1, (4 * MIB) // len(unit))
    with path.open("wb") as f:
        for _ in range(size // len(chunk)):
            f.write(packer.compress(chunk))
        f.write(packer.flush())


def _bomb(read_past: int) -> str:
    return (
        f"the gzip stream expands to more than {limits.MAX_EXPANSION} times its compressed "
        f"size (a gzip bomb?): not read past {read_past:,} bytes of text"
    )


PADDED_EVENT = json.dumps(event("e0", "2026-10-05T12:00:00Z")).encode() + b" " * MIB + b"\n"
PADDED_ITEM = lines_of([record("r0", "acme", "2026-10-05T12:00:00.000Z")])[0].encode()
PADDED_ITEM += b" " * MIB + b"\n"
# The guard trips at the first piece of text past limits.WHOLE_FILE_BYTES: CloudTrail reads
# pieces of limits.PIECE_BYTES, exports of at most limits.MAX_RECORD_BYTES.
TRAIL_PAST = (limits.WHOLE_FILE_BYTES // limits.PIECE_BYTES + 1) * limits.PIECE_BYTES
EXPORT_PIECE = min(limits.PIECE_BYTES, limits.MAX_RECORD_BYTES)
EXPORT_PAST = (limits.WHOLE_FILE_BYTES // EXPORT_PIECE + 1) * EXPORT_PIECE


@pytest.mark.parametrize(
    ("bomb", "kind", "rows", "entries"),
    [
        ("zeros", "cloudtrail", 0, [
            ("line 1", "not JSON: text outside any JSON value"), ("file", _bomb(TRAIL_PAST))
        ]),
        ("zeros", "exports", 0, [("after line 0", _bomb(EXPORT_PAST))]),
        ("whitespace", "cloudtrail", 0, [("file", _bomb(TRAIL_PAST))]),
        # (lines of 64 KiB, then of 1 MiB: the guard trips after the lines it let through)
        ("whitespace", "exports", 0, [(f"after line {EXPORT_PAST // 65536}", _bomb(EXPORT_PAST))]),
        # Lines of a valid record and 1 MiB of blanks: each is billed until the guard trips.
        ("json-lines", "cloudtrail", TRAIL_PAST // MIB, [
            (f"after line {TRAIL_PAST // MIB}", _bomb(TRAIL_PAST))
        ]),
        ("json-lines", "exports", EXPORT_PAST // MIB, [
            (f"after line {EXPORT_PAST // MIB}", _bomb(EXPORT_PAST))
        ]),
    ],
)  # fmt: skip
def test_a_gzip_bomb_is_quarantined_in_bounded_memory(
    tmp_path: Path, bomb: str, kind: str, rows: int, entries: list[tuple[str, str]]
) -> None:
    """About 1 MB of gzip that expands to 1 GiB: read up to the guard, then quarantined."""
    unit = {
        "zeros": b"\x00",
        "whitespace": b" " * 65535 + b"\n",
        "json-lines": PADDED_EVENT if kind == "cloudtrail" else PADDED_ITEM,
    }[bomb]
    path = tmp_path / ("data/bomb.json.gz" if kind == "exports" else "bomb.json.gz")
    _gzip_bomb(path, unit)
    assert path.stat().st_size < 2 * MIB
    found = _read_in_child(kind, tmp_path)
    assert found["rows"] == rows
    assert found["entries"] == [[str(path), *entry] for entry in entries]
    assert found["counters"] == {
        "files_read": 1,
        "records_seen": rows + len(entries),
        "quarantined": len(entries),
    }
    assert found["peak_mb"] < MAX_PEAK_MB  # type: ignore[operator]


ENDLESS = 200 * MIB
CSV_HEADER = b'"eventid","eventtime","eventsource","eventname","errorcode","requestid"\n'


def _endless(path: Path, head: bytes, fill: bytes) -> None:
    """``head``, then ``fill`` to ENDLESS bytes without a line end, written piece by piece;
    no fill: a sparse file of NUL bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        f.write(head)
        if fill:
            for _ in range(ENDLESS // MIB):
                f.write(fill * (MIB // len(fill)))
        else:
            f.truncate(ENDLESS)


@pytest.mark.parametrize(
    ("kind", "name", "head", "fill", "entry"),
    [
        ("cloudtrail", "a.json", b'{"Records": [{"eventID": "x", "sql": "', b"a",
         ("record 1", f"the record is larger than {limits.MAX_RECORD_BYTES:,} bytes: not read "
                      "(truncated: the text ends inside record 1)")),
        ("cloudtrail", "a.json", b"", b"",
         ("line 1", "not JSON: text outside any JSON value")),
        ("exports", "data/a.json", b'{"Item": {"blob": {"S": "', b"a",
         ("line 1", f"the line is longer than {limits.MAX_RECORD_BYTES:,} bytes: not read")),
        # A query result whose first row's quoted cell never ends.
        ("cloudtrail", "result.csv", CSV_HEADER + b'"e1","', b"a",
         ("row 1", f"the line is longer than {limits.MAX_LINE_BYTES:,} bytes: not read")),
    ],
)  # fmt: skip
def test_an_endless_line_is_quarantined_in_bounded_memory(
    tmp_path: Path, kind: str, name: str, head: bytes, fill: bytes, entry: tuple[str, str]
) -> None:
    """A plain file of 200 MB without a line end."""
    path = tmp_path / name
    _endless(path, head, fill)
    try:
        found = _read_in_child(kind, tmp_path)
    finally:
        path.unlink()
    assert found["rows"] == 0
    assert found["entries"] == [[str(path), *entry]]
    assert found["counters"] == {"files_read": 1, "records_seen": 1, "quarantined": 1}
    assert found["peak_mb"] < MAX_PEAK_MB  # type: ignore[operator]


def test_pipes_sockets_devices_and_broken_links_are_refused_folders_followed_once(
    tmp_path: Path,
) -> None:
    """Among the inputs: a FIFO (opening it would wait for a writer forever), a socket,
    /dev/zero behind a symlink (endless), a dangling symlink, a symlink loop, a folder
    symlink that leads back up; and symlinked folders, followed, each real folder once."""
    trail = tmp_path / "trail"
    put(trail, "loose/a.json", [event("a", "2026-10-05T12:00:00Z")], gz=False)
    put(tmp_path / "elsewhere", "b.json", [event("b", "2026-10-05T12:00:00Z")], gz=False)
    (trail / "outside").symlink_to(tmp_path / "elsewhere")
    (trail / "again").symlink_to(trail / "loose")  # a second way to loose/
    odd = trail / "odd"
    odd.mkdir()
    os.mkfifo(odd / "fifo.json")
    (odd / "zero.json").symlink_to("/dev/zero")
    (odd / "dangling.json").symlink_to(odd / "nowhere.json")
    (odd / "loop-a.json").symlink_to(odd / "loop-b.json")
    (odd / "loop-b.json").symlink_to(odd / "loop-a.json")
    (odd / "up").symlink_to("..")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(odd / "sock.json"))
        found = _read_in_child("cloudtrail", trail)
    assert sorted(found["entries"]) == [  # type: ignore[type-var]
        [
            str(odd / "dangling.json"),
            "file",
            "a dangling symlink: what it points to does not exist",
        ],
        [str(odd / "fifo.json"), "file", "a named pipe (FIFO), not a regular file: not read"],
        [str(odd / "loop-a.json"), "file", "a symlink loop: it never reaches a file"],
        [str(odd / "loop-b.json"), "file", "a symlink loop: it never reaches a file"],
        [str(odd / "sock.json"), "file", "a socket, not a regular file: not read"],
        [
            str(odd / "up"),
            "folder",
            "a symlink loop: it leads back to a folder it lies in; not followed",
        ],
        [str(odd / "zero.json"), "file", "a character device, not a regular file: not read"],
    ]
    assert found["rows"] == 2  # a and b, each once
    assert found["counters"] == {"files_read": 2, "records_seen": 9, "quarantined": 7}

    data = tmp_path / "dynamodb" / "data"
    write_data_file(data / "a.json.gz", lines_of(CALLS[:2]))
    os.mkfifo(data / "fifo.json.gz")
    (data / "zero.json.gz").symlink_to("/dev/zero")
    found = _read_in_child("exports", tmp_path / "dynamodb")
    assert found["rows"] == 2
    assert [entry[0] for entry in found["entries"]] == [  # type: ignore[attr-defined]
        str(data / "zero.json.gz"),
        str(data / "fifo.json.gz"),
    ]
    assert found["counters"] == {"files_read": 1, "records_seen": 4, "quarantined": 2}


@pytest.mark.parametrize("root", ["/dev/zero", "link-to-zero"])
def test_a_device_as_the_configured_root_is_an_input_error(tmp_path: Path, root: str) -> None:
    from metering.errors import InputError

    (tmp_path / "link-to-zero").symlink_to("/dev/zero")
    path = root if root.startswith("/") else str(tmp_path / root)
    with pytest.raises(InputError, match="is a character device, not a folder or a file"):
        read_cloudtrail([path], OCT, 3)


# Measured: 100 to 130 MB batched; 343 MB to 1.3 GB when each file is decoded, and its
# quarantine kept, all at once.
TINY_PEAK_MB = 200


def test_a_file_of_millions_of_tiny_records_is_read_in_bounded_memory(tmp_path: Path) -> None:
    """Memory follows bytes, not the number of records: 7.5 MB of '{},' (2.5 million
    records, ~500 MB as objects at once) decode in batches of limits.MAX_RECORDS_AT_ONCE."""
    records = 2_500_000
    (tmp_path / "tiny.json.gz").write_bytes(
        gzip.compress(b"[" + b"{}," * (records - 1) + b"{}]", mtime=0)
    )
    found = _read_in_child("cloudtrail", tmp_path)
    assert found["counters"] == {
        "files_read": 1,
        "records_seen": records,
        "skipped_non_data_api": records,
    }
    assert found["peak_mb"] < TINY_PEAK_MB  # type: ignore[operator]


@pytest.mark.parametrize(
    ("kind", "name", "line"),
    [
        ("cloudtrail", "tiny.jsonl.gz", b"{}"),  # records of nothing: skipped
        ("cloudtrail", "junk.jsonl.gz", b"x"),  # not JSON: quarantined
        ("exports", "AWSDynamoDB/e/data/junk.json.gz", b"x"),
    ],
)
def test_millions_of_tiny_lines_are_read_in_bounded_memory_and_listed_in_a_few_rows(
    tmp_path: Path, kind: str, name: str, line: bytes
) -> None:
    """Lines are decoded in batches of a bounded count; a file's quarantine lists at most
    limits.MAX_LISTED_PER_FILE entries and sums up the rest in one more (3 million entries
    at once would be ~750 MB)."""
    lines = 3_000_000
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress((line + b"\n") * lines, mtime=0))
    found = _read_in_child(kind, tmp_path)
    counters = found["counters"]
    assert counters["records_seen"] == lines  # type: ignore[index]
    entries = found["entries"]
    if line == b"x":
        assert counters["quarantined"] == lines  # type: ignore[index]
        assert len(entries) == limits.MAX_LISTED_PER_FILE + 1  # type: ignore[arg-type]
        assert entries[-1] == [  # type: ignore[index]
            str(path),
            "file",
            f"{lines - limits.MAX_LISTED_PER_FILE:,} more records of this file are "
            "quarantined (counted in quarantined) but not listed: meter lists "
            f"{limits.MAX_LISTED_PER_FILE:,} per file",
        ]
    else:
        assert counters["skipped_non_data_api"] == lines  # type: ignore[index]
        assert entries == []
    assert found["peak_mb"] < TINY_PEAK_MB  # type: ignore[operator]


def test_millions_of_tiny_query_result_rows_are_read_in_bounded_memory(tmp_path: Path) -> None:
    """A query result's rows are read in batches too, and its quarantine listed in a few
    rows: 2 million rows of one cell each, none of them billable."""
    rows = 2_000_000
    path = tmp_path / "result.csv.gz"
    path.write_bytes(gzip.compress(CSV_HEADER + b"x\n" * rows, mtime=0))
    found = _read_in_child("cloudtrail", tmp_path)
    assert found["counters"] == {"files_read": 1, "records_seen": rows, "quarantined": rows}
    entries = found["entries"]
    assert len(entries) == limits.MAX_LISTED_PER_FILE + 1  # type: ignore[arg-type]
    assert entries[0] == [str(path), "row 1", "has 1 cells where the header names 6 columns"]  # type: ignore[index]
    assert found["peak_mb"] < TINY_PEAK_MB  # type: ignore[operator]
