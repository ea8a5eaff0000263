(
        SELECT CAST(event_time AS DATE) AS day, tenant_id, count(*) AS calls,
               CAST(sum(units) AS BIGINT) AS units
        FROM calls WHERE billed GROUP BY ALL ORDER BY day, tenant_id
    )
