"""The tenants registry (SPEC 2.3): ``tenant_id,tenant_name,cost_center`` (+ extra columns)."""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl

from metering.errors import InputError

REQUIRED = ("tenant_id", "tenant_name", "cost_center")


def read_registry(path: str | None) -> pl.DataFrame:
    """The registry as strings, one row per tenant; empty when none is configured."""
    if path is None:
        return pl.DataFrame(schema=dict.fromkeys(REQUIRED, pl.Utf8))
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or [])
            rows = list(reader)
    except FileNotFoundError:
        raise InputError(f"{path}: no such tenants registry; fix [tenants] registry") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: cannot read the tenants registry: {exc}") from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InputError(
            f"{path}: the registry needs the columns {', '.join(REQUIRED)}; missing: "
            f"{', '.join(missing)}"
        )
    frame = pl.DataFrame(
        {c: [(row.get(c) or "").strip() for row in rows] for c in header},
        schema=dict.fromkeys(header, pl.Utf8),
    )
    duplicated = frame.filter(pl.col("tenant_id").is_duplicated())["tenant_id"].unique().sort()
    if len(duplicated):
        raise InputError(
            f"{path}: tenant_id listed more than once: {', '.join(duplicated.to_list()[:5])}"
        )
    return frame
