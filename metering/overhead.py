"""What the metering itself costs: an estimate shown beside the month's bill.

Recording every Data API call twice, once by AWS (CloudTrail data events) and once by the
application (a DynamoDB item per call), has a price of its own, and at Data API prices it
can be more than the calls it records: CloudTrail charges 0.10 USD per 100,000 data events,
the Data API 0.35 USD per million requests. ``meter bill`` and ``meter report`` show the
estimate per month so a team can decide whether the evidence is worth what it costs.

It is a report, never a charge: nothing here reaches the money rules (``metering.rate``) or
a tenant's line. What is counted are the month's calls (SPEC 1.6: by ``eventTime``, or the
record's ``ts`` for a call CloudTrail did not see), errored and unbilled ones included:

- **CloudTrail data events**: one per call seen in CloudTrail from
  ``rdsdataapi.amazonaws.com`` (Serverless v2 and provisioned clusters), whatever the call
  cost: CloudTrail charges every data event it delivers. A second delivery of an event is
  not counted again (nor, rarer, a second event of the same request id). Serverless v1's
  ``rdsdata.amazonaws.com`` events are management events, free in a trail's first copy:
  never counted.
- **DynamoDB writes**: one per call a metering record was read for, one write request unit
  each: an on-demand write costs a unit per started KB, and a metering item is about 400
  bytes (names and values of SPEC 2.2's attributes, both ARNs included; only tenant ids or
  ARNs of several hundred characters pass 1 KB).

A source that is not configured is not counted (None, not 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import polars as pl

from metering.config import Config
from metering.rate.money import minor_units, round_half_up, round_lines
from metering.schemas import Relation
from metering.sql import DUCKDB, Dialect

# Data API events of Serverless v1 clusters: management events, free in a trail's first copy
# (every other Data API event is a data event of rdsdataapi.amazonaws.com, charged).
V1_EVENT_SOURCE = "rdsdata.amazonaws.com"
EVENTS_PER_PRICE = 100_000  # cloudtrail_per_100k_events
WRITES_PER_PRICE = 1_000_000  # dynamodb_per_million_writes
EXACT_PLACES = 12  # decimals of an exact estimate, as bill_runs keeps it

# What ``counts`` gives.
COUNTS: dict[str, pl.DataType] = {"data_events": pl.Int64(), "writes": pl.Int64()}


def counts(calls: Relation, events: Relation, dialect: Dialect = DUCKDB) -> Relation:
    """SQL: the month's CloudTrail data events and metering writes over its ``calls``
    (RATED), in one row (COUNTS): the calls in the month seen in CloudTrail but not as a
    Serverless v1 event (one of ``events``, EVENTS, from ``rdsdata.amazonaws.com``), and
    the calls in the month a metering record was read for.

    Counting calls, which the join has already made unique, costs a third of what counting
    distinct event ids again would (0.1 s against 0.35 s for a month of a million calls).
    """
    v1 = f"""
        SELECT event_id FROM {events}
        WHERE event_source = {dialect.literal(V1_EVENT_SOURCE)} AND event_id IS NOT NULL"""
    if dialect.spark:  # Spark 3.5 takes no subquery in an aggregate's FILTER: a join
        sql = f"""
        SELECT
            count(*) FILTER (WHERE c.source <> 'metering' AND c.event_id IS NOT NULL
                AND v1.event_id IS NULL) AS data_events,
            count(*) FILTER (WHERE c.source <> 'cloudtrail') AS writes
        FROM {calls} c LEFT JOIN (SELECT DISTINCT event_id FROM ({v1})) v1
            ON c.event_id = v1.event_id
        WHERE c.in_month
        """
        return Relation.query(sql, COUNTS)
    sql = f"""
        SELECT
            count(*) FILTER (WHERE source <> 'metering' AND event_id NOT IN (
                SELECT event_id FROM {events}
                WHERE event_source = {dialect.literal(V1_EVENT_SOURCE)} AND event_id IS NOT NULL
            )) AS data_events,
            count(*) FILTER (WHERE source <> 'cloudtrail') AS writes
        FROM {calls} WHERE in_month
    """
    return Relation.query(sql, COUNTS)


@dataclass(frozen=True, slots=True)
class Overhead:
    """A month's estimated cost of its own evidence, exact (``Decimal``)."""

    data_events: int | None  # CloudTrail data events (None: no CloudTrail source)
    writes: int | None  # DynamoDB writes of metering records (None: no metering source)
    cloudtrail_cost: Decimal | None
    dynamodb_cost: Decimal | None

    @classmethod
    def estimate(cls, config: Config, data_events: int | None, writes: int | None) -> Overhead:
        """The costs of ``data_events`` and ``writes`` at ``config``'s ``[overhead]`` prices."""
        prices = config.overhead
        return cls(
            data_events,
            writes,
            _cost(data_events, prices.cloudtrail_per_100k_events, EVENTS_PER_PRICE),
            _cost(writes, prices.dynamodb_per_million_writes, WRITES_PER_PRICE),
        )

    @classmethod
    def of_run(cls, run: dict[str, Any]) -> Overhead | None:
        """The estimate a ``bill_runs`` row holds (None: billed before meter kept it)."""
        if run.get("overhead_data_events") is None and run.get("overhead_writes") is None:
            return None
        return cls(
            _int(run.get("overhead_data_events")),
            _int(run.get("overhead_writes")),
            _decimal(run.get("overhead_cloudtrail_cost")),
            _decimal(run.get("overhead_dynamodb_cost")),
        )

    def columns(self) -> dict[str, object]:
        """The ``bill_runs`` columns that keep it."""
        return {
            "overhead_data_events": self.data_events,
            "overhead_writes": self.writes,
            "overhead_cloudtrail_cost": self.cloudtrail_cost,
            "overhead_dynamodb_cost": self.dynamodb_cost,
        }

    @property
    def total(self) -> Decimal:
        """Exact: CloudTrail and DynamoDB together (a source not configured costs 0)."""
        return (self.cloudtrail_cost or Decimal(0)) + (self.dynamodb_cost or Decimal(0))

    def rounded(self, currency: str) -> tuple[Decimal | None, Decimal | None, Decimal]:
        """CloudTrail, DynamoDB and total, rounded once to ``currency``'s minor unit: the
        total half-up, the two parts by largest remainder so that they add up to it."""
        parts = {
            name: Fraction(cost)
            for name, cost in (
                ("cloudtrail", self.cloudtrail_cost),
                ("dynamodb", self.dynamodb_cost),
            )
            if cost is not None
        }
        places = minor_units(currency)
        lines = round_lines(parts, places)
        return lines.get("cloudtrail"), lines.get("dynamodb"), round_half_up(self.total, places)

    def ratio(self, account_cost: Decimal) -> Decimal | None:
        """The estimate as a share of the month's Data API cost (None when that is 0)."""
        return self.total / account_cost if account_cost else None


def _cost(count: int | None, price: Decimal, per: int) -> Decimal | None:
    """The exact cost of ``count`` at ``price`` per ``per`` (None for None)."""
    if count is None:
        return None
    return (Decimal(count) * price / per).quantize(Decimal(1).scaleb(-EXACT_PLACES))


def _int(value: object) -> int | None:
    return None if value is None else int(str(value))


def _decimal(value: object) -> Decimal | None:
    return None if value is None else Decimal(str(value))
