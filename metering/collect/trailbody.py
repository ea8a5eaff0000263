"""CloudTrail file bodies -> records: what each record of a file is, and where it was.

Bodies: ``{"Records": [...]}``, a bare JSON array, or JSON Lines (a record, or a whole
``{"Records": [...]}`` body, per line); the text comes gunzipped from ``collect.text``. A
text whose first line is a CSV header naming eventID, eventTime and eventSource is a query
result (Athena, CloudTrail Lake), read by ``trailcsv``.

The fast path, for every file AWS delivers: a file whose text is at most
``limits.WHOLE_FILE_BYTES`` is decoded in one typed msgspec call over structs that declare
only the fields meter needs (the rest is skipped unread). When a field of some record has
an unexpected type, that file is decoded again without types, record by record, so one
odd record never costs the file.

Anything else is read piece by piece, in bounded memory: JSON Lines a block of lines at a
time (each line on its own when the block does not decode); a bigger or damaged document
through ``jsonscan``, which hands out each record's bytes, so the records complete before
a truncation, a junk tail, a record nested too deep or too big, are all still read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import chain
from typing import Any

import msgspec

from metering import limits
from metering.collect import jsonscan, trailcsv
from metering.collect.text import Overlong, Text, line_blocks, lines_of
from metering.collect.trailrecord import DATA_API_SOURCES, Decoded, Item, Record
from metering.schemas import QuarantineEntry

NOT_A_LOG = (
    "not a CloudTrail log file: neither a Records list nor a CloudTrail record "
    "(a CloudTrail-Digest file, or another service's file?)"
)
TOO_DEEP = "nested too deeply for meter to decode (thousands of levels)"

_document = msgspec.json.Decoder(Record | list[Record])
_records = msgspec.json.Decoder(list[Record])
_record = msgspec.json.Decoder(Record)
_any = msgspec.json.Decoder()


def _lenient(item: object) -> Item:
    """One record decoded from plain Python objects, after the typed decode refused it."""
    try:
        return msgspec.convert(item, Record)
    except msgspec.ValidationError as exc:
        if not isinstance(item, dict):
            return f"not a JSON object: {type(item).__name__}"
        if item.get("eventSource") not in DATA_API_SOURCES:
            return None  # another service's record: its odd fields are none of our business
        return f"mistyped field: {exc}"


def _from_document(doc: Record | list[Record]) -> list[Record] | None:
    """The records of a decoded body, or None when it is no CloudTrail body at all."""
    if isinstance(doc, list):
        return doc
    if doc.Records is not None:
        return doc.Records
    return [doc] if doc.is_record() else None


def _from_plain(doc: Any) -> list[Item] | str:
    """Like ``_from_document`` for a body decoded without types; str: why it is no body."""
    if isinstance(doc, dict) and "Records" in doc:
        inner = doc["Records"]
        if not isinstance(inner, list):
            return f"Records is not a list but {type(inner).__name__}"
        doc = inner
    if isinstance(doc, list):
        return [_lenient(item) for item in doc]
    if isinstance(doc, dict) and any(k in doc for k in ("eventSource", "eventID", "eventTime")):
        return [_lenient(doc)]
    return NOT_A_LOG


# -- the fast path: a whole file at once ---------------------------------------------------


def _whole(text: bytes | bytearray, uri: str) -> Decoded | None:
    """Every record of a whole, undamaged body; None when it must be read piece by piece
    (JSON Lines, invalid JSON, nesting too deep for one call, more objects or a bigger odd
    body than one call may hold: see ``limits``)."""
    if not text or text.isspace():
        return Decoded([])
    # (A text of n bytes holds at most n/2 objects: only a big one is worth counting.)
    if len(text) > 2 * limits.WHOLE_FILE_OBJECTS and text.count(b"{") > limits.WHOLE_FILE_OBJECTS:
        return None
    try:
        found = _from_document(_document.decode(text))
    except msgspec.ValidationError:
        if len(text) > limits.UNTYPED_FILE_BYTES:
            return None
        try:
            plain = _from_plain(_any.decode(text))
        except (msgspec.DecodeError, RecursionError):
            return None
        if isinstance(plain, str):
            return Decoded([], problems=[QuarantineEntry(uri, "file", plain)])
        return Decoded(plain)
    except (msgspec.DecodeError, RecursionError):
        return None
    if found is None:
        return Decoded([], problems=[QuarantineEntry(uri, "file", NOT_A_LOG)])
    return Decoded(found, typed=True)


# -- piece by piece ------------------------------------------------------------------------


_raw = msgspec.json.Decoder(msgspec.Raw)
_SOMETHING = re.compile(rb"\S")


def _is_value(line: bytes | bytearray | memoryview) -> bool:
    """Is ``line`` one whole JSON object or array (the first line of JSON Lines)? (Checked
    without building it, or copying it: the line may be a whole delivery body.)"""
    first = _SOMETHING.search(line)
    if first is None or first[0] not in (b"{", b"["):
        return False
    try:
        _raw.decode(line)
    except (msgspec.DecodeError, RecursionError):
        return False
    return True


def _expanded(doc: Record | Any, where: str) -> list[tuple[str, Item]]:
    """A decoded line or record: a whole body (its records) or one record. A body is a
    ``{"Records": [...]}`` object or a bare array (a bare-array file cut or followed by
    junk reads as JSON Lines: its first line is the array)."""
    if isinstance(doc, Record):
        if doc.Records is not None:
            return [(f"{where} record {i}", r) for i, r in enumerate(doc.Records, start=1)]
        return [(where, doc)]
    if isinstance(doc, list) or (isinstance(doc, dict) and "Records" in doc):
        found = _from_plain(doc)
        if isinstance(found, str):
            return [(where, found)]
        return [(f"{where} record {i}", r) for i, r in enumerate(found, start=1)]
    return [(where, _lenient(doc))]


def _one(where: str, data: bytes) -> list[tuple[str, Item]]:
    """One record (or one line's body) on its own, or why it cannot be read."""
    try:
        return _expanded(_record.decode(data), where)
    except msgspec.ValidationError:  # (a subclass of DecodeError: caught first)
        try:
            return _expanded(_any.decode(data), where)
        except msgspec.DecodeError as exc:  # a value of the wrong type, then invalid JSON
            return [(where, f"invalid JSON: {exc}")]
        except RecursionError:
            return [(where, TOO_DEEP)]
    except msgspec.DecodeError as exc:
        return [(where, f"invalid JSON: {exc}")]
    except RecursionError:
        return [(where, TOO_DEEP)]


One = Callable[[str, bytes], list[tuple[str, Item]]]


def _batch(pieces: Sequence[tuple[str, bytes]], one: One = _one) -> list[tuple[str, Item]]:
    """Records or lines decoded in one typed call, or each by ``one`` when that fails or
    finds more values than pieces (a line holding two). The line end after each piece
    keeps a piece that ends inside a string from running on into the next one (a JSON
    string holds no raw line end)."""
    try:
        docs = _records.decode(b"[" + b",\n".join(data for _, data in pieces) + b"]")
    except (msgspec.DecodeError, RecursionError):
        docs = []
    if len(docs) != len(pieces):
        return [found for where, data in pieces for found in one(where, data)]
    return [
        found
        for (where, _), doc in zip(pieces, docs, strict=True)
        for found in _expanded(doc, where)
    ]


def _unreadable(item: Item) -> bool:
    """Is ``item`` the reason a line or record is no JSON meter can read?"""
    return isinstance(item, str) and (item == TOO_DEEP or item.startswith("invalid"))


def _line(where: str, line: bytes) -> list[tuple[str, Item]]:
    """One line of JSON Lines; when it is not whole JSON (a cut body, say), the records a
    scan still finds in it."""
    found = _one(where, line)
    if not (len(found) == 1 and _unreadable(found[0][1])):
        return found
    scanned = list(jsonscan.scan([line], limits.MAX_RECORD_BYTES))
    if not any(isinstance(part, jsonscan.Piece) for part in scanned):
        return found
    out: list[tuple[str, Item]] = []
    for part in scanned:
        inner = f"{where} {part.where}" if part.where.startswith("record") else where
        if isinstance(part, jsonscan.Piece):
            out.extend(_one(inner, part.data))
        else:
            out.append((inner, part.reason))
    return out


def _decoded(found: list[tuple[str, Item]], problems: list[QuarantineEntry]) -> Decoded:
    return Decoded([item for _, item in found], [where for where, _ in found], problems)


def _lines(pieces: Iterable[bytes], text: Text, uri: str) -> Iterator[Decoded]:
    """JSON Lines, a block at a time."""
    last = 0  # the last line given out
    for block in line_blocks(pieces, limits.MAX_LINE_BYTES, text):
        if isinstance(block, Overlong):
            yield Decoded([], problems=[QuarantineEntry(uri, f"line {block.line}", block.reason)])
            last = block.line
            continue
        lines = lines_of(block.text, block.first_line)
        found = _batch([(f"line {n}", line) for n, line in lines], _line)
        if block.cut and len(found) == 1 and _unreadable(found[0][1]):
            continue  # nothing whole in the line the damage cut: its entry says so
        yield _decoded(found, [])
        last = block.last_line
    if text.damage is not None:
        yield Decoded([], problems=[QuarantineEntry(uri, f"after line {last}", text.damage)])


def _scanned(pieces: Iterable[bytes], text: Text, uri: str) -> Iterator[Decoded]:
    """A document too big or too damaged to decode at once, record by record, in batches of
    at most ``limits.MAX_RECORDS_AT_ONCE`` records."""
    scanner = jsonscan.Scanner(limits.MAX_RECORD_BYTES)
    held: list[tuple[str, bytes]] = []
    problems: list[QuarantineEntry] = []
    for piece in chain(pieces, [None]):
        parts = scanner.feed(piece) if piece is not None else scanner.end(text.damage)
        for part in parts:
            if isinstance(part, jsonscan.Piece):
                held.append((part.where, part.data))
            else:
                problems.append(QuarantineEntry(uri, part.where, part.reason))
            if len(held) + len(problems) >= limits.MAX_RECORDS_AT_ONCE:
                yield _decoded(_batch(held), problems)
                held, problems = [], []
    yield _decoded(_batch(held) if held else [], problems)


def decode_trail(text: Text, uri: str) -> Iterator[Decoded]:
    """Every record of one file's text, a part at a time: a JSON body, or a CloudTrail query
    result (a CSV with a header: ``trailcsv``), known from the text's first line."""
    pieces = text.pieces()
    whole = bytearray()  # (grown in place: no second copy of the text when it is joined)
    more = False
    lines: bool | None = None  # JSON Lines? (None: not known yet)
    result: bool | None = None  # a query result? (None: not known yet)
    for piece in pieces:
        whole += piece
        if result is None:
            result = trailcsv.is_result(whole, complete=False)
        if result:
            break
        if lines is None:
            lines = _json_lines(whole)
        if lines or len(whole) > limits.WHOLE_FILE_BYTES:
            more = True  # JSON Lines is read a block of lines at a time, never whole
            break
    if result is None:  # the text ended within its first line
        result = trailcsv.is_result(whole, complete=True)
    if result:
        yield from trailcsv.read_result(_chain(whole, pieces), text, uri)
        return
    first = _SOMETHING.search(whole)
    if trailcsv.named_result(uri) and first is not None and first[0] not in (b"{", b"["):
        for _ in pieces:  # read to the end: the file's fingerprint is of all of it
            pass
        yield Decoded([], problems=[QuarantineEntry(uri, "file", trailcsv.NOT_A_RESULT)])
        return
    if not more and text.damage is None:
        decoded = _whole(whole, uri)
        if decoded is not None:
            yield decoded
            return
    rest = _chain(whole, pieces)
    if lines:
        yield from _lines(rest, text, uri)
    else:
        yield from _scanned(rest, text, uri)


def _json_lines(text: bytearray) -> bool | None:
    """Is ``text`` (a file's first bytes) JSON Lines: a first line that is a whole object or
    array, and more after it? None: its first bytes cannot tell yet."""
    first_end = text.find(b"\n")
    if first_end < 0:
        return None
    with memoryview(text) as view:
        if not _is_value(view[:first_end]):
            return False
    return True if _SOMETHING.search(text, first_end + 1) else None


def _chain(first: bytearray, rest: Iterator[bytes]) -> Iterator[bytes]:
    """``first`` in pieces (each let go of once read), then ``rest``."""
    with memoryview(first) as view:
        for start in range(0, len(first), limits.PIECE_BYTES):
            yield bytes(view[start : start + limits.PIECE_BYTES])
    first.clear()
    yield from rest
