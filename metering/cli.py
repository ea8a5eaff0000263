"""The ``meter`` command: each command parses, calls one library function, renders.

Heavy modules (polars, duckdb, boto3) are imported inside the commands so that
``meter --help`` stays instant. Library errors (``MeteringError``) become one red line
and an exit status; ``--debug`` shows the traceback (without locals: credentials live
there).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from metering import __version__
from metering.errors import MeteringError
from metering.text import printable

if TYPE_CHECKING:
    from metering.config import Config
    from metering.schemas import Progress

app = typer.Typer(
    name="meter",
    help="Per-tenant cost metering and chargeback for the RDS Data API.",
    no_args_is_help=True,
    add_completion=True,  # meter --install-completion
    pretty_exceptions_enable=False,  # --debug prints a plain traceback, never locals
    rich_markup_mode=None,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="meter.toml to use (finds the warehouse); default: $METER_CONFIG, else ./meter.toml.",
        show_default=False,
    ),
]
MonthOption = Annotated[str, typer.Option("--month", "-m", help="Billing month, YYYY-MM (UTC).")]
JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print one JSON document on stdout (README: --json)."),
]

# Exit statuses, the same for every command (README "Exit statuses").
OK, FAILED, USAGE, ATTENTION, NOTHING_TO_DO = 0, 1, 2, 3, 4

_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"meter {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Per-tenant cost metering and chargeback for the RDS Data API."""
    _state["debug"] = debug


@contextmanager
def _errors(json_command: str | None = None) -> Iterator[None]:
    """Turn library errors into one red line and their exit status (and, for a command
    run with ``--json``, a JSON document saying so on stdout)."""
    try:
        yield
    except MeteringError as exc:
        if _state["debug"]:
            raise
        _red_line(str(exc))
        _json_error(json_command, str(exc), exc.exit_code)
        raise typer.Exit(exc.exit_code) from None
    except (KeyboardInterrupt, typer.Exit):
        raise
    except Exception as exc:
        if _state["debug"]:
            raise
        message = f"unexpected {type(exc).__name__}: {exc}"
        _red_line(
            message,
            "This is a bug in meter, not in your input; "
            "rerun with `meter --debug ...` for the traceback and report it.",
        )
        _json_error(json_command, message, FAILED)
        raise typer.Exit(FAILED) from None


def _json_error(command: str | None, message: str, code: int) -> None:
    if command is not None:
        from metering import jsondoc

        _print_json(jsondoc.error(command, message, code))


def _print_json(document: dict[str, Any]) -> None:
    from metering import jsondoc

    typer.echo(jsondoc.dumps(document))


def _red_line(message: str, hint: str = "") -> None:
    """``error: message`` in red (it may quote input: shown escaped), then meter's ``hint``."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(stderr=True, highlight=False, soft_wrap=True)
    console.print(f"[bold red]error:[/] {escape(printable(message))}")
    if hint:
        console.print(hint, markup=False)


def _config(path: Path | None) -> Config:
    from metering.config import load_config

    return load_config(path)


@app.command()
def bill(
    month: MonthOption,
    config: ConfigOption = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Decode every input again (forget the spool).")
    ] = False,
    allow_empty: Annotated[
        bool,
        typer.Option(
            "--allow-empty",
            help="Bill the month even when no source holds a record of it (else exit 1).",
        ),
    ] = False,
    engine: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="duckdb or spark: where calls are joined and rated (default: [engine] kind).",
        ),
    ] = None,
    from_aggregates: Annotated[
        str | None,
        typer.Option(
            "--from-aggregates",
            help="Finish the month from what `meter spark-job --out URI` wrote there.",
        ),
    ] = None,
    json: JsonOption = False,
) -> None:
    """Bill a month: read the sources, attribute and rate every call, write the warehouse.

    Exit status: 0 clean, 3 finished with quarantined input (or copies of a call that
    disagree), 1 failed or no record of the month (nothing written), 2 usage or config
    error.
    """
    with _errors("bill" if json else None):
        from metering.month import Month
        from metering.pipeline import bill as run_bill

        the_month = Month.parse(month)
        if engine not in (None, "duckdb", "spark"):
            from metering.errors import UsageError

            raise UsageError(f"--engine {engine!r}: give duckdb or spark")
        cfg = _config(config)
        with _progress() as progress:
            if from_aggregates is not None:
                from metering.spark.bill import bill_from_aggregates

                result = bill_from_aggregates(
                    cfg, the_month, from_aggregates, progress, allow_empty=allow_empty
                )
            else:
                result = run_bill(
                    cfg, the_month, progress, fresh=fresh, allow_empty=allow_empty, engine=engine
                )
        if json:
            from metering import jsondoc

            _print_json(jsondoc.bill(result))
        else:
            from metering.render import bill_summary

            bill_summary(result)
    raise typer.Exit(result.exit_code)


@app.command("spark-job")
def spark_job(
    month: MonthOption,
    out: Annotated[
        str,
        typer.Option(
            "--out", help="Folder or s3:// prefix for the month's sums, accounting and calls."
        ),
    ],
    config: ConfigOption = None,
) -> None:
    """Join, attribute, rate and sum a month in Spark (what spark-submit, Glue or EMR
    Serverless run: `python -m metering.spark`); `meter bill --from-aggregates` finishes it.

    Exit status: 0 written, 1 failed, 2 usage or config error.
    """
    with _errors():
        from metering.month import Month
        from metering.spark.bill import spark_job as run_job

        the_month = Month.parse(month)
        cfg = _config(config)
        with _progress() as progress:
            made = run_job(cfg, the_month, out, progress)
        counters = made.inputs.both.counters
        typer.echo(
            printable(
                f"spark-job {the_month}: {counters.files_read:,} files, {made.inputs.rows:,} "
                f"rows decoded, {counters.quarantined:,} quarantined; written to {out}"
            )
        )
        finish = f"{cfg.command(f'meter bill --month {the_month}')} --from-aggregates {out}"
        typer.echo(printable(f"finish the bill with: {finish}"))


LOG_EVERY = 10.0  # seconds between progress lines in a log (not a terminal)


@contextmanager
def _progress() -> Iterator[Progress]:
    """A progress bar on a terminal; in a log (stderr not a terminal), a timestamped line
    per stage at most every ``LOG_EVERY`` seconds, and when it is done."""
    if not sys.stderr.isatty():
        yield _log_lines()
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
        console=None,
    )
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    with bar:
        yield update


def _log_lines() -> Progress:
    """Progress as plain lines on stderr, for cron logs and CI: ``2026-11-01T02:00:13Z
    cloudtrail files 4,210/9,219 (46 %, 310/s)``."""
    import time
    from datetime import UTC, datetime

    from metering.schemas import PERCENT

    started: dict[str, float] = {}
    said: dict[str, float] = {}  # when each stage last said how far it got
    ended: set[str] = set()  # the stages that said they were done

    def update(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        first = started.setdefault(stage, now)
        finished = total > 0 and done >= total
        if stage in ended or (not finished and now - said.get(stage, first) < LOG_EVERY):
            return
        said[stage] = now
        if finished:
            ended.add(stage)
        at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        # (A share in per cent has no rate worth saying.)
        rate = f", {done / (now - first):,.0f}/s" if now > first and total != PERCENT else ""
        share = f" ({done / total:.0%}{rate})" if total else ""
        print(f"{at} {stage} {done:,}/{total:,}{share}", file=sys.stderr, flush=True)

    return update


@app.command()
def export(
    month: MonthOption,
    format: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="finance (CSV), charges (CSV: each tenant's charges), focus (FinOps FOCUS "
            "1.2 CSV) or parquet (tenant_month, tenant_day and calls, for BI and dbt: a "
            "folder).",
        ),
    ] = "finance",
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="File to write (default: stdout); parquet: a folder."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Export a billed month: the finance CSV, each tenant's charges or FinOps FOCUS rows, or
    its tables as Parquet."""
    with _errors():
        from metering.month import Month
        from metering.outputs import export as run_export

        if format == "parquet":
            from metering.errors import UsageError
            from metering.outputs import export_parquet

            if out is None:
                raise UsageError("--format parquet writes a folder of files: give --out DIR")
            for path in export_parquet(_config(config), Month.parse(month), out):
                typer.echo(f"wrote {path} ({path.stat().st_size:,} bytes)", err=True)
            return
        data = run_export(_config(config), Month.parse(month), format)
        if out is None:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
            typer.echo(f"wrote {out} ({len(data):,} bytes)", err=True)


@app.command()
def close(
    month: MonthOption,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")] = "",
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Close a billed month: later `meter bill` runs of it are refused until it is reopened."""
    with _errors("close" if json else None):
        from metering.month import Month
        from metering.period import set_month_state

        event = set_month_state(_config(config), Month.parse(month), "closed", reason)
        if json:
            from metering import jsondoc

            _print_json(jsondoc.month_event("close", month, event))
        else:
            typer.echo(f"{month} closed by {event.by} at {event.at:%Y-%m-%d %H:%M:%S} UTC")


@app.command()
def reopen(
    month: MonthOption,
    reason: Annotated[
        str, typer.Option("--reason", help="Why it must change (required, recorded).")
    ],
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Reopen a closed month so it can be billed again; who, when and why are recorded."""
    with _errors("reopen" if json else None):
        from metering.errors import UsageError
        from metering.month import Month
        from metering.period import set_month_state

        if not reason.strip():
            raise UsageError("--reason is required: say why the month must change")
        event = set_month_state(_config(config), Month.parse(month), "reopened", reason)
        if json:
            from metering import jsondoc

            _print_json(jsondoc.month_event("reopen", month, event))
        else:
            said = f"{month} reopened by {event.by} at {event.at:%Y-%m-%d %H:%M:%S} UTC: {reason}"
            typer.echo(printable(said))


@app.command()
def publish(
    month: MonthOption,
    dsn: Annotated[
        str | None,
        typer.Option(
            "--dsn",
            help="PostgreSQL to publish to (else [publish] dsn, else METER_PUBLISH_DSN).",
            show_default=False,
        ),
    ] = None,
    role: Annotated[
        str | None,
        typer.Option("--role", help="The application's role, given read access (default: app)."),
    ] = None,
    config: ConfigOption = None,
    json: JsonOption = False,
) -> None:
    """Publish a billed month's per-tenant usage to PostgreSQL, behind row-level security.

    Each tenant then reads its own rows (month totals, days, operations) with app.tenant_id
    set, as the metering hook sets it; one transaction per month; publishing the same run
    again changes nothing.
    """
    with _errors("publish" if json else None):
        from metering.month import Month
        from metering.period import publish_month

        done = publish_month(_config(config), Month.parse(month), dsn, role)
        if json:
            from metering import jsondoc

            _print_json(jsondoc.publish(done))
            return
        where = f"{done.schema} ({done.tenants:,} tenants, run {done.run_id})"
        mark = ", provisional: the month is not closed" if done.provisional else ", closed"
        if done.status == "unchanged":
            typer.echo(f"{month}: already published to {where}{mark}; nothing changed")
        elif done.status == "published":
            typer.echo(f"{month}: published to {where}{mark}")
        else:
            before = (
                f"replaced run {done.previous_run_id}"
                if done.status == "replaced"
                else "same run, its provisional mark changed"
            )
            changed = ", ".join(done.changed) or "none"
            said = f"{month}: published to {where}{mark}; {before}; tenants changed: {changed}"
            typer.echo(printable(said))  # tenant ids come from the input


@app.command()
def diff(month: MonthOption, config: ConfigOption = None, json: JsonOption = False) -> None:
    """Show what changed per tenant (calls, units, amount) between the last two runs of a month.

    Exit status 4 when the month has fewer than two runs: nothing to compare.
    """
    with _errors("diff" if json else None):
        from metering.month import Month
        from metering.period import diff as run_diff

        runs, frame = run_diff(_config(config), Month.parse(month))
        code = OK if len(runs) >= 2 else NOTHING_TO_DO
        if json:
            from metering import jsondoc

            _print_json(jsondoc.diff(month, runs, frame, code))
        else:
            from metering.render import run_diff as render_diff

            render_diff(month, runs, frame)
    raise typer.Exit(code)


@app.command()
def rls(
    table: Annotated[
        str | None, typer.Option("--table", help="Table to isolate by tenant.")
    ] = None,
    column: Annotated[str, typer.Option("--column", help="The tenant column.")] = "tenant_id",
    role: Annotated[str, typer.Option("--role", help="The application's database role.")] = "app",
    column_type: Annotated[
        str,
        typer.Option(
            "--type",
            help="The tenant column's type: smallint, integer, bigint (int2, int, int4, int8), "
            "numeric[(P[,S])], text, varchar[(N)], character varying[(N)] or uuid.",
        ),
    ] = "bigint",
    check: Annotated[
        str | None, typer.Option("--check", help="DSN: report tables lacking isolation instead.")
    ] = None,
    json: JsonOption = False,
) -> None:
    """Print PostgreSQL row-level-security DDL for a table, or --check a database for gaps.

    The DDL enables and forces RLS, adds a policy on
    NULLIF(current_setting('app.tenant_id', true), '') and revokes TRUNCATE from the app role.
    """
    with _errors("rls" if json else None):
        from metering.errors import UsageError
        from metering.rls import rls_check, rls_ddl

        if check is not None:
            problems = rls_check(check, column=column, role=role)
            code = ATTENTION if problems else OK  # (a database that cannot be read: 1)
            if json:
                from metering import jsondoc

                _print_json(jsondoc.rls_check(problems, code))
            else:
                for problem in problems:
                    typer.echo(printable(str(problem)))  # names come from the database
                typer.echo(f"{len(problems)} problem(s) found", err=True)
            raise typer.Exit(code)
        if json:
            raise UsageError("--json goes with --check DSN; the DDL is printed as SQL")
        if table is None:
            raise UsageError("give --table TABLE for the DDL, or --check DSN to audit a database")
        typer.echo(rls_ddl(table, column=column, role=role, column_type=column_type))


@app.command()
def sample(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the sample into.")],
    month: MonthOption = "2026-10",
    tenants: Annotated[int, typer.Option("--tenants", help="Number of tenants.", min=2)] = 8,
    calls: Annotated[
        int, typer.Option("--calls", help="Data API calls in the month.", min=1)
    ] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same bytes).")] = 7,
    noise_share: Annotated[
        float | None,
        typer.Option(
            "--noise-share",
            help="Share of CloudTrail records from other services (S3, STS, KMS); "
            "default 0.3 per Data API record, about 0.23.",
            min=0.0,
            max=0.99,
        ),
    ] = None,
    delivery_minutes: Annotated[
        int,
        typer.Option(
            "--delivery-minutes",
            help="Minutes of CloudTrail deliveries per file: 5 is what a real trail writes "
            "(about 8,900 files a month); the default 120 keeps the sample small.",
            min=1,
            max=1440,
        ),
    ] = 120,
    json: JsonOption = False,
) -> None:
    """Generate a realistic sample month: CloudTrail files, a metering-record export, its AWS
    invoice (CUR 2.0), a tenants registry and a meter.toml (the same seed gives the same
    bytes)."""
    with _errors("sample" if json else None):
        from metering.month import Month
        from metering.sample import generate

        with _progress() as progress:
            summary = generate(
                out, Month.parse(month), tenants, calls, seed, noise_share, delivery_minutes,
                progress,
            )  # fmt: skip
        if json:
            from metering import jsondoc

            _print_json(jsondoc.sample(summary))
            return
        trail = summary.trail_data_api + summary.trail_noise
        typer.echo(
            f"wrote {summary.calls:,} calls of {summary.month} for {summary.tenants} tenants "
            f"({summary.malformed} malformed records on purpose) to {summary.out}\n"
            f"CloudTrail: {trail:,} records, {summary.trail_data_api:,} of them Data API "
            f"({summary.trail_data_api / trail:.1%})\n"
            f"next: meter bill --month {summary.month} --config {summary.config}"
        )


@app.command()
def report(month: MonthOption, config: ConfigOption = None, json: JsonOption = False) -> None:
    """Print a billed month in the terminal: tenant lines, totals, the unattributed share
    and the biggest payload-edge savings (calls just past a 32 KiB block edge)."""
    with _errors("report" if json else None):
        from metering.month import Month
        from metering.outputs import month_report

        result = month_report(_config(config), Month.parse(month))
        if json:
            from metering import jsondoc

            _print_json(jsondoc.report(result))
            return
        from metering.render import report_table

        report_table(result)


@app.command()
def chart(
    month: MonthOption,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder to write the PNG charts into.")
    ] = Path("charts"),
    config: ConfigOption = None,
) -> None:
    """Write PNG charts of a billed month: cost per tenant, cost per day and calls per day
    by tenant, payload sizes against the 32 KiB block edges, the savings per tenant, and
    (when the warehouse holds earlier months) the trend and each tenant's change from the
    month before."""
    with _errors():
        from metering.month import Month
        from metering.outputs import chart as run_chart

        with _progress() as progress:
            paths = run_chart(_config(config), Month.parse(month), out, progress=progress)
        for path in paths:
            typer.echo(f"wrote {path}")


def main() -> None:
    """Console-script entry point: run the command, then leave at once (``metering.leave``:
    exit functions run and output is flushed, the interpreter is not torn down)."""
    try:
        app()
        status: int | str | None = 0
    except SystemExit as exc:
        status = exc.code
    if isinstance(status, str):  # as Python does with sys.exit("text")
        print(status, file=sys.stderr)
        status = 1
    from metering.leave import leave

    leave(status or 0)
