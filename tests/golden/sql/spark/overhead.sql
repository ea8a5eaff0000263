(
        SELECT
            count(*) FILTER (WHERE c.source <> 'metering' AND c.event_id IS NOT NULL
                AND v1.event_id IS NULL) AS data_events,
            count(*) FILTER (WHERE c.source <> 'cloudtrail') AS writes
        FROM calls c LEFT JOIN (SELECT DISTINCT event_id FROM (
        SELECT event_id FROM _events_all
        WHERE event_source = 'rdsdata.amazonaws.com' AND event_id IS NOT NULL)) v1
            ON c.event_id = v1.event_id
        WHERE c.in_month
        )
