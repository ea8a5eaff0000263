"""Buffer metering items and write them to DynamoDB; spill what cannot be written.

``batch_write_item`` takes at most 25 put requests, and may hand some back as
``UnprocessedItems`` (throttling, partition limits): those are sent again after an
exponential backoff with jitter, as are throttling and server errors. What is still
unwritten after ``max_attempts`` rounds, or refused for good (no such table, access
denied), is appended to the spill file as DynamoDB export lines (``{"Item": {...}}``), so
``meter`` can read the folder that holds ``data/`` as an export. If even the spill file
cannot be written, the items are logged in full at ERROR level and counted as lost.

Nothing here raises into the caller: a metering problem never breaks a query.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metering.hook.records import Item, export_line

log = logging.getLogger("metering.hook")

CHUNK = 25  # batch_write_item's limit

# Error codes worth another try; anything else (no table, no access, a bad item) is final.
RETRYABLE = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "TransactionConflictException",
    }
)


@dataclass(frozen=True, slots=True)
class MeterStats:
    """Counters of a ``MeteredDataApi`` since it was created (a snapshot).

    ``calls_metered`` records were made; each of them ends up exactly one of written,
    spilled, lost, or still buffered. ``calls_unmeasured`` counts attempts that could not
    be recorded (no answer, or an answer without a RequestId).
    """

    calls_metered: int = 0
    calls_unmeasured: int = 0
    records_written: int = 0
    records_spilled: int = 0
    records_lost: int = 0
    buffered: int = 0
    write_requests: int = 0
    write_errors: int = 0
    write_retries: int = 0


def _error_code(exc: Exception) -> tuple[str, int]:
    """(AWS error code, HTTP status) of a botocore ClientError; ("", 0) for anything else."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return "", 0
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


def _retryable(exc: Exception) -> bool:
    code, status = _error_code(exc)
    if not code and not status:
        return True  # a connection problem, a timeout: try again
    return code in RETRYABLE or status >= 500


class Writer:
    """Thread-safe buffer in front of ``batch_write_item``, with retries and a spill file."""

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        spill_path: Path,
        *,
        max_attempts: int = 6,
        backoff_base: float = 0.05,
        backoff_cap: float = 2.0,
        max_age: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.spill_path = spill_path
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_age = max_age
        self._sleep = sleep
        self._buffer: list[Item] = []
        self._oldest = 0.0
        self._lock = threading.Lock()  # the buffer and the counters
        self._write_lock = threading.Lock()  # one writer at a time, in order
        self._counts: dict[str, int] = dict.fromkeys(
            (
                "calls_metered",
                "calls_unmeasured",
                "records_written",
                "records_spilled",
                "records_lost",
                "write_requests",
                "write_errors",
                "write_retries",
            ),
            0,
        )

    # -- counters -------------------------------------------------------------------------

    def count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def stats(self) -> MeterStats:
        with self._lock:
            return MeterStats(buffered=len(self._buffer), **self._counts)

    # -- buffering ------------------------------------------------------------------------

    def add(self, item: Item) -> None:
        with self._lock:
            if not self._buffer:
                self._oldest = time.monotonic()
            self._buffer.append(item)
            self._counts["calls_metered"] += 1

    def maybe_flush(self) -> None:
        """Write full chunks of 25, or everything once the oldest item waited ``max_age``."""
        with self._lock:
            pending = len(self._buffer)
            stale = pending > 0 and time.monotonic() - self._oldest >= self.max_age
        if stale:
            self.flush()
        elif pending >= CHUNK:
            self.flush(full_chunks_only=True)

    def flush(self, full_chunks_only: bool = False) -> None:
        """Write the buffer (or its full chunks); spill what cannot be written. Never raises."""
        try:
            with self._write_lock:
                with self._lock:
                    take = len(self._buffer)
                    if full_chunks_only:
                        take -= take % CHUNK
                    items, self._buffer = self._buffer[:take], self._buffer[take:]
                    if self._buffer:
                        self._oldest = time.monotonic()
                for start in range(0, len(items), CHUNK):
                    chunk = items[start : start + CHUNK]
                    left = self._write_chunk(chunk)
                    self.count("records_written", len(chunk) - len(left))
                    if left:
                        self._spill(left)
        except Exception:  # never into the caller's query
            log.exception("metering: flushing the metering buffer failed")

    # -- writing --------------------------------------------------------------------------

    def _delay(self, attempt: int) -> float:
        ceiling = min(self.backoff_cap, self.backoff_base * 2.0 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _write_chunk(self, chunk: Sequence[Item]) -> list[Item]:
        """Write up to 25 items; return those still unwritten after every attempt."""
        remaining = list(chunk)
        for attempt in range(self.max_attempts):
            if attempt:
                self.count("write_retries")
                self._sleep(self._delay(attempt))
            self.count("write_requests")
            try:
                response = self.dynamodb.batch_write_item(
                    RequestItems={self.table: [{"PutRequest": {"Item": i}} for i in remaining]}
                )
            except Exception as exc:
                self.count("write_errors")
                code, _status = _error_code(exc)
                final = not _retryable(exc)
                log.warning(
                    "metering: batch_write_item of %d items to %s failed (%s): %s%s",
                    len(remaining),
                    self.table,
                    code or type(exc).__name__,
                    exc,
                    "" if not final else "; not retrying",
                )
                if final:
                    return remaining
                continue
            unprocessed = response.get("UnprocessedItems", {}).get(self.table, [])
            remaining = [request["PutRequest"]["Item"] for request in unprocessed]
            if not remaining:
                return []
            log.info(
                "metering: %d of %d items unprocessed by %s; retrying",
                len(remaining),
                len(chunk),
                self.table,
            )
        return remaining

    def _spill(self, items: Sequence[Item]) -> None:
        text = "".join(export_line(item) + "\n" for item in items)
        try:
            self.spill_path.parent.mkdir(parents=True, exist_ok=True)
            with self.spill_path.open("a", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            self.count("records_lost", len(items))
            log.error(
                "metering: %d records could not be written to %s nor spilled to %s (%s); "
                "they follow as DynamoDB export lines:\n%s",
                len(items),
                self.table,
                self.spill_path,
                exc,
                text,
            )
            return
        self.count("records_spilled", len(items))
        log.warning(
            "metering: %d records could not be written to %s; spilled to %s "
            "(bill them by listing %s under [sources.metering] exports)",
            len(items),
            self.table,
            self.spill_path,
            self.spill_path.parent.parent,
        )
