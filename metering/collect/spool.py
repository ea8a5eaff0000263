"""Decode input files in parallel into a spool of Parquet files that later runs reuse.

A month is up to 10^8 calls: the decoded rows never all sit in memory. Each input file is
decoded (in worker processes, a batch of files per task) into a Parquet file (a large
file into several parts), with a small JSON sidecar holding what else the file gave
(counters, quarantine entries, its fingerprint). The spool lives beside the warehouse.
An entry is reused while its file is unchanged: same URI, size and ETag (S3) or
modification time (local), decoded by the same decoder version. So re-billing after a
new day of files decodes only the new files; a changed file is decoded again, a removed
one is simply not listed any more.

``Spool(None)`` decodes in this process and keeps frames in memory, for small reads.
"""

from __future__ import annotations

import errno
import hashlib
import json
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import polars as pl

from metering import limits
from metering.collect.files import InputObject
from metering.schemas import Collected, Counters, InputFile, QuarantineEntry

DECODER_VERSION = "3"  # bump when what a spool entry holds for the same bytes changes
IN_PROCESS_BYTES = 32 * 1024 * 1024  # below this much input, worker processes cost more
BATCH_BYTES = 16 * 1024 * 1024  # input bytes per worker task
PART_BYTES = 64 * 1024 * 1024  # decoded rows a worker holds before it writes them

Task = TypeVar("Task")
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class Job(Generic[Task]):
    """One file to decode: the object (its identity) and what the decoder takes."""

    obj: InputObject
    task: Task


def _validity(obj: InputObject) -> str:
    return f"{DECODER_VERSION}|{obj.uri}|{obj.size}|{obj.tag or obj.mtime_ns}"


def _entry(folder: Path, kind: str, obj: InputObject) -> Path:
    return folder / kind / hashlib.sha256(obj.uri.encode()).hexdigest()[:40]


Decoded = Collected | Iterator[Collected]  # a whole file, or its pieces one after another


def _listed(obj: InputObject, decoded: Decoded) -> Iterator[Collected]:
    """The parts of a decoded file, its quarantine entries listed up to
    ``limits.MAX_LISTED_PER_FILE``: the rest are still counted, and summed up in one more
    entry (a file of millions of bad lines stays a few rows, and a few MB)."""
    room = limits.MAX_LISTED_PER_FILE
    unlisted = 0
    for part in [decoded] if isinstance(decoded, Collected) else decoded:
        if len(part.quarantine) > room:
            unlisted += len(part.quarantine) - room
            del part.quarantine[room:]
        room -= len(part.quarantine)
        yield part
    if unlisted:
        reason = (
            f"{unlisted:,} more records of this file are quarantined (counted in "
            f"quarantined) but not listed: meter lists {limits.MAX_LISTED_PER_FILE:,} per file"
        )
        yield Collected(pl.DataFrame(), quarantine=[QuarantineEntry(obj.uri, "file", reason)])


def _merge(obj: InputObject, decoded: Decoded) -> Collected:
    return Collected.merged(_listed(obj, decoded))


def _part(base: Path, number: int) -> Path:
    return (
        base.with_suffix(".parquet")
        if number == 0
        else base.with_name(f"{base.name}.{number}.parquet")
    )


def _save(base: Path, obj: InputObject, decoded: Decoded) -> Collected:
    """Write one decoded file to the spool, piece by piece; return it without its frame.

    A large file's pieces are written as parts of about PART_BYTES of rows each, so a
    worker holds no more than that whatever the file's size."""
    base.parent.mkdir(parents=True, exist_ok=True)
    for stale in base.parent.glob(f"{base.name}*.parquet"):  # an older decode's parts
        stale.unlink()
    tmp = base.with_suffix(f".{os.getpid()}.tmp")
    collected = Collected(pl.DataFrame())
    held: list[pl.DataFrame] = []
    parts = rows = 0

    def write() -> None:
        nonlocal parts
        frame = pl.concat(held, how="vertical")
        try:
            frame.write_parquet(tmp, compression="lz4", statistics=False)  # stats filter nothing
        except pl.exceptions.PolarsError as exc:  # polars wraps the OSError (a full disk)
            raise OSError(errno.EIO, str(exc), str(tmp)) from None
        os.replace(tmp, _part(base, parts))
        parts += 1
        held.clear()

    try:
        for part in _listed(obj, decoded):
            if part.frame.height:
                held.append(part.frame)
                rows += part.frame.height
                if sum(f.estimated_size() for f in held) >= PART_BYTES:
                    write()
            part.frame = pl.DataFrame()
            collected.extend(part)
        if held:
            write()
        if collected.reusable:  # else no sidecar: the next run reads the file again
            meta = {
                "validity": _validity(obj),
                "rows": rows,
                "parts": parts,
                "counters": collected.counters.as_dict(),
                "quarantine": [[q.source_uri, q.locator, q.reason] for q in collected.quarantine],
                "inputs": [[i.uri, i.name, i.digest, i.size] for i in collected.inputs],
            }
            tmp.write_text(json.dumps(meta))
            os.replace(tmp, base.with_suffix(".json"))
    finally:
        tmp.unlink(missing_ok=True)  # a write that failed (a full disk) leaves nothing
    collected.parquet = [_part(base, number) for number in range(parts)]
    collected.parquet_rows = rows
    return collected


def _from_meta(meta: dict[str, Any], base: Path) -> Collected:
    return Collected(
        pl.DataFrame(),
        Counters(**meta["counters"]),
        [QuarantineEntry(*q) for q in meta["quarantine"]],
        [InputFile(uri, name, digest, int(size)) for uri, name, digest, size in meta["inputs"]],
        [_part(base, number) for number in range(int(meta["parts"]))],
        int(meta["rows"]),
    )


def _load(base: Path, obj: InputObject) -> Collected | None:
    """The spooled result of ``obj``, if it is there and still valid."""
    try:
        meta = json.loads(base.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return None
    if meta.get("validity") != _validity(obj):
        return None
    spooled = _from_meta(meta, base)
    return spooled if all(path.exists() for path in spooled.parquet) else None


def _decode_batch(
    decoder: Callable[[Any], Decoded], folder: Path, kind: str, jobs: Sequence[Job[Any]]
) -> list[Collected]:
    """Worker: decode and spool each job of a batch."""
    import gc

    gc.disable()  # decoded JSON holds no cycles; collection passes only cost time here
    try:
        return [_save(_entry(folder, kind, job.obj), job.obj, decoder(job.task)) for job in jobs]
    finally:
        gc.enable()


def _batches(jobs: Sequence[Job[Any]], workers: int) -> list[list[Job[Any]]]:
    """Jobs grouped into tasks of about BATCH_BYTES (smaller when few), biggest first."""
    total = sum(job.obj.size for job in jobs)
    target = max(1, min(BATCH_BYTES, total // (workers * 4) or 1))
    batches: list[list[Job[Any]]] = []
    current: list[Job[Any]] = []
    size = 0
    for job in sorted(jobs, key=lambda j: -j.obj.size):
        current.append(job)
        size += job.obj.size
        if size >= target:
            batches.append(current)
            current, size = [], 0
    if current:
        batches.append(current)
    return batches


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
                context = multiprocessing.get_context("spawn")  # polars' threads do not fork
                self._pool = ProcessPoolExecutor(self.workers, mp_context=context)
            return self._pool

    def _shutdown(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown()
                self._pool = None

    def decode(
        self,
        kind: str,
        jobs: Sequence[Job[Task]],
        decoder: Callable[[Task], Decoded],
        progress: Progress | None = None,
        label: str = "files",
    ) -> Collected:
        """Every job's result, merged (frames in memory, or Parquet paths when spooled).

        Results are merged in the order of ``jobs``, so counters and quarantine are the same
        however the work was spread.
        """
        results: dict[int, Collected] = {}
        todo: list[tuple[int, Job[Task]]] = []
        for index, job in enumerate(jobs):
            cached = (
                _load(_entry(self.folder, kind, job.obj), job.obj)
                if self.folder and not self.fresh
                else None
            )
            if cached is not None:
                results[index] = cached
            else:
                todo.append((index, job))
        with self._lock:
            self.reused += len(results)
            self.decoded += len(todo)

        def tick() -> None:
            if progress is not None:
                progress(label, len(results), len(jobs))

        if results:
            tick()  # what earlier runs decoded counts as done
        pending = [job for _, job in todo]
        if self.folder is None:
            for (index, _), job in zip(todo, pending, strict=True):
                results[index] = _merge(job.obj, decoder(job.task))
                tick()
        elif sum(j.obj.size for j in pending) < self.in_process_bytes or self.workers == 1:
            done = _decode_batch(decoder, self.folder, kind, pending)
            results.update(zip((i for i, _ in todo), done, strict=True))
            tick()
        else:
            position = {id(job): index for index, job in todo}
            pool = self._workers()
            try:
                futures = {
                    pool.submit(_decode_batch, decoder, self.folder, kind, batch): batch
                    for batch in _batches(pending, self.workers)
                }
                for future in as_completed(futures):
                    for job, result in zip(futures[future], future.result(), strict=True):
                        results[position[id(job)]] = result
                    tick()
            finally:
                if not self._held:
                    self._shutdown()
        return Collected.merged(results[index] for index in range(len(jobs)))

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
