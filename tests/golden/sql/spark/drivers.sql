(
        SELECT tenant_id, coalesce(resource_arn, '') AS cluster, CAST(event_time AS DATE) AS day,
               count(*) AS calls, CAST(sum(units) AS BIGINT) AS units,
               CAST(coalesce(sum((request_bytes + response_bytes)), 0) AS BIGINT) AS bytes
        FROM calls WHERE billed GROUP BY ALL ORDER BY tenant_id, cluster, day
    )
