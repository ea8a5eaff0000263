"""PostgreSQL row-level security for tenant isolation: the DDL, and a check of a database.

The application (``metering.hook``) sets the tenant inside each transaction with
``SELECT set_config('app.tenant_id', :tenant_id, true)``. Each tenant table then needs
(AWS_FACTS, PostgreSQL):

- ``ENABLE ROW LEVEL SECURITY`` and ``FORCE ROW LEVEL SECURITY`` (without FORCE the table
  owner, often the application's own role, bypasses every policy);
- a policy ``USING`` and ``WITH CHECK`` ``tenant_id = NULLIF(current_setting('app.tenant_id',
  true), '')::bigint``: an unset setting reads as NULL (and as ``''`` once it was used in the
  session), so a connection with no tenant sees no rows and cannot write any;
- ``REVOKE TRUNCATE`` from the application role, as TRUNCATE ignores row-level security.

``rls_ddl`` writes that DDL (``meter rls --table T --column C``): names are quoted, and the
column's type is one of ``TENANT_TYPES``, so no argument can add SQL. ``rls_check`` lists the
tables of a database that have the tenant column but lack part of it
(``meter rls --check DSN``). Only ``rls_check`` needs psycopg (``psycopg[binary]``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from metering.errors import InputError, UsageError

SETTING = "app.tenant_id"
POLICY = "tenant_isolation"
MAX_IDENTIFIER_BYTES = 63  # NAMEDATALEN - 1: PostgreSQL cuts longer names silently

# The types a tenant column may have (``meter rls --type``): only these reach the DDL.
# The key is the name as PostgreSQL spells it; the value says what may follow in
# parentheses: nothing, a length (varchar(64)) or a precision and scale (numeric(20,0)).
TENANT_TYPES: dict[str, Literal["", "length", "precision"]] = {
    "smallint": "",
    "int2": "",
    "integer": "",
    "int": "",
    "int4": "",
    "bigint": "",
    "int8": "",
    "numeric": "precision",
    "text": "",
    "varchar": "length",
    "character varying": "length",
    "uuid": "",
}
MAX_VARCHAR = 10_485_760  # PostgreSQL's longest varchar(n)
MAX_NUMERIC = 1000  # PostgreSQL's largest numeric precision
_TYPE = re.compile(
    r"(?P<name>[a-z][a-z0-9]*(?: [a-z]+)?)"  # bigint, character varying, ...
    r" ?(?:\( ?(?P<size>\d{1,9}) ?(?:, ?(?P<scale>\d{1,9}) ?)?\))?"  # (64) or (20,0)
)
_ACCEPTED = ", ".join(
    f"{name}, {name}(N)"
    if takes == "length"
    else f"{name}, {name}(P), {name}(P,S)"
    if takes == "precision"
    else name
    for name, takes in TENANT_TYPES.items()
)


def quote_ident(name: str, what: str = "identifier") -> str:
    """``name`` as a PostgreSQL quoted identifier (``"a""b"``), or UsageError."""
    if not name:
        raise UsageError(f"the {what} is empty")
    if "\x00" in name:
        raise UsageError(f"the {what} {name!r} contains a NUL character")
    if len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise UsageError(
            f"the {what} {name!r} is longer than {MAX_IDENTIFIER_BYTES} bytes; PostgreSQL "
            "would cut it and the DDL could reach another object"
        )
    return '"' + name.replace('"', '""') + '"'


def qualified_name(table: str) -> str:
    """``table`` or ``schema.table``, each part quoted."""
    parts = table.split(".")
    if len(parts) > 2:
        raise UsageError(f"table {table!r}: give TABLE or SCHEMA.TABLE")
    return ".".join(
        quote_ident(part, "table name" if i == len(parts) - 1 else "schema name")
        for i, part in enumerate(parts)
    )


def _role(role: str) -> str:
    return "PUBLIC" if role.lower() == "public" else quote_ident(role, "role")


def _column_type(column_type: str) -> str:
    """``column_type`` checked against TENANT_TYPES and normalised (``VarChar ( 64 )`` ->
    ``varchar(64)``), or UsageError; what it returns goes into the DDL as it is."""
    text = " ".join(column_type.lower().split())
    found = _TYPE.fullmatch(text)
    takes = TENANT_TYPES.get(found["name"]) if found else None
    if found is None or takes is None or (found["size"] and not takes):
        raise UsageError(
            f"column type {column_type!r}: give the tenant column's type name, one of "
            f"{_ACCEPTED} (any case)"
        )
    name, size, scale = found["name"], found["size"], found["scale"]
    if size is None:
        return name
    if takes == "length":
        if scale is not None or not 1 <= int(size) <= MAX_VARCHAR:
            raise UsageError(
                f"column type {column_type!r}: give {name}(N) with a length N from 1 to "
                f"{MAX_VARCHAR}, or {name} alone"
            )
        return f"{name}({int(size)})"
    if not 1 <= int(size) <= MAX_NUMERIC or (scale is not None and int(scale) > int(size)):
        raise UsageError(
            f"column type {column_type!r}: give {name}(P) or {name}(P,S) with a precision P "
            f"from 1 to {MAX_NUMERIC} and a scale S from 0 to P, or {name} alone"
        )
    return f"{name}({int(size)})" if scale is None else f"{name}({int(size)},{int(scale)})"


def tenant_expression(column_type: str = "bigint") -> str:
    """The current tenant as SQL: NULL when no tenant is set in the transaction."""
    return f"NULLIF(current_setting('{SETTING}', true), '')::{_column_type(column_type)}"


def rls_statements(
    table: str, column: str = "tenant_id", role: str = "app", column_type: str = "bigint"
) -> list[tuple[str, str]]:
    """The statements that isolate tenants in ``table`` by ``column``, each with the comment
    that explains it ("" for none), to run inside a transaction as the table's owner."""
    target = qualified_name(table)
    tenant_column = quote_ident(column, "column name")
    current = tenant_expression(column_type)
    policy = quote_ident(POLICY)
    return [
        ("", f"ALTER TABLE {target} ENABLE ROW LEVEL SECURITY"),
        (
            "FORCE: the table owner is bound by the policy too.",
            f"ALTER TABLE {target} FORCE ROW LEVEL SECURITY",
        ),
        ("", f"DROP POLICY IF EXISTS {policy} ON {target}"),
        (
            "No tenant set: the setting is NULL (or '' once used): no row is visible or writable.",
            f"CREATE POLICY {policy} ON {target} AS PERMISSIVE FOR ALL TO PUBLIC\n"
            f"    USING ({tenant_column} = {current})\n"
            f"    WITH CHECK ({tenant_column} = {current})",
        ),
        ("TRUNCATE ignores row-level security.", f"REVOKE TRUNCATE ON {target} FROM {_role(role)}"),
    ]


def rls_ddl(
    table: str, column: str = "tenant_id", role: str = "app", column_type: str = "bigint"
) -> str:
    """PostgreSQL DDL that isolates tenants in ``table`` by ``column`` (run as its owner).

    Idempotent (the policy is dropped and made again) and atomic (one transaction).
    """
    lines = [
        "-- Tenant isolation by row-level security (meter rls). Run as the table owner.",
        f"-- The application sets {SETTING} in each transaction with set_config(..., true).",
        "BEGIN;",
    ]
    for comment, statement in rls_statements(table, column, role, column_type):
        lines += [f"-- {comment}"] if comment else []
        lines.append(f"{statement};")
    return "\n".join([*lines, "COMMIT;", ""])


@dataclass(frozen=True, slots=True)
class RlsProblem:
    """One gap in tenant isolation: what (``schema.table`` or ``role R``), the gap, the fix."""

    subject: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.problem} (fix: {self.fix})"


_TABLES = """
SELECT n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity, c.oid
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute AS a
  ON a.attrelid = c.oid AND a.attname = %(column)s AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p')
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
ORDER BY n.nspname, c.relname
"""

_POLICIES = """
SELECT p.polrelid, p.polpermissive, p.polcmd,
       pg_catalog.pg_get_expr(p.polqual, p.polrelid),
       pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)
FROM pg_catalog.pg_policy AS p
"""

_ROLE = "SELECT rolsuper, rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = %(role)s"


def redacted(dsn: str) -> str:
    """``dsn`` without its password, to name a database in a message."""
    try:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        parts = conninfo_to_dict(dsn)
    except Exception:
        return "the DSN given"
    parts.pop("password", None)
    return make_conninfo(**{k: str(v) for k, v in parts.items() if v is not None})


def _is_tenant_policy(qual: str | None, check: str | None, column: str) -> bool:
    """Does a policy expression compare ``column`` with the tenant setting?"""
    mark = f"current_setting('{SETTING}'"

    def mentions(expression: str | None) -> bool:
        return expression is not None and mark in expression and column in expression

    return mentions(qual) and (check is None or mentions(check))


def rls_check(dsn: str, column: str = "tenant_id", role: str | None = "app") -> list[RlsProblem]:
    """Tables with a ``column`` column that lack part of tenant isolation, and role gaps.

    For each table (and partition) outside the system schemas that has the column: RLS
    enabled, FORCE set, a permissive policy for all commands comparing the column with
    ``current_setting('app.tenant_id', ...)``, and (if ``role`` exists) no TRUNCATE for
    ``role``; and ``role`` is neither a superuser nor BYPASSRLS. An empty list means all
    is in place. Connect as a role that can read the catalogs (any role can).
    """
    import psycopg

    try:
        connection = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise InputError(f"cannot connect to PostgreSQL at {redacted(dsn)}: {exc}") from None
    problems: list[RlsProblem] = []
    with connection:
        quoted_column = connection.execute("SELECT quote_ident(%s)", (column,)).fetchone()
        column_sql = str(quoted_column[0]) if quoted_column else column
        role_row = None
        if role is not None:
            role_row = connection.execute(_ROLE, {"role": role}).fetchone()
        policies: dict[int, list[tuple[bool, str, str | None, str | None]]] = {}
        for relid, permissive, command, qual, check in connection.execute(_POLICIES):
            policies.setdefault(int(relid), []).append((permissive, command, qual, check))
        tables = connection.execute(_TABLES, {"column": column}).fetchall()
        for schema, name, enabled, forced, oid in tables:
            subject = f"{schema}.{name}"
            target = f"{quote_ident(schema)}.{quote_ident(name)}"
            fix = f"apply `meter rls --table {subject} --column {column}`"
            if not enabled:
                problems.append(RlsProblem(subject, "row level security is not enabled", fix))
            if not forced:
                problems.append(
                    RlsProblem(
                        subject,
                        "FORCE ROW LEVEL SECURITY is not set: the table owner bypasses policies",
                        fix,
                    )
                )
            own = policies.get(int(oid), [])
            if not own:
                problems.append(RlsProblem(subject, "has no row level security policy", fix))
            elif not any(
                permissive and command == "*" and _is_tenant_policy(qual, check, column_sql)
                for permissive, command, qual, check in own
            ):
                problems.append(
                    RlsProblem(
                        subject,
                        f"no permissive policy for all commands compares {column} with "
                        f"current_setting('{SETTING}')",
                        fix,
                    )
                )
            if role is not None and role_row is not None:
                truncate = connection.execute(
                    "SELECT has_table_privilege(%s, %s::oid, 'TRUNCATE')", (role, oid)
                ).fetchone()
                if truncate and truncate[0]:
                    problems.append(
                        RlsProblem(
                            subject,
                            f"role {role} may TRUNCATE it, which ignores row level security",
                            f"REVOKE TRUNCATE ON {target} FROM {_role(role)}",
                        )
                    )
        if role is not None and role_row is not None and (role_row[0] or role_row[1]):
            what = "is a superuser" if role_row[0] else "has BYPASSRLS"
            problems.append(
                RlsProblem(
                    f"role {role}",
                    f"{what}, so row level security never applies to it",
                    f"ALTER ROLE {_role(role)} NOSUPERUSER NOBYPASSRLS",
                )
            )
    return problems
