"""METER_TRACE=1: how long each stage of a run took, on stderr (for profiling a run)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def trace(what: str) -> Iterator[None]:
    """With METER_TRACE=1, say on stderr how long ``what`` took (for profiling a run)."""
    if not os.environ.get("METER_TRACE"):
        yield
        return
    started = time.perf_counter()
    yield
    print(f"[meter] {time.perf_counter() - started:7.3f} s  {what}", file=sys.stderr)
