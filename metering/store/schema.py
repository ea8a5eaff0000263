"""The warehouse tables (SPEC section 6) and their schema version.

Analysts rely on these names: add columns freely, never rename. Money is DECIMAL, never
DOUBLE. Every table carries ``month`` so re-billing a month replaces exactly its rows.
"""

from __future__ import annotations

SCHEMA_VERSION = 9

# A rounded amount: to its currency's minor unit, 0 to 4 decimals in ISO 4217 (JPY 0, USD 2,
# KWD 3, CLF 4: rate.money.MOST_PLACES), with 16 digits before the point.
AMOUNT = "DECIMAL(20, 4)"

# Counters added since the first schema: new warehouses have them last, as migrated ones do.
ADDED_COUNTERS = (
    "unlisted_files",
    "conflicting_duplicates",
    "error_disagreements",
    "withheld_units",
    "deleted_records",
)
COUNTER_COLUMNS = (
    "files_read",
    "records_seen",
    "calls_billed",
    "skipped_non_data_api",
    "skipped_operations",
    "duplicates",
    "errored_calls",
    "out_of_month",
    "quarantined",
    "joined",
    "aws_retries",
    *ADDED_COUNTERS,
)

# What the month's own evidence cost, estimated (metering.overhead): CloudTrail data events
# and DynamoDB writes counted, and their exact cost at [overhead]'s prices. NULL: that
# source was not configured (or the run predates schema 5).
OVERHEAD_COLUMNS = {
    "overhead_data_events": "BIGINT",
    "overhead_writes": "BIGINT",
    "overhead_cloudtrail_cost": "DECIMAL(38, 12)",
    "overhead_dynamodb_cost": "DECIMAL(38, 12)",
}

TABLES = {
    "meter_meta": """
        CREATE TABLE IF NOT EXISTS meter_meta (
            key VARCHAR PRIMARY KEY,
            value VARCHAR NOT NULL
        )""",
    "bill_runs": f"""
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
            amount {AMOUNT} NOT NULL,
            currency VARCHAR NOT NULL,
            {", ".join(f"{c} BIGINT NOT NULL" for c in COUNTER_COLUMNS[: -len(ADDED_COUNTERS)])},
            unregistered_tenants VARCHAR[] NOT NULL,
            meter_version VARCHAR NOT NULL,
            run_seq BIGINT,
            executed_by VARCHAR,
            {", ".join(f"{c} BIGINT NOT NULL DEFAULT 0" for c in ADDED_COUNTERS)},
            {", ".join(f"{c} {t}" for c, t in OVERHEAD_COLUMNS.items())}
        )""",
    # Every call the month's bill joined (its edges in the months either side, errored and
    # unbilled ones too), rated, without the run_id: the next bill of the month starts from
    # them, and a re-bill that changes a few calls rewrites only those. `calls` (below) shows
    # the billed ones with the month's run_id from month_runs.
    "call_rows": """
        CREATE TABLE IF NOT EXISTS call_rows (
            month VARCHAR NOT NULL,
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
            size_estimated BOOLEAN NOT NULL,
            error_code VARCHAR,
            conflict VARCHAR,
            in_month BOOLEAN NOT NULL DEFAULT true,
            billed BOOLEAN NOT NULL DEFAULT true,
            error_seen_by VARCHAR,
            resource_arn VARCHAR
        )""",
    # The run whose calls a month holds, and the recipe they were joined and rated by (a
    # fingerprint of the config and meter's SQL: the next bill reuses them only under the
    # same recipe).
    "month_runs": """
        CREATE TABLE IF NOT EXISTS month_runs (
            month VARCHAR NOT NULL PRIMARY KEY,
            run_id VARCHAR NOT NULL,
            recipe VARCHAR
        )""",
    # The spooled input files the month's calls were joined from, as they were: a later
    # bill that only adds files joins again only the calls those touch.
    "month_inputs": """
        CREATE TABLE IF NOT EXISTS month_inputs (
            month VARCHAR NOT NULL,
            source VARCHAR NOT NULL,
            path VARCHAR NOT NULL,
            size BIGINT NOT NULL,
            mtime_ns BIGINT NOT NULL
        )""",
    "tenant_month": f"""
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
            amount {AMOUNT} NOT NULL,
            currency VARCHAR NOT NULL,
            share DECIMAL(18, 12) NOT NULL,
            peak_rps BIGINT NOT NULL,
            run_id VARCHAR NOT NULL,
            size_estimated_calls BIGINT NOT NULL,
            registered BOOLEAN NOT NULL,
            PRIMARY KEY (month, tenant_id)
        )""",
    "tenant_day": """
        CREATE TABLE IF NOT EXISTS tenant_day (
            month VARCHAR NOT NULL,
            day DATE NOT NULL,
            tenant_id VARCHAR NOT NULL,
            calls BIGINT NOT NULL,
            units BIGINT NOT NULL,
            cost_exact DECIMAL(38, 12) NOT NULL,
            PRIMARY KEY (month, day, tenant_id)
        )""",
    "reconciliation": """
        CREATE TABLE IF NOT EXISTS reconciliation (
            month VARCHAR NOT NULL,
            day DATE NOT NULL,
            matched BIGINT NOT NULL,
            cloudtrail_only BIGINT NOT NULL,
            metering_only BIGINT NOT NULL,
            error_disagreements BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (month, day)
        )""",
    "quarantine": """
        CREATE TABLE IF NOT EXISTS quarantine (
            run_id VARCHAR NOT NULL,
            month VARCHAR NOT NULL,
            source_uri VARCHAR NOT NULL,
            locator VARCHAR NOT NULL,
            reason VARCHAR NOT NULL
        )""",
}

# SPEC 6's `calls` table, as a view of the billed calls: the same columns in the same order,
# and every row carries its month's run_id.
CALLS_VIEW = """
    CREATE OR REPLACE VIEW calls AS
    SELECT c.month, m.run_id, c.request_id, c.event_id, c.event_time, c.tenant_id,
           c.operation, c.request_bytes, c.response_bytes, c.units, c.attribution, c.source,
           c.size_estimated
    FROM call_rows c JOIN month_runs m ON m.month = c.month
    WHERE c.billed"""
# Calls whose copies disagree (two records of one request_id with different tenants, say):
# billed once, from the copy the dedup rule keeps; listed with how they differ.
CONFLICTS_VIEW = """
    CREATE OR REPLACE VIEW conflicts AS
    SELECT m.run_id, c.month, c.request_id, c.event_id, c.conflict AS reason
    FROM call_rows c JOIN month_runs m ON m.month = c.month
    WHERE c.in_month AND c.conflict IS NOT NULL"""
VIEWS = (CALLS_VIEW, CONFLICTS_VIEW)

# The months whose calls a Spark bill wrote as Parquet (partitioned by day) outside the
# warehouse: a month of 10^10 calls does not belong in meter.duckdb. `calls` and `conflicts`
# read them there (``views``).
CALL_FILES = """
        CREATE TABLE IF NOT EXISTS month_call_files (
            month VARCHAR NOT NULL PRIMARY KEY,
            uri VARCHAR NOT NULL
        )"""

# call_rows' columns, as a month's Parquet of calls holds them (schemas.RATED).
_PARQUET_COLUMNS = (
    "request_id, event_id, event_time::TIMESTAMPTZ AS event_time, tenant_id, operation, "
    "request_bytes, response_bytes, units, attribution, source, size_estimated, error_code, "
    "conflict, in_month, billed, error_seen_by, resource_arn"
)


def views(call_files: list[tuple[str, str]]) -> tuple[str, ...]:
    """The `calls` and `conflicts` views over call_rows and the months' Parquet of calls
    (``call_files``: month, folder; the views of a warehouse without them: ``VIEWS``)."""
    if not call_files:
        return VIEWS
    from metering.sql import literal

    outside = " UNION ALL ".join(
        f"SELECT {literal(month)} AS month, {_PARQUET_COLUMNS} FROM read_parquet("
        f"{literal(uri.rstrip('/') + '/**/*.parquet')}, hive_partitioning = false)"
        for month, uri in call_files
    )
    rows = f"(FROM call_rows UNION ALL BY NAME {outside})"
    return (
        CALLS_VIEW.replace("FROM call_rows c", f"FROM {rows} c"),
        CONFLICTS_VIEW.replace("FROM call_rows c", f"FROM {rows} c"),
    )


TABLES |= {
    "month_call_files": CALL_FILES,
    # Every execution's tenant lines, kept after the month is re-billed: `meter diff`.
    "run_lines": f"""
        CREATE TABLE IF NOT EXISTS run_lines (
            run_seq BIGINT NOT NULL,
            month VARCHAR NOT NULL,
            tenant_id VARCHAR NOT NULL,
            calls BIGINT NOT NULL,
            units BIGINT NOT NULL,
            amount {AMOUNT} NOT NULL,
            PRIMARY KEY (run_seq, tenant_id)
        )""",
    # Close and reopen events; a month's state is its newest event.
    "month_events": """
        CREATE TABLE IF NOT EXISTS month_events (
            month VARCHAR NOT NULL,
            event VARCHAR NOT NULL,
            changed_at TIMESTAMPTZ NOT NULL,
            changed_by VARCHAR NOT NULL,
            reason VARCHAR NOT NULL,
            run_id VARCHAR
        )""",
}

TABLES |= {
    # The month's tie-out with the AWS invoice (SPEC 8, [invoice]): a row per region of the
    # invoice's Data API lines and the month's own (region 'all'), which alone holds meter's
    # figures, the variances, whether the requests are within tolerance, the tax and the
    # total the tenant lines sum to.
    "invoice": f"""
        CREATE TABLE IF NOT EXISTS invoice (
            month VARCHAR NOT NULL,
            region VARCHAR NOT NULL,
            invoiced_requests DECIMAL(38, 6) NOT NULL,
            meter_units BIGINT,
            request_variance DECIMAL(38, 6),
            request_variance_pct DECIMAL(38, 4),
            invoiced_net_cost {AMOUNT} NOT NULL,
            modelled_cost {AMOUNT},
            cost_variance {AMOUNT},
            cost_variance_pct DECIMAL(38, 4),
            usage_cost DECIMAL(38, 12) NOT NULL,
            savings_plan_negation DECIMAL(38, 12) NOT NULL,
            credits DECIMAL(38, 12) NOT NULL,
            refunds DECIMAL(38, 12) NOT NULL,
            discounts DECIMAL(38, 12) NOT NULL,
            other_charges DECIMAL(38, 12) NOT NULL,
            tax DECIMAL(38, 12),
            currency VARCHAR NOT NULL,
            lines BIGINT NOT NULL,
            allocate VARCHAR NOT NULL,
            allocated_total {AMOUNT},
            tolerance DECIMAL(18, 6) NOT NULL,
            within_tolerance BOOLEAN,
            run_id VARCHAR NOT NULL,
            PRIMARY KEY (month, region)
        )""",
    # Each tenant's charges of a month (SPEC 8): the Data API's own line (charge
    # 'data_api', its amount tenant_month's) and each [[shared_costs]] entry's share, split by
    # the driver; a tenant's charges sum to its total, the month's to what was allocated.
    "tenant_charges": f"""
        CREATE TABLE IF NOT EXISTS tenant_charges (
            month VARCHAR NOT NULL,
            tenant_id VARCHAR NOT NULL,
            charge VARCHAR NOT NULL,
            amount {AMOUNT} NOT NULL,
            driver VARCHAR NOT NULL,
            share DECIMAL(18, 12) NOT NULL,
            run_id VARCHAR NOT NULL,
            cost_exact DECIMAL(38, 12) NOT NULL,
            quantity BIGINT NOT NULL,
            currency VARCHAR NOT NULL,
            clusters VARCHAR NOT NULL,
            PRIMARY KEY (month, tenant_id, charge)
        )""",
    # Each [[shared_costs]] entry of a month: what the invoice's lines of it cost, what was
    # split over the tenants and what could not be (lines of a cluster without calls, lines
    # that name no resource), never spread silently.
    "shared_costs": f"""
        CREATE TABLE IF NOT EXISTS shared_costs (
            month VARCHAR NOT NULL,
            charge VARCHAR NOT NULL,
            driver VARCHAR NOT NULL,
            lines BIGINT NOT NULL,
            invoiced_cost DECIMAL(38, 12) NOT NULL,
            allocated {AMOUNT} NOT NULL,
            unallocated {AMOUNT} NOT NULL,
            unallocated_lines BIGINT NOT NULL,
            unallocated_resources VARCHAR NOT NULL,
            daily_lines BIGINT NOT NULL,
            currency VARCHAR NOT NULL,
            run_id VARCHAR NOT NULL,
            PRIMARY KEY (month, charge)
        )""",
}

# Every rounded amount of the warehouse (the rest are exact costs, DECIMAL(38, 12)).
AMOUNT_COLUMNS = {
    "bill_runs": ("amount",),
    "tenant_month": ("amount",),
    "run_lines": ("amount",),
    "invoice": ("invoiced_net_cost", "modelled_cost", "cost_variance", "allocated_total"),
    "tenant_charges": ("amount",),
    "shared_costs": ("allocated", "unallocated"),
}

# How to bring an older warehouse up to SCHEMA_VERSION: the statements that take version
# N-1 to N. Version 1 is the first released schema (tests/golden/warehouse_v1.sql).
MIGRATIONS: dict[int, tuple[str, ...]] = {
    2: (
        "ALTER TABLE bill_runs ADD COLUMN run_seq BIGINT",
        "ALTER TABLE bill_runs ADD COLUMN executed_by VARCHAR",
        TABLES["run_lines"],
        TABLES["month_events"],
    ),
    # (A migration spells out the tables and views as they were at its version.)
    3: (
        "CREATE TABLE month_runs (month VARCHAR NOT NULL PRIMARY KEY, run_id VARCHAR NOT NULL)",
        "INSERT INTO month_runs SELECT DISTINCT month, run_id FROM calls",
        "ALTER TABLE calls RENAME TO call_rows",
        "ALTER TABLE call_rows DROP COLUMN run_id",
        CALLS_VIEW.removesuffix("\n    WHERE c.billed"),
    ),
    4: (
        *(
            f"ALTER TABLE bill_runs ADD COLUMN {c} BIGINT NOT NULL DEFAULT 0"
            for c in ("unlisted_files", "conflicting_duplicates")
        ),
        "ALTER TABLE call_rows ADD COLUMN error_code VARCHAR",
        "ALTER TABLE call_rows ADD COLUMN conflict VARCHAR",
        "ALTER TABLE call_rows ADD COLUMN in_month BOOLEAN DEFAULT true",
        "ALTER TABLE call_rows ADD COLUMN billed BOOLEAN DEFAULT true",
        "ALTER TABLE month_runs ADD COLUMN recipe VARCHAR",
        TABLES["month_inputs"],
        *VIEWS,
    ),
    5: (
        "ALTER TABLE bill_runs ADD COLUMN error_disagreements BIGINT NOT NULL DEFAULT 0",
        "ALTER TABLE bill_runs ADD COLUMN withheld_units BIGINT NOT NULL DEFAULT 0",
        # Deletes of incremental DynamoDB exports (TTL expiry), counted, never un-billing.
        "ALTER TABLE bill_runs ADD COLUMN deleted_records BIGINT NOT NULL DEFAULT 0",
        *(f"ALTER TABLE bill_runs ADD COLUMN {c} {t}" for c, t in OVERHEAD_COLUMNS.items()),
        "ALTER TABLE call_rows ADD COLUMN error_seen_by VARCHAR",
        "ALTER TABLE reconciliation ADD COLUMN error_disagreements BIGINT NOT NULL DEFAULT 0",
    ),
    6: (TABLES["invoice"],),
    # Shared costs (SPEC 8): each call's cluster, and the charges split by it.
    7: (
        "ALTER TABLE call_rows ADD COLUMN resource_arn VARCHAR",
        TABLES["tenant_charges"],
        TABLES["shared_costs"],
    ),
    # Amounts to each currency's own minor unit (3 decimals for KWD, 4 for CLF): every
    # rounded amount widened; the values are kept as they were.
    8: tuple(
        f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {AMOUNT}"
        for table, columns in AMOUNT_COLUMNS.items()
        for column in columns
    ),
    9: (CALL_FILES,),
}

# Tables whose rows belong to one month and are replaced when it is billed again (call_rows
# apart: a re-bill may replace only some of its rows).
MONTH_TABLES = (
    "month_runs",
    "month_inputs",
    "tenant_month",
    "tenant_day",
    "reconciliation",
    "quarantine",
    "invoice",
    "tenant_charges",
    "shared_costs",
    "month_call_files",
)
