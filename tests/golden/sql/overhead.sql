(
        SELECT
            count(*) FILTER (WHERE source <> 'metering' AND event_id NOT IN (
                SELECT event_id FROM events_in
                WHERE event_source = 'rdsdata.amazonaws.com' AND event_id IS NOT NULL
            )) AS data_events,
            count(*) FILTER (WHERE source <> 'cloudtrail') AS writes
        FROM calls WHERE in_month
    )
