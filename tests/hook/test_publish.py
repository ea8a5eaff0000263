"""``meter publish`` into a real temporary PostgreSQL cluster: tenants read their own usage
behind row-level security, exactly as the application (``metering.hook``) would."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from metering.config import load_config
from metering.errors import PublishBusyError
from metering.hook import SET_TENANT_SQL
from metering.month import Month
from metering.period import close_month, publish_month
from metering.pipeline import bill
from metering.publish import lock_key, usage_sql
from metering.rls import rls_check
from tests.conftest import REPO
from tests.helpers import lines_of, record, run_meter, write_config, write_data_file

OCT = Month(2026, 10)
SET_TENANT = SET_TENANT_SQL.replace(":tenant_id", "%s")
HOSTILE = "x'); DELETE FROM meter_usage.tenant_month; --"  # a tenant id is only a value


def _month(folder: Path, extra: int = 0) -> Path:
    """A billed month of three tenants (``extra`` more calls for acme); its meter.toml."""
    rows = [
        record("a1", "acme", "2026-10-01T10:00:00.000Z"),
        record("a2", "acme", "2026-10-02T10:00:00.000Z", resp=40_000, op="BatchExecuteStatement"),
        record("g1", "globex", "2026-10-01T11:00:00.000Z"),
        record("h1", HOSTILE, "2026-10-03T12:00:00.000Z"),
        *(record(f"n{i}", "acme", "2026-10-04T00:00:00.000Z") for i in range(extra)),
    ]
    write_data_file(folder / "dynamodb" / "data" / "a.json.gz", lines_of(rows))
    config = write_config(folder)
    bill(load_config(config), OCT)
    return config


@pytest.fixture
def publisher(postgres: Any, pg_db: str) -> str:
    """The DSN of a plain role that may create schemas in the test database."""
    import psycopg

    with psycopg.connect(postgres.dsn(pg_db), autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = 'publisher'").fetchone():
            admin.execute("CREATE ROLE publisher LOGIN NOSUPERUSER NOBYPASSRLS")
        admin.execute(f'GRANT CREATE ON DATABASE "{pg_db}" TO publisher')
    return str(postgres.dsn(pg_db, "publisher"))


def _read(dsn: str, tenant: str | None, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    import psycopg

    with psycopg.connect(dsn) as connection, connection.transaction():
        if tenant is not None:
            connection.execute(SET_TENANT, (tenant,))
        return connection.execute(sql, params).fetchall()


def _usage(dsn: str, tenant: str | None) -> list[tuple[Any, ...]]:
    """What the application's usage statement gives with ``tenant`` set."""
    sql = usage_sql(month=True).replace(":month", "%s")
    return [(r[1], r[3], r[4], r[7], r[11]) for r in _read(dsn, tenant, sql, ("2026-10",))]


def test_each_tenant_reads_only_its_own_usage(
    tmp_path: Path, postgres: Any, pg_db: str, publisher: str
) -> None:
    config = load_config(_month(tmp_path))
    done = publish_month(config, OCT, publisher)
    assert (done.status, done.tenants, done.provisional) == ("published", 3, True)
    app = postgres.dsn(pg_db, "app")
    # tenant, calls, units, amount (text: exact), provisional
    assert _usage(app, "acme") == [("acme", 2, 3, "0.00", True)]
    assert _usage(app, "globex") == [("globex", 1, 1, "0.00", True)]
    assert _usage(app, HOSTILE) == [(HOSTILE, 1, 1, "0.00", True)]
    assert _usage(app, None) == []  # no tenant set: nothing
    assert _usage(app, "nobody") == []
    assert _usage(publisher, None) == []  # the owner is bound too (FORCE)
    days = "SELECT day::text, tenant_id, calls, units, cost FROM meter_usage.tenant_day"
    assert _read(app, "acme", days + " ORDER BY day") == [
        ("2026-10-01", "acme", 1, 1, Decimal("3.5E-7")),
        ("2026-10-02", "acme", 1, 2, Decimal("7.0E-7")),
    ]
    operations = "SELECT operation, calls, units FROM meter_usage.tenant_operation ORDER BY 1"
    assert _read(app, "acme", operations) == [
        ("BatchExecuteStatement", 1, 2),
        ("ExecuteStatement", 1, 1),
    ]
    assert _read(app, "globex", operations) == [("ExecuteStatement", 1, 1)]
    # The application may read, nothing more; meter's own bookkeeping is not for it.
    import psycopg

    for statement in (
        "DELETE FROM meter_usage.tenant_month",
        "TRUNCATE meter_usage.tenant_day",
        "SELECT * FROM meter_usage.publications",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            _read(app, "acme", statement)
    assert rls_check(postgres.dsn(pg_db), role="app") == []  # `meter rls --check`: isolated


def test_publishing_again_changes_nothing_and_a_new_run_replaces_the_month(
    tmp_path: Path, postgres: Any, pg_db: str, publisher: str
) -> None:
    config = load_config(_month(tmp_path))
    first = publish_month(config, OCT, publisher)
    stamp = "SELECT published_at FROM meter_usage.tenant_month"
    at = _read(publisher, "acme", stamp)
    again = publish_month(config, OCT, publisher)
    assert (again.status, again.run_id) == ("unchanged", first.run_id)
    assert _read(publisher, "acme", stamp) == at  # not even rewritten

    config = load_config(_month(tmp_path, extra=2))  # the month billed again: acme changed
    replaced = publish_month(config, OCT, publisher)
    assert (replaced.status, replaced.previous_run_id) == ("replaced", first.run_id)
    assert replaced.run_id != first.run_id
    assert replaced.changed == ["acme"]
    app = postgres.dsn(pg_db, "app")
    assert _usage(app, "acme") == [("acme", 4, 5, "0.00", True)]
    assert _read(app, "acme", "SELECT DISTINCT run_id FROM meter_usage.tenant_day") == [
        (replaced.run_id,)
    ]

    close_month(config, OCT, "test")
    closed = publish_month(config, OCT, publisher)
    assert (closed.status, closed.provisional, closed.changed) == ("updated", False, [])
    assert _usage(app, "globex") == [("globex", 1, 1, "0.00", False)]


def test_two_publishes_never_interleave(
    tmp_path: Path, postgres: Any, pg_db: str, publisher: str
) -> None:
    import psycopg

    config = load_config(_month(tmp_path))
    with psycopg.connect(postgres.dsn(pg_db), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(hashtext(%s))", (lock_key("meter_usage"),))
        with pytest.raises(PublishBusyError, match="another meter publish is writing meter_usage"):
            publish_month(config, OCT, publisher)
        cli = _cli(["publish", "--month", "2026-10", "--config", str(config.path)], publisher)
        assert cli.returncode == 1
        assert "another meter publish is writing meter_usage" in cli.stderr
        assert "nothing was written" in cli.stderr
    assert publish_month(config, OCT, publisher).status == "published"


def _cli(args: list[str], dsn: str | None) -> subprocess.CompletedProcess[str]:
    env = {"METER_PUBLISH_DSN": dsn} if dsn is not None else None
    return run_meter(*args, env=env, unset=("METER_PUBLISH_DSN",), timeout=120)


def test_a_publish_killed_midway_leaves_the_month_as_it_was(
    tmp_path: Path, postgres: Any, pg_db: str, publisher: str
) -> None:
    import psycopg

    config = load_config(_month(tmp_path))
    first = publish_month(config, OCT, publisher)
    config = load_config(_month(tmp_path, extra=5))
    with psycopg.connect(postgres.dsn(pg_db)) as blocker:
        # The new run's publish stops at its first write to tenant_operation: after it has
        # already replaced rows of tenant_month and tenant_day.
        blocker.execute("LOCK TABLE meter_usage.tenant_operation IN ACCESS EXCLUSIVE MODE")
        command = [sys.executable, "-m", "metering", "publish", "--month", "2026-10"]
        command += ["--config", str(config.path), "--dsn", publisher]
        child = subprocess.Popen(command, cwd=REPO, stderr=subprocess.DEVNULL)
        waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass"
        deadline = time.monotonic() + 60
        while blocker.execute(waiting, ("meter_usage.tenant_operation",)).fetchone() == (0,):
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait()
    with psycopg.connect(postgres.dsn(pg_db), autocommit=True) as admin:
        gone = "SELECT count(*) FROM pg_stat_activity WHERE usename = 'publisher'"
        while admin.execute(gone).fetchone() != (0,):  # its server side rolls back and ends
            assert time.monotonic() < deadline
            time.sleep(0.05)
    app = postgres.dsn(pg_db, "app")
    assert _usage(app, "acme") == [("acme", 2, 3, "0.00", True)]  # the first run's rows
    assert _read(app, "acme", "SELECT DISTINCT run_id FROM meter_usage.tenant_month") == [
        (first.run_id,)
    ]
    assert publish_month(config, OCT, publisher).status == "replaced"  # and it can go on


def test_the_dsn_comes_from_the_option_the_config_or_the_environment(tmp_path: Path) -> None:
    config = _month(tmp_path)
    missing = _cli(["publish", "--month", "2026-10", "--config", str(config)], None)
    assert missing.returncode == 2
    assert "no database to publish to: give --dsn" in missing.stderr
    refused = _cli(
        ["publish", "--month", "2026-10", "--config", str(config)],
        "host=127.0.0.1 port=1 dbname=x user=u password=secret connect_timeout=2",
    )
    assert refused.returncode == 1
    assert "cannot connect to PostgreSQL at" in refused.stderr
    assert "secret" not in refused.stderr
    never = _cli(["publish", "--month", "2026-09", "--config", str(config)], "host=x")
    assert never.returncode == 2
    pasted = f"meter bill --month 2026-09 --config {config}"  # the --config given, repeated
    assert f"2026-09 was never billed: run `{pasted}` first" in never.stderr


def test_the_monthly_close_publishes_the_closed_month(
    tmp_path: Path, postgres: Any, pg_db: str, publisher: str
) -> None:
    rows = [
        record(f"r{i}", ("acme", "globex")[i % 2], "2026-10-05T08:00:00.000Z") for i in range(6)
    ]
    write_data_file(tmp_path / "dynamodb" / "data" / "a.json.gz", lines_of(rows))
    config = write_config(tmp_path, f'\n[publish]\ndsn = "{publisher}"\n')
    job = [sys.executable, str(REPO / "pipelines" / "monthly_close.py"), "--config", str(config)]
    job += ["--out", str(tmp_path / "out"), "--month", "2026-10"]
    done = subprocess.run(job, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2026-10: published to meter_usage for 2 tenants (published)" in done.stdout
    app = postgres.dsn(pg_db, "app")
    assert _usage(app, "globex") == [("globex", 3, 3, "0.00", False)]  # closed: not provisional


def test_amounts_keep_their_currency_s_decimals_in_a_schema_an_older_meter_made(
    tmp_path: Path, postgres: Any, pg_db: str, publisher: str
) -> None:
    import psycopg

    publish_month(load_config(_month(tmp_path / "usd")), OCT, publisher)
    with psycopg.connect(publisher) as connection:  # as meter made it when amounts had 2 places
        connection.execute(
            "ALTER TABLE meter_usage.tenant_month ALTER COLUMN amount TYPE numeric(18, 2)"
        )
    config = _month(tmp_path / "kwd")
    with config.open("a") as toml:  # 5 units at 0.0012345678 dinars: 0.006 = 0.004 + 2 x 0.001
        toml.write('\n[pricing]\ncurrency = "KWD"\ntiers = [ { per_million = "1234.5678" } ]\n')
    bill(load_config(config), OCT)
    done = publish_month(load_config(config), OCT, publisher)
    assert done.status == "replaced"
    app = postgres.dsn(pg_db, "app")
    assert _usage(app, "acme") == [("acme", 2, 3, "0.004", True)]
    assert _usage(app, "globex") == [("globex", 1, 1, "0.001", True)]
    scale = (
        "SELECT numeric_precision, numeric_scale FROM information_schema.columns "
        "WHERE table_schema = 'meter_usage' AND table_name = 'tenant_month' "
        "AND column_name = 'amount'"
    )
    assert _read(publisher, None, scale) == [(None, None)]  # numeric: each amount its own
