"""``meter publish``: a billed month's per-tenant usage, in the application's PostgreSQL,
behind the same row-level security that keeps its tenants apart.

Tables, in one schema (``meter_usage`` by default), made on first use:

- ``tenant_month`` (month, tenant_id, tenant_name, calls, units, request_bytes,
  response_bytes, amount, currency, share, peak_rps, run_id, provisional, published_at);
- ``tenant_day`` (month, day, tenant_id, calls, units, cost, run_id);
- ``tenant_operation`` (month, tenant_id, operation, calls, units, run_id);
- ``publications`` (month, run_id, provisional, published_at, lines): what was published,
  for meter only (no tenant data, no grant to the application).

The three tenant tables get the DDL of ``meter rls`` (ENABLE and FORCE row-level security,
the ``NULLIF(current_setting('app.tenant_id', true), '')`` policy, no TRUNCATE) for a ``text``
tenant column, and the application's role may only read them: a tenant sees its own rows,
a connection with no tenant set sees none, and the table owner is bound too. So meter
writes each tenant's rows with that tenant set, exactly as the application reads them.

A month is published in one transaction, under an advisory lock (two publishes never
interleave; the second is refused with a message): its rows replace the month's earlier
ones, keyed by the run. Publishing the run already published changes nothing; a month not
closed is marked ``provisional``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from metering.errors import PublishBusyError, PublishError
from metering.rate.money import amount_text
from metering.rls import SETTING, quote_ident, redacted, rls_statements

if TYPE_CHECKING:
    from metering.store.queries import MonthUsage

DEFAULT_SCHEMA = "meter_usage"
TENANT_TABLES = ("tenant_month", "tenant_day", "tenant_operation")

_DDL = {
    "tenant_month": """
        CREATE TABLE IF NOT EXISTS {schema}.tenant_month (
            month text NOT NULL,
            tenant_id text NOT NULL,
            tenant_name text NOT NULL,
            calls bigint NOT NULL,
            units bigint NOT NULL,
            request_bytes bigint NOT NULL,
            response_bytes bigint NOT NULL,
            amount numeric NOT NULL,
            currency text NOT NULL,
            share numeric(18, 12) NOT NULL,
            peak_rps bigint NOT NULL,
            run_id text NOT NULL,
            provisional boolean NOT NULL,
            published_at timestamptz NOT NULL,
            PRIMARY KEY (month, tenant_id)
        )""",
    "tenant_day": """
        CREATE TABLE IF NOT EXISTS {schema}.tenant_day (
            month text NOT NULL,
            day date NOT NULL,
            tenant_id text NOT NULL,
            calls bigint NOT NULL,
            units bigint NOT NULL,
            cost numeric(38, 12) NOT NULL,
            run_id text NOT NULL,
            PRIMARY KEY (month, day, tenant_id)
        )""",
    "tenant_operation": """
        CREATE TABLE IF NOT EXISTS {schema}.tenant_operation (
            month text NOT NULL,
            tenant_id text NOT NULL,
            operation text NOT NULL,
            calls bigint NOT NULL,
            units bigint NOT NULL,
            run_id text NOT NULL,
            PRIMARY KEY (month, tenant_id, operation)
        )""",
    "publications": """
        CREATE TABLE IF NOT EXISTS {schema}.publications (
            month text PRIMARY KEY,
            run_id text NOT NULL,
            provisional boolean NOT NULL,
            published_at timestamptz NOT NULL,
            lines jsonb NOT NULL
        )""",
}

_COLUMNS = {
    "tenant_month": (
        "month", "tenant_id", "tenant_name", "calls", "units", "request_bytes",
        "response_bytes", "amount", "currency", "share", "peak_rps", "run_id", "provisional",
        "published_at",
    ),
    "tenant_day": ("month", "day", "tenant_id", "calls", "units", "cost", "run_id"),
    "tenant_operation": ("month", "tenant_id", "operation", "calls", "units", "run_id"),
}  # fmt: skip

_SET_TENANT = f"SELECT set_config('{SETTING}', %s, true)"


def lock_key(schema: str) -> str:
    """The text whose ``hashtext`` is the advisory lock a publish to ``schema`` holds."""
    return f"meter publish {schema}"


def usage_sql(schema: str = DEFAULT_SCHEMA, month: bool = True) -> str:
    """What the application runs, with its tenant set, to read its own usage (a Data API
    statement: ``:month`` is a parameter); row-level security keeps out other tenants."""
    where = " WHERE month = :month" if month else ""
    return (
        "SELECT month, tenant_id, tenant_name, calls, units, request_bytes, response_bytes, "
        "amount::text AS amount, currency, peak_rps, run_id, provisional "
        f"FROM {quote_ident(schema)}.tenant_month{where} ORDER BY month"
    )


@dataclass(frozen=True, slots=True)
class Published:
    """What a publish did: ``status`` is ``published`` (first time), ``replaced`` (another
    run of the month was there), ``updated`` (the same run, its provisional mark changed) or
    ``unchanged``."""

    month: str
    run_id: str
    status: str
    provisional: bool
    schema: str
    tenants: int
    previous_run_id: str | None = None
    changed: list[str] = field(default_factory=list)  # tenants whose lines changed


def _amount(amount: Decimal, currency: str) -> Decimal:
    """A line's amount with exactly its currency's decimals (``numeric`` keeps them:
    ``amount::text`` is 9.20 in USD, 920 in JPY, 9.200 in KWD)."""
    return Decimal(amount_text(amount, currency))


def _lines(usage: MonthUsage) -> dict[str, list[Any]]:
    """Per tenant: calls, units and amount (as text), as ``publications`` keeps them."""
    return {
        str(tenant): [int(calls), int(units), str(_amount(amount, currency))]
        for tenant, calls, units, amount, currency in usage.tenants.select(
            "tenant_id", "calls", "units", "amount", "currency"
        ).iter_rows()
    }


def _create(cur: Any, schema: str, role: str) -> None:
    """The schema and its tables, isolated, readable by ``role`` (first use only)."""
    exists = cur.execute(
        "SELECT to_regclass(%s) IS NOT NULL", (f"{quote_ident(schema)}.publications",)
    ).fetchone()
    target = quote_ident(schema)
    if exists and exists[0]:
        scale = cur.execute(
            "SELECT numeric_scale FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'tenant_month' AND column_name = 'amount'",
            (schema,),
        ).fetchone()
        if scale and scale[0] is not None:
            # Made by a meter that kept amounts to 2 places (numeric(18, 2)): widened to
            # keep each currency's own decimals (a catalog change: no row is rewritten).
            cur.execute(f"ALTER TABLE {target}.tenant_month ALTER COLUMN amount TYPE numeric")
        return
    cur.execute(f"CREATE SCHEMA IF NOT EXISTS {target}")
    for ddl in _DDL.values():
        cur.execute(ddl.format(schema=target))
    cur.execute(f"REVOKE ALL ON {target}.publications FROM PUBLIC")
    cur.execute(f"GRANT USAGE ON SCHEMA {target} TO {quote_ident(role)}")
    for table in TENANT_TABLES:
        for _, statement in rls_statements(f"{schema}.{table}", "tenant_id", role, "text"):
            cur.execute(statement)
        cur.execute(f"GRANT SELECT ON {target}.{table} TO {quote_ident(role)}")


Rows = dict[str, dict[str, list[list[Any]]]]


def _rows(usage: MonthUsage, provisional: bool, now: datetime) -> Rows:
    """Per table, per tenant: the rows to insert."""
    month = str(usage.month)
    out: Rows = {t: {} for t in TENANT_TABLES}
    for row in usage.tenants.iter_rows(named=True):
        row["amount"] = _amount(row["amount"], row["currency"])
        values = [month, *(row[c] for c in _COLUMNS["tenant_month"][1:11])]
        out["tenant_month"].setdefault(row["tenant_id"], []).append(
            [*values, usage.run_id, provisional, now]
        )
    for day, tenant, calls, units, cost in usage.days.iter_rows():
        out["tenant_day"].setdefault(tenant, []).append(
            [month, day, tenant, calls, units, cost, usage.run_id]
        )
    for tenant, operation, calls, units in usage.operations.iter_rows():
        out["tenant_operation"].setdefault(tenant, []).append(
            [month, tenant, operation, calls, units, usage.run_id]
        )
    return out


def publish(
    dsn: str, usage: MonthUsage, schema: str = DEFAULT_SCHEMA, role: str = "app"
) -> Published:
    """Publish ``usage`` to the database at ``dsn``, in one transaction (see the module)."""
    import psycopg

    month, provisional = str(usage.month), not usage.closed
    lines = _lines(usage)
    try:
        connection = psycopg.connect(dsn, connect_timeout=10)
    except psycopg.Error as exc:
        raise PublishError(f"cannot connect to PostgreSQL at {redacted(dsn)}: {exc}") from None
    target = quote_ident(schema)
    try:
        with connection, connection.cursor() as cur:
            locked = cur.execute(
                "SELECT pg_try_advisory_xact_lock(hashtext(%s))", (lock_key(schema),)
            ).fetchone()
            if not (locked and locked[0]):
                raise PublishBusyError(
                    f"another meter publish is writing {schema} in this database (it holds "
                    f"the advisory lock hashtext('{lock_key(schema)}')); nothing was written: "
                    "publish again when it has finished"
                )
            known = cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if known is None:
                raise PublishError(
                    f"role {role} does not exist in the database: the tenant tables are made "
                    "readable by the application's role; create it, or name it with "
                    "--role / [publish] role"
                )
            _create(cur, schema, role)
            before = cur.execute(
                f"SELECT run_id, provisional, lines FROM {target}.publications "
                "WHERE month = %s FOR UPDATE",
                (month,),
            ).fetchone()
            old_run, old_provisional, old_lines = before or (None, None, {})
            result = Published(month, usage.run_id, "", provisional, schema, len(lines), old_run)
            if old_run == usage.run_id and old_provisional == provisional:
                return replace(result, status="unchanged")
            now = datetime.now(UTC)
            tenants = sorted(set(old_lines) | set(lines))
            rows = _rows(usage, provisional, now)
            for tenant in tenants:  # each tenant's rows with that tenant set: RLS applies
                cur.execute(_SET_TENANT, (tenant,))
                for table in TENANT_TABLES:
                    cur.execute(f"DELETE FROM {target}.{table} WHERE month = %s", (month,))
                    new = rows[table].get(tenant)
                    if new:
                        columns = _COLUMNS[table]
                        cur.executemany(
                            f"INSERT INTO {target}.{table} ({', '.join(columns)}) "
                            f"VALUES ({', '.join(['%s'] * len(columns))})",
                            new,
                        )
            cur.execute(
                f"INSERT INTO {target}.publications VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (month) DO UPDATE SET run_id = excluded.run_id, "
                "provisional = excluded.provisional, published_at = excluded.published_at, "
                "lines = excluded.lines",
                (month, usage.run_id, provisional, now, json.dumps(lines)),
            )
            if old_run is None:
                return replace(result, status="published")
            changed = [t for t in tenants if old_lines.get(t) != lines.get(t)]
            status = "updated" if old_run == usage.run_id else "replaced"
            return replace(result, status=status, changed=changed)
    except psycopg.Error as exc:
        raise PublishError(
            f"publishing {month} to {schema} at {redacted(dsn)} failed: {exc}; nothing was "
            "written (the month's earlier rows are as they were)"
        ) from None
