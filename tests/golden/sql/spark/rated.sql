(
        SELECT request_id, event_id, call_time AS event_time, tenant_id, operation,
               error_code, error_seen_by, request_bytes, response_bytes, CASE WHEN (request_bytes + response_bytes) IS NULL THEN CAST(1 AS BIGINT) ELSE CAST(greatest(1, ((request_bytes + response_bytes) + 32767) div 32768) AS BIGINT) END AS units,
               attribution,
               source, source = 'cloudtrail' AS size_estimated, conflict,
               call_time >= TIMESTAMP '2026-10-01T00:00:00+00:00' AND call_time < TIMESTAMP '2026-11-01T00:00:00+00:00' AS in_month, call_time >= TIMESTAMP '2026-10-01T00:00:00+00:00' AND call_time < TIMESTAMP '2026-11-01T00:00:00+00:00' AND operation IN ('BatchExecuteStatement', 'BeginTransaction', 'CommitTransaction', 'ExecuteSql', 'ExecuteStatement', 'RollbackTransaction') AND error_code IS NULL AS billed, resource_arn
        FROM joined
    )
