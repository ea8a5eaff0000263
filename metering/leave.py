"""Ending a process at once, without tearing its interpreter down.

A Python process that imported polars, DuckDB and pydantic spends 0.1-0.2 s at exit
freeing their modules one by one: a fifth of a re-bill with nothing new, and the wait for
each spool worker when a bill's decoding ends. ``meter`` and its worker processes leave
instead once their exit functions (``atexit``) ran and their output is flushed; whatever
they opened is closed by then (``with``).
"""

from __future__ import annotations

import atexit
import multiprocessing.context
import os
import sys
from typing import NoReturn


def leave(code: int) -> NoReturn:
    """End the process with status ``code``: exit functions first, output flushed, then
    no teardown."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away (| head), a closed stream
            code = code or 120  # Python's status when flushing stdout at exit fails
    os._exit(code)


class _Worker(multiprocessing.context.SpawnProcess):
    """A spawned process that leaves (``leave``) once it ran and did what a process's end
    does (multiprocessing's finalizers, flushed streams), keeping its exit status."""

    def _bootstrap(self, parent_sentinel: int | None = None) -> int:
        leave(super()._bootstrap(parent_sentinel))  # type: ignore[misc]


class _Workers(multiprocessing.context.SpawnContext):
    Process = _Worker


def workers() -> multiprocessing.context.SpawnContext:
    """The start method of meter's worker processes: spawned (polars' threads do not
    fork), and leaving at once when done."""
    return _Workers()
