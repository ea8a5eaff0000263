"""Decode input files in parallel into a spool of Parquet files that later runs reuse.

A month is up to 10^8 calls in thousands of small files (CloudTrail delivers one about
every 5 minutes): the decoded rows never all sit in memory, and no cost is paid per file
that a group of files can share. Files are decoded a group at a time (the files of one
delivery-day folder, say; in worker processes, a group per task) into one spool entry: a
Parquet file of all their rows (several parts when large) and a JSON sidecar holding what
else they gave (counters, quarantine entries, fingerprints) and which files, in which
state, it holds. The spool lives beside the warehouse.

An entry is reused while every file it holds is still an input and unchanged: same URI,
size and ETag (S3) or modification time (local), decoded by the same decoder version.
Files that no reusable entry holds are decoded into new entries: re-billing after a new
day, or after late files in a day already read, decodes only the new files. An entry one
of whose files changed or went is superseded: its files are decoded again into a new
entry and it is removed.

``Spool(None)`` decodes in this process and keeps frames in memory, for small reads.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import polars as pl

from metering import leave, limits
from metering.collect.files import InputObject
from metering.schemas import Collected, Counters, InputFile, Progress, QuarantineEntry

DECODER_VERSION = "6"  # bump when what a spool entry holds for the same bytes changes
IN_PROCESS_BYTES = 32 * 1024 * 1024  # below this much input, worker processes cost more
GROUP_BYTES = 64 * 1024 * 1024  # input bytes of a group, at most (but one file)
PART_BYTES = 64 * 1024 * 1024  # decoded rows a worker holds before it writes them

Task = TypeVar("Task")


@dataclass(frozen=True, slots=True)
class Job(Generic[Task]):
    """One file to decode: the object (its identity), what the decoder takes, and the group
    it is decoded and spooled with (files of one group are decoded together)."""

    obj: InputObject
    task: Task
    group: str = ""


# Decodes the files of a group, a part at a time (the decoder decides how to batch them).
Decoder = Callable[[Sequence[Task]], Iterator[Collected]]


def _validity(obj: InputObject) -> str:
    return f"{obj.size}|{obj.tag or obj.mtime_ns}"


def _part(base: Path, number: int) -> Path:
    return (
        base.with_suffix(".parquet")
        if number == 0
        else base.with_name(f"{base.name}.{number}.parquet")
    )


def _listed(parts: Iterable[Collected]) -> Iterator[Collected]:
    """``parts`` with each file's quarantine entries listed up to
    ``limits.MAX_LISTED_PER_FILE``: the rest are still counted, and summed up in one more
    entry per file (a file of millions of bad lines stays a few rows, and a few MB)."""
    listed: Counter[str] = Counter()
    unlisted: Counter[str] = Counter()
    most = limits.MAX_LISTED_PER_FILE
    for part in parts:
        kept = []
        for entry in part.quarantine:
            if listed[entry.source_uri] < most:
                listed[entry.source_uri] += 1
                kept.append(entry)
            else:
                unlisted[entry.source_uri] += 1
        part.quarantine = kept
        yield part
    for uri, count in sorted(unlisted.items()):
        reason = (
            f"{count:,} more records of this file are quarantined (counted in quarantined) "
            f"but not listed: meter lists {most:,} per file"
        )
        yield Collected(pl.DataFrame(), quarantine=[QuarantineEntry(uri, "file", reason)])


def _save(base: Path, members: dict[str, str], parts: Iterable[Collected]) -> Collected:
    """Write a group's decoded files to the spool entry ``base``, piece by piece; return it
    without its frame. ``members``: the files it holds, and their state.

    Rows are written as parts of about PART_BYTES each, so a worker holds no more than
    that whatever the size of the files."""
    base.parent.mkdir(parents=True, exist_ok=True)
    for stale in base.parent.glob(f"{base.name}*.parquet"):  # an older decode's parts
        stale.unlink()
    tmp = base.with_suffix(f".{os.getpid()}.tmp")
    collected = Collected(pl.DataFrame())
    held: list[pl.DataFrame] = []
    written: list[Path] = []
    rows = 0

    def write() -> None:
        frame = pl.concat(held, how="vertical")
        try:
            frame.write_parquet(tmp, compression="lz4", statistics=False)  # stats filter nothing
        except pl.exceptions.PolarsError as exc:  # polars wraps the OSError (a full disk)
            raise OSError(errno.EIO, str(exc), str(tmp)) from None
        written.append(_part(base, len(written)))
        os.replace(tmp, written[-1])
        held.clear()

    try:
        for part in parts:
            if part.frame.height:
                held.append(part.frame)
                rows += part.frame.height
                if sum(f.estimated_size() for f in held) >= PART_BYTES:
                    write()
            part.frame = pl.DataFrame()
            collected.extend(part)
        if held:
            write()
        if collected.reusable:  # else no sidecar: the next run reads the files again
            meta = {
                "decoder": DECODER_VERSION,
                "members": members,
                "rows": rows,
                "parts": len(written),
                "counters": collected.counters.as_dict(),
                "quarantine": [q.as_list() for q in collected.quarantine],
                "inputs": [[i.uri, i.name, i.digest, i.size] for i in collected.inputs],
            }
            tmp.write_text(json.dumps(meta))
            os.replace(tmp, base.with_suffix(".json"))
    finally:
        tmp.unlink(missing_ok=True)  # a write that failed (a full disk) leaves nothing
    collected.parquet = written
    collected.parquet_rows = rows
    return collected


def _from_meta(meta: dict[str, Any], base: Path) -> Collected:
    return Collected(
        pl.DataFrame(),
        Counters(**meta["counters"]),
        [QuarantineEntry.of(q) for q in meta["quarantine"]],
        [InputFile(uri, name, digest, int(size)) for uri, name, digest, size in meta["inputs"]],
        [_part(base, number) for number in range(int(meta["parts"]))],
        int(meta["rows"]),
    )


@dataclass(frozen=True, slots=True)
class _Entry:
    """A spool entry on disk: where, and which files (and states) it holds."""

    base: Path
    members: dict[str, str]
    meta: dict[str, Any]

    def remove(self) -> None:
        self.base.with_suffix(".json").unlink(missing_ok=True)
        for part in self.base.parent.glob(f"{self.base.name}*.parquet"):
            part.unlink(missing_ok=True)


def _entries(place: Path) -> list[_Entry]:
    """The entries of a spool folder written by this decoder version, in name order."""
    found = []
    for sidecar in sorted(place.glob("*.json")):
        try:
            meta = json.loads(sidecar.read_text())
            members = {str(uri): str(state) for uri, state in meta["members"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        if meta.get("decoder") == DECODER_VERSION:
            found.append(_Entry(sidecar.with_suffix(""), members, meta))
    return found


def _name(members: dict[str, str]) -> str:
    """An entry's file name: a fingerprint of the files it holds and their states."""
    text = "\n".join(f"{uri}|{state}" for uri, state in sorted(members.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def group_parts(decoder: Decoder[Any], jobs: Sequence[Job[Any]]) -> Iterator[Collected]:
    """A group of files decoded, a part at a time, each file's quarantine listed up to
    ``limits.MAX_LISTED_PER_FILE`` (what a spool entry, or a Spark task, holds of them)."""
    import gc

    gc.disable()  # decoded JSON holds no cycles; collection passes only cost time here
    try:
        yield from _listed(decoder([job.task for job in jobs]))
    finally:
        gc.enable()


def _decode_group(
    decoder: Decoder[Any], folder: Path | None, kind: str, jobs: Sequence[Job[Any]]
) -> Collected:
    """Worker: decode a group of files into one spool entry (or, without a folder, into a
    frame in memory)."""
    parts = group_parts(decoder, jobs)
    if folder is None:
        return Collected.merged(parts)
    members = {job.obj.uri: _validity(job.obj) for job in jobs}
    return _save(folder / kind / _name(members), members, parts)


def grouped(jobs: Sequence[Job[Task]]) -> list[list[Job[Task]]]:
    """Jobs by group, in the order their first job comes; a group of more than GROUP_BYTES
    of input is cut in pieces of about that (in job order, so the cuts stay put)."""
    by_group: dict[str, list[list[Job[Task]]]] = {}
    held: dict[str, int] = {}  # input bytes of each group's last piece
    for job in jobs:
        pieces = by_group.setdefault(job.group, [[]])
        if pieces[-1] and held[job.group] + job.obj.size > GROUP_BYTES:
            pieces.append([])
            held[job.group] = 0
        pieces[-1].append(job)
        held[job.group] = held.get(job.group, 0) + job.obj.size
    return [piece for pieces in by_group.values() for piece in pieces]


class Spool:
    """Where decoded files go; ``Spool(None)`` keeps them in memory instead."""

    def __init__(
        self,
        folder: Path | None,
        workers: int | None = None,
        in_process_bytes: int = IN_PROCESS_BYTES,
        fresh: bool = False,
    ) -> None:
        self.folder = folder
        self.fresh = fresh  # decode every file again (what the spool held is overwritten)
        self.workers = workers or os.cpu_count() or 1
        self.in_process_bytes = in_process_bytes
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()  # collectors may decode from several threads at once
        self._held = False  # inside ``with``: keep the worker processes between decode calls
        self.decoded = 0  # files decoded by this spool (not reused)
        self.reused = 0

    def __enter__(self) -> Spool:
        self._held = True
        return self

    def __exit__(self, *exc: object) -> None:
        self._held = False
        self._shutdown()

    def _workers(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.workers, mp_context=leave.workers())
            return self._pool

    def _shutdown(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None

    def _reusable(
        self, kind: str, jobs: Sequence[Job[Task]]
    ) -> tuple[list[tuple[int, Collected]], set[str], list[_Entry]]:
        """The entries that hold only current, unchanged inputs (with the index of their
        first job), the URIs they cover, and the entries superseded by a changed input."""
        if self.folder is None:
            return [], set(), []
        index = {job.obj.uri: (i, _validity(job.obj)) for i, job in enumerate(jobs)}
        reused: list[tuple[int, Collected]] = []
        covered: set[str] = set()
        superseded = []
        for entry in _entries(self.folder / kind):
            current = {uri: index.get(uri) for uri in entry.members}
            whole = not self.fresh and all(
                now is not None and now[1] == entry.members[uri] and uri not in covered
                for uri, now in current.items()
            )
            spooled = _from_meta(entry.meta, entry.base) if whole else None
            if spooled is not None and all(path.exists() for path in spooled.parquet):
                reused.append((min(now[0] for now in current.values() if now), spooled))
                covered.update(entry.members)
            elif any(now is not None for now in current.values()):
                superseded.append(entry)  # one of its files changed, went or is read anew
        return reused, covered, superseded

    def decode(
        self,
        kind: str,
        jobs: Sequence[Job[Task]],
        decoder: Decoder[Task],
        progress: Progress | None = None,
        label: str = "files",
    ) -> Collected:
        """Every job's result, merged (frames in memory, or Parquet paths when spooled).

        Results are merged in the order of their groups' first jobs, so counters and
        quarantine are the same however the work was spread.
        """
        reused, covered, superseded = self._reusable(kind, jobs)
        groups = grouped([job for job in jobs if job.obj.uri not in covered])
        with self._lock:
            self.reused += len(covered)
            self.decoded += len(jobs) - len(covered)
        first = {job.obj.uri: index for index, job in enumerate(jobs)}
        results = [*reused]
        done = len(covered)

        def finished(group: list[Job[Task]], result: Collected) -> None:
            nonlocal done
            results.append((first[group[0].obj.uri], result))
            done += len(group)
            if progress is not None:
                progress(label, done, len(jobs))

        if progress is not None and covered:
            progress(label, done, len(jobs))  # what earlier runs decoded counts as done
        pending = sum(job.obj.size for group in groups for job in group)
        if self.folder is None or pending < self.in_process_bytes or self.workers == 1:
            for group in groups:
                finished(group, _decode_group(decoder, self.folder, kind, group))
        else:
            pool = self._workers()
            try:
                futures = {
                    pool.submit(_decode_group, decoder, self.folder, kind, group): group
                    for group in sorted(groups, key=lambda g: -sum(j.obj.size for j in g))
                }
                for future in as_completed(futures):
                    finished(futures[future], future.result())
            finally:
                if not self._held:
                    self._shutdown()
        written = {_name({job.obj.uri: _validity(job.obj) for job in group}) for group in groups}
        for entry in superseded:
            if entry.base.name not in written:  # (``--fresh`` writes some anew in place)
                entry.remove()
        return Collected.merged(result for _, result in sorted(results, key=lambda r: r[0]))

    def put(self, kind: str, name: str, collected: Collected) -> Collected:
        """Spool a frame read from somewhere without files (a live table); never reused."""
        if self.folder is None:
            return collected
        base = self.folder / kind / hashlib.sha256(name.encode()).hexdigest()[:40]
        base.parent.mkdir(parents=True, exist_ok=True)
        parquet = base.with_suffix(".parquet")
        collected.frame.write_parquet(parquet, compression="lz4", statistics=False)
        return Collected(
            pl.DataFrame(),
            collected.counters,
            collected.quarantine,
            collected.inputs,
            [parquet],
            collected.frame.height,
        )
