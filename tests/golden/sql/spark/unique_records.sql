-- passing
SELECT r.request_id, r.tenant_id, r.ts, r.operation, r.request_bytes, r.response_bytes, r.resource_arn, r.error_code, r.conflict FROM _unique_request_id r LEFT ANTI JOIN (SELECT request_id FROM _unique_request_id WHERE request_id IS NOT NULL GROUP BY request_id HAVING count(*) > 1) t ON r.request_id = t.request_id
-- winners
        WITH copies AS (SELECT request_id, tenant_id, ts, operation, request_bytes, response_bytes, resource_arn, error_code, conflict FROM (SELECT *, max(written_us) OVER (PARTITION BY request_id) AS _newest FROM (SELECT r.* FROM _unique_request_id r LEFT SEMI JOIN (SELECT request_id FROM _unique_request_id WHERE request_id IS NOT NULL GROUP BY request_id HAVING count(*) > 1) t ON r.request_id = t.request_id)) WHERE written_us <=> _newest),
        said AS (SELECT request_id, CASE WHEN count(DISTINCT struct(tenant_id, ts, operation, request_bytes, response_bytes, resource_arn, error_code)) > 1 THEN concat(CAST(count(DISTINCT struct(tenant_id, ts, operation, request_bytes, response_bytes, resource_arn, error_code)) AS STRING), ' different records share request_id ', request_id, ' (', concat_ws(', ', CASE WHEN count(DISTINCT struct(tenant_id)) > 1 THEN 'tenant_id' END, CASE WHEN count(DISTINCT struct(ts)) > 1 THEN 'ts' END, CASE WHEN count(DISTINCT struct(operation)) > 1 THEN 'operation' END, CASE WHEN count(DISTINCT struct(request_bytes)) > 1 THEN 'request_bytes' END, CASE WHEN count(DISTINCT struct(response_bytes)) > 1 THEN 'response_bytes' END, CASE WHEN count(DISTINCT struct(resource_arn)) > 1 THEN 'resource_arn' END, CASE WHEN count(DISTINCT struct(error_code)) > 1 THEN 'error_code' END), ' differ)') END AS said FROM copies GROUP BY request_id),
        ranked AS (
            SELECT *, row_number() OVER (PARTITION BY request_id ORDER BY tenant_id ASC NULLS LAST, ts ASC NULLS LAST, operation ASC NULLS LAST, request_bytes ASC NULLS LAST, response_bytes ASC NULLS LAST, resource_arn ASC NULLS LAST, error_code ASC NULLS LAST, conflict ASC NULLS LAST) AS _rank
            FROM copies
        )
        SELECT ranked.request_id, ranked.tenant_id, ranked.ts, ranked.operation, ranked.request_bytes, ranked.response_bytes, ranked.resource_arn, ranked.error_code,
            nullif(concat_ws('; ', ranked.conflict, said.said), '') AS conflict
        FROM ranked JOIN said ON ranked.request_id = said.request_id
        WHERE _rank = 1
