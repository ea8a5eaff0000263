"""CloudTrail query results (Athena, CloudTrail Lake) -> the same records as log files.

A query result is a CSV file with a header row, gzip or plain: Athena writes
``<query-id>.csv``, CloudTrail Lake ``result_N.csv.gz`` beside a ``result_sign.json``
(a signature, never read). Columns are matched to CloudTrail's field names whatever their
case (Athena lower-cases them). A nested field comes either as a flattened column named by
its path (``userIdentity.arn``, ``requestParameters.resourceArn``) or as JSON text in the
column of its parent (``useridentity``, ``requestparameters``, ``resources``), whose keys
are matched whatever their case too (``json_format(CAST(useridentity AS JSON))`` writes
them lower-case). A row becomes the ``Record`` a log file's record would, so dedup, months,
attribution and quarantine are the log files' own.

What Athena and CloudTrail Lake print for a struct or map column without a cast
(``{type=AssumedRole, arn=arn:aws:sts::..., ...}``) is not read: it is not JSON, and a
value holding ``, arn=`` would make it say what it does not, so a row that needs such a cell
is quarantined with the query form to use instead (README, "CloudTrail query results").

Rows are read a block of lines at a time (``collect.text.line_blocks``); a quoted cell may
hold line breaks. Bounds: a line at most ``limits.MAX_LINE_BYTES``, a cell at most
``limits.MAX_RECORD_BYTES``; a row past them, with another number of cells than the header,
or with a cell that cannot be read is quarantined as ``row N`` (the N-th row after the
header), and the next rows are read. A damaged text (a truncated gzip) keeps the rows
before the damage, and the row it cuts when that row is whole but for its line end; else the
row is part of the damage's quarantine entry. A plain file cut short cannot say so: a last
row without its line end is read only when its last cell closes with a quote (Athena quotes
every cell), and a quote left open is an unreadable row.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from metering import limits
from metering.collect.text import Block, Overlong, Text, line_blocks
from metering.collect.trailrecord import DATA_API_SOURCES, Decoded, Item, Record
from metering.schemas import QuarantineEntry

RESULT_SUFFIXES = (".csv", ".csv.gz")
GUIDE = 'README, "CloudTrail query results"'

# CloudTrail's name of each column meter reads, keyed by the column's name in lower case.
SCALARS = {
    "eventid": "eventID",
    "eventtime": "eventTime",
    "eventsource": "eventSource",
    "eventname": "eventName",
    "errorcode": "errorCode",
    "requestid": "requestID",
    "sourceidentity": "sourceIdentity",
}
# A header naming these is a CloudTrail query result ...
IDENTIFYING = ("eventid", "eventtime", "eventsource")
# ... and one that lacks any of these cannot be billed: without errorCode a rejected call
# looks billable, without requestID no call joins its metering record (it would count twice).
REQUIRED = (*IDENTIFYING, "eventname", "errorcode", "requestid")

# Nested fields: the flattened column (lower case) and the path inside its parent's JSON.
USER_ARN = "useridentity.arn"
ISSUER_ARN = "useridentity.sessioncontext.sessionissuer.arn"
CONTEXT_SOURCE = "useridentity.sessioncontext.sourceidentity"
SECRET_ARN = "requestparameters.secretarn"  # noqa: S105 (a column name)
RESOURCE_ARN = "requestparameters.resourcearn"
IDENTITY_FIELDS = (USER_ARN, ISSUER_ARN, CONTEXT_SOURCE)
PARAMETER_FIELDS = (SECRET_ARN, RESOURCE_ARN)

# What to select instead of a printed struct or map, per parent column.
HINTS = {
    "userIdentity": 'useridentity.arn AS "useridentity.arn", '
    "useridentity.sessioncontext.sessionissuer.arn AS "
    '"useridentity.sessioncontext.sessionissuer.arn"',
    "requestParameters": "its fields as columns (element_at(requestParameters, 'resourceArn') "
    'AS "requestParameters.resourceArn", the same for secretArn)',
    "resources": "json_format(CAST(resources AS JSON)) AS resources",
}

NOT_A_RESULT = (
    "not a CloudTrail query result: its first line is no CSV header naming eventID, "
    f"eventTime and eventSource ({GUIDE})"
)
OPEN_END = (
    "the last row has no line end and its last cell no closing quote: the file may be cut "
    "short inside that cell; not read (end the file with a line end)"
)
# A cell that starts like ``{key=`` or ``[{key=``: a struct or map as Athena prints it.
_PRINTED = re.compile(r"\s*(\[\s*)?\{\s*[^\s=\"{}\[\],:]+=")
_SOMETHING = re.compile(rb"\S")
_SURROGATE = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8
_json = msgspec.json.Decoder()

# A cell may be as long as a record (csv's own bound, 128 KiB, is too short for a JSON
# requestParameters). The setting is csv's, for the whole process.
csv.field_size_limit(limits.MAX_RECORD_BYTES)


def named_result(uri: str) -> bool:
    """Is the file named like a query result (``.csv``, ``.csv.gz``)?"""
    return uri.lower().endswith(RESULT_SUFFIXES)


def is_result(head: bytes | bytearray, complete: bool) -> bool | None:
    """Is ``head`` (a file's first bytes; ``complete``: all of them) a query result: a
    first line that is a CSV header naming eventID, eventTime and eventSource? None: its
    first bytes cannot tell yet."""
    first = _SOMETHING.search(head)
    if first is None:
        return False if complete else None
    if first[0] in (b"{", b"["):
        return False  # JSON (every log file: known from its first byte)
    end = head.find(b"\n", 0, limits.MAX_HEADER_BYTES)
    if end < 0:
        if not complete and len(head) < limits.MAX_HEADER_BYTES:
            return None
        end = min(len(head), limits.MAX_HEADER_BYTES)
    line = bytes(head[:end]).decode("utf-8", "replace").lstrip("\ufeff")
    try:
        names = {name.strip().lower() for name in next(csv.reader([line]), [])}
    except csv.Error:  # a stray line break or quote: no header
        return False
    return all(name in names for name in IDENTIFYING)


class _Refused(Exception):
    """A row that cannot be billed; the message says why."""


def _parsed(cell: str | None, name: str) -> Any:
    """The JSON text of the column ``name`` (None when empty)."""
    if cell is None:
        return None
    try:
        return _json.decode(cell)
    except msgspec.DecodeError as exc:
        if _PRINTED.match(cell):
            raise _Refused(
                f"{name} is not JSON but a struct or map as Athena and CloudTrail Lake print "
                "them ({key=value, ...}), which meter does not read (a value can hold ', key='); "
                f"select {HINTS[name]} instead ({GUIDE})"
            ) from None
        raise _Refused(f"{name} is not JSON text: {exc}") from None
    except RecursionError:
        raise _Refused(f"{name} is nested too deeply for meter to decode") from None


# The keys meter reads inside a JSON cell, by their lower-case spelling -> CloudTrail's.
KEYS = {
    key.lower(): key
    for key in (
        "arn",
        "sessionContext",
        "sessionIssuer",
        "sourceIdentity",
        "secretArn",
        "resourceArn",
    )
}
RESOURCE_KEYS = {"arn": "ARN", "type": "type"}


def _spelled(value: Any, keys: dict[str, str]) -> Any:
    """A JSON object with the keys meter reads spelled as CloudTrail spells them, whatever
    their case. Anything else is left as it is: the typed conversion says what is wrong."""
    if not isinstance(value, dict):
        return value
    return {keys.get(key.lower(), key): item for key, item in value.items()}


def _identity(value: Any) -> Any:
    """userIdentity, its sessionContext and that one's sessionIssuer, spelled."""
    identity = _spelled(value, KEYS)
    if isinstance(identity, dict) and "sessionContext" in identity:
        context = identity["sessionContext"] = _spelled(identity["sessionContext"], KEYS)
        if isinstance(context, dict) and "sessionIssuer" in context:
            context["sessionIssuer"] = _spelled(context["sessionIssuer"], KEYS)
    return identity


def _put(document: dict[str, Any], path: tuple[str, ...], value: str | None) -> None:
    """Set the field at ``path`` (making the objects on the way)."""
    for name in path[:-1]:
        inner = document.get(name)
        if not isinstance(inner, dict):
            inner = document[name] = {}
        document = inner
    document[path[-1]] = value


# Flattened columns: (lower-case name, the field's path in a record).
FLAT = {
    USER_ARN: ("userIdentity", "arn"),
    ISSUER_ARN: ("userIdentity", "sessionContext", "sessionIssuer", "arn"),
    CONTEXT_SOURCE: ("userIdentity", "sessionContext", "sourceIdentity"),
    SECRET_ARN: ("requestParameters", "secretArn"),
    RESOURCE_ARN: ("requestParameters", "resourceArn"),
}


class Layout:
    """Where a query result's columns are, from its header, and how a row becomes a
    ``Record``: the row as the JSON document a log file would hold (as far as meter reads
    it), converted by msgspec, so its types are checked as a log file's are."""

    def __init__(self, header: list[str]) -> None:
        index: dict[str, int] = {}
        for position, name in enumerate(header):
            index.setdefault(name.strip().lstrip("\ufeff").strip().lower(), position)
        self.width = len(header)
        self.missing = [SCALARS[name] for name in REQUIRED if name not in index]
        self.source = index.get("eventsource", 0)
        self.scalars = [(SCALARS[name], index[name]) for name in SCALARS if name in index]
        self.flat = [(path, index[name]) for name, path in FLAT.items() if name in index]
        # A parent column is read only for the fields no flattened column gives.
        self.parents = [
            (parent, index[parent.lower()])
            for parent, fields in (
                ("userIdentity", IDENTITY_FIELDS),
                ("requestParameters", PARAMETER_FIELDS),
            )
            if parent.lower() in index and not all(field in index for field in fields)
        ]
        self.resources = index.get("resources")

    def record(self, row: list[str]) -> Item:
        """The row as a record; None when it is another service's; or why it is refused."""
        if len(row) != self.width:
            return f"has {len(row)} cells where the header names {self.width} columns"
        if row[self.source] not in DATA_API_SOURCES:
            return None  # another service's event: skipped, whatever else it holds
        document: dict[str, Any] = {name: row[i] or None for name, i in self.scalars}
        try:
            for parent, i in self.parents:
                found = _parsed(row[i] or None, parent)
                document[parent] = (
                    _identity(found) if parent == "userIdentity" else _spelled(found, KEYS)
                )
            if self.resources is not None:
                entries = _parsed(row[self.resources] or None, "resources")
                if isinstance(entries, list):
                    entries = [_spelled(entry, RESOURCE_KEYS) for entry in entries]
                document["resources"] = entries
        except _Refused as refused:
            return str(refused)
        for path, i in self.flat:
            _put(document, path, row[i] or None)
        try:
            return msgspec.convert(document, Record)
        except msgspec.ValidationError as exc:
            return f"mistyped field: {exc}"


class _Lines:
    """A text's lines as ``str`` for ``csv.reader``, a run at a time: a run ends before a
    line too long to read (``overlong``), so the reader can start afresh after it."""

    def __init__(self, blocks: Iterator[Block | Overlong]) -> None:
        self.blocks = blocks
        self.overlong: Overlong | None = None
        self.cut = False  # the damaged last line has been given out
        # The last line has been given out without a line end, and its last cell is not
        # quoted: a file cut short inside that cell would read the same.
        self.open_end = False
        self.dirty = False  # some text was not UTF-8 (its bytes are kept as surrogates)

    def run(self) -> Iterator[str]:
        for block in self.blocks:
            if isinstance(block, Overlong):
                self.overlong = block
                return
            self.cut = block.cut
            if not block.text.endswith(b"\n"):  # (the last line comes as a block of its own)
                self.open_end = not block.text.rstrip(b" \t\r").endswith(b'"')
            try:
                text = block.text.decode()
            except UnicodeDecodeError:
                text = block.text.decode("utf-8", "surrogateescape")
                self.dirty = True
            yield from io.StringIO(text, newline="\n")  # lines end at \n only, as in the file


def read_result(pieces: Iterable[bytes], text: Text, uri: str) -> Iterator[Decoded]:
    """Every row of a query result (``pieces``: all of its text), a part at a time."""
    blocks = line_blocks(pieces, limits.MAX_LINE_BYTES, text)
    lines = _Lines(blocks)
    layout: Layout | None = None
    found: list[tuple[str, Item]] = []
    row = 0  # rows given out, the header not counted
    while True:
        reader = csv.reader(lines.run(), strict=True)
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                if lines.cut:
                    break  # the row the damage cut: part of the damage
                row += 1
                found.append((f"row {row}", f"not a CSV row meter can read: {exc}"))
                continue
            if not cells or (len(cells) == 1 and not cells[0].strip()):
                continue  # a blank line
            if layout is None:
                layout = Layout(cells)
                if layout.missing:
                    reason = (
                        f"a CloudTrail query result without the column(s) "
                        f"{', '.join(layout.missing)}, which meter needs to bill its rows; "
                        f"select them ({GUIDE})"
                    )
                    yield Decoded([], problems=[QuarantineEntry(uri, "file", reason)])
                    for _ in blocks:  # read to the end: the file's fingerprint is of all of it
                        pass
                    return
                continue
            item: Item
            if lines.open_end:
                item = OPEN_END
            elif lines.dirty and any(_SURROGATE.search(c) for c in cells):
                item = "not UTF-8 text"
            else:
                item = layout.record(cells)
            if lines.cut and isinstance(item, str):
                break  # the row the damage cut, not whole: part of the damage
            row += 1
            found.append((f"row {row}", item))
            if len(found) >= limits.MAX_RECORDS_AT_ONCE:
                yield _decoded(found)
                found = []
        if lines.overlong is None:
            break
        row += 1
        found.append((f"row {row}", lines.overlong.reason))
        lines.overlong = None
    yield _decoded(found)
    if text.damage is not None:
        where = f"after row {row}" if layout is not None else "file"
        yield Decoded([], problems=[QuarantineEntry(uri, where, text.damage)])


def _decoded(found: list[tuple[str, Item]]) -> Decoded:
    return Decoded([item for _, item in found], [where for where, _ in found])
