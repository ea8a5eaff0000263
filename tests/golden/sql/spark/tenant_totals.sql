(
        WITH billed AS (SELECT * FROM calls WHERE billed),
        per_second AS (
            SELECT tenant_id, unix_seconds(event_time) AS second, count(*) AS n
            FROM billed GROUP BY ALL
        ),
        peak AS (SELECT tenant_id, max(n) AS peak_rps FROM per_second GROUP BY ALL)
        SELECT tenant_id,
               count(*) AS calls,
               CAST(sum(units) AS BIGINT) AS units,
               CAST(coalesce(sum(request_bytes), 0) AS BIGINT) AS request_bytes,
               CAST(coalesce(sum(response_bytes), 0) AS BIGINT) AS response_bytes,
               count(*) FILTER (WHERE size_estimated) AS size_estimated_calls,
               any_value(peak.peak_rps) AS peak_rps
        FROM billed JOIN peak USING (tenant_id)
        GROUP BY tenant_id ORDER BY tenant_id
    )
