"""Tenant isolation DDL (metering.rls) applied to a real temporary PostgreSQL cluster.

The tenant is set exactly as the hook sets it: ``SET_TENANT_SQL`` with ``:tenant_id``
bound as a parameter, inside the transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from metering.errors import InputError, UsageError
from metering.hook import SET_TENANT_SQL
from metering.rls import RlsProblem, rls_check, rls_ddl

SET_TENANT = SET_TENANT_SQL.replace(":tenant_id", "%s")  # the hook's SQL, psycopg's placeholder

EXPECTED_DDL = """\
-- Tenant isolation by row-level security (meter rls). Run as the table owner.
-- The application sets app.tenant_id in each transaction with set_config(..., true).
BEGIN;
ALTER TABLE "public"."orders" ENABLE ROW LEVEL SECURITY;
-- FORCE: the table owner is bound by the policy too.
ALTER TABLE "public"."orders" FORCE ROW LEVEL SECURITY;
DROP POLICY IF EXISTS "tenant_isolation" ON "public"."orders";
-- No tenant set: the setting is NULL (or '' once used): no row is visible or writable.
CREATE POLICY "tenant_isolation" ON "public"."orders" AS PERMISSIVE FOR ALL TO PUBLIC
    USING ("tenant_id" = NULLIF(current_setting('app.tenant_id', true), '')::bigint)
    WITH CHECK ("tenant_id" = NULLIF(current_setting('app.tenant_id', true), '')::bigint);
-- TRUNCATE ignores row-level security.
REVOKE TRUNCATE ON "public"."orders" FROM "app";
COMMIT;
"""


def test_the_ddl() -> None:
    assert rls_ddl("public.orders") == EXPECTED_DDL


def test_identifiers_are_quoted() -> None:
    ddl = rls_ddl('my schema.we"ird', column='Tenant "Id"', role="App Role", column_type="TEXT")
    assert 'ALTER TABLE "my schema"."we""ird" ENABLE ROW LEVEL SECURITY;' in ddl
    assert (
        'USING ("Tenant ""Id""" = NULLIF(current_setting(\'app.tenant_id\', true), \'\')::text)'
        in ddl
    )
    assert 'REVOKE TRUNCATE ON "my schema"."we""ird" FROM "App Role";' in ddl
    assert rls_ddl("t", role="public").endswith('REVOKE TRUNCATE ON "t" FROM PUBLIC;\nCOMMIT;\n')


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"table": "a.b.c"}, "TABLE or SCHEMA.TABLE"),
        ({"table": "public."}, "table name is empty"),
        ({"table": "x" * 64}, "longer than 63 bytes"),
        ({"table": "t\x00"}, "NUL"),
        ({"column": ""}, "column name is empty"),
        ({"role": ""}, "role is empty"),
        ({"column_type": "bigint); DROP TABLE orders; --"}, "type name"),
        ({"column_type": "bigint[]"}, "type name"),
    ],
)
def test_bad_names_are_refused(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        rls_ddl(**{"table": "orders", **kwargs})


ACCEPTED = (
    "smallint, int2, integer, int, int4, bigint, int8, numeric, numeric(P), numeric(P,S), "
    "text, varchar, varchar(N), character varying, character varying(N), uuid (any case)"
)


@pytest.mark.parametrize(
    ("column_type", "message"),
    [
        ("text or true", ACCEPTED),  # lowercase words: SQL, not a type
        ("bigint or tenant_id is not null", ACCEPTED),
        ("double precision", ACCEPTED),
        ("regclass", ACCEPTED),
        ("text collate c", ACCEPTED),
        ("int(5)", ACCEPTED),
        ("text(5)", ACCEPTED),
        ("varchar(0)", "varchar(N) with a length N from 1 to 10485760"),
        ("varchar(10485761)", "varchar(N) with a length N from 1 to 10485760"),
        ("varchar(5,2)", "varchar(N) with a length N"),
        ("numeric(0)", "numeric(P) or numeric(P,S) with a precision P from 1 to 1000"),
        ("numeric(5,6)", "a scale S from 0 to P"),
        ("numeric(-5)", ACCEPTED),
        ("", ACCEPTED),
    ],
)
def test_only_tenant_column_types_are_accepted(column_type: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        rls_ddl("orders", column_type=column_type)
    assert str(caught.value).startswith(f"column type {column_type!r}: give ")
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("column_type", "written"),
    [
        ("BIGINT", "bigint"),
        ("Int4", "int4"),
        ("  character   VARYING  ", "character varying"),
        ("VarChar ( 64 )", "varchar(64)"),
        ("character varying(064)", "character varying(64)"),
        ("NUMERIC(20, 0)", "numeric(20,0)"),
        ("numeric (38)", "numeric(38)"),
        ("UUID", "uuid"),
    ],
)
def test_accepted_types_are_written_normalised(column_type: str, written: str) -> None:
    ddl = rls_ddl("orders", column_type=column_type)
    assert f"NULLIF(current_setting('app.tenant_id', true), '')::{written})" in ddl


# -- against PostgreSQL ----------------------------------------------------------------------


@pytest.fixture
def connect(postgres: Any, pg_db: str) -> Iterator[Any]:
    """connect(user) -> a psycopg connection to the test database (closed afterwards)."""
    import psycopg

    opened: list[Any] = []

    def make(user: str = "postgres", autocommit: bool = False) -> Any:
        connection = psycopg.connect(postgres.dsn(pg_db, user), autocommit=autocommit)
        opened.append(connection)
        return connection

    yield make
    for connection in opened:
        connection.close()


@pytest.fixture
def orders(connect: Any) -> str:
    """Table ``orders`` owned by ``app``, rows of tenants 1 and 2, the DDL applied."""
    admin = connect(autocommit=True)
    admin.execute("GRANT CREATE, USAGE ON SCHEMA public TO app")
    app = connect("app", autocommit=True)
    app.execute("CREATE TABLE orders (id int PRIMARY KEY, tenant_id bigint NOT NULL, item text)")
    app.execute(
        "INSERT INTO orders VALUES (1, 1, 'apple'), (2, 1, 'pear'), (3, 2, 'plum'), (4, 2, 'fig')"
    )
    app.execute(rls_ddl("orders"))  # as the owner, the way a migration would
    return "orders"


def rows(
    connection: Any, tenant: str | None, sql: str = "SELECT id FROM orders ORDER BY id"
) -> list[Any]:
    with connection.transaction():
        if tenant is not None:
            connection.execute(SET_TENANT, (tenant,))
        return [row[0] for row in connection.execute(sql)]


def test_a_tenant_sees_only_its_rows(connect: Any, orders: str) -> None:
    app = connect("app")  # the owner: FORCE puts it under the policy too
    assert rows(app, "1") == [1, 2]
    assert rows(app, "2") == [3, 4]
    assert rows(app, "3") == []
    assert rows(app, "1", "SELECT count(*) FROM orders WHERE tenant_id = 2") == [0]
    assert rows(connect("postgres"), None) == [1, 2, 3, 4]  # superusers bypass RLS


def test_no_tenant_set_sees_nothing(connect: Any, orders: str) -> None:
    app = connect("app")
    assert rows(app, None) == []  # never set in this session: NULL
    assert rows(app, "1") == [1, 2]
    assert rows(app, None) == []  # set before, local to that transaction: now ''
    with app.transaction():
        app.execute(SET_TENANT, ("",))
        assert app.execute("SELECT count(*) FROM orders").fetchone() == (0,)


def test_a_tenant_cannot_write_another_tenants_rows(connect: Any, orders: str) -> None:
    import psycopg

    app = connect("app")
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"),
        app.transaction(),
    ):
        app.execute(SET_TENANT, ("1",))
        app.execute("INSERT INTO orders VALUES (10, 2, 'stolen')")
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"),
        app.transaction(),
    ):
        app.execute(SET_TENANT, ("1",))
        app.execute("UPDATE orders SET tenant_id = 2 WHERE id = 1")
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"),
        app.transaction(),
    ):
        app.execute("INSERT INTO orders VALUES (11, 1, 'no tenant set')")
    with app.transaction():
        app.execute(SET_TENANT, ("1",))
        app.execute("INSERT INTO orders VALUES (12, 1, 'mine')")
        assert app.execute("UPDATE orders SET item = 'x' WHERE tenant_id = 2").rowcount == 0
        assert app.execute("DELETE FROM orders WHERE id = 3").rowcount == 0
    assert rows(connect("postgres"), None) == [1, 2, 3, 4, 12]


def test_the_app_role_cannot_truncate(connect: Any, orders: str) -> None:
    import psycopg

    app = connect("app")
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"),
        app.transaction(),
    ):
        app.execute(SET_TENANT, ("1",))
        app.execute("TRUNCATE orders")
    assert rows(connect("postgres"), None) == [1, 2, 3, 4]


def test_the_ddl_can_be_applied_again(connect: Any, orders: str) -> None:
    connect("app", autocommit=True).execute(rls_ddl("orders"))
    assert rows(connect("app"), "2") == [3, 4]


def test_a_text_tenant_column(connect: Any) -> None:
    admin = connect(autocommit=True)
    admin.execute("CREATE TABLE notes (id int, tenant_id text NOT NULL)")
    admin.execute("INSERT INTO notes VALUES (1, 'acme'), (2, 'globex')")
    admin.execute("GRANT SELECT, INSERT ON notes TO app")
    admin.execute(rls_ddl("notes", column_type="text"))
    app = connect("app")
    assert rows(app, "acme", "SELECT id FROM notes") == [1]
    assert rows(app, None, "SELECT id FROM notes") == []


def test_each_kind_of_accepted_type_isolates_tenants(connect: Any) -> None:
    """The normalised types are PostgreSQL's: the DDL applies and the policy works."""
    admin = connect(autocommit=True)
    app = connect("app")
    columns = {
        "smallint": "1",
        "int": "1",
        "INT8": "1",
        "numeric(20, 0)": "1",
        "VarChar(64)": "acme",
        "character varying": "acme",
        "uuid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    }
    for number, (column_type, tenant) in enumerate(columns.items()):
        table = f"t{number}"
        admin.execute(f"CREATE TABLE {table} (id int, tenant_id {column_type} NOT NULL)")
        admin.execute(f"INSERT INTO {table} VALUES (1, %s)", (tenant,))
        admin.execute(f"GRANT SELECT ON {table} TO app")
        admin.execute(rls_ddl(table, column_type=column_type))
        assert rows(app, tenant, f"SELECT id FROM {table}") == [1], column_type
        assert rows(app, None, f"SELECT id FROM {table}") == [], column_type


def test_rls_check_flags_each_gap(connect: Any, postgres: Any, pg_db: str) -> None:
    admin = connect(autocommit=True)
    admin.execute(
        """
        CREATE TABLE open_table (tenant_id bigint);
        GRANT ALL ON open_table TO app;
        CREATE TABLE no_force (tenant_id bigint);
        ALTER TABLE no_force ENABLE ROW LEVEL SECURITY;
        CREATE POLICY p ON no_force
            USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::bigint);
        CREATE TABLE no_policy (tenant_id bigint);
        ALTER TABLE no_policy ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
        CREATE TABLE wrong_policy (tenant_id bigint);
        ALTER TABLE wrong_policy ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
        CREATE POLICY everyone ON wrong_policy USING (true);
        CREATE SCHEMA billing;
        CREATE TABLE billing.good (tenant_id bigint, amount numeric);
        GRANT ALL ON billing.good TO app;
        CREATE TABLE no_tenant_column (id int);
        """
    )
    admin.execute(rls_ddl("billing.good"))

    problems = rls_check(postgres.dsn(pg_db))

    fix = "apply `meter rls --table {} --column tenant_id`"
    assert problems == [
        RlsProblem(
            "public.no_force",
            "FORCE ROW LEVEL SECURITY is not set: the table owner bypasses policies",
            fix.format("public.no_force"),
        ),
        RlsProblem(
            "public.no_policy", "has no row level security policy", fix.format("public.no_policy")
        ),
        RlsProblem(
            "public.open_table",
            "row level security is not enabled",
            fix.format("public.open_table"),
        ),
        RlsProblem(
            "public.open_table",
            "FORCE ROW LEVEL SECURITY is not set: the table owner bypasses policies",
            fix.format("public.open_table"),
        ),
        RlsProblem(
            "public.open_table", "has no row level security policy", fix.format("public.open_table")
        ),
        RlsProblem(
            "public.open_table",
            "role app may TRUNCATE it, which ignores row level security",
            'REVOKE TRUNCATE ON "public"."open_table" FROM "app"',
        ),
        RlsProblem(
            "public.wrong_policy",
            "no permissive policy for all commands compares tenant_id with current_setting('app.tenant_id')",
            fix.format("public.wrong_policy"),
        ),
    ]
    assert str(problems[1]) == (
        "public.no_policy: has no row level security policy "
        "(fix: apply `meter rls --table public.no_policy --column tenant_id`)"
    )

    for table in ("no_force", "no_policy", "open_table", "wrong_policy"):
        admin.execute(rls_ddl(table))
    assert rls_check(postgres.dsn(pg_db)) == []


def test_rls_check_flags_a_role_that_bypasses_rls(connect: Any, postgres: Any, pg_db: str) -> None:
    admin = connect(autocommit=True)
    admin.execute("CREATE ROLE bypasser BYPASSRLS")
    try:
        assert rls_check(postgres.dsn(pg_db), role="bypasser") == [
            RlsProblem(
                "role bypasser",
                "has BYPASSRLS, so row level security never applies to it",
                'ALTER ROLE "bypasser" NOSUPERUSER NOBYPASSRLS',
            )
        ]
        assert rls_check(postgres.dsn(pg_db), role="no_such_role") == []
    finally:
        admin.execute("DROP ROLE bypasser")


def test_rls_check_with_another_column(connect: Any, postgres: Any, pg_db: str) -> None:
    connect(autocommit=True).execute("CREATE TABLE t (org_id uuid)")
    assert [p.subject for p in rls_check(postgres.dsn(pg_db))] == []
    assert {p.subject for p in rls_check(postgres.dsn(pg_db), column="org_id")} == {"public.t"}


def test_rls_check_cannot_connect_without_showing_the_password() -> None:
    pytest.importorskip("psycopg")
    dsn = "host=127.0.0.1 port=1 dbname=x user=u password=s3cret connect_timeout=2"
    with pytest.raises(InputError, match="cannot connect to PostgreSQL") as caught:
        rls_check(dsn)
    assert "s3cret" not in str(caught.value)
    assert "port=1" in str(caught.value)


def test_rls_check_from_the_command_line(connect: Any, postgres: Any, pg_db: str) -> None:
    """Exit 3 when gaps are found (the check ran: look), 0 when none, 1 when it cannot run."""
    import json
    import subprocess
    import sys

    from tests.conftest import REPO

    def check() -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "metering", "rls", "--check", postgres.dsn(pg_db)]
        return subprocess.run([*command, "--json"], capture_output=True, text=True, cwd=REPO)

    admin = connect(autocommit=True)
    admin.execute("CREATE TABLE open_table (tenant_id bigint)")
    found = check()
    assert found.returncode == 3
    doc = json.loads(found.stdout)
    assert doc["exit_code"] == 3
    assert [p["subject"] for p in doc["problems"]] == ["public.open_table"] * 3
    admin.execute(rls_ddl("open_table"))
    clean = check()
    assert (clean.returncode, json.loads(clean.stdout)["problems"]) == (0, [])
