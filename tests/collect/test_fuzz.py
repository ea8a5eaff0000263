"""Fuzzed CloudTrail files and export data files (issue 15, SPEC 5).

Whatever is done to a file (cut anywhere, bytes flipped, junk appended; plain or gzip;
CloudTrail bodies as ``{"Records": [...]}``, bare arrays or JSON Lines), no exception
escapes, every record read is accounted for, and:

- cut or junk-tailed: every record whose text is whole before the damage is read exactly
  once, as it was (for a cut gzip file, "before the damage" is the text zlib can still
  inflate from the bytes left); nothing else is read;
- flipped bytes: no record is read twice, and every row read is the row of an original
  record, unless it comes from a record the flips touched.

Record ids differ from each other in eight characters, so a few flipped bytes never turn
one record's id into another's. Memory bounds are pinned in test_bad_input, not here.
"""

from __future__ import annotations

import gzip
import json
import re
import tempfile
import zlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st

from metering.collect.cloudtrail import read_cloudtrail
from metering.collect.exports import read_exports
from tests.collect.test_cloudtrail import OCT, event, noise
from tests.helpers import lines_of, record

IDS = [f"id-{letter * 8}" for letter in "abcdefgh"]
# Data API events and another service's records (skipped), in a fixed order to pick from.
TRAIL = [
    event(IDS[i], f"2026-10-05T12:00:0{i}Z")
    if i % 3 != 2
    else noise(IDS[i], "2026-10-05T12:00:00Z")
    for i in range(len(IDS))
]
CALLS = [
    record(f"req-{IDS[i]}", f"tenant-{i}", f"2026-10-05T12:00:0{i}.000Z", 100 + i, 200 + i)
    for i in range(len(IDS))
]
ITEMS = lines_of(CALLS)


@dataclass(frozen=True)
class Damage:
    kind: str  # "cut", "flip" or "junk"
    at: tuple[int, ...] = ()  # cut: one position; flip: positions (modulo the file's size)
    bits: tuple[int, ...] = ()  # flip: what each flipped byte is XORed with (1 to 255)
    junk: bytes = b""


# Junk made of JSON's own tokens (and gzip's magic bytes) as well as random bytes.
TOKENS = [b"{", b"}", b"[", b"]", b",", b":", b'"', b"\\", b"\n", b" ", b"\x00", b"\x1f\x8b", b"1"]
damages = st.one_of(
    st.builds(Damage, st.just("cut"), st.tuples(st.integers(0, 1 << 20))),
    st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(1, 255)), min_size=1, max_size=3).map(
        lambda flips: Damage("flip", tuple(p for p, _ in flips), tuple(b for _, b in flips))
    ),
    st.builds(
        Damage,
        st.just("junk"),
        junk=st.binary(min_size=1, max_size=64)
        | st.lists(st.sampled_from(TOKENS), min_size=1, max_size=12).map(b"".join),
    ),
)
picks = st.lists(st.integers(0, len(IDS) - 1), unique=True, max_size=len(IDS))


def _text(parts: list[bytes], form: str) -> tuple[bytes, list[tuple[int, int]]]:
    """The body of ``parts`` in ``form``, and where each part lies in it."""
    head, sep, tail = {
        "records": (b'{"Records": [', b", ", b"]}"),
        "array": (b"[", b", ", b"]"),
        "lines": (b"", b"\n", b"\n"),
    }[form]
    spans = []
    at = len(head)
    for part in parts:
        spans.append((at, at + len(part)))
        at += len(part) + len(sep)
    return head + sep.join(parts) + (tail if parts or form != "lines" else b""), spans


def _damaged(data: bytes, damage: Damage) -> bytes:
    if damage.kind == "cut":
        return data[: damage.at[0] % (len(data) + 1)]
    if damage.kind == "junk":
        return data + damage.junk
    if not data:
        return data
    flipped = bytearray(data)
    for at, bits in zip(damage.at, damage.bits, strict=True):
        flipped[at % len(data)] ^= bits
    return bytes(flipped)


def _inflated(data: bytes) -> bytes:
    """All the text zlib inflates from ``data`` before it ends or goes wrong."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = []
    for at in range(len(data)):  # a byte at a time: an error keeps what came before
        try:
            out.append(inflater.decompress(data[at : at + 1]))
        except zlib.error:
            break
        if inflater.eof:
            break
    return b"".join(out)


def _first_difference(text: bytes, readable: bytes) -> int:
    """Where ``readable`` (text read from the damaged file) stops being ``text``."""
    for at, (a, b) in enumerate(zip(text, readable, strict=False)):
        if a != b:
            return at
    return min(len(text), len(readable))


def _check(
    rows: list[dict[str, object]],
    key: str,
    expected: dict[str, dict[str, object]],
    parts: list[tuple[str, tuple[int, int]]],
    text: bytes,
    data: bytes,
    damaged: bytes,
    damage: Damage,
    gz: bool,
) -> None:
    """The property, for rows keyed by ``key`` read from ``damaged`` (``data`` damaged);
    ``parts``: (id, span in ``text``) of each record written."""
    if damage.kind in ("cut", "junk"):
        readable = text if damage.kind == "junk" else (_inflated(damaged) if gz else damaged)
        whole = [name for name, (_, end) in parts if end <= len(readable) and name in expected]
        assert rows == [expected[name] for name in whole]
        return
    readable = _inflated(damaged) if gz else damaged
    seen = [row[key] for row in rows]
    for name in set(seen):  # never read twice (more often than the text holds it)
        assert seen.count(name) <= max(1, readable.count(f'"{name}"'.encode())), name
    if gz:  # corrupt deflate data can garble everything after the first wrong byte
        first = _first_difference(text, readable)
        touched = {name for name, (_, end) in parts if end > first}
    else:
        flips = {at % max(1, len(data)) for at in damage.at}
        touched = {
            name
            for name, (start, end) in parts
            if any(start - 2 <= at < end + 2 for at in flips)  # separators included
        }
    for name in {str(row[key]) for row in rows}:
        mine = [row for row in rows if str(row[key]) == name]
        if name in expected and name not in touched:
            assert expected[name] in mine  # the record itself, read whole
            if len(mine) > 1:  # garbled deflate data can copy an earlier id (a back-reference)
                # into a row it garbled: a second row of that id, from the damaged part only
                quoted = f'"{name}"'.encode()
                assert gz and touched and readable.count(quoted) > text.count(quoted), mine
        else:
            assert touched, mine  # a changed or new row: only from a record the flips touched


# -- CloudTrail ----------------------------------------------------------------------------


@cache
def _trail_rows() -> dict[str, dict[str, object]]:
    """The EVENTS row of each Data API record, read from an undamaged file."""
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "all.json").write_text(json.dumps({"Records": TRAIL}))
        got = read_cloudtrail([folder], OCT, 3)
    return {str(row["event_id"]): row for row in got.frame.to_dicts()}


# Cut right after the first record's closing brace: its text is whole.
AFTER_FIRST = len(b'{"Records": [') + len(json.dumps(TRAIL[0]))


@settings(deadline=None, max_examples=300)
@example(picked=[0, 1], form="records", gz=False, damage=Damage("cut", (AFTER_FIRST,)))
@example(picked=[0], form="array", gz=False, damage=Damage("flip", (1,), (1,)))  # { -> z
@example(picked=[0], form="array", gz=False, damage=Damage("junk", junk=b"\n\x00"))
@given(
    picked=picks,
    form=st.sampled_from(["records", "array", "lines"]),
    gz=st.booleans(),
    damage=damages,
)
def test_a_damaged_trail_file_loses_only_what_the_damage_touched(
    picked: list[int], form: str, gz: bool, damage: Damage
) -> None:
    text, spans = _text([json.dumps(TRAIL[i]).encode() for i in picked], form)
    data = gzip.compress(text, mtime=0) if gz else text
    damaged = _damaged(data, damage)
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "trail.json").write_bytes(damaged)
        got = read_cloudtrail([folder], OCT, 3)
    c = got.counters
    assert (c.files_read, c.quarantined) == (1, len(got.quarantine))
    assert c.records_seen == c.quarantined + c.skipped_non_data_api + got.frame.height
    assert c.calls_billed == c.duplicates == c.out_of_month == 0
    parts = [(IDS[i], span) for i, span in zip(picked, spans, strict=True)]
    rows = got.frame.to_dicts()
    _check(rows, "event_id", _trail_rows(), parts, text, data, damaged, damage, gz)
    if damage.kind == "flip" and not gz:
        request_ids = [row["request_id"] for row in rows if row["request_id"] is not None]
        assert len(request_ids) == len(set(request_ids))


# -- exports -------------------------------------------------------------------------------


@cache
def _export_rows() -> dict[str, dict[str, object]]:
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "data").mkdir()
        Path(folder, "data", "all.json").write_text("".join(line + "\n" for line in ITEMS))
        got = read_exports([folder])
    return {str(row["request_id"]): row for row in got.frame.to_dicts()}


@settings(deadline=None, max_examples=300)
@example(picked=[0], gz=False, damage=Damage("flip", (226,), (ord("t") ^ ord("\n"),)))
@given(picked=picks, gz=st.booleans(), damage=damages)
def test_a_damaged_export_data_file_loses_only_what_the_damage_touched(
    picked: list[int], gz: bool, damage: Damage
) -> None:
    text, spans = _text([ITEMS[i].encode() for i in picked], "lines")
    data = gzip.compress(text, mtime=0) if gz else text
    damaged = _damaged(data, damage)
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "data").mkdir()
        Path(folder, "data", "items.json.gz" if gz else "items.json").write_bytes(damaged)
        got = read_exports([folder])
    c = got.counters
    assert (c.files_read, c.quarantined) == (1, len(got.quarantine))
    assert c.records_seen == c.quarantined + got.frame.height
    parts = [(f"req-{IDS[i]}", span) for i, span in zip(picked, spans, strict=True)]
    rows = got.frame.to_dicts()
    _check(rows, "request_id", _export_rows(), parts, text, data, damaged, damage, gz)


def test_the_fuzzed_records_are_read_whole_when_undamaged() -> None:
    """The baseline the properties compare with: every Data API record and call is a row."""
    assert sorted(_trail_rows()) == [IDS[i] for i in range(len(IDS)) if i % 3 != 2]
    assert sorted(_export_rows()) == [f"req-{name}" for name in IDS]
    assert re.fullmatch(r"id-(\w)\1{7}", IDS[0])
