"""The ``meter`` command as a user runs it: help, README, exit statuses, exports."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from metering.cli import app
from tests.conftest import REPO, SAMPLE
from tests.helpers import copy_sample, sample_files

runner = CliRunner()
COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)  # type: ignore[union-attr]


def test_every_command_has_help_and_is_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    for command in COMMANDS:
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0, command
        assert len(result.output.strip()) > 80, command
        assert f"meter {command}" in readme, f"meter {command} is not in the README"


def test_help_is_fast_and_imports_nothing_heavy() -> None:
    code = "import sys, metering.cli; print(sorted(m for m in ('polars','duckdb','boto3','matplotlib','pyspark') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_meter_script_loads_nothing_until_meter_runs() -> None:
    """Each spool worker starts by importing what the ``meter`` script imports (spawn runs
    the main script again): the command line's libraries would cost each one ~0.1 s."""
    target = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]["meter"]
    module = target.split(":")[0]
    code = (
        f"import sys, {module}\n"
        "print(sorted(m for m in ('metering.cli', 'typer', 'pydantic', 'polars') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_bill_and_export_never_import_pyarrow_or_pyspark(tmp_path: Path) -> None:
    """pyarrow with numpy costs each process about 0.3 s; meter moves frames without it.
    A DuckDB bill never starts Spark, nor imports it."""
    config = _sample_copy(tmp_path)
    code = (
        "import sys\n"
        "from metering.cli import app\n"  # (main() would end the process after one)
        "for argv in sys.argv[1:]:\n"
        "    try: app(argv.split(), prog_name='meter')\n"
        "    except SystemExit as exit: assert exit.code in (0, 3), exit.code\n"
        "print(sorted(m for m in ('pyarrow', 'numpy', 'pyspark') if m in sys.modules))"
    )
    commands = [
        f"bill --month 2026-10 --config {config}",
        f"export --month 2026-10 --config {config} --out {tmp_path / 'f.csv'}",
    ]
    out = subprocess.run([sys.executable, "-c", code, *commands], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert re.fullmatch(r"meter \d+\.\d+\.\d+\n", result.output)


def test_bad_month_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["bill", "--month", "2026-13", "--config", str(SAMPLE / "meter.toml")]
    )
    assert result.exit_code == 2
    assert "give a month as YYYY-MM" in result.output


def test_a_month_no_source_holds_is_refused_unless_allowed(tmp_path: Path) -> None:
    """A typo in --month (or a missing folder) must not look like a month that cost 0."""
    config = _sample_copy(tmp_path)
    result = runner.invoke(app, ["bill", "--month", "2025-10", "--config", str(config)])
    assert result.exit_code == 1, result.output
    said = " ".join(result.output.split())
    assert "error: no source holds a single record of 2025-10: read " in said
    assert "CloudTrail file(s) under" in said and "pass --allow-empty" in said
    assert not (tmp_path / "s" / "meter.duckdb").exists()  # nothing written, not even a file
    allowed = ["bill", "--month", "2025-10", "--config", str(config), "--allow-empty"]
    result = runner.invoke(app, allowed)
    assert result.exit_code == 3, result.output  # the sample's malformed records
    con = duckdb.connect(str(tmp_path / "s" / "meter.duckdb"), read_only=True)
    runs = con.execute("SELECT month, total_calls, amount FROM bill_runs").fetchall()
    assert runs == [("2025-10", 0, Decimal("0.00"))]


def test_missing_config_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["bill", "--month", "2026-10", "--config", str(tmp_path / "none.toml")]
    )
    assert result.exit_code == 2
    assert "no such config file" in result.output


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('block_bytes = "32768"', "pricing.block_bytes"),
        ('bill_errors = "yes"', "pricing.bill_errors"),
        ('tiers = [{ per_million = "0.1234567" }]', "pricing.tiers.0.per_million"),
    ],
)
def test_a_mistyped_config_value_is_a_usage_error(tmp_path: Path, line: str, key: str) -> None:
    """The sample's config with one value mistyped: refused before anything is read."""
    sample = (SAMPLE / "meter.toml").read_text()
    name = line.split(" = ", maxsplit=1)[0]
    mistyped = re.sub(rf"(?m)^{name} = .*$", line, sample)
    assert mistyped != sample
    config = tmp_path / "meter.toml"
    config.write_text(mistyped)
    result = runner.invoke(app, ["bill", "--month", "2026-10", "--config", str(config)])
    assert result.exit_code == 2, result.output
    assert f"{config}: {key}: " in result.output
    assert not (tmp_path / "meter.duckdb").exists()


def test_a_bad_memory_limit_is_a_usage_error(tmp_path: Path) -> None:
    """METER_MEMORY_LIMIT is checked before the warehouse is touched."""
    config = tmp_path / "meter.toml"
    config.write_text((SAMPLE / "meter.toml").read_text())
    result = runner.invoke(
        app,
        ["bill", "--month", "2026-10", "--config", str(config)],
        env={"METER_MEMORY_LIMIT": "1GB'; SET threads = 1; --"},
    )
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert 'METER_MEMORY_LIMIT="1GB\'; SET threads = 1; --": give the memory' in said
    assert not (tmp_path / "meter.duckdb").exists()


def test_rls_type_is_a_known_type_never_sql() -> None:
    result = runner.invoke(app, ["rls", "--table", "orders", "--type", "text or true"])
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert "column type 'text or true': give the tenant column's type name, one of" in said
    assert "character varying(N), uuid (any case)" in said
    result = runner.invoke(app, ["rls", "--table", "orders", "--type", "VarChar(64)"])
    assert result.exit_code == 0, result.output
    assert "'')::varchar(64))" in result.output


def test_the_error_line_shows_input_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich styles as on a terminal
    config = tmp_path / "x\x1b[2J[/].toml"
    result = runner.invoke(app, ["bill", "--month", "2026-10", "--config", str(config)])
    assert result.exit_code == 2
    assert "\x1b[1;31merror:" in result.output  # rich's own red ...
    assert "\x1b[2J" not in result.output  # ... but never the input's escape
    assert f"{tmp_path}/x\\x1b[2J[/].toml: no such config file" in result.output


def _sample_copy(tmp_path: Path) -> Path:
    return copy_sample(tmp_path / "s")


def test_sample_bill_and_finance_export_golden(tmp_path: Path) -> None:
    config = _sample_copy(tmp_path)
    result = runner.invoke(app, ["bill", "--month", "2026-10", "--config", str(config)])
    assert result.exit_code == 3, result.output  # the sample holds malformed records on purpose
    assert "quarantined" in result.output and "warehouse:" in result.output
    out = tmp_path / "finance.csv"
    result = runner.invoke(
        app,
        [
            "export",
            "--month",
            "2026-10",
            "--format",
            "finance",
            "--out",
            str(out),
            "--config",
            str(config),
        ],
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == (REPO / "tests" / "golden" / "finance_2026-10.csv").read_bytes()

    again = runner.invoke(app, ["bill", "--month", "2026-10", "--config", str(config)])
    said = " ".join(again.output.split())
    assert "0 decoded, 391 unchanged since an earlier run and reused" in said, said
    assert "; 0 calls joined again, the rest kept" in said


def test_export_before_bill_says_what_to_do(tmp_path: Path) -> None:
    config = _sample_copy(tmp_path)
    runner.invoke(app, ["bill", "--month", "2026-10", "--config", str(config)])
    result = runner.invoke(app, ["export", "--month", "2026-09", "--config", str(config)])
    assert result.exit_code == 2
    assert f"run `meter bill --month 2026-09 --config {config}` first" in result.output


@pytest.mark.parametrize("fmt", ["pdf", "xlsx"])
def test_unknown_export_format(tmp_path: Path, fmt: str) -> None:
    config = _sample_copy(tmp_path)
    runner.invoke(app, ["bill", "--month", "2026-10", "--config", str(config)])
    result = runner.invoke(
        app, ["export", "--month", "2026-10", "--format", fmt, "--config", str(config)]
    )
    assert result.exit_code == 2


def test_what_the_quick_start_bill_writes_is_ignored_by_git_and_the_tests(tmp_path: Path) -> None:
    """README quick start: command 1 bills sample_data/ in place; command 2, the tests, must
    pass after it. What the bill writes is in .gitignore and left out by the sample helpers."""
    config = copy_sample(tmp_path / "s")
    before = sample_files(config.parent)
    result = runner.invoke(app, ["bill", "--month", "2026-10", "--config", str(config)])
    assert result.exit_code == 3, result.output
    own = {path.parts[0] for path in before}
    written = [p for p in config.parent.iterdir() if p.name not in own]
    assert sorted(p.name for p in written) == ["meter.duckdb", "meter.spool"]
    assert sample_files(config.parent) == before == sample_files()
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: .gitignore cannot be asked")
    names = [f"sample_data/{p.name}{'/' * p.is_dir()}" for p in written]
    names.append("sample_data/meter.duckdb.wal")  # (there while a bill runs)
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *names], cwd=REPO, capture_output=True, text=True
    )
    assert ignored.stdout.split() == names


def test_sample_is_reproducible(tmp_path: Path) -> None:
    """`meter sample --out sample_data` regenerates the committed sample byte for byte."""
    result = runner.invoke(app, ["sample", "--out", str(tmp_path / "gen")])
    assert result.exit_code == 0, result.output
    committed = sample_files()  # (what `meter bill` on the sample wrote beside it aside)
    generated = sorted(
        p.relative_to(tmp_path / "gen") for p in (tmp_path / "gen").rglob("*") if p.is_file()
    )
    assert committed == generated
    for name in committed:
        assert (SAMPLE / name).read_bytes() == (tmp_path / "gen" / name).read_bytes(), name


def test_the_command_leaves_at_once_with_its_status_and_all_its_output(tmp_path: Path) -> None:
    """``meter`` skips the interpreter's teardown (metering.cli.main): its exit status and
    every line it printed still reach the caller, and exit functions still run."""
    config = _sample_copy(tmp_path)
    marker = tmp_path / "atexit-ran"
    code = (
        "import atexit, pathlib, sys\n"
        f"atexit.register(pathlib.Path({str(marker)!r}).write_text, 'yes')\n"
        "sys.argv = ['meter', 'bill', '--month', '2026-10', '--config', sys.argv[1]]\n"
        "from metering.cli import main\n"
        "main()\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(config)], capture_output=True, text=True)
    assert out.returncode == 3, out.stderr  # the sample's 5 malformed records
    assert out.stdout.rstrip().splitlines()[-1].startswith("warehouse: ")
    assert marker.read_text() == "yes"
