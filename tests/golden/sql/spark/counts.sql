(
        SELECT
            count(*) FILTER (WHERE source = 'both') AS joined,
            count(*) FILTER (WHERE source <> 'metering') AS unique_events,
            count(*) FILTER (WHERE source <> 'cloudtrail') AS unique_records,
            count(*) FILTER (WHERE NOT in_month) AS out_of_month,
            count(*) FILTER (WHERE in_month AND NOT (operation IN ('BatchExecuteStatement', 'BeginTransaction', 'CommitTransaction', 'ExecuteSql', 'ExecuteStatement', 'RollbackTransaction'))) AS skipped_operations,
            count(*) FILTER (WHERE in_month AND operation IN ('BatchExecuteStatement', 'BeginTransaction', 'CommitTransaction', 'ExecuteSql', 'ExecuteStatement', 'RollbackTransaction') AND error_code IS NOT NULL)
                AS errored_calls,
            count(*) FILTER (WHERE in_month AND conflict IS NOT NULL) AS conflicting_duplicates,
            count(*) FILTER (WHERE in_month AND source = 'both' AND error_seen_by IN ('cloudtrail', 'metering')) AS error_disagreements,
            count(*) FILTER (WHERE in_month) AS in_month
        FROM calls
    )
