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


def _unique(table: str, key: str, columns: Sequence[str], copies: bool = True) -> str:
    """One row per non-null ``key`` (rows with a NULL key are all kept).

    Exact copies (duplicate deliveries) go first, by hashing; for the rare key left with
    rows that differ, the smallest row wins, whatever the input order.
    """
    others = ", ".join(c for c in columns if c != key)
    distinct = "DISTINCT" if copies else ""
    return f"""
        WITH rows AS MATERIALIZED (SELECT {distinct} * FROM {table}),
        twice AS MATERIALIZED (SELECT {key} FROM rows GROUP BY {key} HAVING count(*) > 1)
        SELECT * FROM rows ANTI JOIN twice USING ({key})
        UNION ALL BY NAME
        SELECT {key}, smallest.* FROM (
            SELECT {key}, min(struct_pack({others})) AS smallest
            FROM rows SEMI JOIN twice USING ({key}) GROUP BY {key}
        )
    """


def unique_records(table: str) -> str:
    """One record per ``request_id``."""
    return _unique(table, "request_id", list(RECORDS))


def unique_events(table: str) -> str:
    """One event per ``eventID``, then per non-null ``requestID``."""
    by_event = _unique(table, "event_id", list(EVENTS))
    return _unique(f"({by_event})", "request_id", list(EVENTS), copies=False)


def joined(events: str, records: str) -> str:
    """One row per distinct call, from either source or both, with ``call_time``/``source``.

    A matched call's time is AWS's ``eventTime``; its tenant and sizes come from its record.
    """
    return f"""
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
        FROM {events} e FULL OUTER JOIN {records} r ON e.request_id = r.request_id
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
