"""The text of an input object, gunzipped when it is gzip, piece by piece, and its lines.

Memory stays at about one piece however large the object, however far it expands and
however long its lines: a gzip bomb is stopped once it has expanded past
``limits.MAX_EXPANSION`` times its compressed size, and a line longer than the bound the
reader gives is skipped unread (reported as ``Overlong``). Damage to the stream (a
truncated or corrupt gzip, junk after it, a read that failed) ends the text; what was
readable before it has been given out, and ``Text.damage`` says what happened.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from isal import isal_zlib  # ISA-L inflates about twice as fast as stock zlib

from metering import limits
from metering.collect.files import InputObject, Reader
from metering.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
_inflate_error: tuple[type[Exception], ...] = (isal_zlib.IsalError, zlib.error)  # type: ignore[assignment]


class Text:
    """The text of one object. Iterate ``pieces()`` once; then ``damage`` and ``reader``
    (the fingerprint) are known."""

    def __init__(self, obj: InputObject, md5: bool = False) -> None:
        self.reader = Reader(obj, md5)
        self.damage: str | None = None
        self.unreadable = False  # the damage is a failed read: it may go away (not kept)
        self.size = 0  # bytes of text given out

    def pieces(self, size: int | None = None) -> Iterator[bytes]:
        """The text, in pieces of at most ``size`` bytes (``limits.PIECE_BYTES``); not cut
        at lines."""
        size = size or limits.PIECE_BYTES
        raw = iter(self.reader)
        try:
            first = next(raw, b"")
            chunks = _chained(first, raw)
            if first.startswith(GZIP_MAGIC):
                yield from self._inflated(chunks, size)
            else:
                for chunk in chunks:
                    for start in range(0, len(chunk), size):
                        self.size += min(size, len(chunk) - start)
                        yield chunk[start : start + size]
        except InputError as exc:
            self.damage = f"cannot read further: {exc}"
            self.unreadable = True

    def _inflated(self, chunks: Iterator[bytes], size: int) -> Iterator[bytes]:
        """Gunzip ``chunks`` (one gzip member or several, NUL padding between them)."""
        member: Any = isal_zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        pending = b""  # compressed bytes not yet given to ``member``
        fed = 0  # compressed bytes given to the inflaters so far
        for chunk in chunks:
            pending += chunk
            while pending:
                if member is None:  # between members: NUL padding, then the next one
                    pending = pending.lstrip(b"\x00")
                    if len(pending) < len(GZIP_MAGIC):
                        break  # more bytes are needed to tell
                    if not pending.startswith(GZIP_MAGIC):
                        self.damage = "trailing garbage after the gzip stream"
                        return
                    member = isal_zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                given = len(pending)
                try:
                    out = member.decompress(pending, size)
                except _inflate_error as exc:
                    self.damage = f"corrupt gzip data: {exc}"
                    return
                pending = member.unconsumed_tail
                if member.eof:
                    pending = member.unused_data
                    member = None
                fed += given - len(pending)
                if out:
                    self.size += len(out)
                    yield out
                    if self.size > limits.WHOLE_FILE_BYTES and self.size > (
                        limits.MAX_EXPANSION * fed
                    ):
                        self.damage = (
                            f"the gzip stream expands to more than {limits.MAX_EXPANSION} times "
                            f"its compressed size (a gzip bomb?): not read past {self.size:,} "
                            "bytes of text"
                        )
                        return
                elif member is not None and not pending:
                    break  # the member needs more input
        if member is not None:
            self.damage = "truncated gzip: the file ends before the gzip stream does"
        elif pending.strip(b"\x00"):
            self.damage = "trailing garbage after the gzip stream"


def _chained(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    if first:
        yield first
    yield from rest


@dataclass(frozen=True, slots=True)
class Block:
    """Whole lines of text (the last one perhaps without its line end)."""

    text: bytes
    first_line: int  # the number of its first line (1-based)
    lines: int  # how many (counted once: counting 16 MiB of text is not free)
    cut: bool = False  # the last line before damage: whole, or cut (part of the damage)

    @property
    def last_line(self) -> int:
        return self.first_line + self.lines - 1


@dataclass(frozen=True, slots=True)
class Overlong:
    """A line longer than the reader's bound, skipped unread."""

    line: int
    limit: int

    @property
    def reason(self) -> str:
        return f"the line is longer than {self.limit:,} bytes: not read"


def line_blocks(pieces: Iterable[bytes], max_line: int, text: Text) -> Iterator[Block | Overlong]:
    """The lines of ``text`` (given as its ``pieces``), a piece at a time; a line longer
    than ``max_line`` bytes is skipped (``Overlong``) without being held. After damage,
    the last line (which lacks its line end) is given out as a ``cut`` block: the reader
    keeps what is whole in it; the rest is part of the damage."""
    carry = b""
    line = 1  # the number of the line ``carry`` starts
    skipping = False  # inside an overlong line
    for piece in _at_most(pieces, max_line):
        data = carry + piece if carry else piece
        if skipping:
            end = data.find(b"\n")
            if end < 0:
                continue
            yield Overlong(line, max_line)
            line += 1
            data = data[end + 1 :]
            skipping = False
        first_end = data.find(b"\n")
        if first_end > max_line:  # (lines after the first lie within one piece: short)
            yield Overlong(line, max_line)
            line += 1
            data = data[first_end + 1 :]
        cut = data.rfind(b"\n") + 1
        if cut:
            for block in _counted(data[:cut], line):
                yield block
                line = block.last_line + 1
        carry = data[cut:]
        if len(carry) > max_line:
            skipping, carry = True, b""
    if text.damage is None:
        if skipping:
            yield Overlong(line, max_line)
        elif carry:
            yield Block(carry, line, 1)
    elif carry.strip():
        yield Block(carry, line, 1, cut=True)


def _counted(text: bytes, line: int) -> Iterator[Block]:
    """Whole lines as blocks of at most ``limits.MAX_RECORDS_AT_ONCE`` lines each."""
    most = limits.MAX_RECORDS_AT_ONCE
    lines = text.count(b"\n")  # (``text`` ends with a line end)
    if lines <= most:  # (the usual case: lines of a record each)
        yield Block(text, line, lines)
        return
    start = 0
    while lines:
        end = start
        for _ in range(min(most, lines)):
            end = text.find(b"\n", end) + 1
        yield Block(text[start:end], line, min(most, lines))
        line, start, lines = line + min(most, lines), end, lines - min(most, lines)


def _at_most(pieces: Iterable[bytes], size: int) -> Iterator[bytes]:
    for piece in pieces:
        if len(piece) <= size:
            yield piece
        else:
            yield from (piece[start : start + size] for start in range(0, len(piece), size))


def lines_of(block: bytes, first_line: int = 1) -> list[tuple[int, bytes]]:
    """(line number, line) for each non-blank line of ``block``."""
    return [
        (number, line)
        for number, line in enumerate(block.split(b"\n"), start=first_line)
        if line.strip()
    ]
