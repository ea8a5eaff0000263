"""CloudTrail log files (SPEC 2.1) -> the EVENTS frame: RDS Data API calls as AWS saw them.

Listing: local folders (recursively) and ``s3://`` prefixes, in the delivery layout
``AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/<file>.json.gz`` or the organization
layout ``AWSLogs/o-<org>/<account>/CloudTrail/...``. Only the date folders a month needs
are read: its own days and ``late_days`` days after it (folder dates are delivery times,
which never come before the event). ``CloudTrail-Digest/``, ``CloudTrail-Insight/`` and
other services' logs are not read. Files outside any dated layout (a folder of loose
``.json`` files) are always read, and so are query results (``.csv``, ``.csv.gz``: Athena's,
and CloudTrail Lake's under ``AWSLogs/<account>/CloudTrail-Lake/``, whose signature files
are skipped); a URI configured with ``format = "csv"`` is all query results, whatever the
names.

Bodies: ``{"Records": [...]}``, a bare JSON array, or JSON Lines (a record, or a whole
``{"Records": [...]}`` body, per line); gzip or plain. Each file is decoded in one typed
msgspec call over structs that declare only the fields meter needs; when a field of some
record has an unexpected type, that file is decoded again record by record, so one odd
record never costs the file. A query result's rows become the same records
(``trailcsv``). A Data API record that cannot be read (no ``eventID``, no or a
bad ``eventTime``, mistyped fields) is quarantined; every other service's record is
counted in ``skipped_non_data_api``.

``read_trail_file`` is a pure function of one object, so files can be spread over workers.
"""

from __future__ import annotations

import posixpath
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, timedelta
from functools import cache
from operator import itemgetter
from typing import TYPE_CHECKING

import polars as pl

from metering import limits
from metering.collect.checks import Check, kept_strings, shown, split
from metering.collect.files import InputObject, Listing, list_objects
from metering.collect.spool import Job, Spool
from metering.collect.text import Text
from metering.collect.trailbody import NOT_A_LOG, decode_trail
from metering.collect.trailcsv import RESULT_SUFFIXES
from metering.collect.trailrecord import DATA_API_SOURCES, Decoded, Record
from metering.month import Month
from metering.schemas import (
    EVENTS,
    TS,
    Collected,
    InputFile,
    Progress,
    QuarantineEntry,
    empty,
)

if TYPE_CHECKING:  # (worker processes decode files without loading the config models)
    from metering.config import TrailFormat

EVENT_TIME_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.fZ",  # log files: 2026-10-31T23:59:59Z
    "%Y-%m-%d %H:%M:%S%.f",  # CloudTrail Lake / Athena exports: 2026-10-31 23:59:59.000 (UTC)
    "%Y-%m-%d %H:%M:%S%.f UTC",  # Athena, a timestamp (from_iso8601_timestamp): ... UTC
)
LOG_SUFFIXES = (".json", ".json.gz", ".jsonl", ".jsonl.gz", ".ndjson", ".ndjson.gz")
SKIPPED_FOLDERS = frozenset({"CloudTrail-Digest", "CloudTrail-Insight"})
# Files that sit beside query results and are none: CloudTrail Lake's signature file,
# Athena's result metadata (``<query-id>.csv.metadata``).
SIDECARS = ("result_sign.json", ".metadata")
LAKE_FOLDER = "CloudTrail-Lake"  # AWSLogs/<account>/CloudTrail-Lake/Query/...: query results

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


def trail_filter(month: Month, late_days: int, form: TrailFormat = "auto") -> Callable[[str], bool]:
    """Which object names (relative to a configured root) may hold ``month``'s events.

    Log files in dated folders are read for the days a month needs; query results
    (``.csv``, ``.csv.gz``) and files outside a dated layout are read for every month."""
    first = month.first_day
    stop = month.next().first_day + timedelta(days=late_days)  # exclusive

    @cache
    def folder(path: str) -> tuple[bool, str | None, bool]:
        """What a folder says of its files: (skipped, the service whose logs they are,
        dated outside the days the month needs)."""
        folders = path.split("/") if path else []
        service = None
        if "AWSLogs" in folders:
            # AWSLogs/[o-<org>/]<account>/<service>/...: only CloudTrail's own logs, and
            # CloudTrail Lake's query results.
            after = folders[len(folders) - folders[::-1].index("AWSLogs") :]
            if after and after[0].startswith("o-"):
                after = after[1:]
            service = after[1] if len(after) > 1 else ""
        day = _folder_day(folders)
        outside = day is not None and not first <= day < stop
        return bool(SKIPPED_FOLDERS.intersection(folders)), service, outside

    def keep(name: str) -> bool:
        lower = name.lower()
        if lower.rsplit("/", 1)[-1].endswith(SIDECARS):
            return False
        skipped, service, outside = folder(name.rpartition("/")[0])
        if skipped:
            return False
        result = form == "csv" or lower.endswith(RESULT_SUFFIXES)
        if form == "json" and result:
            return False
        if not (result or lower.endswith(LOG_SUFFIXES)):
            return False
        if service is not None and not (
            service == "CloudTrail" or (service == LAKE_FOLDER and result)
        ):
            return False
        # Query results are read whole, for every month (their folder dates, if any, are
        # when the query ran).
        return result or not outside

    return keep


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
        "resource_arn": [r.cluster_arn() for r in records],
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


# What users know each kept column by: CloudTrail's own field names.
FIELD_NAMES = {
    "event_id": "eventID",
    "request_id": "requestID",
    "operation": "eventName",
    "error_code": "errorCode",
    "user_arn": "userIdentity.arn",
    "issuer_arn": "userIdentity.sessionContext.sessionIssuer.arn",
    "source_identity": "sourceIdentity",
    "secret_arn": "requestParameters.secretArn",
    "resource_arn": "the cluster ARN (requestParameters.resourceArn or resources[].ARN)",
}


def _checks() -> list[Check]:
    """The rules a row must keep to be billed."""
    return [
        Check(_missing("event_id"), pl.lit("eventID is missing")),
        Check(_missing("event_time"), pl.lit("eventTime is missing")),
        Check(
            pl.col("_time").is_null(),
            pl.format(
                "eventTime is not a UTC ISO-8601 time like 2026-10-31T23:59:59Z: {}",
                shown("event_time"),
            ),
        ),
        Check(_missing("operation"), pl.lit("eventName is missing")),
        *kept_strings(FIELD_NAMES),
    ]


def events_frame(records: Sequence[Record]) -> tuple[pl.DataFrame, list[tuple[int, str]]]:
    """The EVENTS frame of good Data API records, and (position, reason) for the bad ones."""
    raw = pl.DataFrame(_columns(records), schema={name: pl.Utf8 for name in EVENTS})
    raw = raw.with_columns(
        _time=_event_times(raw["event_time"]), _index=pl.int_range(pl.len(), dtype=pl.Int64)
    )
    kept, bad = split(raw, _checks())
    good = kept.with_columns(
        event_time=pl.col("_time"),
        # No requestID (or an empty one) joins nothing and dedupes nothing.
        request_id=pl.when(_missing("request_id")).then(None).otherwise(pl.col("request_id")),
    ).select(list(EVENTS))
    return good, [
        (int(i), str(reason)) for i, reason in bad.select("_index", "_reason").iter_rows()
    ]


class _Rows:
    """Data API records of one or more files, held until they make a frame, with what
    else they gave: records of other services, quarantine entries, the files read."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        # Where the records came from, a span per decoded piece (not a tuple per record):
        # (its first row in ``records``, file, position of its first record, uri, the
        # piece, the indices of its records that were kept).
        self.spans: list[tuple[int, int, int, str, Decoded, list[int]]] = []
        self.bad: list[tuple[int, int, int, str, str, str]] = []  # (file, at, order, uri,
        # locator, reason)
        self.seen = self.skipped = 0
        self.read = Collected(pl.DataFrame())  # the files read: counters and fingerprints

    def add(self, decoded: Decoded, uri: str, file: int, start: int) -> int:
        """Some records of the ``file``-th file, the first of them its ``start``-th; returns
        how many there were (problems of the text included)."""
        records = decoded.records
        # Comprehensions, not one loop: a month is a million records.
        ours = [
            i
            for i, r in enumerate(records)
            if type(r) is Record and r.eventSource in DATA_API_SOURCES
        ]
        if len(ours) == len(records):
            self.spans.append((len(self.records), file, start, uri, decoded, ours))
            self.records += records  # type: ignore[arg-type]
        else:
            bad = [] if decoded.typed else [i for i, r in enumerate(records) if type(r) is str]
            if ours:
                self.spans.append((len(self.records), file, start, uri, decoded, ours))
                self.records += [records[i] for i in ours]  # type: ignore[misc]
            self.bad += [
                (file, start + i, 0, uri, decoded.locator(i), records[i])  # type: ignore[misc]
                for i in bad
            ]
            self.skipped += len(records) - len(ours) - len(bad)
        after = start + len(decoded.records)  # a problem of the text comes after its records
        self.bad += [
            (file, after, order, p.source_uri, p.locator, p.reason)
            for order, p in enumerate(decoded.problems)
        ]
        count = len(decoded.records) + len(decoded.problems)
        self.seen += count
        return count

    def file_read(self, obj: InputObject, text: Text) -> None:
        self.read.counters.files_read += 1
        self.read.inputs.append(InputFile(obj.uri, obj.name, text.reader.digest, obj.size))
        self.read.reusable = self.read.reusable and not text.unreadable

    def __len__(self) -> int:
        return len(self.records) + len(self.bad)

    def _where(self, row: int) -> tuple[int, int, int, str, str]:
        """(file, position, 0, uri, locator) of the ``row``-th record held."""
        span = self.spans[bisect_right(self.spans, row, key=itemgetter(0)) - 1]
        first, file, start, uri, decoded, ours = span
        index = ours[row - first]
        return file, start + index, 0, uri, decoded.locator(index)

    def collected(self) -> Collected:
        """What is held, as EVENTS rows, counters and quarantine (in file order)."""
        collected = self.read
        collected.frame = empty(EVENTS)
        bad = self.bad
        if self.records:
            collected.frame, invalid = events_frame(self.records)
            bad += [(*self._where(i), why) for i, why in invalid]
        collected.quarantine = [QuarantineEntry(*entry[3:]) for entry in sorted(bad)]
        counters = collected.counters
        counters.records_seen, counters.skipped_non_data_api = self.seen, self.skipped
        counters.quarantined = len(bad)
        return collected


def trail_parts(objs: Sequence[InputObject]) -> Iterator[Collected]:
    """Decode CloudTrail files into EVENTS frames, a part at a time, with their counters and
    quarantine. The records of many small files make one frame (a frame costs the same for
    a hundred records as for tens of thousands), at most ``limits.MAX_RECORDS_AT_ONCE`` at
    once; each file's fingerprint comes with the part that holds its last records."""
    rows = _Rows()
    for file, obj in enumerate(objs):
        text = Text(obj)
        start = 0
        for decoded in decode_trail(text, obj.uri):
            start += rows.add(decoded, obj.uri, file, start)
            if len(rows) >= limits.MAX_RECORDS_AT_ONCE:
                yield rows.collected()
                rows = _Rows()
        rows.file_read(obj, text)
    yield rows.collected()


def read_trail_file(obj: InputObject) -> Collected:
    """All of one CloudTrail file at once (see ``trail_parts``)."""
    return Collected.merged(trail_parts([obj]))


def find_trail_files(
    uris: Iterable[str],
    month: Month,
    late_days: int,
    formats: Mapping[str, TrailFormat] | None = None,
) -> Listing:
    """Every log file and query result under ``uris`` that may hold ``month``'s events,
    each once (``formats``: how a URI's files are read, ``auto`` when not given)."""
    seen: set[str] = set()
    found = Listing()
    for uri in uris:
        keep = trail_filter(month, late_days, (formats or {}).get(uri, "auto"))
        listing = list_objects(uri, keep)
        found.refused.extend(listing.refused)
        for obj in listing.objects:
            if obj.uri not in seen:
                seen.add(obj.uri)
                found.objects.append(obj)
    return found


def read_cloudtrail(
    uris: Sequence[str],
    month: Month,
    late_days: int,
    progress: Progress | None = None,
    spool: Spool | None = None,
    formats: Mapping[str, TrailFormat] | None = None,
) -> Collected:
    """Every Data API event that may belong to ``month`` (selection by eventTime is later).

    Without a spool the events are returned as one frame; with one, as Parquet files.
    """
    listing = find_trail_files(uris, month, late_days, formats)
    # A group is a folder: a delivery day of one account and region, or a query's results.
    jobs = [Job(obj, obj, posixpath.dirname(obj.name)) for obj in listing.objects]
    collected = (spool or Spool(None)).decode(
        "events", jobs, trail_parts, progress, "cloudtrail files"
    )
    collected.extend(Collected.refused(listing.refused))
    if not collected.frame.width:
        collected.frame = empty(EVENTS)
    return collected


__all__ = [
    "DATA_API_SOURCES",
    "NOT_A_LOG",
    "Record",
    "find_trail_files",
    "read_cloudtrail",
    "read_trail_file",
    "trail_filter",
    "trail_parts",
]
