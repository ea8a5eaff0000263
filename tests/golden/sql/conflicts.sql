(
        SELECT request_id, event_id, conflict AS reason FROM calls
        WHERE in_month AND conflict IS NOT NULL ORDER BY request_id, event_id
    )
