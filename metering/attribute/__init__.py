"""Attribution (SPEC section 3): ordered rules, the first that names a tenant wins.

Each rule is a module with one function named like it that turns the rule's config into a
polars expression giving a tenant id or null. Adding a rule is one module and one line in
RULES.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from metering.attribute.match import match, reconcile, select_month
from metering.attribute.metering_record import metering_record
from metering.attribute.principal import principal
from metering.attribute.resource_arn import resource_arn
from metering.attribute.secret_arn import secret_arn
from metering.config import Rule
from metering.schemas import UNATTRIBUTED

__all__ = ["RULES", "UNMATCHED", "attribute", "match", "reconcile", "select_month"]

RULES: dict[str, Callable[[Any], pl.Expr]] = {
    "metering_record": metering_record,
    "secret_arn": secret_arn,
    "principal": principal,
    "resource_arn": resource_arn,
}

UNMATCHED = "unattributed"  # the attribution of calls no rule matched


def attribute(calls: pl.DataFrame, rules: Sequence[Rule]) -> pl.DataFrame:
    """Add ``tenant_id`` and ``attribution`` (the winning rule's kind) to every call.

    A call seen only in metering records always takes its record's tenant: there is no
    other evidence about it.
    """
    only_record = pl.col("source") == "metering"
    tenants = [RULES[rule.kind](rule) for rule in rules]
    names = [
        pl.when(tenant.is_not_null()).then(pl.lit(rule.kind))
        for rule, tenant in zip(rules, tenants, strict=True)
    ]
    return calls.with_columns(
        tenant_id=pl.when(only_record)
        .then(pl.col("record_tenant_id"))
        .otherwise(pl.coalesce(*tenants, pl.lit(UNATTRIBUTED))),
        attribution=pl.when(only_record)
        .then(pl.lit("metering_record"))
        .otherwise(pl.coalesce(*names, pl.lit(UNMATCHED))),
    )
