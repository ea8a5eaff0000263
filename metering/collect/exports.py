"""DynamoDB exports to S3 (``DYNAMODB_JSON``), from local folders or ``s3://`` prefixes.

Layout (AWS_FACTS): ``<prefix>/AWSDynamoDB/<export-id>/manifest-summary.json``,
``manifest-files.json`` (JSON Lines: ``dataFileS3Key``, ``itemCount``, ``md5Checksum``) and
``data/*.json.gz``.

The manifests say which data files make the export. When both are there, whole and agree
(the files' item counts add up to the summary's), exactly the listed files are read: a
listed file that is missing is an error naming it, and a data file beside them that no
manifest lists is not part of the export: it is counted (``unlisted_files``) and
quarantined, not read. When a manifest is missing, empty, cut or contradicts the other,
the export's ``data/`` files are all read, and each manifest problem is quarantined; an
export folder without any manifest (as some tools write them) is read from its ``data/``
files. So a broken manifest never silently drops its export.

Data files are read a block of lines at a time (``collect.text``), so a file of any size,
a line of any length or a gzip bomb is read in bounded memory.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from posixpath import basename, dirname

import msgspec

from metering import limits
from metering.collect.files import InputObject, list_objects, read_small
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
MANIFEST_BYTES = 64 * 1024 * 1024  # a manifest-files.json of about 300,000 data files


class _ManifestFile(msgspec.Struct):
    dataFileS3Key: str
    itemCount: int | None = None
    md5Checksum: str | None = None


class _Summary(msgspec.Struct):
    itemCount: int | None = None


@dataclass(frozen=True, slots=True)
class DataFile:
    """One data file of an export, with what its manifest promises about it."""

    obj: InputObject
    root: str
    item_count: int | None = None
    md5: str | None = None


@dataclass(slots=True)
class Exports:
    """The data files to read under a root, and what the manifests got wrong."""

    files: list[DataFile] = field(default_factory=list)
    problems: list[QuarantineEntry] = field(default_factory=list)
    unlisted: int = 0  # data files beside manifests that list them not


def _is_data(name: str) -> bool:
    return "/data/" in f"/{name}" and name.endswith((".json.gz", ".json"))


def _export_of(name: str) -> str:
    """The export folder of a manifest or data file (relative to the root)."""
    folder = dirname(name)
    return dirname(folder) if _is_data(name) else folder


def find_data_files(root: str) -> Exports:
    """The data files of every export under ``root``, as their manifests list them."""
    listing = list_objects(root, lambda n: basename(n) in (SUMMARY, FILES) or _is_data(n))
    found = Exports(problems=list(listing.refused))
    exports: dict[str, dict[str, InputObject]] = {}  # folder -> name -> object
    for obj in listing.objects:
        exports.setdefault(_export_of(obj.name), {})[obj.name] = obj
    for folder, objects in sorted(exports.items()):
        _read_export(root, folder, objects, found)
    return found


def _read_export(root: str, folder: str, objects: dict[str, InputObject], found: Exports) -> None:
    prefix = f"{folder}/" if folder else ""
    summary, files = objects.get(f"{prefix}{SUMMARY}"), objects.get(f"{prefix}{FILES}")
    data = [obj for name, obj in sorted(objects.items()) if _is_data(name)]
    if summary is None and files is None:  # no manifests at all: the data files are it
        found.files.extend(DataFile(obj, root) for obj in data)
        return
    problems: list[QuarantineEntry] = []
    listed: dict[str, DataFile] = {}
    entries = _entries(files, problems) if files is not None else None
    if files is None:
        problems.append(QuarantineEntry(f"{root}/{prefix}{FILES}", "file", f"{FILES} is missing"))
    for entry in entries or []:
        name = f"{prefix}data/{basename(entry.dataFileS3Key)}"
        obj = objects.get(name)
        if obj is None:
            raise InputError(
                f"{files.uri if files else root} lists {entry.dataFileS3Key}, but "
                f"{root}/{name} does not exist; the export is incomplete (copy it again or "
                "remove the export)"
            )
        listed[name] = DataFile(obj, root, entry.itemCount, entry.md5Checksum)
    expected = _summary_items(summary, f"{root}/{prefix}{SUMMARY}", problems)
    if files is not None and entries is not None:
        counts = [entry.itemCount for entry in entries if entry.itemCount is not None]
        if not entries and data:
            problems.append(
                QuarantineEntry(
                    files.uri, "file", f"lists no data file, but its data/ folder holds {len(data)}"
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
    unlisted = [obj for obj in data if obj.name not in listed]
    found.unlisted += len(unlisted)
    found.files.extend(listed.values())
    if problems:  # the manifests cannot be trusted: read every data file of the export
        read = "every data file of the export was read instead"
        found.problems.extend(
            QuarantineEntry(p.source_uri, p.locator, f"{p.reason}; {read}") for p in problems
        )
        found.files.extend(DataFile(obj, root) for obj in unlisted)
        return
    found.problems.extend(
        QuarantineEntry(
            obj.uri,
            "file",
            f"{FILES} of its export does not list it: not part of the export, not read "
            "(remove it, or copy the export again)",
        )
        for obj in unlisted
    )


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


def _summary_items(
    summary: InputObject | None, where: str, problems: list[QuarantineEntry]
) -> int | None:
    """The export's item count as ``manifest-summary.json`` (expected at ``where``) gives it."""
    if summary is None:
        problems.append(QuarantineEntry(where, "file", f"{SUMMARY} is missing"))
        return None
    try:
        return msgspec.json.decode(read_small(summary, MANIFEST_BYTES), type=_Summary).itemCount
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
    items = 0  # lines that held an item (good or bad)
    good = 0  # items that passed every check: billed
    last = 0  # the last line read
    bound = limits.MAX_RECORD_BYTES
    for block in line_blocks(text.pieces(min(limits.PIECE_BYTES, bound)), bound, text):
        if isinstance(block, Overlong):
            yield _problem(QuarantineEntry(obj.uri, f"line {block.line}", block.reason))
            items, last = items + 1, block.line
            continue
        decoded, numbers, bad = decode_export_text(
            block.text, obj.uri, block.first_line, block.lines
        )
        if block.cut and bad:
            break  # the line the damage cut is not whole: the damage's entry says so
        items += len(decoded) + len(bad)
        frame, invalid = validate(items_frame(decoded, numbers), obj.uri)
        good += frame.height
        yield _counted(Collected(frame, quarantine=bad + invalid), len(decoded) + len(bad))
        last = block.last_line
    if text.damage is not None:
        yield _problem(QuarantineEntry(obj.uri, f"after line {last}", text.damage))
    yield from _manifest_checks(data_file, text, items, good, last)
    tail = Collected(empty(RECORDS), Counters(files_read=1), reusable=not text.unreadable)
    tail.inputs.append(InputFile(obj.uri, obj.name, text.reader.digest, obj.size))
    yield tail


def _manifest_checks(
    data_file: DataFile, text: Text, items: int, good: int, last: int
) -> Iterator[Collected]:
    """What the manifest promised and the file does not hold: the file's lines were each a
    whole item and the good ones are billed anyway; the entry says so, and which. (The item
    count is not checked after damage: the damage's own entry says where reading stopped.)"""
    uri = data_file.obj.uri
    billed = f"its {items:,} items (lines 1 to {last:,}) were read"
    if good == items:
        billed += " and billed anyway"
    else:  # the others have entries of their own
        billed += f": {good:,} billed anyway, {items - good:,} quarantined by line"
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
