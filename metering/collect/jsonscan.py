"""Split a stream of JSON text into its records without decoding it, in bounded memory.

For a CloudTrail file that is too big to decode in one call, or damaged: the scanner
follows only the JSON structure (brackets, commas, strings) and hands out each record's
bytes, to be decoded on their own. A record is an element of the ``Records`` array of a
``{"Records": [...]}`` body, an element of a bare JSON array, or a top-level object (JSON
Lines, or a file holding one record).

So damage costs only what it touches: the records complete before a truncation, the
records after a broken line of JSON Lines, the body before junk are all handed out, and
each broken piece becomes one ``Broken``. A record larger than ``max_record`` bytes is
skipped without being held. Time is linear in the text; memory is a piece plus one record.

After a structural error (a bracket that closes nothing, a string cut by a line end) the
scanner goes on at the next line, as JSON Lines would; a new line that starts with ``{``
or ``[`` while a value is open also ends that value as cut (in pretty-printed JSON only
the outermost brackets sit in the first column).
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass

# Brackets, commas, a line end before an opening bracket, and strings (to their closing
# quote, or cut by a line end or the end of the text seen so far: group 1 is empty then).
_TOKEN = re.compile(rb'[\[\]{},]|\n(?=[\[{])|"[^"\\\n]*+(?:\\[^\n][^"\\\n]*+)*+("?)')
_STRING_REST = re.compile(rb'[^"\\\n]*+(?:\\[^\n][^"\\\n]*+)*+("?)')
_BODY = re.compile(rb'\{\s*"Records"\s*:\s*\[')
_SPACE = re.compile(rb"\s*+")
_CLOSES = {ord("]"): ord("["), ord("}"): ord("{")}
_PEEK = 64  # bytes needed to tell a body from a record at the start of a value


@dataclass(frozen=True, slots=True)
class Piece:
    """One record's bytes."""

    data: bytes
    where: str  # e.g. "record 7", "line 3", "line 3 record 2"


@dataclass(frozen=True, slots=True)
class Broken:
    """Text that could not be split into records, and why."""

    where: str
    reason: str


@dataclass(slots=True)
class _Value:
    """The top-level value being scanned."""

    line: int
    container: int  # the depth whose elements are records; 0: the value is one record
    start: int  # absolute offset of the record being held (of the value when container 0)
    count: int = 0  # records handed out from it
    oversize: bool = False  # the current record passed max_record: its bytes are dropped


class Scanner:
    """Feed text with ``feed``, then ``end``; each yields what it completed."""

    def __init__(self, max_record: int) -> None:
        self.max_record = max_record
        self.buf = b""
        self.offset = 0  # absolute offset of buf[0]
        self.pos = 0  # absolute offset scanning resumes at
        self.stack = bytearray()  # open brackets of the value
        self.value: _Value | None = None
        self.values = 0  # top-level values seen
        self.in_string = False  # a string goes on past the text seen so far
        self.junk: int | None = None  # the line of junk being skipped at top level
        self.skipping = False  # after an error: resume at the next line
        self._lines_at = (0, 1)  # (absolute offset, its line number): counted so far
        self.last = ""  # where the last record handed out was

    # -- positions ---------------------------------------------------------------------

    def _line(self, at: int) -> int:
        """The line number of absolute offset ``at`` (never before the last one asked)."""
        counted, line = self._lines_at
        if at > counted:
            line += self.buf.count(b"\n", counted - self.offset, at - self.offset)
            self._lines_at = (at, line)
        return line

    def _where(self, value: _Value, index: int) -> str:
        if value.container == 0:
            return f"line {value.line}"
        if self.values == 1 and value.line == 1:
            return f"record {index}"
        return f"line {value.line} record {index}"

    # -- feeding -----------------------------------------------------------------------

    def feed(self, text: bytes) -> Iterator[Piece | Broken]:
        value = self.value
        keep = self.pos if value is None or value.oversize else min(value.start, self.pos)
        self._line(keep)  # count the lines of what is dropped
        self.buf = self.buf[keep - self.offset :] + text
        self.offset = keep
        yield from self._scan(final=False)

    def end(self, damage: str | None = None) -> Iterator[Piece | Broken]:
        """The rest; ``damage``: why the text ended early (it ends what was open)."""
        yield from self._scan(final=True)
        if self.junk is not None:
            yield _junk(self.junk)
            self.junk = None
        value = self.value
        self.value = None
        stop = self.offset + len(self.buf)
        if (
            value is not None
            and 0 < value.container == len(self.stack)  # between records, not inside one
            and not value.oversize
            and self.buf[value.start - self.offset :].rstrip().endswith((b"}", b"]"))
        ):  # the last record is whole: only what follows it is cut
            yield from self._element(value, stop)
            value.start = stop
        if value is not None and (
            value.container <= 0 or value.oversize or self.buf[value.start - self.offset :].strip()
        ):
            index = value.count + 1
            what = f"record {index}" if value.container > 0 else "its JSON value"
            reason = damage or f"truncated: the text ends inside {what}"
            if value.oversize:
                reason = f"the record is larger than {self.max_record:,} bytes: not read ({reason})"
            yield Broken(self._where(value, index), reason)
        elif value is not None:  # cut between two records
            where = f"after {self.last}" if self.last else "file"
            yield Broken(where, damage or f"truncated: the text ends {where}")
        elif damage is not None:
            yield Broken(f"after {self.last}" if self.last else "file", damage)

    # -- scanning ----------------------------------------------------------------------

    def _scan(self, final: bool) -> Iterator[Piece | Broken]:
        buf, offset = self.buf, self.offset
        end = offset + len(buf)
        while self.pos < end:
            if self.skipping or self.junk is not None:
                cut = buf.find(b"\n", self.pos - offset)
                if cut < 0:
                    self.pos = end
                    break
                self.pos = offset + cut + 1
                self.skipping = False
                if self.junk is not None:
                    yield _junk(self.junk)
                    self.junk = None
                continue
            if self.value is None:
                if not self._start(final):
                    break
                continue
            if self.in_string:
                match = _STRING_REST.match(buf, self.pos - offset)
                assert match is not None  # it can match nothing
                if not (yield from self._string_end(match, final)):
                    break
                continue
            match = _TOKEN.search(buf, self.pos - offset)
            if match is None:
                self.pos = end
                break
            at = offset + match.start()
            token = buf[match.start()]
            if token == ord('"'):
                if not (yield from self._string_end(match, final)):
                    break
                continue
            self.pos = at + 1
            if token == ord("\n"):
                value = self.value
                assert value is not None
                if self._line(at) == value.line:  # a new line opens a value while the
                    # value of the line before is open: that line was cut
                    yield from self._error(at, "the line ends inside a value")
                    self.skipping = False
                continue
            yield from self._token(token, at)
            self._check_size()
        self._check_size()

    def _check_size(self) -> None:
        value = self.value
        if value is not None and not value.oversize and self.pos - value.start > self.max_record:
            value.oversize = True

    def _string_end(
        self, match: re.Match[bytes], final: bool
    ) -> Generator[Piece | Broken, None, bool]:
        """After a string token or the rest of a string: False when more text is needed."""
        buf, offset = self.buf, self.offset
        if match.group(1):
            self.pos = offset + match.end()
            self.in_string = False
            return True
        stop = match.end()
        goes_on = stop == len(buf) or (stop == len(buf) - 1 and buf[stop] == ord("\\"))
        if goes_on and not final:  # into the next piece (a lone backslash waits for it)
            self.pos = offset + stop
            self.in_string = True
            self._check_size()
            return False
        self.in_string = False
        yield from self._error(offset + stop, "a string is cut by a line end")
        return True

    def _start(self, final: bool) -> bool:
        """At top level: start the next value, or skip white space or junk. False when
        more text is needed to tell."""
        buf, offset = self.buf, self.offset
        space = _SPACE.match(buf, self.pos - offset)
        assert space is not None  # \s* always matches
        self.pos = offset + space.end()
        if self.pos >= offset + len(buf):
            return False
        at = self.pos
        head = buf[at - offset]
        if head == ord("["):
            self.values += 1
            self.stack = bytearray(b"[")
            self.value = _Value(self._line(at), 1, at + 1)
        elif head == ord("{"):
            if len(buf) - (at - offset) < _PEEK and not final:
                return False
            self.values += 1
            body = _BODY.match(buf, at - offset)
            if body is not None:
                self.stack = bytearray(b"{[")
                self.value = _Value(self._line(at), 2, offset + body.end())
                self.pos = offset + body.end()
                return True
            self.stack = bytearray(b"{")
            self.value = _Value(self._line(at), 0, at)
        else:
            self.junk = self._line(at)
            return True
        self.pos = at + 1
        return True

    def _token(self, token: int, at: int) -> Iterator[Piece | Broken]:
        value = self.value
        assert value is not None
        depth = len(self.stack)
        if token in (ord("["), ord("{")):
            self.stack.append(token)
            return
        if token == ord(","):
            if depth == value.container:
                yield from self._element(value, at)
                value.start = at + 1
            return
        if not self.stack or self.stack[-1] != _CLOSES[token]:  # a closing bracket
            yield from self._error(at, f"{chr(token)!r} closes nothing")
            return
        self.stack.pop()
        if depth == value.container:  # the records' array closes
            yield from self._element(value, at)
            value.container = -1  # no more records in this value
            value.start = at + 1
        if not self.stack:  # the top-level value closes
            if value.container == 0:
                yield from self._element(value, at + 1)
            self.value = None

    def _element(self, value: _Value, stop: int) -> Iterator[Piece | Broken]:
        """Hand out the record from value.start to ``stop`` (absolute offsets)."""
        if value.oversize:
            value.count += 1
            value.oversize = False
            yield Broken(
                self._where(value, value.count),
                f"the record is larger than {self.max_record:,} bytes: not read",
            )
            return
        data = self.buf[value.start - self.offset : stop - self.offset].strip()
        if data:
            value.count += 1
            self.last = self._where(value, value.count)
            yield Piece(data, self.last)

    def _error(self, at: int, what: str) -> Iterator[Piece | Broken]:
        """A structural error at ``at``: the record being read is broken; go on at the
        next line."""
        value = self.value
        line = self._line(at)
        if value is not None:
            index = value.count + 1
            yield Broken(self._where(value, index), f"invalid JSON at line {line}: {what}")
        self.value = None
        self.stack = bytearray()
        self.in_string = False
        self.skipping = True
        self.pos = at


def _junk(line: int) -> Broken:
    return Broken(f"line {line}", "not JSON: text outside any JSON value")


def scan(pieces: Iterable[bytes], max_record: int) -> Iterator[Piece | Broken]:
    """The records of the JSON text ``pieces``, each ``Piece`` or ``Broken``."""
    scanner = Scanner(max_record)
    for text in pieces:
        yield from scanner.feed(text)
    yield from scanner.end()
