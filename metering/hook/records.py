"""One metering item per Data API call, exactly as SPEC 2.2 lays it out.

Public: ``meter sample`` writes its exports with the same functions, so a sample record and
a recorded one cannot drift apart.

The item is built in DynamoDB's typed form (``{"attr": {"S": ...}}``), which is both what
``batch_write_item`` takes and what a DynamoDB export line holds (``{"Item": {...}}``), so
the table and the spill file carry byte-for-byte the same attributes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime

Item = dict[str, dict[str, str]]

SHARDS = 16  # SPEC 2.2: pk shards 00-15; readers query each of them


def ts_text(moment: datetime) -> str:
    """UTC ISO-8601 with milliseconds and ``Z``: ``2026-10-31T23:59:59.120Z``."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def shard_of(request_id: str, shards: int = SHARDS) -> int:
    """A stable shard for a request id (the same hash ``meter sample`` uses)."""
    digest = hashlib.blake2b(request_id.encode(), digest_size=2).hexdigest()
    return int(digest, 16) % shards


def spec_item(
    *,
    request_id: str,
    tenant_id: str,
    ts: str,
    operation: str,
    request_bytes: int,
    response_bytes: int,
    resource_arn: str | None = None,
    principal_arn: str | None = None,
    error_code: str | None = None,
    shards: int = SHARDS,
) -> Item:
    """The DynamoDB item of SPEC 2.2 (typed attributes); ``ts`` as ``ts_text`` writes it."""
    item: Item = {
        "pk": {"S": f"METER#{ts[:10]}#{shard_of(request_id, shards):02d}"},
        "sk": {"S": f"{ts}#{request_id}"},
        "tenant_id": {"S": tenant_id},
        "request_id": {"S": request_id},
        "ts": {"S": ts},
        "operation": {"S": operation},
        "request_bytes": {"N": str(request_bytes)},
        "response_bytes": {"N": str(response_bytes)},
    }
    if resource_arn:
        item["resource_arn"] = {"S": resource_arn}
    if principal_arn:
        item["principal_arn"] = {"S": principal_arn}
    if error_code:
        item["error_code"] = {"S": error_code}
    return item


@dataclass(frozen=True, slots=True)
class CallRecord:
    """What was measured for one Data API call."""

    tenant_id: str
    request_id: str
    ts: datetime
    operation: str
    request_bytes: int
    response_bytes: int
    resource_arn: str | None = None
    principal_arn: str | None = None
    error_code: str | None = None  # the call failed: its Data API error code (or HTTP status)

    def item(self, shards: int = SHARDS) -> Item:
        """The DynamoDB item of SPEC 2.2 (typed attributes)."""
        return spec_item(
            request_id=self.request_id,
            tenant_id=self.tenant_id,
            ts=ts_text(self.ts),
            operation=self.operation,
            request_bytes=self.request_bytes,
            response_bytes=self.response_bytes,
            resource_arn=self.resource_arn,
            principal_arn=self.principal_arn,
            error_code=self.error_code,
            shards=shards,
        )


def export_line(item: Item) -> str:
    """One line of a DynamoDB export data file: ``{"Item": {...}}`` (no newline)."""
    return json.dumps({"Item": item}, separators=(",", ":"), ensure_ascii=False)
