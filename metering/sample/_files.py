"""Writing the sample's files: byte-stable gzip, and worker processes for big samples.

The writers plan every file in the parent process (all random draws happen there, in a
fixed order) and hand each file's rows to ``Jobs``: rendering the JSON and gzipping it,
most of the work, then runs in worker processes for a big sample and inline for a small
one. Either way a seed gives the same bytes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from metering.leave import workers
from metering.schemas import Progress

T = TypeVar("T")

# Calls from which worker processes pay off: starting one costs about a second.
PARALLEL_FROM = 200_000


def write_gzip(paths: Sequence[Path], pieces: Iterable[str]) -> bytes:
    """Gzip the text ``pieces`` into each of ``paths``; return the MD5 of the gzip bytes.

    Level 9 and mtime 0 streamed through zlib: the same bytes as ``gzip.compress(text,
    mtime=0)`` of the joined text, without holding it.
    """
    first, *copies = paths
    first.parent.mkdir(parents=True, exist_ok=True)
    md5 = hashlib.md5(usedforsecurity=False)
    deflate = zlib.compressobj(9, zlib.DEFLATED, 31)
    with first.open("wb") as f:
        for piece in pieces:
            block = deflate.compress(piece.encode())
            md5.update(block)
            f.write(block)
        block = deflate.flush()
        md5.update(block)
        f.write(block)
    for copy in copies:
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(first, copy)
    return md5.digest()


class Jobs:
    """Runs file-writing jobs in ``processes`` worker processes, or inline for one.

    At most four jobs per worker wait at a time: ``submit`` blocks until a worker catches
    up, so the parent never holds more than a few files' rows.
    """

    def __init__(self, processes: int = 1, progress: Progress | None = None) -> None:
        self._progress = progress
        self._stage, self._total, self._done = "", 0, 0
        self._pool = ProcessPoolExecutor(processes, mp_context=workers()) if processes > 1 else None
        self._pending: deque[Future[Any]] = deque()
        self._backlog = 4 * processes
        self._finally: list[tuple[Callable[..., object], tuple[Any, ...]]] = []

    @classmethod
    def for_calls(cls, calls: int, progress: Progress | None = None) -> Jobs:
        """Inline for a small sample, else one worker per CPU."""
        return cls(1 if calls < PARALLEL_FROM else max(1, os.cpu_count() or 1), progress)

    def stage(self, name: str, total: int) -> None:
        """The jobs submitted from now on are ``total`` files of ``name`` (for progress)."""
        self._stage, self._total, self._done = name, total, 0
        self._report()

    def _report(self) -> None:
        if self._progress is not None and self._stage:
            self._progress(self._stage, self._done, self._total)

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)``, inline or in a worker; the future holds its result."""
        if self._pool is None:
            done: Future[T] = Future()
            done.set_result(fn(*args))
        else:
            while len(self._pending) >= self._backlog:
                self._pending.popleft().result()
            done = self._pool.submit(fn, *args)
            self._pending.append(done)
        self._done += 1
        self._report()
        return done

    def when_done(self, fn: Callable[..., object], *args: Any) -> None:
        """Call ``fn(*args)`` once the jobs submitted so far have finished (at the latest
        when the ``with`` block ends)."""
        if self._pool is None:
            fn(*args)
        else:
            self._finally.append((fn, args))

    def __enter__(self) -> Jobs:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._pool is None:
            return
        try:
            while error is None and self._pending:  # a worker's error is raised here
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(cancel_futures=True)
        for fn, args in self._finally if error is None else ():
            fn(*args)
