"""Shared costs (SPEC 8): the other RDS lines of the tenants' clusters, split over the
tenants by their share of a driver, as charge lines beside the Data API's own.

Each ``[[shared_costs]]`` entry takes the invoice lines of its usage types (and clusters,
when it lists them: ``collect.invoice``). A line of one day (an hourly or daily export) is
split by the tenants' driver on its cluster that day, a line of a longer period by the
month's; a day without calls of the cluster falls back to the cluster's month. The split is
the Data API's rule (``rate.carriers``, ``money.allocate``): exact shares, then the tenant
lines of each charge rounded by the largest remainder to the minor unit of ``[pricing]
currency`` (``money.minor_units``), so they sum exactly to what was allocated. A line that
cannot be split (its cluster has no call in the month, or it names no resource) is
unallocated: counted and shown, never spread over the others.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

import polars as pl

from metering.config import DATA_API_CHARGE, Config, Driver, SharedCostConfig
from metering.rate import carriers
from metering.rate.money import allocate, minor_units, round_half_up, round_lines
from metering.rate.units import measured_bytes
from metering.schemas import (
    SHARED_COSTS,
    TENANT_CHARGES,
    Relation,
    SharedLine,
    decimal_column,
    empty,
)
from metering.sql import DUCKDB, Dialect, utc_day

EXACT_PLACES = 12
NO_RESOURCE = "(no resource)"  # how a line that names no resource is listed as unallocated

DRIVERS: dict[str, pl.DataType] = {
    "tenant_id": pl.Utf8(),
    "cluster": pl.Utf8(),
    "day": pl.Date(),
    "calls": pl.Int64(),
    "units": pl.Int64(),
    "bytes": pl.Int64(),
}


def cluster_drivers(calls: Relation, config: Config, dialect: Dialect = DUCKDB) -> Relation:
    """Per tenant, cluster (the call's ``resource_arn``; "" when unknown) and day, of its
    billed calls: calls, units and the bytes they were billed on (``[pricing] measure``; a
    call of unknown size counts none)."""
    size = measured_bytes(config.pricing.measure)
    day = utc_day("event_time", dialect)
    order = "tenant_id, cluster, day" if dialect.spark else "ALL"  # (the same: keys first)
    sql = f"""
        SELECT tenant_id, coalesce(resource_arn, '') AS cluster, {day} AS day,
               count(*) AS calls, {dialect.cast("sum(units)", "BIGINT")} AS units,
               {dialect.cast(f"coalesce(sum({size}), 0)", "BIGINT")} AS bytes
        FROM {calls} WHERE billed GROUP BY ALL ORDER BY {order}
    """
    return Relation.query(sql, DRIVERS)


@dataclass(slots=True)
class _Driven:
    """One driver's weights: per cluster and day, and per cluster over the month."""

    by_day: dict[tuple[str, date], dict[str, int]] = field(default_factory=dict)
    by_month: dict[str, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def of(cls, drivers: pl.DataFrame, driver: Driver) -> _Driven:
        driven = cls()
        for tenant, cluster, day, weight in drivers.select(
            "tenant_id", "cluster", "day", driver
        ).iter_rows():
            if not cluster:
                continue
            today = driven.by_day.setdefault((cluster, day), {})
            today[tenant] = today.get(tenant, 0) + weight
            month = driven.by_month.setdefault(cluster, {})
            month[tenant] = month.get(tenant, 0) + weight
        return driven

    def weights(self, cluster: str, day: str | None) -> dict[str, int]:
        """The tenants' weights for a line of ``cluster`` on ``day`` (None: the month's)."""
        if day is not None:
            today = self.by_day.get((cluster, date.fromisoformat(day)), {})
            if any(weight > 0 for weight in today.values()):
                return today
        return self.by_month.get(cluster, {})


@dataclass(frozen=True, slots=True)
class Charges:
    """A month's charges: each tenant's (TENANT_CHARGES) and each shared cost's totals
    (SHARED_COSTS)."""

    tenant_charges: pl.DataFrame
    shared_costs: pl.DataFrame


def charges(
    config: Config,
    month: str,
    tenant_month: pl.DataFrame,
    lines: Sequence[SharedLine],
    drivers: pl.DataFrame,
    run_id: str,
) -> Charges:
    """The month's charges: the Data API's line of each tenant (``tenant_month``, charge
    ``data_api``) and each ``[[shared_costs]]`` entry's ``lines`` split by ``drivers``
    (``cluster_drivers``)."""
    currency = config.pricing.currency
    places = minor_units(currency)
    clusters_of = _clusters_of(drivers)
    rows = [
        data_api_charge(row, ",".join(sorted(clusters_of.get(row["tenant_id"], ()))))
        for row in tenant_month.iter_rows(named=True)
    ]
    totals: list[dict[str, object]] = []
    by_charge: dict[str, list[SharedLine]] = defaultdict(list)
    for line in lines:
        by_charge[line.charge].append(line)
    policy = config.attribution.unattributed
    for entry in config.shared_costs:
        split = _split(entry, by_charge[entry.name], drivers, policy, places)
        rows.extend(split.rows)
        totals.append(split.total)
    constant = {"month": month, "run_id": run_id, "currency": currency}
    return Charges(
        _frame(rows, constant, TENANT_CHARGES).sort("tenant_id", "charge"),
        _frame(totals, constant, SHARED_COSTS),
    )


def data_api_charge(line: dict[str, Any], clusters: str = "") -> dict[str, object]:
    """A tenant's Data API line (a ``tenant_month`` row) as its charge ``data_api``;
    ``clusters``: the clusters its calls went to (comma-separated ARNs)."""
    return {
        "tenant_id": line["tenant_id"],
        "charge": DATA_API_CHARGE,
        "amount": line["amount"],
        "driver": "units",
        "share": line["share"],
        "cost_exact": line["cost_exact"],
        "quantity": line["units"],
        "clusters": clusters,
    }


def _clusters_of(drivers: pl.DataFrame) -> dict[str, set[str]]:
    clusters: dict[str, set[str]] = defaultdict(set)
    for tenant, cluster in drivers.select("tenant_id", "cluster").unique().iter_rows():
        if cluster:
            clusters[tenant].add(cluster)
    return clusters


@dataclass(frozen=True, slots=True)
class _Split:
    rows: list[dict[str, object]]  # the tenants' lines of the charge
    total: dict[str, object]  # the charge's row of SHARED_COSTS


def _split(
    entry: SharedCostConfig,
    lines: Sequence[SharedLine],
    drivers: pl.DataFrame,
    policy: Literal["platform", "share_pro_rata"],
    places: int,
) -> _Split:
    """One shared cost's ``lines`` split over the tenants by its driver."""
    driven = _Driven.of(drivers, entry.driver)
    clusters = set(entry.clusters) or set(driven.by_month)
    # Each line of the same cluster and day is split by the same weights: add them first.
    groups: dict[tuple[str, str | None], Decimal] = defaultdict(Decimal)
    counts: dict[tuple[str, str | None], int] = defaultdict(int)
    for line in lines:
        if line.resource_id and line.resource_id not in clusters:
            continue  # another cluster's: not a cost of the tenants' clusters
        groups[(line.resource_id, line.day)] += line.cost
        counts[(line.resource_id, line.day)] += 1
    exact: dict[str, Fraction] = defaultdict(Fraction)
    tenant_clusters: dict[str, set[str]] = defaultdict(set)
    invoiced = unallocated = Decimal(0)
    unallocated_lines = 0
    unplaced: set[str] = set()
    for (cluster, day), cost in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1] or "")):
        invoiced += cost
        weights = carriers(driven.weights(cluster, day), policy) if cluster else {}
        if not weights:
            unallocated += cost
            unallocated_lines += counts[(cluster, day)]
            unplaced.add(cluster or NO_RESOURCE)
            continue
        for tenant, share in allocate(cost, weights).items():
            exact[tenant] += share
            tenant_clusters[tenant].add(cluster)
    amounts = round_lines(exact, places)
    allocated_exact = sum(exact.values(), Fraction(0))
    quantity = _quantities(driven, clusters)
    rows: list[dict[str, object]] = []
    for tenant in sorted(exact):
        share = exact[tenant] / allocated_exact if allocated_exact else Fraction(0)
        rows.append(
            {
                "tenant_id": tenant,
                "charge": entry.name,
                "amount": amounts[tenant],
                "driver": entry.driver,
                "share": round_half_up(share, EXACT_PLACES),
                "cost_exact": round_half_up(exact[tenant], EXACT_PLACES),
                "quantity": quantity.get(tenant, 0),
                "clusters": ",".join(sorted(tenant_clusters[tenant])),
            }
        )
    total = {
        "charge": entry.name,
        "driver": entry.driver,
        "lines": sum(counts.values()),
        "invoiced_cost": round_half_up(invoiced, EXACT_PLACES),
        "allocated": sum(amounts.values(), Decimal(0)).quantize(Decimal(1).scaleb(-places)),
        "unallocated": round_half_up(unallocated, places),
        "unallocated_lines": unallocated_lines,
        "unallocated_resources": ",".join(sorted(unplaced)),
        "daily_lines": sum(n for (_, day), n in counts.items() if day is not None),
    }
    return _Split(rows, total)


def _quantities(driven: _Driven, clusters: set[str]) -> dict[str, int]:
    """Each tenant's driver over the month on ``clusters``."""
    quantity: dict[str, int] = defaultdict(int)
    for cluster in clusters:
        for tenant, weight in driven.by_month.get(cluster, {}).items():
            quantity[tenant] += weight
    return quantity


def _frame(
    rows: list[dict[str, object]], constant: Mapping[str, str], schema: dict[str, pl.DataType]
) -> pl.DataFrame:
    """``rows`` (with the ``constant`` columns) as a frame of ``schema``, decimals exact."""
    if not rows:
        return empty(schema)
    columns: dict[str, pl.Series] = {}
    for name, dtype in schema.items():
        if name in constant:
            columns[name] = pl.Series(name, [constant[name]] * len(rows), dtype=pl.Utf8)
        elif isinstance(dtype, pl.Decimal):
            values = [Decimal(str(row[name])) for row in rows]
            column = decimal_column(values, dtype.precision or 38, dtype.scale or 0)
            columns[name] = column.alias(name)
        else:
            columns[name] = pl.Series(name, [row[name] for row in rows], dtype=dtype)
    return pl.DataFrame(columns)
