-- table _touched_events
(SELECT DISTINCT event_id FROM events_new WHERE event_id IS NOT NULL )
-- table _touched_requests
(FROM (SELECT DISTINCT request_id FROM events_new WHERE request_id IS NOT NULL ) UNION FROM (SELECT DISTINCT request_id FROM records_new WHERE request_id IS NOT NULL ))
-- table _old_events_touched
(SELECT * FROM events_old WHERE event_id IN (FROM _touched_events) OR request_id IN (FROM _touched_requests))
-- insert into _touched_events
(SELECT DISTINCT event_id FROM _old_events_touched WHERE event_id IS NOT NULL AND event_id NOT IN (FROM _touched_events))
-- insert into _touched_requests
(SELECT DISTINCT request_id FROM _old_events_touched WHERE request_id IS NOT NULL AND request_id NOT IN (FROM _touched_requests))
-- table _events_again
(FROM _old_events_touched UNION ALL BY NAME FROM events_new)
-- table _old_records_touched
(SELECT * FROM records_old WHERE request_id IN (FROM _touched_requests))
-- table _records_again
(FROM _old_records_touched UNION ALL BY NAME FROM records_new)
-- table _joined_again
(
        SELECT * EXCLUDE (record_tenant_id, user_arn, issuer_arn, source_identity, secret_arn),
            CASE WHEN source = 'metering' THEN record_tenant_id
                 ELSE coalesce(record_tenant_id, coalesce(nullif(regexp_extract(user_arn, 'assumed-role/tenant-(?P<tenant>[a-z0-9-]+)/', 1), ''), nullif(regexp_extract(issuer_arn, 'assumed-role/tenant-(?P<tenant>[a-z0-9-]+)/', 1), ''), nullif(regexp_extract(source_identity, 'assumed-role/tenant-(?P<tenant>[a-z0-9-]+)/', 1), '')), '__unattributed__') END AS tenant_id,
            CASE WHEN source = 'metering' THEN 'metering_record'
                 WHEN record_tenant_id IS NOT NULL THEN 'metering_record' WHEN coalesce(nullif(regexp_extract(user_arn, 'assumed-role/tenant-(?P<tenant>[a-z0-9-]+)/', 1), ''), nullif(regexp_extract(issuer_arn, 'assumed-role/tenant-(?P<tenant>[a-z0-9-]+)/', 1), ''), nullif(regexp_extract(source_identity, 'assumed-role/tenant-(?P<tenant>[a-z0-9-]+)/', 1), '')) IS NOT NULL THEN 'principal' ELSE 'unattributed' END AS attribution
        FROM (
        WITH e AS (
        WITH twice_e AS MATERIALIZED (SELECT hash(event_id) AS h FROM (SELECT event_id, request_id, event_time, operation, error_code, user_arn, issuer_arn, source_identity, secret_arn, resource_arn, NULL::VARCHAR AS conflict FROM _events_again) WHERE event_id IS NOT NULL GROUP BY h HAVING count(*) > 1),
        twice_r AS MATERIALIZED (SELECT hash(request_id) AS h FROM (SELECT event_id, request_id, event_time, operation, error_code, user_arn, issuer_arn, source_identity, secret_arn, resource_arn, NULL::VARCHAR AS conflict FROM _events_again) WHERE request_id IS NOT NULL GROUP BY h HAVING count(*) > 1),
        shared AS MATERIALIZED (SELECT * FROM (SELECT event_id, request_id, event_time, operation, error_code, user_arn, issuer_arn, source_identity, secret_arn, resource_arn, NULL::VARCHAR AS conflict FROM _events_again) WHERE ((event_id IS NOT NULL AND hash(event_id) IN (FROM twice_e)) OR (request_id IS NOT NULL AND hash(request_id) IN (FROM twice_r))))
        SELECT * FROM (SELECT event_id, request_id, event_time, operation, error_code, user_arn, issuer_arn, source_identity, secret_arn, resource_arn, NULL::VARCHAR AS conflict FROM _events_again) WHERE NOT ((event_id IS NOT NULL AND hash(event_id) IN (FROM twice_e)) OR (request_id IS NOT NULL AND hash(request_id) IN (FROM twice_r)))
        UNION ALL BY NAME
        SELECT * FROM (
        WITH twice AS MATERIALIZED (SELECT hash(request_id) AS h FROM (
        WITH twice AS MATERIALIZED (SELECT hash(event_id) AS h FROM shared WHERE event_id IS NOT NULL GROUP BY h HAVING count(*) > 1)
        SELECT * FROM shared WHERE NOT (event_id IS NOT NULL AND hash(event_id) IN (FROM twice))
        UNION ALL BY NAME
        SELECT event_id, smallest.request_id AS request_id, smallest.event_time AS event_time, smallest.operation AS operation, smallest.error_code AS error_code, smallest.user_arn AS user_arn, smallest.issuer_arn AS issuer_arn, smallest.source_identity AS source_identity, smallest.secret_arn AS secret_arn, smallest.resource_arn AS resource_arn,
            nullif(concat_ws('; ', smallest.conflict, said), '') AS conflict
        FROM (
            SELECT event_id, min(struct_pack(request_id, event_time, operation, error_code, user_arn, issuer_arn, source_identity, secret_arn, resource_arn, conflict)) AS smallest,
                CASE WHEN count(DISTINCT struct_pack(request_id, event_time, operation, error_code, user_arn, issuer_arn, source_identity, secret_arn, resource_arn)) > 1 THEN format('{} different copies share event_id {} ({} differ)', count(DISTINCT struct_pack(request_id, event_time, operation, error_code, user_arn, issuer_arn, source_identity, secret_arn, resource_arn)), event_id, concat_ws(', ', CASE WHEN count(DISTINCT struct_pack(request_id)) > 1 THEN 'request_id' END, CASE WHEN count(DISTINCT struct_pack(event_time)) > 1 THEN 'event_time' END, CASE WHEN count(DISTINCT struct_pack(operation)) > 1 THEN 'operation' END, CASE WHEN count(DISTINCT struct_pack(error_code)) > 1 THEN 'error_code' END, CASE WHEN count(DISTINCT struct_pack(user_arn)) > 1 THEN 'user_arn' END, CASE WHEN count(DISTINCT struct_pack(issuer_arn)) > 1 THEN 'issuer_arn' END, CASE WHEN count(DISTINCT struct_pack(source_identity)) > 1 THEN 'source_identity' END, CASE WHEN count(DISTINCT struct_pack(secret_arn)) > 1 THEN 'secret_arn' END, CASE WHEN count(DISTINCT struct_pack(resource_arn)) > 1 THEN 'resource_arn' END)) END AS said
            FROM shared WHERE (event_id IS NOT NULL AND hash(event_id) IN (FROM twice)) GROUP BY event_id
        )
    ) WHERE request_id IS NOT NULL GROUP BY h HAVING count(*) > 1)
        SELECT * FROM (
        WITH twice AS MATERIALIZED (SELECT hash(event_id) AS h FROM shared WHERE event_id IS NOT NULL GROUP BY h HAVING count(*) > 1)
        SELECT * FROM shared WHERE NOT (event_id IS NOT NULL AND hash(event_id) IN (FROM twice))
        UNION ALL BY NAME
        SELECT event_id, smallest.request_id AS request_id, smallest.event_time AS event_time, smallest.operation AS operation, smallest.error_code AS error_code, smallest.user_arn AS user_arn, smallest.issuer_arn AS issuer_arn, smallest.source_identity AS source_identity, smallest.secret_arn AS secret_arn, smallest.resource_arn AS resource_arn,
            nullif(concat_ws('; ', smallest.conflict, said), '') AS conflict
        FROM (
            SELECT event_id, min(struct_pack(request_id, event_time, operation, error_code, user_arn, issuer_arn, source_identity, secret_arn, resource_arn, conflict)) AS smallest,
                CASE WHEN count(DISTINCT struct_pack(request_id, event_time, operation, error_code, user_arn, issuer_arn, source_identity, secret_arn, resource_arn)) > 1 THEN format('{} different copies share event_id {} ({} differ)', count(DISTINCT struct_pack(request_id, event_time, operation, error_code, user_arn, issuer_arn, source_identity, secret_arn, resource_arn)), event_id, concat_ws(', ', CASE WHEN count(DISTINCT struct_pack(request_id)) > 1 THEN 'request_id' END, CASE WHEN count(DISTINCT struct_pack(event_time)) > 1 THEN 'event_time' END, CASE WHEN count(DISTINCT struct_pack(operation)) > 1 THEN 'operation' END, CASE WHEN count(DISTINCT struct_pack(error_code)) > 1 THEN 'error_code' END, CASE WHEN count(DISTINCT struct_pack(user_arn)) > 1 THEN 'user_arn' END, CASE WHEN count(DISTINCT struct_pack(issuer_arn)) > 1 THEN 'issuer_arn' END, CASE WHEN count(DISTINCT struct_pack(source_identity)) > 1 THEN 'source_identity' END, CASE WHEN count(DISTINCT struct_pack(secret_arn)) > 1 THEN 'secret_arn' END, CASE WHEN count(DISTINCT struct_pack(resource_arn)) > 1 THEN 'resource_arn' END)) END AS said
            FROM shared WHERE (event_id IS NOT NULL AND hash(event_id) IN (FROM twice)) GROUP BY event_id
        )
    ) WHERE NOT (request_id IS NOT NULL AND hash(request_id) IN (FROM twice))
        UNION ALL BY NAME
        SELECT request_id, smallest.event_id AS event_id, smallest.event_time AS event_time, smallest.operation AS operation, smallest.error_code AS error_code, smallest.user_arn AS user_arn, smallest.issuer_arn AS issuer_arn, smallest.source_identity AS source_identity, smallest.secret_arn AS secret_arn, smallest.resource_arn AS resource_arn,
            nullif(concat_ws('; ', smallest.conflict, said), '') AS conflict
        FROM (
            SELECT request_id, min(struct_pack(event_id, event_time, operation, error_code, user_arn, issuer_arn, source_identity, secret_arn, resource_arn, conflict)) AS smallest,
                CASE WHEN count(DISTINCT struct_pack(event_id, event_time, operation, error_code, user_arn, issuer_arn, source_identity, secret_arn, resource_arn)) > 1 THEN format('{} different events share request_id {} ({} differ)', count(DISTINCT struct_pack(event_id, event_time, operation, error_code, user_arn, issuer_arn, source_identity, secret_arn, resource_arn)), request_id, concat_ws(', ', CASE WHEN count(DISTINCT struct_pack(event_id)) > 1 THEN 'event_id' END, CASE WHEN count(DISTINCT struct_pack(event_time)) > 1 THEN 'event_time' END, CASE WHEN count(DISTINCT struct_pack(operation)) > 1 THEN 'operation' END, CASE WHEN count(DISTINCT struct_pack(error_code)) > 1 THEN 'error_code' END, CASE WHEN count(DISTINCT struct_pack(user_arn)) > 1 THEN 'user_arn' END, CASE WHEN count(DISTINCT struct_pack(issuer_arn)) > 1 THEN 'issuer_arn' END, CASE WHEN count(DISTINCT struct_pack(source_identity)) > 1 THEN 'source_identity' END, CASE WHEN count(DISTINCT struct_pack(secret_arn)) > 1 THEN 'secret_arn' END, CASE WHEN count(DISTINCT struct_pack(resource_arn)) > 1 THEN 'resource_arn' END)) END AS said
            FROM (
        WITH twice AS MATERIALIZED (SELECT hash(event_id) AS h FROM shared WHERE event_id IS NOT NULL GROUP BY h HAVING count(*) > 1)
        SELECT * FROM shared WHERE NOT (event_id IS NOT NULL AND hash(event_id) IN (FROM twice))
        UNION ALL BY NAME
        SELECT event_id, smallest.request_id AS request_id, smallest.event_time AS event_time, smallest.operation AS operation, smallest.error_code AS error_code, smallest.user_arn AS user_arn, smallest.issuer_arn AS issuer_arn, smallest.source_identity AS source_identity, smallest.secret_arn AS secret_arn, smallest.resource_arn AS resource_arn,
            nullif(concat_ws('; ', smallest.conflict, said), '') AS conflict
        FROM (
            SELECT event_id, min(struct_pack(request_id, event_time, operation, error_code, user_arn, issuer_arn, source_identity, secret_arn, resource_arn, conflict)) AS smallest,
                CASE WHEN count(DISTINCT struct_pack(request_id, event_time, operation, error_code, user_arn, issuer_arn, source_identity, secret_arn, resource_arn)) > 1 THEN format('{} different copies share event_id {} ({} differ)', count(DISTINCT struct_pack(request_id, event_time, operation, error_code, user_arn, issuer_arn, source_identity, secret_arn, resource_arn)), event_id, concat_ws(', ', CASE WHEN count(DISTINCT struct_pack(request_id)) > 1 THEN 'request_id' END, CASE WHEN count(DISTINCT struct_pack(event_time)) > 1 THEN 'event_time' END, CASE WHEN count(DISTINCT struct_pack(operation)) > 1 THEN 'operation' END, CASE WHEN count(DISTINCT struct_pack(error_code)) > 1 THEN 'error_code' END, CASE WHEN count(DISTINCT struct_pack(user_arn)) > 1 THEN 'user_arn' END, CASE WHEN count(DISTINCT struct_pack(issuer_arn)) > 1 THEN 'issuer_arn' END, CASE WHEN count(DISTINCT struct_pack(source_identity)) > 1 THEN 'source_identity' END, CASE WHEN count(DISTINCT struct_pack(secret_arn)) > 1 THEN 'secret_arn' END, CASE WHEN count(DISTINCT struct_pack(resource_arn)) > 1 THEN 'resource_arn' END)) END AS said
            FROM shared WHERE (event_id IS NOT NULL AND hash(event_id) IN (FROM twice)) GROUP BY event_id
        )
    ) WHERE (request_id IS NOT NULL AND hash(request_id) IN (FROM twice)) GROUP BY request_id
        )
    )
    ),
        r AS (
        WITH twice AS MATERIALIZED (SELECT hash(request_id) AS h FROM (SELECT request_id, tenant_id, ts, operation, request_bytes, response_bytes, resource_arn, error_code, written_us, NULL::VARCHAR AS conflict FROM _records_again) WHERE request_id IS NOT NULL GROUP BY h HAVING count(*) > 1)
        SELECT * EXCLUDE (written_us) FROM (SELECT request_id, tenant_id, ts, operation, request_bytes, response_bytes, resource_arn, error_code, written_us, NULL::VARCHAR AS conflict FROM _records_again) WHERE NOT (request_id IS NOT NULL AND hash(request_id) IN (FROM twice))
        UNION ALL BY NAME
        SELECT request_id, smallest.tenant_id AS tenant_id, smallest.ts AS ts, smallest.operation AS operation, smallest.request_bytes AS request_bytes, smallest.response_bytes AS response_bytes, smallest.resource_arn AS resource_arn, smallest.error_code AS error_code,
            nullif(concat_ws('; ', smallest.conflict, said), '') AS conflict
        FROM (
            SELECT request_id, min(struct_pack(tenant_id, ts, operation, request_bytes, response_bytes, resource_arn, error_code, conflict)) AS smallest,
                CASE WHEN count(DISTINCT struct_pack(tenant_id, ts, operation, request_bytes, response_bytes, resource_arn, error_code)) > 1 THEN format('{} different records share request_id {} ({} differ)', count(DISTINCT struct_pack(tenant_id, ts, operation, request_bytes, response_bytes, resource_arn, error_code)), request_id, concat_ws(', ', CASE WHEN count(DISTINCT struct_pack(tenant_id)) > 1 THEN 'tenant_id' END, CASE WHEN count(DISTINCT struct_pack(ts)) > 1 THEN 'ts' END, CASE WHEN count(DISTINCT struct_pack(operation)) > 1 THEN 'operation' END, CASE WHEN count(DISTINCT struct_pack(request_bytes)) > 1 THEN 'request_bytes' END, CASE WHEN count(DISTINCT struct_pack(response_bytes)) > 1 THEN 'response_bytes' END, CASE WHEN count(DISTINCT struct_pack(resource_arn)) > 1 THEN 'resource_arn' END, CASE WHEN count(DISTINCT struct_pack(error_code)) > 1 THEN 'error_code' END)) END AS said
            FROM (SELECT * FROM (SELECT request_id, tenant_id, ts, operation, request_bytes, response_bytes, resource_arn, error_code, written_us, NULL::VARCHAR AS conflict FROM _records_again) WHERE (request_id IS NOT NULL AND hash(request_id) IN (FROM twice)) QUALIFY written_us IS NOT DISTINCT FROM max(written_us) OVER (PARTITION BY request_id)) GROUP BY request_id
        )
    )
        SELECT
            coalesce(e.request_id, r.request_id) AS request_id,
            e.event_id,
            coalesce(e.event_time, r.ts) AS call_time,
            coalesce(e.operation, r.operation) AS operation,
            coalesce(e.error_code, r.error_code) AS error_code,
            CASE WHEN e.error_code IS NOT NULL AND r.error_code IS NOT NULL THEN 'both'
                 WHEN e.error_code IS NOT NULL THEN 'cloudtrail'
                 WHEN r.error_code IS NOT NULL THEN 'metering' END AS error_seen_by,
            e.user_arn, e.issuer_arn, e.source_identity, e.secret_arn,
            coalesce(e.resource_arn, r.resource_arn) AS resource_arn,
            r.tenant_id AS record_tenant_id,
            r.request_bytes, r.response_bytes,
            CASE WHEN e.event_id IS NOT NULL AND r.request_id IS NOT NULL THEN 'both'
                 WHEN e.event_id IS NOT NULL THEN 'cloudtrail'
                 ELSE 'metering' END AS source,
            nullif(concat_ws('; ', 'cloudtrail: ' || e.conflict, 'metering: ' || r.conflict), '')
                AS conflict
        FROM e FULL OUTER JOIN r ON e.request_id = r.request_id
    )
    )
-- table _replacing
(SELECT 'e:' || event_id AS key FROM _touched_events UNION ALL SELECT 'r:' || request_id FROM _touched_requests)
