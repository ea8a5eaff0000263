"""The tenants registry (SPEC 2.3): ``tenant_id,tenant_name,cost_center`` (+ extra columns)."""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import polars as pl

from metering.errors import ConfigError
from metering.text import CONTROL, codepoint

REQUIRED = ("tenant_id", "tenant_name", "cost_center")


def read_registry(path: str | None) -> pl.DataFrame:
    """The registry as strings, one row per tenant; empty when none is configured."""
    if path is None:
        return pl.DataFrame(schema=dict.fromkeys(REQUIRED, pl.Utf8))
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, [])
            _refuse_controls(path, 1, [], header)
            rows = []
            line = reader.line_num + 1  # where the next record starts
            for cells in reader:
                _refuse_controls(path, line, header, cells)
                if cells:  # a blank line holds no tenant
                    rows.append(dict(zip(header, cells, strict=False)))
                line = reader.line_num + 1
    except FileNotFoundError:
        raise ConfigError(_MISSING.format(path=path)) from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{path}: cannot read the tenants registry: {exc}") from None
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ConfigError(
            f"{path}: the registry needs the columns {', '.join(REQUIRED)}; missing: "
            f"{', '.join(missing)}"
        )
    frame = pl.DataFrame(
        {c: [(row.get(c) or "").strip() for row in rows] for c in header},
        schema=dict.fromkeys(header, pl.Utf8),
    )
    duplicated = frame.filter(pl.col("tenant_id").is_duplicated())["tenant_id"].unique().sort()
    if len(duplicated):
        raise ConfigError(
            f"{path}: tenant_id listed more than once: {', '.join(duplicated.to_list()[:5])}"
        )
    return frame


_MISSING = "{path}: no such tenants registry; fix [tenants] registry"


def registry_digest(path: str) -> str:
    """SHA-256 of the registry's bytes (a run's identity depends on them)."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except FileNotFoundError:
        raise ConfigError(_MISSING.format(path=path)) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the tenants registry: {exc}") from None


def _refuse_controls(path: str, line: int, header: list[str], cells: list[str]) -> None:
    """Names and cost centres are printed and exported: no control character may hide in them.

    Cells are searched in file order, so the first control character found (a line break
    in a quoted cell included) is on the record's first line, ``line``.
    """
    for index, cell in enumerate(cells):
        found = CONTROL.search(cell)
        if found:
            column = header[index] if index < len(header) else f"#{index + 1}"
            raise ConfigError(
                f"{path}: line {line}, column {column}: control character "
                f"{codepoint(found.group())}; remove it from the tenants registry"
            )
