"""Monthly and daily cost profiles of the rated calls (SQL over the ``calls`` relation)."""

from __future__ import annotations

from metering.sql import utc_day, utc_second


def tenant_totals(calls: str) -> str:
    """Per tenant: calls, units, bytes, estimated-size calls and peak calls per second."""
    return f"""
        WITH per_second AS (
            SELECT tenant_id, {utc_second("event_time")} AS second, count(*) AS n
            FROM {calls} GROUP BY ALL
        ),
        peak AS (SELECT tenant_id, max(n) AS peak_rps FROM per_second GROUP BY ALL)
        SELECT tenant_id,
               count(*) AS calls,
               sum(units)::BIGINT AS units,
               coalesce(sum(request_bytes), 0)::BIGINT AS request_bytes,
               coalesce(sum(response_bytes), 0)::BIGINT AS response_bytes,
               count(*) FILTER (WHERE size_estimated) AS size_estimated_calls,
               any_value(peak.peak_rps) AS peak_rps
        FROM {calls} JOIN peak USING (tenant_id)
        GROUP BY tenant_id ORDER BY tenant_id
    """


def tenant_days(calls: str) -> str:
    """Per tenant and day: calls and units (their cost is priced in Python)."""
    return f"""
        SELECT {utc_day("event_time")} AS day, tenant_id, count(*) AS calls,
               sum(units)::BIGINT AS units
        FROM {calls} GROUP BY ALL ORDER BY day, tenant_id
    """
