"""Metering records (SPEC 2.2): DynamoDB typed attributes -> the RECORDS frame.

One decoding path for every place records come from. DynamoDB JSON (an export's
``{"Item": {...}}`` lines) and the low-level client's item dicts (a live table) are both
decoded into the same msgspec structs: the structs declare only the attributes meter
needs and their DynamoDB types, so msgspec checks types in C and skips the rest. Values
are then checked in bulk with polars (whole numbers, bounds, timestamps) and bad rows go
to quarantine with the attribute and the value that was wrong.

Incremental exports write ``{"Metadata": {"WriteTimestampMicros": {"N": ...}}, "Keys":
{...}, "NewImage": {...}, "OldImage": {...}}`` lines: a ``NewImage`` is a put or an update
(a version of the item, written at ``WriteTimestampMicros``: the ``written_us`` column); a
line with ``Keys`` and no ``NewImage`` (``OldImage`` or not) is a delete. Metering tables
delete by TTL expiry, which never un-bills a call: deletes are counted, never quarantined.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import polars as pl

from metering import limits
from metering.collect.checks import Check, kept_strings, shown, split
from metering.collect.text import lines_of
from metering.schemas import RECORDS, QuarantineEntry, Withheld

TOO_DEEP = "nested too deeply for meter to decode (thousands of levels)"
TS_FORMAT = "%Y-%m-%dT%H:%M:%S%.fZ"


class S(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    S: str


class N(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    N: str


class OptionalS(msgspec.Struct, gc=False):
    S: str | None = None


class Item(msgspec.Struct, gc=False):
    """The attributes meter reads; every other attribute is skipped unread."""

    request_id: S
    tenant_id: S
    ts: S
    operation: S
    request_bytes: N
    response_bytes: N
    resource_arn: OptionalS | None = None
    principal_arn: OptionalS | None = None
    error_code: OptionalS | None = None


_Item = Item


class Metadata(msgspec.Struct, gc=False):
    """What an incremental export says of a change besides the item: when it was written."""

    WriteTimestampMicros: N | None = None


_Metadata = Metadata


class ExportLine(msgspec.Struct, gc=False):
    """A line of a DynamoDB export: full exports carry Item; incremental ones Metadata,
    Keys, and NewImage (a put or an update) or no NewImage (a delete). An OldImage says
    nothing meter needs: it is skipped unread."""

    Item: _Item | None = None
    NewImage: _Item | None = None
    Keys: dict[str, msgspec.Raw] | None = None
    Metadata: _Metadata | None = None


_lines_decoder = msgspec.json.Decoder(list[ExportLine])
_line_decoder = msgspec.json.Decoder(ExportLine)


@dataclass(slots=True)
class Decoded:
    """What a block of export lines held: the items (and their line numbers, and for an
    incremental export's lines the WriteTimestampMicros text), the lines quarantined, and
    how many lines were deletes (nothing to bill)."""

    items: list[Item] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    written: list[str | None] | None = field(default_factory=list)  # None: a full export's
    bad: list[QuarantineEntry] = field(default_factory=list)
    deleted: int = 0


_EXPECTED = {name: ("N" if name.endswith("_bytes") else "S") for name in Item.__struct_fields__}
_EXPECTED["WriteTimestampMicros"] = "N"
_AT = re.compile(
    r"^(?P<what>.*) - at `\$(?:\.(?:Item|NewImage|Metadata))?(?:\.(?P<attr>\w+))?(?P<rest>.*)`$"
)


def _problem(exc: msgspec.DecodeError | msgspec.ValidationError) -> str:
    """msgspec's message in DynamoDB terms: which attribute, which type."""
    text = str(exc)
    match = _AT.match(text)
    if match is None:
        return text
    what, attr = match["what"], match["attr"]
    if attr is None:
        field = re.search(r"field `(\w+)`", what)
        if "missing required field" in what and field:
            return f"missing attribute {field[1]}"
        return what
    expected = _EXPECTED.get(attr, "S")
    found = re.search(r"unknown field `(\w+)`", what)
    if found:
        return f"{attr} has DynamoDB type {found[1]}, expected {expected}"
    if "missing required field" in what:
        return f"{attr} has no {expected} value (expected DynamoDB type {expected})"
    return f"{attr}: {what}"


def decode_export_lines(lines: Sequence[tuple[int, bytes]], uri: str) -> Decoded:
    """Decode export lines (``{"Item": ...}``, or an incremental export's changes).

    The whole file is decoded in one call; only when that fails (or finds more values than
    lines: a line holding two) is it decoded line by line so the good lines are kept and
    each bad one is quarantined with its line number. The line end after each line keeps
    a line that ends inside a string from running on into the next.
    """
    try:
        decoded = _lines_decoder.decode(b"[" + b",\n".join(line for _, line in lines) + b"]")
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        decoded = []
    if len(decoded) == len(lines):
        return _sorted_out(zip((n for n, _ in lines), decoded, strict=True), uri)
    return _sorted_out([(number, _decode_one(line)) for number, line in lines], uri)


def _sorted_out(pairs: Iterable[tuple[int, ExportLine | str]], uri: str) -> Decoded:
    """Decoded lines (or why a line could not be decoded) as items, deletes and
    quarantine."""
    got = Decoded()
    written: list[str | None] = []
    for number, line in pairs:
        if isinstance(line, str):
            got.bad.append(QuarantineEntry(uri, f"line {number}", line))
            continue
        item = line.Item or line.NewImage
        if item is None:
            if line.Keys is not None:  # an incremental export's delete: nothing to bill
                got.deleted += 1
                continue
            got.bad.append(
                QuarantineEntry(uri, f"line {number}", "no Item, NewImage or Keys in the line")
            )
            continue
        got.items.append(item)
        got.numbers.append(number)
        stamp = line.Metadata.WriteTimestampMicros if line.Metadata is not None else None
        written.append(stamp.N if stamp is not None else None)
    got.written = written
    return got


def decode_export_text(
    text: bytes, uri: str, first_line: int = 1, lines: int | None = None
) -> Decoded:
    """``decode_export_lines`` for a whole file's text (of ``lines`` lines, when known),
    without splitting it in Python when every line is good (the common case): one
    ``decode_lines`` call in C. (It skips blank lines and reads two values on one line,
    which would number the lines wrong: it is used only when every line starts an object
    and there are as many items as lines.)"""
    if lines is None:
        lines = text.count(b"\n") + (not text.endswith(b"\n"))
    if text.startswith(b"{") and text.count(b"\n{") == lines - 1:
        try:
            decoded = _line_decoder.decode_lines(text)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            pass
        else:
            if len(decoded) == lines:
                numbers = range(first_line, first_line + lines)
                if all(line.Item is not None for line in decoded):  # a full export's items
                    items = [line.Item for line in decoded if line.Item is not None]
                    return Decoded(items, list(numbers), None)
                return _sorted_out(zip(numbers, decoded, strict=True), uri)
    return decode_export_lines(lines_of(text, first_line), uri)


def _decode_one(line: bytes) -> ExportLine | str:
    try:
        return _line_decoder.decode(line)
    except msgspec.ValidationError as exc:
        return _problem(exc)
    except msgspec.DecodeError as exc:
        return f"invalid JSON: {exc}"
    except RecursionError:
        return TOO_DEEP


def decode_table_items(
    raw_items: Sequence[dict[str, Any]], uri: str, first: int = 1
) -> tuple[list[Item], list[int], list[QuarantineEntry]]:
    """Decode low-level DynamoDB client items (``{"attr": {"S": ...}}``)."""
    items: list[Item] = []
    numbers: list[int] = []
    bad: list[QuarantineEntry] = []
    for number, raw in enumerate(raw_items, start=first):
        try:
            items.append(msgspec.convert(raw, Item))
            numbers.append(number)
        except msgspec.ValidationError as exc:
            key = raw.get("sk", {}).get("S") if isinstance(raw.get("sk"), dict) else None
            where = f"item {number}" + (f" (sk {key})" if key else "")
            bad.append(QuarantineEntry(uri, where, _problem(exc)))
    return items, numbers, bad


def items_frame(
    items: Sequence[Item], numbers: Sequence[int], written: Sequence[str | None] | None = None
) -> pl.DataFrame:
    """Raw string columns of the decoded items (``written``: their WriteTimestampMicros
    text, when they come from an incremental export), plus their locators."""
    frame = pl.DataFrame(
        {
            "locator": list(numbers),
            "request_id": [i.request_id.S for i in items],
            "tenant_id": [i.tenant_id.S for i in items],
            "ts": [i.ts.S for i in items],
            "operation": [i.operation.S for i in items],
            "request_bytes": [i.request_bytes.N for i in items],
            "response_bytes": [i.response_bytes.N for i in items],
            "resource_arn": [v.S if (v := i.resource_arn) is not None else None for i in items],
            "principal_arn": [v.S if (v := i.principal_arn) is not None else None for i in items],
            "error_code": [v.S if (v := i.error_code) is not None else None for i in items],
        },
        schema={"locator": pl.Int64, **{n: pl.Utf8 for n in RECORDS if n != "written_us"}},
    )
    if written is None:  # (a column of nulls, not built value by value)
        return frame.with_columns(written_us=pl.lit(None, pl.Utf8))
    return frame.with_columns(written_us=pl.Series(written, dtype=pl.Utf8))


_KEPT = ("tenant_id", "request_id", "operation", "resource_arn", "principal_arn", "error_code")


def size_bounds() -> dict[str, int]:
    """The bound of each size (SPEC 2.2), as ``limits`` holds it when a record is checked."""
    return {"request_bytes": limits.MAX_REQUEST_BYTES, "response_bytes": limits.MAX_RESPONSE_BYTES}


def _size_checks(column: str, limit: int) -> list[Check]:
    raw = shown(column)
    value = pl.col(f"_{column}")
    return [
        Check(value.is_null(), pl.format(f"{column} is not a whole number: {{}}", raw)),
        Check(
            (value < 0) | (value > limit),
            pl.format(f"{column} = {{}} is outside [0, {limit:,}]", raw),
        ),
    ]


def _checks(bounds: dict[str, int]) -> list[Check]:
    """The rules a record must keep to be billed (``bounds``: ``size_bounds()``)."""
    return [
        Check(pl.col("request_id").str.strip_chars() == "", pl.lit("request_id is empty")),
        Check(pl.col("tenant_id").str.strip_chars() == "", pl.lit("tenant_id is empty")),
        Check(
            pl.col("_ts").is_null(),
            pl.format(
                "ts is not a UTC ISO-8601 time like 2026-10-31T23:59:59.120Z: {}", shown("ts")
            ),
        ),
        *(check for column, bound in bounds.items() for check in _size_checks(column, bound)),
        Check(
            pl.col("written_us").is_not_null() & ~(pl.col("_written_us") >= 0).fill_null(False),
            pl.format(
                "Metadata.WriteTimestampMicros is not a whole number of microseconds: {}",
                shown("written_us"),
            ),
        ),
        *kept_strings({name: name for name in _KEPT}),
    ]


def validate(
    raw: pl.DataFrame, uri: str, locator: str = "line"
) -> tuple[pl.DataFrame, list[QuarantineEntry]]:
    """Check values in bulk; (RECORDS frame of good rows, quarantine entries for the rest)."""
    bounds = size_bounds()
    checked = raw.with_columns(
        _ts=pl.col("ts").str.to_datetime(TS_FORMAT, time_unit="ms", time_zone="UTC", strict=False),
        _request_bytes=pl.col("request_bytes").str.to_integer(strict=False),
        _response_bytes=pl.col("response_bytes").str.to_integer(strict=False),
        _written_us=pl.col("written_us").str.to_integer(strict=False),
    )
    kept, broken = split(checked, _checks(bounds))
    bad = broken.with_columns(
        # Only a size past its bound: the units the record would bill are known.
        _withheld=pl.col("_ts").is_not_null()
        & pl.all_horizontal([pl.col(f"_{column}") >= 0 for column in bounds])
        & pl.any_horizontal([pl.col(f"_{column}") > bound for column, bound in bounds.items()])
    )
    quarantine = [
        QuarantineEntry(
            uri,
            f"{locator} {number}",
            reason,
            Withheld(ts, operation, request_bytes, response_bytes) if withheld else None,
        )
        for number, reason, withheld, ts, operation, request_bytes, response_bytes in bad.select(
            "locator",
            "_reason",
            "_withheld",
            "ts",
            "operation",
            "_request_bytes",
            "_response_bytes",
        ).iter_rows()
    ]
    good = kept.select(
        pl.col("request_id"),
        pl.col("tenant_id"),
        pl.col("_ts").alias("ts"),
        pl.col("operation"),
        pl.col("_request_bytes").alias("request_bytes"),
        pl.col("_response_bytes").alias("response_bytes"),
        pl.col("resource_arn"),
        pl.col("principal_arn"),
        # absent on success (SPEC 2.2); an empty code says no more than an absent one
        pl.col("error_code").str.strip_chars().replace("", None),
        pl.col("_written_us").alias("written_us"),
    )
    return good.cast(RECORDS), quarantine  # type: ignore[arg-type]
