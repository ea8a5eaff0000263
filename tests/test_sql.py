"""Golden SQL: what each step of a bill writes for the sample's config, kept as text.

A change to the join, the attribution, the rating or the profiles then shows in review as
a diff of ``tests/golden/sql/*.sql`` (``METER_UPDATE_GOLDEN=1 pytest`` rewrites them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from metering import attribute
from metering.attribute import delta
from metering.attribute.match import MATCHED
from metering.config import load_config
from metering.month import Month
from metering.overhead import counts as overhead_counts
from metering.rate import profile, select, shared
from metering.schemas import EVENTS, JOINED, RATED, RECORDS, Relation
from metering.sql import SPARK
from metering.store import month_calls
from tests.conftest import SAMPLE
from tests.helpers import assert_golden

OCT = Month(2026, 10)
CONFIG = load_config(SAMPLE / "meter.toml")
CALLS = Relation("calls", RATED)


def _text(sql: str) -> bytes:
    """SQL as kept: each line without trailing blanks, blank lines dropped."""
    lines = [line.rstrip() for line in sql.splitlines()]
    return "".join(f"{line}\n" for line in lines if line.strip()).encode()


@dataclass
class _Recorder:
    """A runner that keeps the SQL ``delta.rejoin`` hands it, and runs nothing."""

    statements: list[str] = field(default_factory=list)

    def table(self, name: str, relation: Relation) -> tuple[Relation, int]:
        self.statements.append(f"-- table {name}\n{relation.sql}")
        return Relation(name, relation.columns), 1

    def insert(self, table: Relation, relation: Relation) -> int:
        self.statements.append(f"-- insert into {table}\n{relation.sql}")
        return 0


def _rejoin() -> str:
    recorder = _Recorder()
    join = lambda e, r: attribute.joined(e, r, CONFIG.attribution.rules)  # noqa: E731
    events = (Relation("events_old", EVENTS), Relation("events_new", EVENTS))
    records = (Relation("records_old", RECORDS), Relation("records_new", RECORDS))
    delta.rejoin(recorder, join, events, records)
    return "\n".join(recorder.statements)


STEPS = {
    "joined": lambda: (
        attribute.joined(
            Relation("events_in", EVENTS), Relation("records_in", RECORDS), CONFIG.attribution.rules
        ).sql
    ),
    "rated": lambda: select.rated(Relation("joined", JOINED), CONFIG.pricing, OCT).sql,
    "month_calls": lambda: month_calls(OCT).sql,
    "counts": lambda: select.counts(CALLS, CONFIG.pricing.operations).sql,
    "conflicts": lambda: select.conflicts(CALLS).sql,
    "tenant_totals": lambda: profile.tenant_totals(CALLS).sql,
    "tenant_days": lambda: profile.tenant_days(CALLS).sql,
    "reconciliation": lambda: profile.reconciliation(CALLS).sql,
    "overhead": lambda: overhead_counts(CALLS, Relation("events_in", EVENTS)).sql,
    "rejoin": _rejoin,
}


@pytest.mark.parametrize("step", sorted(STEPS))
def test_the_sql_of_each_step_is_golden(step: str) -> None:
    assert_golden(f"sql/{step}.sql", _text(STEPS[step]()))


def _spark_unique(key: str, what: str) -> str:
    from metering.attribute.match import EVENT_COLUMNS, RECORD_COLUMNS
    from metering.spark.join import unique_sql

    columns = RECORD_COLUMNS if what == "records" else EVENT_COLUMNS
    newest = "written_us" if what == "records" else None
    passing, winners = unique_sql(f"_unique_{key}", key, columns, what, newest)
    return f"-- passing\n{passing}\n-- winners\n{winners}"


# The same steps spelled for Spark (sql.SPARK), and the dedup the Spark engine writes apart.
SPARK_STEPS = {
    "unique_event_ids": lambda: _spark_unique("event_id", "copies"),
    "unique_event_request_ids": lambda: _spark_unique("request_id", "events"),
    "unique_records": lambda: _spark_unique("request_id", "records"),
    "attributed": lambda: (
        attribute.attributed(Relation("_matched", MATCHED), CONFIG.attribution.rules, SPARK).sql
    ),
    "rated": lambda: select.rated(Relation("joined", JOINED), CONFIG.pricing, OCT, SPARK).sql,
    "counts": lambda: select.counts(CALLS, CONFIG.pricing.operations, SPARK).sql,
    "tenant_totals": lambda: profile.tenant_totals(CALLS, SPARK).sql,
    "tenant_days": lambda: profile.tenant_days(CALLS, SPARK).sql,
    "reconciliation": lambda: profile.reconciliation(CALLS, SPARK).sql,
    "overhead": lambda: overhead_counts(CALLS, Relation("_events_all", EVENTS), SPARK).sql,
    "drivers": lambda: shared.cluster_drivers(CALLS, CONFIG, SPARK).sql,
}


@pytest.mark.parametrize("step", sorted(SPARK_STEPS))
def test_the_spark_sql_of_each_step_is_golden(step: str) -> None:
    assert_golden(f"sql/spark/{step}.sql", _text(SPARK_STEPS[step]()))
