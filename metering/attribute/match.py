"""Join the two sources into calls, and pick the month's billable ones (SPEC 2, 3, 5).

SQL run by the warehouse engine over the spooled inputs. A call counts once if either
source has it: CloudTrail events are unique by ``eventID`` (duplicate deliveries) and by
``requestID``; metering records by ``request_id``. Which duplicate survives never depends
on input order (the smallest row wins), so shuffled or re-split inputs bill the same.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from metering.schemas import EVENTS, RECORDS
from metering.sql import literal


def _unique(table: str, key: str, columns: Sequence[str]) -> str:
    """One row per non-null ``key`` (rows with a NULL key are all kept).

    Only the few keys that occur twice are grouped: every other row streams through an
    anti-join. Among a key's rows the smallest wins, whatever the input order; exact copies
    (duplicate deliveries) are thereby one.
    """
    others = ", ".join(c for c in columns if c != key)
    twice = (
        f"(SELECT {key} FROM {table} WHERE {key} IS NOT NULL GROUP BY {key} HAVING count(*) > 1)"
    )
    return f"""
        SELECT * FROM {table} ANTI JOIN {twice} USING ({key})
        UNION ALL BY NAME
        SELECT {key}, smallest.* FROM (
            SELECT {key}, min(struct_pack({others})) AS smallest
            FROM {table} SEMI JOIN {twice} USING ({key}) GROUP BY {key}
        )
    """


def calls_in(events: str, records: str) -> str:
    """One row per distinct call, from either source or both, with ``call_time``/``source``.

    Events are unique by ``eventID``, then by non-null ``requestID``; records by
    ``request_id``. A matched call's time is AWS's ``eventTime``; its tenant and sizes come
    from its record.
    """
    return f"""
        WITH once AS MATERIALIZED ({_unique(events, "event_id", list(EVENTS))}),
        e AS ({_unique("once", "request_id", list(EVENTS))}),
        r AS ({_unique(records, "request_id", list(RECORDS))})
        SELECT
            coalesce(e.request_id, r.request_id) AS request_id,
            e.event_id,
            coalesce(e.event_time, r.ts) AS call_time,
            coalesce(e.operation, r.operation) AS operation,
            e.error_code,
            e.user_arn, e.issuer_arn, e.source_identity, e.secret_arn,
            coalesce(e.resource_arn, r.resource_arn) AS resource_arn,
            r.tenant_id AS record_tenant_id,
            r.request_bytes, r.response_bytes, r.principal_arn,
            CASE WHEN e.event_id IS NOT NULL AND r.request_id IS NOT NULL THEN 'both'
                 WHEN e.event_id IS NOT NULL THEN 'cloudtrail'
                 ELSE 'metering' END AS source
        FROM e FULL OUTER JOIN r ON e.request_id = r.request_id
    """


IN_MONTH = "call_time >= $start AND call_time < $end"


def billable(operations: Collection[str]) -> str:
    """SQL condition: a billable operation."""
    return f"operation IN ({', '.join(literal(op) for op in sorted(operations))})"


def counts(table: str, operations: Collection[str]) -> str:
    """The counters of SPEC 5 that the join and the month selection decide."""
    ok = billable(operations)
    return f"""
        SELECT
            count(*) FILTER (WHERE source = 'both') AS joined,
            count(*) FILTER (WHERE source <> 'metering') AS unique_events,
            count(*) FILTER (WHERE source <> 'cloudtrail') AS unique_records,
            count(*) FILTER (WHERE NOT ({IN_MONTH})) AS out_of_month,
            count(*) FILTER (WHERE {IN_MONTH} AND NOT ({ok})) AS skipped_operations,
            count(*) FILTER (WHERE {IN_MONTH} AND {ok} AND error_code IS NOT NULL)
                AS errored_calls
        FROM {table}
    """


def selected(table: str, operations: Collection[str], bill_errors: bool) -> str:
    """The calls to bill: in the month, billable, not rejected by AWS (unless bill_errors)."""
    errors = "" if bill_errors else " AND error_code IS NULL"
    return f"SELECT * FROM {table} WHERE {IN_MONTH} AND {billable(operations)}{errors}"


def reconcile(table: str) -> str:
    """Per day of the month: calls in both sources, only in CloudTrail, only in records."""
    return f"""
        SELECT call_time::DATE AS day,
               count(*) FILTER (WHERE source = 'both') AS matched,
               count(*) FILTER (WHERE source = 'cloudtrail') AS cloudtrail_only,
               count(*) FILTER (WHERE source = 'metering') AS metering_only
        FROM {table} WHERE {IN_MONTH}
        GROUP BY day ORDER BY day
    """
