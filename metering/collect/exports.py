"""DynamoDB exports to S3 (``DYNAMODB_JSON``), from local folders or ``s3://`` prefixes.

Layout (AWS_FACTS): ``<prefix>/AWSDynamoDB/<export-id>/manifest-summary.json``,
``manifest-files.json`` (JSON Lines: ``dataFileS3Key``, ``itemCount``, ``md5Checksum``) and,
for a full export, ``<export-id>/data/*.json.gz``. Incremental exports (``exportType``
``INCREMENTAL_EXPORT`` in the summary) keep their data files in the prefix's shared
``<prefix>/AWSDynamoDB/data/`` folder instead.

A ``dataFileS3Key`` is a key in the bucket, prefix and all. It is resolved against the
``AWSDynamoDB`` folder the export's manifests lie in: the key's part after its
``AWSDynamoDB/`` is looked for there (so an export copied to another bucket, prefix or
local folder is still whole); for ``s3://`` the key itself in the bucket comes next, and a
key without ``AWSDynamoDB/`` is looked for in the export's ``data/`` folder. A configured
root may hold many exports (the bucket's prefix, or a folder mirroring it) or be one
export's folder: a data file outside the root (the shared folder, above an export's own)
is then looked up by its name alone.

The manifests say which data files make the export. When both are there, whole and agree
(the files' item counts add up to the summary's), exactly the listed files are read: a
listed file that is missing is an error naming it, and a data file beside them that no
manifest lists is not part of the export: it is counted (``unlisted_files``) and
quarantined, not read. A file of the shared folder belongs to whichever export under the
root lists it; one that none lists is unlisted when every export of that folder has whole
manifests. When a manifest is missing, empty, cut or contradicts the other, the export's
``data/`` files are all read (for an incremental export: every file of the shared folder
that no other export lists), and each manifest problem is quarantined; an export folder
without any manifest (as some tools write them) is read from its ``data/`` files. So a
broken manifest never silently drops its export.

A full export's items are as of its ``exportTime``: that is the version they carry
(``written_us``) against the incremental exports' ``WriteTimestampMicros``.

Data files are read a block of lines at a time (``collect.text``), so a file of any size,
a line of any length or a gzip bomb is read in bounded memory.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from posixpath import basename, dirname

import msgspec
import polars as pl

from metering import limits
from metering.collect.files import InputObject, find_object, is_s3, list_objects, read_small
from metering.collect.records import decode_export_text, items_frame, validate
from metering.collect.spool import Job, Spool
from metering.collect.text import Overlong, Text, line_blocks, lines_of
from metering.errors import InputError
from metering.schemas import (
    RECORDS,
    Collected,
    Counters,
    InputFile,
    Progress,
    QuarantineEntry,
    empty,
)

SUMMARY = "manifest-summary.json"
FILES = "manifest-files.json"
AWS_FOLDER = "AWSDynamoDB"  # the folder DynamoDB writes every export of a prefix into
MANIFEST_BYTES = 64 * 1024 * 1024  # a manifest-files.json of about 300,000 data files
READ_INSTEAD = "every data file of the export was read instead"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class _ManifestFile(msgspec.Struct):
    dataFileS3Key: str
    itemCount: int | None = None
    md5Checksum: str | None = None


class _Summary(msgspec.Struct):
    itemCount: int | None = None
    exportTime: datetime | None = None  # a full export: the time its items are as of
    exportType: str | None = None  # FULL_EXPORT | INCREMENTAL_EXPORT (older ones: absent)


@dataclass(frozen=True, slots=True)
class DataFile:
    """One data file of an export, with what its manifests promise about it."""

    obj: InputObject
    root: str
    item_count: int | None = None
    md5: str | None = None
    written_us: int | None = None  # a full export's exportTime: the version of its items


@dataclass(slots=True)
class Exports:
    """The data files to read under a root, and what the manifests got wrong."""

    files: list[DataFile] = field(default_factory=list)
    problems: list[QuarantineEntry] = field(default_factory=list)
    unlisted: int = 0  # data files beside manifests that list them not


@dataclass(slots=True)
class _Export:
    """An export folder under a root: its objects, and what its manifests make of them."""

    folder: str  # relative to the root ("": the root itself)
    uri: str
    objects: dict[str, InputObject]  # name (relative to the root) -> object
    listed: list[DataFile] = field(default_factory=list)
    problems: list[QuarantineEntry] = field(default_factory=list)
    written_us: int | None = None

    @property
    def data(self) -> list[InputObject]:
        return [obj for name, obj in sorted(self.objects.items()) if _is_data(name)]

    @property
    def has_manifests(self) -> bool:
        return any(basename(name) in (SUMMARY, FILES) for name in self.objects)


def _is_data(name: str) -> bool:
    return "/data/" in f"/{name}" and name.endswith((".json.gz", ".json"))


def _export_of(name: str) -> str:
    """The export folder of a manifest or data file (relative to the root)."""
    folder = dirname(name)
    return dirname(folder) if _is_data(name) else folder


def _after_aws_folder(path: str) -> str | None:
    """The part of a key or URI after its last ``AWSDynamoDB/`` (None: it has none)."""
    parts = path.split("/")
    for at in range(len(parts) - 1, -1, -1):
        if parts[at] == AWS_FOLDER:
            return "/".join(parts[at + 1 :])
    return None


def _aws_folder(uri: str) -> str | None:
    """The ``AWSDynamoDB`` folder ``uri`` lies in (or is), if any."""
    rest = _after_aws_folder(uri)
    if rest is None:
        return None
    return uri[: len(uri) - len(rest)].rstrip("/")


def _candidates(key: str, export: str) -> list[str]:
    """Where the data file ``key`` of the export in folder ``export`` may be, in the order
    looked: the export's own ``data/`` folder (a full export's, even when the export was
    copied under another name), the key's place beside the export's ``AWSDynamoDB``
    folder (the shared folder of incremental exports; an export copied to another bucket,
    prefix or local folder), and the key in the bucket."""
    found = [f"{export}/data/{basename(key)}"]
    if (place := _beside(key, export)) is not None:
        found.append(place)
    if is_s3(export):
        found.append(f"s3://{export.removeprefix('s3://').split('/')[0]}/{key.lstrip('/')}")
    return list(dict.fromkeys(found))


def _beside(key: str, export: str) -> str | None:
    """``key``'s place relative to the ``AWSDynamoDB`` folder ``export`` lies in."""
    home, rest = _aws_folder(export), _after_aws_folder(key)
    return f"{home}/{rest}" if home is not None and rest is not None else None


def find_data_files(root: str) -> Exports:
    """The data files of every export under ``root``, as their manifests list them."""
    listing = list_objects(root, lambda n: basename(n) in (SUMMARY, FILES) or _is_data(n))
    found = Exports(problems=list(listing.refused))
    first = listing.objects[0] if listing.objects else None  # (spelt as the listing spells it)
    base = first.uri[: len(first.uri) - len(first.name)] if first else root
    base = base.rstrip("/")
    by_uri = {obj.uri: obj for obj in listing.objects}
    exports: dict[str, _Export] = {}  # folder (relative to the root) -> export
    for obj in listing.objects:
        folder = _export_of(obj.name)
        uri = f"{base}/{folder}" if folder else base
        exports.setdefault(folder, _Export(folder, uri, {})).objects[obj.name] = obj
    ordered = [exports[folder] for folder in sorted(exports)]
    for export in ordered:  # what every manifest lists, wherever it lies
        if export.has_manifests:
            _read_manifests(root, base, export, by_uri)
    listed: dict[str, DataFile] = {}
    for export in ordered:
        for data_file in export.listed:
            listed.setdefault(data_file.obj.uri, data_file)
    found.files.extend(listed.values())
    untrusted = {_aws_folder(e.uri) for e in ordered if e.has_manifests and e.problems}
    with_manifests = {_aws_folder(e.uri) for e in ordered if e.has_manifests}
    for export in ordered:
        rest = [obj for obj in export.data if obj.uri not in listed]
        shared = not export.has_manifests and basename(export.uri) == AWS_FOLDER
        if not export.has_manifests and not (shared and export.uri in with_manifests):
            found.files.extend(DataFile(obj, root) for obj in rest)  # no manifest says more
            continue
        found.unlisted += len(rest)
        if shared and export.uri in untrusted:  # they may be a broken manifest's files
            found.files.extend(DataFile(obj, root) for obj in rest)
        elif shared:
            found.problems.extend(
                QuarantineEntry(
                    obj.uri,
                    "file",
                    f"no {FILES} under {export.uri} lists it: not part of an export, not "
                    "read (remove it, or copy the exports again)",
                )
                for obj in rest
            )
        elif export.problems:  # the manifests cannot be trusted: read every data file
            found.problems.extend(
                QuarantineEntry(p.source_uri, p.locator, f"{p.reason}; {READ_INSTEAD}")
                for p in export.problems
            )
            found.files.extend(DataFile(obj, root, written_us=export.written_us) for obj in rest)
        else:
            found.problems.extend(
                QuarantineEntry(
                    obj.uri,
                    "file",
                    f"{FILES} of its export does not list it: not part of the export, not "
                    "read (remove it, or copy the export again)",
                )
                for obj in rest
            )
    return found


def _read_manifests(root: str, base: str, export: _Export, by_uri: dict[str, InputObject]) -> None:
    """Fill in ``export``'s listed data files and manifest problems from its manifests."""
    prefix = f"{export.folder}/" if export.folder else ""
    summary = export.objects.get(f"{prefix}{SUMMARY}")
    files = export.objects.get(f"{prefix}{FILES}")
    problems = export.problems
    entries = _entries(files, problems) if files is not None else None
    if files is None:
        problems.append(QuarantineEntry(f"{export.uri}/{FILES}", "file", f"{FILES} is missing"))
    facts = _summary(summary, f"{export.uri}/{SUMMARY}", problems)
    incremental = facts is not None and facts.exportType == "INCREMENTAL_EXPORT"
    if facts is not None and facts.exportTime is not None and not incremental:
        export.written_us = (facts.exportTime - _EPOCH) // timedelta(microseconds=1)
    for entry in entries or []:
        key = entry.dataFileS3Key
        obj = _resolve(key, export, root, base, by_uri)
        if obj is None:
            where = _beside(key, export.uri) or _candidates(key, export.uri)[0]
            raise InputError(
                f"{files.uri if files else root} lists {key}, but {where} does not exist; the "
                "export is incomplete (copy it again or remove the export)"
            )
        data_file = DataFile(obj, root, entry.itemCount, entry.md5Checksum, export.written_us)
        export.listed.append(data_file)
    expected = facts.itemCount if facts is not None else None
    if files is not None and entries is not None:
        counts = [entry.itemCount for entry in entries if entry.itemCount is not None]
        if not entries and export.data:
            problems.append(
                QuarantineEntry(
                    files.uri,
                    "file",
                    f"lists no data file, but its data/ folder holds {len(export.data)}",
                )
            )
        elif expected is not None and len(counts) == len(entries) and sum(counts) != expected:
            problems.append(
                QuarantineEntry(
                    files.uri,
                    "file",
                    f"lists {len(entries)} data file(s) of {sum(counts):,} items in all, but "
                    f"{SUMMARY} says the export holds {expected:,}",
                )
            )


def _resolve(
    key: str, export: _Export, root: str, base: str, by_uri: dict[str, InputObject]
) -> InputObject | None:
    """The data file ``key`` of ``export``: listed under the root (whose objects' URIs start
    with ``base``), or looked up outside it."""
    inside = f"{base}/"
    for uri in _candidates(key, export.uri):
        if uri in by_uri:
            return by_uri[uri]
    for uri in _candidates(key, export.uri):
        if not uri.startswith(inside) and (obj := find_object(uri, root)) is not None:
            return obj
    return None


def _entries(manifest: InputObject, problems: list[QuarantineEntry]) -> list[_ManifestFile] | None:
    """The data files ``manifest-files.json`` lists (None if it cannot be read); its bad
    lines go to ``problems``."""
    try:
        text = read_small(manifest, MANIFEST_BYTES)
    except InputError as exc:
        problems.append(QuarantineEntry(manifest.uri, "file", str(exc)))
        return None
    entries = []
    for number, line in lines_of(text):
        try:
            entries.append(msgspec.json.decode(line, type=_ManifestFile))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            problems.append(
                QuarantineEntry(manifest.uri, f"line {number}", f"not a manifest entry: {exc}")
            )
    return entries


def _summary(
    summary: InputObject | None, where: str, problems: list[QuarantineEntry]
) -> _Summary | None:
    """What ``manifest-summary.json`` (expected at ``where``) says of the export."""
    if summary is None:
        problems.append(QuarantineEntry(where, "file", f"{SUMMARY} is missing"))
        return None
    try:
        return msgspec.json.decode(read_small(summary, MANIFEST_BYTES), type=_Summary)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        problems.append(QuarantineEntry(summary.uri, "file", f"not a {SUMMARY}: {exc}"))
    except InputError as exc:
        problems.append(QuarantineEntry(summary.uri, "file", str(exc)))
    return None


def data_file_parts(data_file: DataFile) -> Iterator[Collected]:
    """Decode one export data file, a block of lines at a time.

    Each block is a RECORDS frame with its counters and quarantine; the last part carries
    the file's fingerprint, ``files_read`` and what the manifest check found. A data file
    of any size is read in the memory of one block.
    """
    obj = data_file.obj
    text = Text(obj, md5=data_file.md5 is not None)
    items = 0  # lines that held an item or a delete (good or bad)
    good = 0  # items that passed every check: billed
    deleted = 0  # an incremental export's deletes: nothing to bill
    last = 0  # the last line read
    bound = limits.MAX_RECORD_BYTES
    for block in line_blocks(text.pieces(min(limits.PIECE_BYTES, bound)), bound, text):
        if isinstance(block, Overlong):
            yield _problem(QuarantineEntry(obj.uri, f"line {block.line}", block.reason))
            items, last = items + 1, block.line
            continue
        decoded = decode_export_text(block.text, obj.uri, block.first_line, block.lines)
        if block.cut and decoded.bad:
            break  # the line the damage cut is not whole: the damage's entry says so
        seen = len(decoded.items) + len(decoded.bad) + decoded.deleted
        items += seen
        frame, invalid = validate(
            items_frame(decoded.items, decoded.numbers, decoded.written), obj.uri
        )
        if data_file.written_us is not None:  # a full export's items are as of its time
            frame = frame.with_columns(pl.col("written_us").fill_null(data_file.written_us))
        good += frame.height
        deleted += decoded.deleted
        part = _counted(Collected(frame, quarantine=decoded.bad + invalid), seen)
        part.counters.deleted_records = decoded.deleted
        yield part
        last = block.last_line
    if text.damage is not None:
        yield _problem(QuarantineEntry(obj.uri, f"after line {last}", text.damage))
    yield from _manifest_checks(data_file, text, items, good, deleted, last)
    tail = Collected(empty(RECORDS), Counters(files_read=1), reusable=not text.unreadable)
    tail.inputs.append(InputFile(obj.uri, obj.name, text.reader.digest, obj.size))
    yield tail


def _manifest_checks(
    data_file: DataFile, text: Text, items: int, good: int, deleted: int, last: int
) -> Iterator[Collected]:
    """What the manifest promised and the file does not hold: the file's lines were each a
    whole item and the good ones are billed anyway; the entry says so, and which. (The item
    count is not checked after damage: the damage's own entry says where reading stopped.)"""
    uri = data_file.obj.uri
    billed = f"its {items:,} items (lines 1 to {last:,}) were read"
    if deleted:
        billed += f" ({deleted:,} of them deletes, which bill nothing)"
    if good + deleted == items:
        billed += " and billed anyway"
    else:  # the others have entries of their own
        billed += f": {good:,} billed anyway, {items - good - deleted:,} quarantined by line"
    md5 = text.reader.md5
    if data_file.md5 is not None and md5 is not None:
        actual = base64.b64encode(md5).decode()
        if actual != data_file.md5:
            reason = (
                f"MD5 {actual} differs from the manifest's {data_file.md5}: the file is not "
                f"the one the export wrote; {billed}, each line being a whole item (copy "
                "the export again to be sure)"
            )
            yield _problem(QuarantineEntry(uri, "file", reason))
    if data_file.item_count is not None and text.damage is None and items != data_file.item_count:
        reason = (
            f"the manifest says {data_file.item_count:,} items, the file holds {items:,}: {billed}"
        )
        yield _problem(QuarantineEntry(uri, "file", reason))


def _problem(entry: QuarantineEntry) -> Collected:
    """A piece that is only a file-level quarantine entry (counted as one record)."""
    return _counted(Collected(empty(RECORDS), quarantine=[entry]), 1)


def _counted(part: Collected, records: int) -> Collected:
    """Fill in a piece's counters: the records it accounts for and its quarantine."""
    part.counters.records_seen = records
    part.counters.quarantined = len(part.quarantine)
    return part


def data_files_parts(data_files: Sequence[DataFile]) -> Iterator[Collected]:
    """``data_file_parts`` of each file, one after another (an export's files are big: a
    group is one file)."""
    for data_file in data_files:
        yield from data_file_parts(data_file)


def read_data_file(data_file: DataFile) -> Collected:
    """All of one export data file at once (see ``data_file_parts``)."""
    return Collected.merged(data_file_parts(data_file))


def read_exports(
    roots: Sequence[str],
    progress: Progress | None = None,
    spool: Spool | None = None,
) -> Collected:
    """Every record of every export under ``roots`` (as a frame, or spooled Parquet files)."""
    found = [find_data_files(root) for root in roots]
    jobs = [
        Job(data_file.obj, data_file, data_file.obj.uri)
        for exports in found
        for data_file in exports.files
    ]
    collected = (spool or Spool(None)).decode(
        "records", jobs, data_files_parts, progress, "metering exports"
    )
    for exports in found:
        collected.extend(Collected.refused(exports.problems))
        collected.counters.unlisted_files += exports.unlisted
    if not collected.frame.width:
        collected.frame = empty(RECORDS)
    return collected
