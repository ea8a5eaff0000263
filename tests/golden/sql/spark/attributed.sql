(
        SELECT request_id, event_id, call_time, operation, error_code, error_seen_by, request_bytes, response_bytes, source, conflict, resource_arn,
            CASE WHEN source = 'metering' THEN record_tenant_id
                 ELSE coalesce(record_tenant_id, coalesce(nullif(regexp_extract(user_arn, '(?d)assumed-role/tenant-(?<tenant>[a-z0-9-]+)/', 1), ''), nullif(regexp_extract(issuer_arn, '(?d)assumed-role/tenant-(?<tenant>[a-z0-9-]+)/', 1), ''), nullif(regexp_extract(source_identity, '(?d)assumed-role/tenant-(?<tenant>[a-z0-9-]+)/', 1), '')), '__unattributed__') END AS tenant_id,
            CASE WHEN source = 'metering' THEN 'metering_record'
                 WHEN record_tenant_id IS NOT NULL THEN 'metering_record' WHEN coalesce(nullif(regexp_extract(user_arn, '(?d)assumed-role/tenant-(?<tenant>[a-z0-9-]+)/', 1), ''), nullif(regexp_extract(issuer_arn, '(?d)assumed-role/tenant-(?<tenant>[a-z0-9-]+)/', 1), ''), nullif(regexp_extract(source_identity, '(?d)assumed-role/tenant-(?<tenant>[a-z0-9-]+)/', 1), '')) IS NOT NULL THEN 'principal' ELSE 'unattributed' END AS attribution
        FROM _matched
    )
