"""Attribution (SPEC section 3): the month's calls, each with its tenant.

``joined`` is the step: the two sources' rows joined into calls (``match``), then ordered
rules, the first that names a tenant wins. Each rule is a module with one function named
like it that turns the rule's config into a SQL expression giving a tenant id or NULL.
Adding a rule is one module and one line in RULES.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from metering.attribute import match
from metering.attribute.metering_record import metering_record
from metering.attribute.principal import principal
from metering.attribute.resource_arn import resource_arn
from metering.attribute.secret_arn import secret_arn
from metering.config import Rule
from metering.schemas import JOINED, UNATTRIBUTED, Relation
from metering.sql import DUCKDB, Dialect

__all__ = ["RULES", "UNMATCHED", "attributed", "joined", "match"]

RULES: dict[str, Callable[[Any, Dialect], str]] = {
    "metering_record": metering_record,
    "secret_arn": secret_arn,
    "principal": principal,
    "resource_arn": resource_arn,
}

UNMATCHED = "unattributed"  # the attribution of calls no rule matched
# What the rules read; dropped once the tenant is decided, so the calls stay narrow (the
# cluster, resource_arn, stays: shared costs are split per cluster).
EVIDENCE = (
    "record_tenant_id",
    "user_arn",
    "issuer_arn",
    "source_identity",
    "secret_arn",
)


def joined(events: Relation, records: Relation, rules: Sequence[Rule]) -> Relation:
    """The calls of ``events`` (EVENTS) and ``records`` (RECORDS), attributed (JOINED)."""
    return attributed(match.calls_in(events, records), rules)


def attributed(calls: Relation, rules: Sequence[Rule], dialect: Dialect = DUCKDB) -> Relation:
    """``calls`` (``match.MATCHED``) with ``tenant_id`` and ``attribution`` (the winning
    rule's kind) in place of the evidence the rules read (JOINED).

    A call seen only in metering records always takes its record's tenant: there is no
    other evidence about it.
    """
    # Each rule is written out where it is tried, not computed up front: CASE and coalesce
    # evaluate lazily, so a rule (a regex, say) only runs on calls no earlier rule named.
    literal = dialect.literal
    tried = [RULES[rule.kind](rule, dialect) for rule in rules]
    names = " ".join(
        f"WHEN {expr} IS NOT NULL THEN {literal(rule.kind)}"
        for expr, rule in zip(tried, rules, strict=True)
    )
    tenants = ", ".join([*tried, literal(UNATTRIBUTED)])
    sql = f"""
        SELECT {dialect.all_but(EVIDENCE, calls.columns)},
            CASE WHEN source = 'metering' THEN record_tenant_id
                 ELSE coalesce({tenants}) END AS tenant_id,
            CASE WHEN source = 'metering' THEN 'metering_record'
                 {names} ELSE {literal(UNMATCHED)} END AS attribution
        FROM {calls}
    """
    return Relation.query(sql, JOINED)
