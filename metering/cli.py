"""The ``meter`` command: each command parses, calls one library function, renders.

Heavy modules (polars, duckdb, boto3) are imported inside the commands so that
``meter --help`` stays instant. Library errors (``MeteringError``) become one red line
and an exit status; ``--debug`` shows the traceback (without locals: credentials live
there).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from metering import __version__
from metering.errors import MeteringError

if TYPE_CHECKING:
    from metering.config import Config

app = typer.Typer(
    name="meter",
    help="Per-tenant cost metering and chargeback for the RDS Data API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="meter.toml to use (finds the warehouse).")
]
MonthOption = Annotated[str, typer.Option("--month", "-m", help="Billing month, YYYY-MM (UTC).")]

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
def _errors() -> Iterator[None]:
    """Turn library errors into one red line and their exit status."""
    try:
        yield
    except MeteringError as exc:
        if _state["debug"]:
            raise
        from rich.console import Console

        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"[bold red]error:[/] {exc}", markup=True
        )
        raise typer.Exit(exc.exit_code) from None


def _config(path: Path) -> Config:
    from metering.config import load_config

    return load_config(path)


@app.command()
def bill(month: MonthOption, config: ConfigOption = Path("meter.toml")) -> None:
    """Bill a month: read the sources, attribute and rate every call, write the warehouse.

    Exit status: 0 clean, 3 finished with quarantined input, 1 failed (nothing written),
    2 usage or config error.
    """
    with _errors():
        from metering.month import Month
        from metering.pipeline import bill as run_bill

        the_month = Month.parse(month)
        cfg = _config(config)
        with _progress() as progress:
            result = run_bill(cfg, the_month, progress)
        from metering.render import bill_summary

        bill_summary(result)
    raise typer.Exit(result.exit_code)


@contextmanager
def _progress() -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar on a terminal, nothing otherwise (logs stay clean)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
        disable=not sys.stderr.isatty(),
        console=None,
    )
    tasks: dict[str, Any] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    with bar:
        yield update


@app.command()
def export(
    month: MonthOption,
    format: Annotated[str, typer.Option("--format", "-f", help="finance (CSV).")] = "finance",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="File to write (default: stdout).")
    ] = None,
    config: ConfigOption = Path("meter.toml"),
) -> None:
    """Export a billed month: the finance CSV, one row per tenant line."""
    with _errors():
        from metering.month import Month
        from metering.pipeline import export as run_export

        data = run_export(_config(config), Month.parse(month), format)
        if out is None:
            sys.stdout.buffer.write(data)
            sys.stdout.flush()
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(data)
            typer.echo(f"wrote {out} ({len(data):,} bytes)", err=True)


@app.command()
def sample(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write the sample into.")],
    month: MonthOption = "2026-10",
    tenants: Annotated[int, typer.Option("--tenants", help="Number of tenants.", min=2)] = 8,
    calls: Annotated[
        int, typer.Option("--calls", help="Data API calls in the month.", min=1)
    ] = 10_000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same bytes).")] = 7,
) -> None:
    """Generate a realistic sample month: metering-record export, registry, meter.toml."""
    with _errors():
        from metering.month import Month
        from metering.sample import generate

        summary = generate(out, Month.parse(month), tenants, calls, seed)
        typer.echo(
            f"wrote {summary.calls:,} calls of {summary.month} for {summary.tenants} tenants "
            f"({summary.malformed} malformed records on purpose) to {summary.out}\n"
            f"next: meter bill --month {summary.month} --config {summary.config}"
        )


def main() -> None:
    """Console-script entry point."""
    app()
