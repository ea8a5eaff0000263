"""A synthetic month of Data API calls with realistic tenant profiles.

Profiles: a chatty tenant of small calls, a reporting tenant of 32-64 KiB payloads, a few
steady mid-size tenants and some tiny ones. Payload sizes cluster just past the 32 KiB
block edges, as real payloads with a growing result set do. Everything is drawn from one
seeded generator, vectorised with numpy, so a seed always gives the same month.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from metering.month import Month

BLOCK = 32768
TENANT_NAMES = (
    "acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell",
    "cyberdyne", "soylent", "wonka", "aperture", "vandelay", "massive", "oscorp", "gringotts",
)  # fmt: skip
OPERATIONS = np.array(
    [
        "ExecuteStatement",
        "BatchExecuteStatement",
        "BeginTransaction",
        "CommitTransaction",
        "RollbackTransaction",
    ]
)
TRANSACTION_CONTROL = ("BeginTransaction", "CommitTransaction", "RollbackTransaction")
ACCOUNT = "123456789012"
REGION = "us-east-1"
CLUSTER_ARN = f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:saas-main"


@dataclass(frozen=True, slots=True)
class Tenant:
    tenant_id: str
    name: str
    cost_center: str
    profile: str  # chatty | reporting | steady | tiny
    weight: float  # share of the month's calls

    @property
    def role_arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT}:role/tenant-{self.tenant_id}"

    @property
    def secret_arn(self) -> str:
        return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:tenant-{self.tenant_id}-AbCdEf"


def tenants(count: int) -> list[Tenant]:
    """``count`` tenants: chatty, reporting, then steady and tiny ones."""
    count = max(2, count)
    out = []
    for i in range(count):
        base = TENANT_NAMES[i % len(TENANT_NAMES)]
        tenant_id = base if i < len(TENANT_NAMES) else f"{base}-{i // len(TENANT_NAMES)}"
        profile, weight = (
            ("chatty", 0.55) if i == 0 else
            ("reporting", 0.18) if i == 1 else
            ("steady", 0.2 / max(1, (count - 2) // 2 or 1)) if i % 2 == 0 else
            ("tiny", 0.07 / max(1, (count - 2) // 2 or 1))
        )  # fmt: skip
        out.append(
            Tenant(
                tenant_id,
                f"{base.title()} {'Inc.' if i % 3 else 'Ltd'}",
                f"CC-{100 + i * 7}",
                profile,
                weight,
            )
        )
    return out


def _sizes(rng: np.random.Generator, profile: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Request and response body bytes per call, by tenant profile."""
    n = len(profile)
    request = np.clip(rng.lognormal(6.3, 0.6, n), 120, 60_000).astype(np.int64)
    response = np.clip(rng.lognormal(7.2, 1.0, n), 60, 30_000).astype(np.int64)

    reporting = profile == "reporting"
    k = int(reporting.sum())
    # Totals between one and two blocks; a third of them just past the 32 KiB edge.
    total = rng.integers(BLOCK + 1, 2 * BLOCK, k)
    edge = rng.random(k) < 0.35
    total[edge] = BLOCK + rng.integers(1, 700, int(edge.sum()))
    response[reporting] = np.maximum(total - request[reporting], 60)

    steady = profile == "steady"
    big = steady & (rng.random(n) < 0.12)
    response[big] = rng.integers(20_000, 140_000, int(big.sum()))
    # A few steady calls land just past an edge too.
    near = steady & (rng.random(n) < 0.05)
    response[near] = BLOCK - request[near] + rng.integers(1, 400, int(near.sum()))
    return request, response


def _uuids(rng: np.random.Generator, count: int) -> pl.Series:
    """``count`` random version-4 UUIDs from ``rng``, laid out as bytes in one go."""
    hex_digits = np.frombuffer(rng.bytes(16 * count).hex().encode(), np.uint8).reshape(count, 32)
    text = np.empty((count, 36), np.uint8)
    # xxxxxxxx-xxxx-4xxx-axxx-xxxxxxxxxxxx: the version 4 and the variant a stand in for
    # hex digits 12 and 16.
    text[:, [8, 13, 18, 23]] = ord("-")
    text[:, 14], text[:, 19] = ord("4"), ord("a")
    for start, end, source in ((0, 8, 0), (9, 13, 8), (15, 18, 13), (20, 23, 17), (24, 36, 20)):
        text[:, start:end] = hex_digits[:, source : source + end - start]
    return pl.Series(text.view("S36").ravel()).cast(pl.String)


def generate_calls(month: Month, tenant_list: list[Tenant], calls: int, seed: int) -> pl.DataFrame:
    """The month's calls: one row each, sorted by time."""
    rng = np.random.default_rng(seed)
    weights = np.array([t.weight for t in tenant_list])
    who = rng.choice(len(tenant_list), size=calls, p=weights / weights.sum())
    profile = np.array([t.profile for t in tenant_list])[who]

    seconds = (month.end - month.start).total_seconds()
    # Busier in working hours: draw hours from a diurnal curve.
    day = rng.integers(0, int(seconds // 86400), calls)
    hour_weights = 1.0 + 2.5 * np.exp(-(((np.arange(24) - 14) / 4.0) ** 2))
    hour = rng.choice(24, size=calls, p=hour_weights / hour_weights.sum())
    ms = (day * 86400 + hour * 3600) * 1000 + rng.integers(0, 3_600_000, calls)
    # The chatty tenant bursts: a tenth of its calls fall into a few busy seconds.
    chatty = np.flatnonzero(profile == "chatty")
    if len(chatty):
        burst = chatty[rng.random(len(chatty)) < 0.1]
        starts = rng.integers(0, int(seconds) - 2, 3) * 1000
        ms[burst] = starts[rng.integers(0, 3, len(burst))] + rng.integers(0, 2000, len(burst))

    op_p = {"chatty": [0.9, 0.02, 0.03, 0.03, 0.02], "reporting": [0.97, 0.03, 0, 0, 0]}
    operation = np.empty(calls, dtype=np.int64)  # an index into OPERATIONS
    for name in ("chatty", "reporting", "steady", "tiny"):
        mask = profile == name
        p = op_p.get(name, [0.8, 0.06, 0.06, 0.06, 0.02])
        operation[mask] = rng.choice(len(OPERATIONS), size=int(mask.sum()), p=p)
    request, response = _sizes(rng, profile)
    small = np.isin(OPERATIONS[operation], TRANSACTION_CONTROL)
    request[small] = rng.integers(140, 260, int(small.sum()))
    response[small] = rng.integers(40, 120, int(small.sum()))

    request_ids = _uuids(rng, calls)
    event_ids = _uuids(rng, calls)
    ids_arr = np.array([t.tenant_id for t in tenant_list])[who]
    # Categorical: a few tenants and operations repeat over millions of rows.
    frame = pl.DataFrame(
        {
            "request_id": request_ids,
            "event_id": event_ids,
            "tenant_id": ids_arr,
            "ts": pl.Series(ms + int(month.start.timestamp() * 1000)).cast(
                pl.Datetime("ms", "UTC")
            ),
            "operation": OPERATIONS[operation],
            "request_bytes": request,
            "response_bytes": response,
        },
        schema_overrides={"tenant_id": pl.Categorical, "operation": pl.Categorical},
    )
    return frame.sort("ts", "request_id")
