"""The monthly close: the job a scheduler runs early each month.

Bills the previous month (or ``--month``), writes the finance CSV, the FOCUS export, the
charges CSV (with ``[[shared_costs]]``) and the charts into ``<out>/<month>/``, and closes
the month only when the run was clean: no quarantined input, no copies of a call that
disagree, reconciliation within ``--tolerance`` and, with ``[invoice]``, the month's units
within ``[invoice] tolerance`` of the requests AWS invoiced. Once closed, the month's
per-tenant usage is published to PostgreSQL for tenants to see when a DSN is configured
(``[publish] dsn`` or METER_PUBLISH_DSN). Composes library functions only; its exit status
tells the scheduler what happened:

    0  billed, exported and closed
    3  billed and exported, left open: a human should look (the reasons are printed)
    4  the month was already closed: nothing done
    1  failed: nothing written
    2  usage or configuration error

    python pipelines/monthly_close.py --config meter.toml --out /srv/chargeback
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import metering
from metering import Month

CLOSED, NEEDS_REVIEW, ALREADY_CLOSED, FAILED = 0, 3, 4, 1


def run(config_path: Path | None, out: Path, month: Month, tolerance: float) -> int:
    config = metering.load_config(config_path)
    try:
        result = metering.bill(config, month)
    except metering.MonthClosedError as exc:
        print(f"{month}: already closed, nothing to do ({exc})")
        return ALREADY_CLOSED
    folder = out / str(month)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"finance_{month}.csv").write_bytes(metering.export(config, month, "finance"))
    (folder / f"focus_{month}.csv").write_bytes(metering.export(config, month, "focus"))
    exports = 2
    if config.shared_costs:  # each tenant's charges: the finance CSV's amounts, itemised
        (folder / f"charges_{month}.csv").write_bytes(metering.export(config, month, "charges"))
        exports += 1
    charts = metering.chart(config, month, folder / "charts")
    print(
        f"{month}: billed {result.bill.total_units:,} units, {result.bill.amount} "
        f"{result.bill.currency} (run {result.run_id}); wrote {exports} exports and "
        f"{len(charts)} charts to {folder}"
    )
    problems = metering.health(config, month, tolerance).problems
    if problems:
        print(f"{month}: left open for review:\n  " + "\n  ".join(problems))
        return NEEDS_REVIEW
    metering.close_month(config, month, f"monthly close job, run {result.run_id}")
    print(f"{month}: clean, closed")
    if config.publish.dsn or os.environ.get("METER_PUBLISH_DSN"):
        done = metering.publish_month(config, month)
        print(f"{month}: published to {done.schema} for {done.tenants:,} tenants ({done.status})")
    return CLOSED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config", type=Path, help="meter.toml (default: $METER_CONFIG, else ./meter.toml)"
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the dated outputs")
    parser.add_argument("--month", help="YYYY-MM (default: the previous month, UTC)")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=0.001,
        help="largest share of calls seen in only one source that still closes (default 0.001)",
    )
    args = parser.parse_args(argv)
    try:
        now = datetime.now(UTC)
        month = Month.parse(args.month) if args.month else Month(now.year, now.month).previous()
        return run(args.config, args.out, month, args.tolerance)
    except metering.MeteringError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
