"""DynamoDB exports to S3 (``DYNAMODB_JSON``), from local folders or ``s3://`` prefixes.

Layout (AWS_FACTS): ``<prefix>/AWSDynamoDB/<export-id>/manifest-summary.json``,
``manifest-files.json`` (JSON Lines: ``dataFileS3Key``, ``itemCount``, ``md5Checksum``) and
``data/*.json.gz``. The manifests say which data files make the export; a listed file
that is missing is an error. An export folder without manifests (as some tools write
them) is read from its ``data/`` files.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from posixpath import basename, dirname

import msgspec

from metering.collect.files import (
    InputObject,
    digest,
    iter_lines,
    list_objects,
    read_object,
    text_chunks,
)
from metering.collect.records import decode_export_text, items_frame, validate
from metering.collect.spool import Job, Spool
from metering.errors import InputError
from metering.schemas import RECORDS, Collected, Counters, InputFile, QuarantineEntry, empty


class _ManifestFile(msgspec.Struct):
    dataFileS3Key: str
    itemCount: int | None = None
    md5Checksum: str | None = None


@dataclass(frozen=True, slots=True)
class DataFile:
    """One data file of an export, with what its manifest promises about it."""

    obj: InputObject
    root: str
    item_count: int | None = None
    md5: str | None = None


def _is_data(name: str) -> bool:
    return "/data/" in f"/{name}" and name.endswith((".json.gz", ".json"))


def find_data_files(root: str) -> list[DataFile]:
    """The data files of every export under ``root``, as their manifests list them."""
    objects = list_objects(
        root,
        lambda n: basename(n) in ("manifest-summary.json", "manifest-files.json") or _is_data(n),
    )
    by_name = {o.name: o for o in objects}
    export_dirs = sorted(
        {dirname(o.name) for o in objects if basename(o.name) == "manifest-summary.json"}
    )
    found: list[DataFile] = []
    claimed: set[str] = set()
    for export_dir in export_dirs:
        prefix = f"{export_dir}/" if export_dir else ""
        manifest = by_name.get(f"{prefix}manifest-files.json")
        if manifest is None:
            continue  # treated below like an export without manifests
        for number, line in iter_lines(read_object(manifest)):
            try:
                entry = msgspec.json.decode(line, type=_ManifestFile)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise InputError(
                    f"{manifest.uri}: line {number} is not a manifest entry: {exc}"
                ) from None
            name = f"{prefix}data/{basename(entry.dataFileS3Key)}"
            obj = by_name.get(name)
            if obj is None:
                raise InputError(
                    f"{manifest.uri} lists {entry.dataFileS3Key}, but {root}/{name} does not "
                    "exist; the export is incomplete (copy it again or remove the export)"
                )
            claimed.add(name)
            found.append(DataFile(obj, root, entry.itemCount, entry.md5Checksum))
    with_manifest = {dirname(o.name) for o in objects if basename(o.name) == "manifest-files.json"}
    for obj in objects:
        # Data files no manifest lists are read only from exports that have no manifest;
        # beside a manifest they are strays, not part of the export.
        stray = dirname(dirname(obj.name)) in with_manifest
        if _is_data(obj.name) and obj.name not in claimed and not stray:
            found.append(DataFile(obj, root))
    return found


def data_file_parts(data_file: DataFile) -> Iterator[Collected]:
    """Decode one export data file, a piece of at most ``CHUNK_BYTES`` of text at a time.

    Each piece is a RECORDS frame with its counters and quarantine; the first piece also
    carries the file's fingerprint and ``files_read``, the last one what the manifest check
    found. A data file of any size is read in the memory of one piece.
    """
    obj = data_file.obj
    raw = read_object(obj)
    head = Collected(empty(RECORDS), Counters(files_read=1))
    head.inputs.append(InputFile(obj.uri, obj.name, digest(obj, raw), obj.size))
    if data_file.md5 is not None:
        actual = base64.b64encode(hashlib.md5(raw, usedforsecurity=False).digest()).decode()
        if actual != data_file.md5:
            head.quarantine.append(
                QuarantineEntry(
                    obj.uri, "file", f"MD5 {actual} differs from the manifest's {data_file.md5}"
                )
            )
    yield _counted(head, len(head.quarantine))  # a file-level entry counts as one record
    held = 0
    lines_before = 0
    damage = None
    for text, problem in text_chunks(raw):
        if problem is not None:
            damage = problem
            where = f"after line {lines_before}"  # the lines kept before the damage
            yield _problem(QuarantineEntry(obj.uri, where, problem))
            continue
        items, numbers, bad = decode_export_text(text, obj.uri, first_line=lines_before + 1)
        lines_before += text.count(b"\n") + (0 if text.endswith(b"\n") else 1)
        held += len(items) + len(bad)
        frame, invalid = validate(items_frame(items, numbers), obj.uri)
        yield _counted(Collected(frame, quarantine=bad + invalid), len(items) + len(bad))
    if data_file.item_count is not None and damage is None and held != data_file.item_count:
        reason = f"the manifest says {data_file.item_count} items, the file holds {held}"
        yield _problem(QuarantineEntry(obj.uri, "file", reason))


def _problem(entry: QuarantineEntry) -> Collected:
    """A piece that is only a file-level quarantine entry (counted as one record)."""
    return _counted(Collected(empty(RECORDS), quarantine=[entry]), 1)


def _counted(part: Collected, records: int) -> Collected:
    """Fill in a piece's counters: the records it accounts for and its quarantine."""
    part.counters.records_seen = records
    part.counters.quarantined = len(part.quarantine)
    return part


def read_data_file(data_file: DataFile) -> Collected:
    """All of one export data file at once (see ``data_file_parts``)."""
    return Collected.merged(data_file_parts(data_file))


def read_exports(
    roots: Sequence[str],
    progress: Callable[[str, int, int], None] | None = None,
    spool: Spool | None = None,
) -> Collected:
    """Every record of every export under ``roots`` (as a frame, or spooled Parquet files)."""
    jobs = [Job(data_file.obj, data_file) for root in roots for data_file in find_data_files(root)]
    collected = (spool or Spool(None)).decode(
        "records", jobs, data_file_parts, progress, "metering exports"
    )
    if not collected.frame.width:
        collected.frame = empty(RECORDS)
    return collected
