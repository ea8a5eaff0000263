CREATE TABLE IF NOT EXISTS meter_meta (
            key VARCHAR PRIMARY KEY,
            value VARCHAR NOT NULL
        );
CREATE TABLE IF NOT EXISTS bill_runs (
            run_id VARCHAR NOT NULL,
            month VARCHAR NOT NULL,
            status VARCHAR NOT NULL,
            started_at TIMESTAMPTZ NOT NULL,
            finished_at TIMESTAMPTZ NOT NULL,
            config_sha256 VARCHAR NOT NULL,
            inputs_sha256 VARCHAR NOT NULL,
            total_calls BIGINT NOT NULL,
            total_units BIGINT NOT NULL,
            account_cost DECIMAL(38, 12) NOT NULL,
            amount DECIMAL(18, 2) NOT NULL,
            currency VARCHAR NOT NULL,
            files_read BIGINT NOT NULL, records_seen BIGINT NOT NULL, calls_billed BIGINT NOT NULL, skipped_non_data_api BIGINT NOT NULL, skipped_operations BIGINT NOT NULL, duplicates BIGINT NOT NULL, errored_calls BIGINT NOT NULL, out_of_month BIGINT NOT NULL, quarantined BIGINT NOT NULL, joined BIGINT NOT NULL, aws_retries BIGINT NOT NULL,
            unregistered_tenants VARCHAR[] NOT NULL,
            meter_version VARCHAR NOT NULL
        );
CREATE TABLE IF NOT EXISTS calls (
            month VARCHAR NOT NULL,
            run_id VARCHAR NOT NULL,
            request_id VARCHAR,
            event_id VARCHAR,
            event_time TIMESTAMPTZ NOT NULL,
            tenant_id VARCHAR NOT NULL,
            operation VARCHAR NOT NULL,
            request_bytes BIGINT,
            response_bytes BIGINT,
            units BIGINT NOT NULL,
            attribution VARCHAR NOT NULL,
            source VARCHAR NOT NULL,
            size_estimated BOOLEAN NOT NULL
        );
CREATE TABLE IF NOT EXISTS tenant_month (
            month VARCHAR NOT NULL,
            tenant_id VARCHAR NOT NULL,
            tenant_name VARCHAR NOT NULL,
            cost_center VARCHAR NOT NULL,
            calls BIGINT NOT NULL,
            units BIGINT NOT NULL,
            request_bytes BIGINT NOT NULL,
            response_bytes BIGINT NOT NULL,
            cost_exact DECIMAL(38, 12) NOT NULL,
            amount DECIMAL(18, 2) NOT NULL,
            currency VARCHAR NOT NULL,
            share DECIMAL(18, 12) NOT NULL,
            peak_rps BIGINT NOT NULL,
            run_id VARCHAR NOT NULL,
            size_estimated_calls BIGINT NOT NULL,
            registered BOOLEAN NOT NULL,
            PRIMARY KEY (month, tenant_id)
        );
CREATE TABLE IF NOT EXISTS tenant_day (
            month VARCHAR NOT NULL,
            day DATE NOT NULL,
            tenant_id VARCHAR NOT NULL,
            calls BIGINT NOT NULL,
            units BIGINT NOT NULL,
            cost_exact DECIMAL(38, 12) NOT NULL,
            PRIMARY KEY (month, day, tenant_id)
        );
CREATE TABLE IF NOT EXISTS reconciliation (
            month VARCHAR NOT NULL,
            day DATE NOT NULL,
            matched BIGINT NOT NULL,
            cloudtrail_only BIGINT NOT NULL,
            metering_only BIGINT NOT NULL,
            PRIMARY KEY (month, day)
        );
CREATE TABLE IF NOT EXISTS quarantine (
            run_id VARCHAR NOT NULL,
            month VARCHAR NOT NULL,
            source_uri VARCHAR NOT NULL,
            locator VARCHAR NOT NULL,
            reason VARCHAR NOT NULL
        );
