"""``meter sample``: a realistic month of inputs, a tenants registry and a meter.toml."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import polars as pl

from metering.errors import UsageError
from metering.month import Month
from metering.report.finance import csv_bytes
from metering.sample._files import Jobs
from metering.sample.calls import CLUSTER_ARN, generate_calls, tenants
from metering.sample.cloudtrail import (
    ANALYTICS_CLUSTER_ARN,
    DELIVERY_MINUTES,
    LEGACY_CLUSTER_ARN,
    write_trail,
)
from metering.sample.dynamodb import write_export
from metering.sample.invoice import write_invoice
from metering.schemas import Progress

__all__ = ["SampleSummary", "generate"]


@dataclass(frozen=True, slots=True)
class SampleSummary:
    out: Path
    month: Month
    tenants: int
    calls: int
    records: int
    malformed: int
    config: Path
    trail_data_api: int  # CloudTrail records of Data API calls (a duplicate delivery aside)
    trail_noise: int  # CloudTrail records of other services


def _malformed_lines(month: Month) -> list[str]:
    """A handful of records an application bug or a bad migration would write."""
    day = f"{month}-15"
    base: dict[str, object] = {
        "pk": {"S": f"METER#{day}#03"},
        "tenant_id": {"S": "acme"},
        "ts": {"S": f"{day}T10:00:00.000Z"},
        "operation": {"S": "ExecuteStatement"},
        "request_bytes": {"N": "512"},
        "response_bytes": {"N": "2048"},
    }

    def line(rid: str, **changes: object) -> str:
        item = {**base, "sk": {"S": f"{day}T10:00:00.000Z#{rid}"}, "request_id": {"S": rid}}
        for key, value in changes.items():
            if value is None:
                item.pop(key, None)
            else:
                item[key] = value
        return json.dumps({"Item": item}, separators=(",", ":"))

    return [
        line("bad-0001-size-as-text", request_bytes={"S": "512"}),  # mistyped attribute
        line("bad-0002-no-tenant", tenant_id=None),  # missing attribute
        line("bad-0003-absurd-size", response_bytes={"N": "987654321"}),  # over 10 MB
        line("bad-0004-local-time", ts={"S": f"{day} 10:00:00"}),  # not UTC ISO-8601
        '{"Item": {"pk": {"S": "METER#' + day + '#01"}, "tenant_id": {"S": "glob',  # cut off
    ]


def generate(
    out: Path,
    month: Month,
    tenant_count: int = 8,
    calls: int = 20_000,
    seed: int = 7,
    noise_share: float | None = None,
    delivery_minutes: int = DELIVERY_MINUTES,
    progress: Progress | None = None,
) -> SampleSummary:
    """Write a sample month under ``out``: cloudtrail/, dynamodb/, cur/ (its AWS invoice),
    tenants.csv, meter.toml.

    ``noise_share`` is the share of CloudTrail records from other services (S3, STS, KMS);
    by default there are 0.3 of them per Data API record, 23 % of the trail. Each CloudTrail
    file holds ``delivery_minutes`` of deliveries (a real trail: 5, about 8,900 files a month).
    """
    if not 1 <= delivery_minutes <= 24 * 60 or (24 * 60) % delivery_minutes:
        raise UsageError(
            f"delivery minutes {delivery_minutes}: give a divisor of a day's 1,440 minutes, "
            "e.g. 5 (a real trail) or 120"
        )
    if noise_share is not None and not 0 <= noise_share < 1:
        raise UsageError(f"noise share {noise_share}: give a share of at least 0 and below 1")
    out.mkdir(parents=True, exist_ok=True)
    tenant_list = tenants(tenant_count)
    month_calls = generate_calls(month, tenant_list, calls, seed)
    # The month's last calls come at 23:59:5x on its last day: CloudTrail delivers them in
    # next month's first folder, and they still belong to this month.
    ends = [month.end - timedelta(milliseconds=ms) for ms in (4_880, 2_544, 130)]
    last = min(len(ends), month_calls.height)
    month_calls = pl.concat(
        [
            month_calls.head(month_calls.height - last),
            month_calls.tail(last).with_columns(
                ts=pl.Series(ends[-last:], dtype=pl.Datetime("ms", "UTC"))
            ),
        ]
    ).sort("ts", "request_id")

    # The metering table also holds the neighbouring months' edges: they must not be billed.
    # The first call after the month is at 00:00:00.000 sharp: it belongs to the next month.
    rng = np.random.default_rng(seed + 1)
    edge = generate_calls(month.previous(), tenant_list, 40, seed + 2).with_columns(
        ts=pl.lit(month.start).cast(pl.Datetime("ms", "UTC"))
        - pl.duration(milliseconds=pl.lit(pl.Series(rng.integers(1, 3_600_000, 40))))
    )
    after_offsets = rng.integers(0, 3_600_000, 40)
    after_offsets[0] = 0
    after = generate_calls(month.previous(), tenant_list, 40, seed + 3).with_columns(
        ts=pl.lit(month.end).cast(pl.Datetime("ms", "UTC"))
        + pl.duration(milliseconds=pl.lit(pl.Series(after_offsets)))
    )
    # Clusters: one tenant is still on a Serverless v1 cluster (management events); some of
    # the reporting tenant's calls go to an analytics cluster the trail does not select, so
    # only their metering records show them.
    legacy = tenant_list[3].tenant_id if len(tenant_list) > 3 else ""
    reporting = tenant_list[1].tenant_id
    seen = pl.concat([month_calls, edge, after])
    analytics = pl.Series(rng.random(seen.height) < 0.08)
    records = seen.with_columns(
        resource_arn=pl.when(pl.col("tenant_id") == legacy)
        .then(pl.lit(LEGACY_CLUSTER_ARN))
        .when((pl.col("tenant_id") == reporting) & analytics)
        .then(pl.lit(ANALYTICS_CLUSTER_ARN))
        .otherwise(pl.lit(CLUSTER_ARN))
        .cast(pl.Categorical),
        principal_arn=pl.format(
            "arn:aws:sts::123456789012:assumed-role/tenant-{}/app", "tenant_id"
        ).cast(pl.Categorical),
    )

    # What CloudTrail saw: the calls on the trail's clusters, plus calls the application
    # forgot to meter (one in a hundred) and a few that AWS rejected (never metered).
    trail_columns = ["request_id", "event_id", "tenant_id", "ts", "operation", "resource_arn"]
    unmetered = generate_calls(month, tenant_list, max(1, calls // 100), seed + 4)
    errors = ["BadRequestException"] * 4 + ["StatementTimeoutException"] * 2
    errored = generate_calls(month, tenant_list, len(errors), seed + 5).with_columns(
        error_code=pl.Series(errors)
    )
    on_trail = pl.col("resource_arn") != ANALYTICS_CLUSTER_ARN
    trail_calls = pl.concat(
        [
            records.filter(on_trail)
            .select(trail_columns)
            .with_columns(error_code=pl.lit(None, pl.Utf8)),
            unmetered.with_columns(
                resource_arn=pl.lit(CLUSTER_ARN, pl.Categorical), error_code=pl.lit(None, pl.Utf8)
            ).select(*trail_columns, "error_code"),
            errored.with_columns(resource_arn=pl.lit(CLUSTER_ARN, pl.Categorical)).select(
                *trail_columns, "error_code"
            ),
        ]
    )
    exported_ms = int((month.end + timedelta(hours=6)).timestamp() * 1000)
    export_id = f"{exported_ms:014d}-{hashlib.sha256(str(seed).encode()).hexdigest()[:8]}"
    malformed = _malformed_lines(month)
    with Jobs.for_calls(calls, progress) as jobs:
        # The export first: its few big files keep the workers busy while the trail is planned.
        write_export(out / "dynamodb", records, export_id, extra_lines=malformed, jobs=jobs)
        trail = write_trail(
            out / "cloudtrail", trail_calls, month, seed + 6, noise_share, jobs, delivery_minutes
        )

    # What AWS invoiced for the month: the calls that succeeded, metered or not, at their
    # real sizes; and the Serverless v2 clusters' capacity, a cost the tenants share.
    invoiced = ["ts", "request_bytes", "response_bytes", "resource_arn"]
    billed = pl.concat(
        [
            records.select(invoiced).with_columns(pl.col("resource_arn").cast(pl.Utf8)),
            unmetered.with_columns(resource_arn=pl.lit(CLUSTER_ARN)).select(invoiced),
        ]
    )
    write_invoice(out / "cur", month, billed, [CLUSTER_ARN, ANALYTICS_CLUSTER_ARN], seed + 7)

    # The last tenant is left out on purpose: meter bills it and reports it unregistered.
    registry = [(t.tenant_id, t.name, t.cost_center, t.profile) for t in tenant_list[:-1]]
    (out / "tenants.csv").write_bytes(
        csv_bytes([("tenant_id", "tenant_name", "cost_center", "plan"), *registry])
    )
    config = out / "meter.toml"
    config.write_text(CONFIG_TEMPLATE)
    return SampleSummary(
        out,
        month,
        len(tenant_list),
        calls,
        records.height,
        len(malformed),
        config,
        trail.data_api,
        trail.noise,
    )


CONFIG_TEMPLATE = """\
# meter configuration for the generated sample month; paths are relative to this file.
[warehouse]
path = "meter.duckdb"

[pricing]
currency = "USD"
block_bytes = 32768
measure = "request+response"
unknown_size_units = 1
bill_errors = false
tiers = [ { up_to = 1_000_000_000, per_million = "0.35" }, { per_million = "0.20" } ]

[sources.cloudtrail]
uris = ["cloudtrail"]
late_days = 3

[sources.metering]
exports = ["dynamodb"]

[tenants]
registry = "tenants.csv"

[attribution]
unattributed = "platform"
[[attribution.rules]]
kind = "metering_record"
[[attribution.rules]]
kind = "principal"
pattern = "assumed-role/tenant-(?P<tenant>[a-z0-9-]+)/"

[invoice]                              # what AWS invoiced: a CUR 2.0 export (the tie-out)
uris = ["cur"]
format = "cur2"

[[shared_costs]]                       # the clusters' Serverless v2 capacity, by units
name = "aurora_compute"
usage_types = ["%Aurora:ServerlessV2Usage%"]
driver = "units"
"""
