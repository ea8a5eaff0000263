-- passing
SELECT r.event_id, r.request_id, r.event_time, r.operation, r.error_code, r.user_arn, r.issuer_arn, r.source_identity, r.secret_arn, r.resource_arn, r.conflict FROM _unique_request_id r LEFT ANTI JOIN (SELECT request_id FROM _unique_request_id WHERE request_id IS NOT NULL GROUP BY request_id HAVING count(*) > 1) t ON r.request_id = t.request_id
-- winners
        WITH copies AS (SELECT r.* FROM _unique_request_id r LEFT SEMI JOIN (SELECT request_id FROM _unique_request_id WHERE request_id IS NOT NULL GROUP BY request_id HAVING count(*) > 1) t ON r.request_id = t.request_id),
        said AS (SELECT request_id, CASE WHEN count(DISTINCT struct(event_id, event_time, operation, error_code, user_arn, issuer_arn, source_identity, secret_arn, resource_arn)) > 1 THEN concat(CAST(count(DISTINCT struct(event_id, event_time, operation, error_code, user_arn, issuer_arn, source_identity, secret_arn, resource_arn)) AS STRING), ' different events share request_id ', request_id, ' (', concat_ws(', ', CASE WHEN count(DISTINCT struct(event_id)) > 1 THEN 'event_id' END, CASE WHEN count(DISTINCT struct(event_time)) > 1 THEN 'event_time' END, CASE WHEN count(DISTINCT struct(operation)) > 1 THEN 'operation' END, CASE WHEN count(DISTINCT struct(error_code)) > 1 THEN 'error_code' END, CASE WHEN count(DISTINCT struct(user_arn)) > 1 THEN 'user_arn' END, CASE WHEN count(DISTINCT struct(issuer_arn)) > 1 THEN 'issuer_arn' END, CASE WHEN count(DISTINCT struct(source_identity)) > 1 THEN 'source_identity' END, CASE WHEN count(DISTINCT struct(secret_arn)) > 1 THEN 'secret_arn' END, CASE WHEN count(DISTINCT struct(resource_arn)) > 1 THEN 'resource_arn' END), ' differ)') END AS said FROM copies GROUP BY request_id),
        ranked AS (
            SELECT *, row_number() OVER (PARTITION BY request_id ORDER BY event_id ASC NULLS LAST, event_time ASC NULLS LAST, operation ASC NULLS LAST, error_code ASC NULLS LAST, user_arn ASC NULLS LAST, issuer_arn ASC NULLS LAST, source_identity ASC NULLS LAST, secret_arn ASC NULLS LAST, resource_arn ASC NULLS LAST, conflict ASC NULLS LAST) AS _rank
            FROM copies
        )
        SELECT ranked.event_id, ranked.request_id, ranked.event_time, ranked.operation, ranked.error_code, ranked.user_arn, ranked.issuer_arn, ranked.source_identity, ranked.secret_arn, ranked.resource_arn,
            nullif(concat_ws('; ', ranked.conflict, said.said), '') AS conflict
        FROM ranked JOIN said ON ranked.request_id = said.request_id
        WHERE _rank = 1
