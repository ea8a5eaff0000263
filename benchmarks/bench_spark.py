"""The same generated month billed by both engines on this machine (issue 19).

Run by hand, never from the test suite (see benchmarks/README.md):

    .venv/bin/python benchmarks/bench_spark.py [--calls 700000] [--master local[2]]

It generates a month with ``meter sample`` (cached under ``--work``), bills a fresh copy of
it with ``meter bill --engine duckdb`` and another with ``meter bill --engine spark`` (Spark's
master from ``--master``, through the MASTER variable, so both copies keep the same config
and bill as the same run), each as a subprocess with ``METER_TRACE=1``, and reports each
one's wall time and the time of each traced stage, and whether the finance CSVs are the
same bytes. Spark's time includes starting its JVM (about 10-20 s): on one machine it is
there to show the two engines agree, not to win; it pays off on a cluster, where the
decoding of 10^4 files and the joins spread over many executors.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

METER = [sys.executable, "-m", "metering"]
MONTH = "2026-10"
STAGE = re.compile(r"^\[meter\]\s+([\d.]+) s\s+(.*)$")


def sample_month(work: Path, calls: int, seed: int, minutes: int) -> Path:
    """The generated month (``meter sample``), made once and reused."""
    folder = work / f"month-{calls}-seed{seed}-{minutes}min"
    if not (folder / "meter.toml").exists():
        shutil.rmtree(folder, ignore_errors=True)
        subprocess.run(
            [
                *METER,
                "sample",
                "--out",
                str(folder),
                "--month",
                MONTH,
                "--calls",
                str(calls),
                "--seed",
                str(seed),
                "--delivery-minutes",
                str(minutes),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return folder


def fresh_copy(month: Path, target: Path) -> Path:
    """A copy of the month's inputs (hard links) with no warehouse, spool or calls."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(
        month,
        target,
        copy_function=os.link,
        ignore=shutil.ignore_patterns("meter.duckdb*", "meter.spool", "meter.calls"),
    )
    return target / "meter.toml"


def bill(config: Path, engine: str, master: str) -> dict[str, object]:
    """One ``meter bill`` of the month: wall time, traced stages, exit status."""
    env = {**os.environ, "METER_TRACE": "1", "MASTER": master}
    started = time.perf_counter()
    done = subprocess.run(
        [*METER, "bill", "--month", MONTH, "--config", str(config), "--engine", engine],
        capture_output=True,
        text=True,
        env=env,
    )
    wall = time.perf_counter() - started
    stages = {}
    for line in done.stderr.splitlines():
        if found := STAGE.match(line):  # (a progress line may end up glued to it)
            stages[re.split(r"\d{4}-\d\d-\d\dT", found[2])[0].strip()] = float(found[1])
    if done.returncode not in (0, 3):
        sys.exit(f"meter bill --engine {engine} failed:\n{done.stderr[-2000:]}")
    return {"engine": engine, "wall_s": round(wall, 2), "exit": done.returncode, "stages": stages}


def finance(config: Path) -> bytes:
    command = [*METER, "export", "--month", MONTH, "--format", "finance", "--config", str(config)]
    return subprocess.run(command, check=True, capture_output=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=700_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--delivery-minutes", type=int, default=5)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--work", type=Path, default=Path("/tmp/meter-bench-spark"))
    args = parser.parse_args()
    month = sample_month(args.work, args.calls, args.seed, args.delivery_minutes)
    runs = []
    configs = {}
    for engine in ("duckdb", "spark"):
        configs[engine] = fresh_copy(month, args.work / f"run-{engine}")
        runs.append(bill(configs[engine], engine, args.master))
    same = finance(configs["duckdb"]) == finance(configs["spark"])
    for run in runs:
        print(f"{run['engine']:>6}: {run['wall_s']:8.2f} s wall (exit {run['exit']})")
        for stage, seconds in run["stages"].items():  # type: ignore[attr-defined]
            print(f"        {seconds:8.2f} s  {stage}")
    print(f"finance CSVs the same bytes: {same}")
    report = {"calls": args.calls, "master": args.master, "runs": runs, "same_finance": same}
    (args.work / "bench-spark.json").write_text(json.dumps(report, indent=2))
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
