"""CloudTrail log files (SPEC 2.1) -> the EVENTS frame: RDS Data API calls as AWS saw them.

Listing: local folders (recursively) and ``s3://`` prefixes, in the delivery layout
``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<file>.json.gz`` or the organization
layout ``AWSLogs/o-<org>/<account>/CloudTrail/...``. Only the date folders a month needs
are read: its own days and ``late_days`` days after it (folder dates are delivery times,
which never come before the event). ``CloudTrail-Digest/``, ``CloudTrail-Insight/`` and
other services' logs are not read. Files outside any dated layout (a folder of loose
``.json`` files) are always read.

Bodies: ``{"Records": [...]}``, a bare JSON array, or JSON Lines (a record, or a whole
``{"Records": [...]}`` body, per line); gzip or plain. Each file is decoded in one typed
msgspec call over structs that declare only the fields meter needs; when a field of some
record has an unexpected type, that file is decoded again record by record, so one odd
record never costs the file. A Data API record that cannot be read (no ``eventID``, no or a
bad ``eventTime``, mistyped fields) is quarantined; every other service's record is
counted in ``skipped_non_data_api``.

``read_trail_file`` is a pure function of one object, so files can be spread over workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import msgspec
import polars as pl

from metering.collect.files import (
    InputObject,
    decompress,
    digest,
    iter_lines,
    list_objects,
    read_object,
)
from metering.collect.spool import Job, Spool
from metering.month import Month
from metering.schemas import EVENTS, TS, Collected, Counters, InputFile, QuarantineEntry, empty

DATA_API_SOURCES = frozenset({"rdsdataapi.amazonaws.com", "rdsdata.amazonaws.com"})
EVENT_TIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.fZ",  # log files: 2026-10-31T23:59:59Z
    "%Y-%m-%d %H:%M:%S%.f",  # CloudTrail Lake / Athena exports: 2026-10-31 23:59:59.000 (UTC)
)
LOG_SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")
SKIPPED_FOLDERS = frozenset({"CloudTrail-Digest", "CloudTrail-Insight"})

Progress = Callable[[str, int, int], None]


# -- listing -------------------------------------------------------------------------------


def _folder_day(folders: Sequence[str]) -> date | None:
    """The date of a ``.../YYYY/MM/DD/`` folder, or None when the file is not in one."""
    if len(folders) < 3:
        return None
    year, month, day = folders[-3:]
    if not (len(year) == 4 and len(month) == 2 and len(day) == 2):
        return None
    if not (year.isdigit() and month.isdigit() and day.isdigit()):
        return None
    try:
        return date(int(year), int(month), int(day))
    except ValueError:
        return None


def trail_filter(month: Month, late_days: int) -> Callable[[str], bool]:
    """Which object names (relative to a configured root) may hold ``month``'s events."""
    first = month.first_day
    stop = month.next().first_day + timedelta(days=late_days)  # exclusive

    def keep(name: str) -> bool:
        if not name.lower().endswith(LOG_SUFFIXES):
            return False
        folders = name.split("/")[:-1]
        if SKIPPED_FOLDERS.intersection(folders):
            return False
        if "AWSLogs" in folders:
            # AWSLogs/[o-<org>/]<account>/<service>/...: only CloudTrail's own logs.
            after = folders[len(folders) - folders[::-1].index("AWSLogs") :]
            if after and after[0].startswith("o-"):
                after = after[1:]
            if len(after) < 2 or after[1] != "CloudTrail":
                return False
        day = _folder_day(folders)
        return day is None or first <= day < stop

    return keep


# -- decoding ------------------------------------------------------------------------------
# Field names are CloudTrail's own (camelCase), so msgspec matches them without renaming.
# gc=False: decoded JSON holds no reference cycles, and untracked structs halve the decode
# time of a large file (the collector makes millions of them).


class _Issuer(msgspec.Struct, gc=False):
    arn: str | None = None


class _SessionContext(msgspec.Struct, gc=False):
    sessionIssuer: _Issuer | None = None
    sourceIdentity: str | None = None


class _UserIdentity(msgspec.Struct, gc=False):
    arn: str | None = None
    sessionContext: _SessionContext | None = None


class _Parameters(msgspec.Struct, gc=False):
    secretArn: str | None = None
    resourceArn: str | None = None


class Record(msgspec.Struct, gc=False):
    """The fields of a CloudTrail record meter reads; every other field is skipped unread.

    ``Records`` is there so that a JSON Lines file whose lines are whole delivery bodies
    (``zcat *.json.gz > all.jsonl``) is read, not mistaken for records without a source.
    """

    eventSource: str | None = None
    eventName: str | None = None
    eventID: str | None = None
    eventTime: str | None = None
    errorCode: str | None = None
    requestID: str | None = None
    userIdentity: _UserIdentity | None = None
    requestParameters: _Parameters | None = None
    sourceIdentity: str | None = None
    Records: list[Record] | None = None

    def is_record(self) -> bool:
        return (
            self.eventSource is not None or self.eventID is not None or self.eventTime is not None
        )


_document = msgspec.json.Decoder(Record | list[Record])
_records = msgspec.json.Decoder(list[Record])
_record = msgspec.json.Decoder(Record)
_any = msgspec.json.Decoder()

NOT_A_LOG = (
    "not a CloudTrail log file: neither a Records list nor a CloudTrail record "
    "(a CloudTrail-Digest file, or another service's file?)"
)


@dataclass(slots=True)
class _Decoded:
    """One file's records, where each came from, and what could not be read."""

    records: Sequence[Record | str | None]  # str: why it is quarantined; None: skipped
    where: list[str] | None  # locators, or None for "record 1", "record 2", ...
    problems: list[QuarantineEntry]

    def locator(self, index: int) -> str:
        return self.where[index] if self.where is not None else f"record {index + 1}"


def _lenient(item: object) -> Record | str | None:
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


def _from_plain(doc: Any) -> list[Record | str | None] | str:
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


def _looks_like_lines(lines: Sequence[tuple[int, bytes]]) -> bool:
    """JSON Lines, rather than one damaged or invalid document: a line is a whole object."""
    for _, line in lines[:10]:
        try:
            if isinstance(_any.decode(line), dict):
                return True
        except msgspec.DecodeError:
            continue
    return False


def _line_items(line: bytes) -> tuple[list[Record | str | None], bool]:
    """One line's records, and whether the line was a whole ``{"Records": [...]}`` body."""
    try:
        doc = _record.decode(line)
    except msgspec.ValidationError:  # (a subclass of DecodeError: caught first)
        plain = _any.decode(line)
        if isinstance(plain, dict) and "Records" in plain:
            found = _from_plain(plain)
            return ([found], False) if isinstance(found, str) else (found, True)
        return [_lenient(plain)], False
    except msgspec.DecodeError as exc:
        return [f"invalid JSON: {exc}"], False
    if doc.Records is not None:
        return list(doc.Records), True
    return [doc], False


def _decode_lines(lines: Sequence[tuple[int, bytes]]) -> _Decoded:
    """JSON Lines: each line a record, or a whole ``{"Records": [...]}`` body."""
    per_line: Iterable[tuple[list[Record | str | None], bool]]
    try:
        docs = _records.decode(b"[" + b",".join(line for _, line in lines) + b"]")
        per_line = [
            (list(doc.Records), True) if doc.Records is not None else ([doc], False) for doc in docs
        ]
    except (msgspec.DecodeError, msgspec.ValidationError):
        per_line = [_line_items(line) for _, line in lines]
    records: list[Record | str | None] = []
    where: list[str] = []
    for (number, _), (items, body) in zip(lines, per_line, strict=True):
        records.extend(items)
        if body:
            where.extend(f"line {number} record {i}" for i in range(1, len(items) + 1))
        else:
            where.append(f"line {number}")
    return _Decoded(records, where, [])


def decode_body(text: bytes, uri: str, damage: str | None = None) -> _Decoded:
    """Every record of one file's (decompressed) bytes.

    ``damage`` is what ``files.decompress`` found wrong with the stream: the readable part
    is decoded and the damage quarantined after its last line.
    """
    if not text or text.isspace():
        decoded = _Decoded([], None, [])
    else:
        try:
            found = _from_document(_document.decode(text))
        except msgspec.ValidationError:
            decoded = _plain(text, uri)
        except msgspec.DecodeError as exc:
            lines = list(iter_lines(text))
            if len(lines) > 1 and _looks_like_lines(lines):
                decoded = _decode_lines(lines)
            else:
                reason = damage if damage is not None else f"invalid JSON: {exc}"
                return _Decoded([], None, [QuarantineEntry(uri, "file", reason)])
        else:
            decoded = (
                _Decoded(found, None, [])
                if found is not None
                else _Decoded([], None, [QuarantineEntry(uri, "file", NOT_A_LOG)])
            )
    if damage is not None:
        lines = list(iter_lines(text))
        where = f"after line {lines[-1][0]}" if lines else "file"
        decoded.problems.append(QuarantineEntry(uri, where, damage))
    return decoded


def _plain(text: bytes, uri: str) -> _Decoded:
    """The typed decode refused a field somewhere: decode without types, record by record."""
    try:
        doc = _any.decode(text)
    except msgspec.DecodeError:
        return _decode_lines(list(iter_lines(text)))  # JSON Lines with an odd record in it
    found = _from_plain(doc)
    if isinstance(found, str):
        return _Decoded([], None, [QuarantineEntry(uri, "file", found)])
    return _Decoded(found, None, [])


# -- frames --------------------------------------------------------------------------------


def _columns(records: Sequence[Record]) -> dict[str, list[str | None]]:
    """The EVENTS columns (as raw strings) of decoded Data API records, column by column."""
    identities = [r.userIdentity for r in records]
    contexts = [u.sessionContext if u is not None else None for u in identities]
    issuers = [c.sessionIssuer if c is not None else None for c in contexts]
    params = [r.requestParameters for r in records]
    return {
        "event_id": [r.eventID for r in records],
        "request_id": [r.requestID for r in records],
        "event_time": [r.eventTime for r in records],
        "event_source": [r.eventSource for r in records],
        "operation": [r.eventName for r in records],
        "error_code": [r.errorCode for r in records],
        "user_arn": [u.arn if u is not None else None for u in identities],
        "issuer_arn": [i.arn if i is not None else None for i in issuers],
        "source_identity": [
            (c.sourceIdentity if c is not None else None) or r.sourceIdentity
            for c, r in zip(contexts, records, strict=True)
        ],
        "secret_arn": [p.secretArn if p is not None else None for p in params],
        "resource_arn": [p.resourceArn if p is not None else None for p in params],
    }


def _missing(column: str) -> pl.Expr:
    return pl.col(column).is_null() | (pl.col(column).str.strip_chars() == "")


def _event_times(text: pl.Series) -> pl.Series:
    """eventTime as UTC times (null where unreadable): the log files' exact layout first,
    the other layouts only when some time did not fit it."""
    exact = text.str.strptime(TS, "%Y-%m-%dT%H:%M:%SZ", strict=False)
    if exact.null_count() == text.null_count():
        return exact
    layouts = [
        text.str.to_datetime(layout, time_unit="ms", time_zone="UTC", strict=False)
        for layout in EVENT_TIME_FORMATS
    ]
    return pl.select(pl.coalesce(exact, *layouts)).to_series()


def _reasons() -> pl.Expr:
    """Why a row cannot be billed (null when it can)."""
    return pl.coalesce(
        pl.when(_missing("event_id")).then(pl.lit("eventID is missing")),
        pl.when(_missing("event_time")).then(pl.lit("eventTime is missing")),
        pl.when(pl.col("_time").is_null()).then(
            pl.format(
                "eventTime is not a UTC ISO-8601 time like 2026-10-31T23:59:59Z: {}",
                "event_time",
            )
        ),
        pl.when(_missing("operation")).then(pl.lit("eventName is missing")),
    )


def events_frame(
    records: Sequence[Record], indexes: Sequence[int]
) -> tuple[pl.DataFrame, list[tuple[int, str]]]:
    """The EVENTS frame of good Data API records, and (index, reason) for the bad ones."""
    raw = pl.DataFrame(_columns(records), schema={name: pl.Utf8 for name in EVENTS})
    raw = raw.with_columns(
        _time=_event_times(raw["event_time"]), _index=pl.Series(indexes, dtype=pl.Int64)
    )
    unusable = _missing("event_id") | pl.col("_time").is_null() | _missing("operation")
    bad = raw.filter(unusable)
    if bad.height:
        raw = raw.filter(~unusable)
        bad = bad.select("_index", _reasons().alias("_reason"))
    good = raw.with_columns(
        event_time=pl.col("_time"),
        # No requestID (or an empty one) joins nothing and dedupes nothing.
        request_id=pl.when(_missing("request_id")).then(None).otherwise(pl.col("request_id")),
    ).select(list(EVENTS))
    return good, [(int(i), str(reason)) for i, reason in bad.iter_rows()]


def read_trail_file(obj: InputObject) -> Collected:
    """Decode one CloudTrail file into an EVENTS frame, with its counters and quarantine."""
    raw = read_object(obj)
    collected = Collected(empty(EVENTS), Counters(files_read=1))
    collected.inputs.append(InputFile(obj.uri, obj.name, digest(obj, raw), obj.size))
    text, damage = decompress(raw)
    decoded = decode_body(text, obj.uri, damage)

    rows: list[Record] = []
    indexes: list[int] = []
    bad: list[tuple[int, str]] = []
    skipped = 0
    for index, record in enumerate(decoded.records):
        if isinstance(record, Record):
            if record.eventSource in DATA_API_SOURCES:
                rows.append(record)
                indexes.append(index)
            else:
                skipped += 1
        elif record is None:
            skipped += 1
        else:
            bad.append((index, record))
    if rows:
        collected.frame, invalid = events_frame(rows, indexes)
        bad.extend(invalid)
    quarantine = [QuarantineEntry(obj.uri, decoded.locator(i), why) for i, why in sorted(bad)]
    quarantine.extend(decoded.problems)

    counters = collected.counters
    counters.records_seen = len(decoded.records) + len(decoded.problems)
    counters.skipped_non_data_api = skipped
    counters.quarantined = len(quarantine)
    collected.quarantine = quarantine
    return collected


def find_trail_files(uris: Iterable[str], month: Month, late_days: int) -> list[InputObject]:
    """Every log file under ``uris`` that may hold ``month``'s events, each once."""
    keep = trail_filter(month, late_days)
    seen: set[str] = set()
    found = []
    for uri in uris:
        for obj in list_objects(uri, keep):
            if obj.uri not in seen:
                seen.add(obj.uri)
                found.append(obj)
    return found


def read_cloudtrail(
    uris: Sequence[str],
    month: Month,
    late_days: int,
    progress: Progress | None = None,
    spool: Spool | None = None,
) -> Collected:
    """Every Data API event that may belong to ``month`` (selection by eventTime is later).

    Without a spool the events are returned as one frame; with one, as Parquet files.
    """
    objects = find_trail_files(uris, month, late_days)
    jobs = [Job(obj, obj) for obj in objects]
    collected = (spool or Spool(None)).decode(
        "events", jobs, read_trail_file, progress, "cloudtrail files"
    )
    if not collected.frame.width:
        collected.frame = empty(EVENTS)
    return collected


__all__ = [
    "DATA_API_SOURCES",
    "Record",
    "decode_body",
    "find_trail_files",
    "read_cloudtrail",
    "read_trail_file",
    "trail_filter",
]
