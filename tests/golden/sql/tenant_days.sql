(
        SELECT (DATE '1970-01-01' + (epoch_ms(event_time) // 86400000)::INTEGER) AS day, tenant_id, count(*) AS calls,
               sum(units)::BIGINT AS units
        FROM calls WHERE billed GROUP BY ALL ORDER BY day, tenant_id
    )
