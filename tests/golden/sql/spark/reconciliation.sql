(
        SELECT CAST(event_time AS DATE) AS day,
               count(*) FILTER (WHERE source = 'both') AS matched,
               count(*) FILTER (WHERE source = 'cloudtrail') AS cloudtrail_only,
               count(*) FILTER (WHERE source = 'metering') AS metering_only,
               count(*) FILTER (WHERE source = 'both' AND error_seen_by IN ('cloudtrail', 'metering')) AS error_disagreements
        FROM calls WHERE in_month
        GROUP BY day ORDER BY day
    )
