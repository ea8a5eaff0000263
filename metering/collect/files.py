"""Finding and opening input objects, local or ``s3://``, gzip or plain.

Collectors see only ``InputObject``s and bytes; where they came from stays here and in
``_aws`` (the only module that imports boto3).
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from isal import isal_zlib  # ISA-L inflates about twice as fast as stock zlib

from metering.errors import InputError

GZIP_MAGIC = b"\x1f\x8b"
CHUNK_BYTES = 16 * 1024 * 1024  # text handled at once when a large file is read piecewise
_inflater = isal_zlib.decompressobj
_inflate_error: tuple[type[Exception], ...] = (isal_zlib.IsalError, zlib.error)  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class InputObject:
    """One file or S3 object under a configured root."""

    uri: str  # where it is: an absolute path or s3://bucket/key
    name: str  # its path relative to the configured root, with '/' separators
    size: int
    tag: str = ""  # S3 ETag, or "" for local files (their digest is computed on read)
    mtime_ns: int = 0  # local files: modification time, to notice a changed file


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def list_objects(root: str, keep: Callable[[str], bool] = lambda name: True) -> list[InputObject]:
    """Every object under ``root`` whose relative name ``keep`` accepts, sorted by name."""
    if is_s3(root):
        from metering.collect import _aws

        return sorted(_aws.list_objects(root, keep), key=lambda o: o.name)
    base = Path(root)
    if base.is_file():
        stat = base.stat()
        return [InputObject(str(base), base.name, stat.st_size, mtime_ns=stat.st_mtime_ns)]
    if not base.is_dir():
        raise InputError(f"{root}: no such folder; check the path in meter.toml")
    found = []
    for folder, dirs, files in os.walk(base):
        dirs.sort()
        for file in sorted(files):
            path = Path(folder, file)
            name = path.relative_to(base).as_posix()
            if keep(name):
                stat = path.stat()
                found.append(InputObject(str(path), name, stat.st_size, mtime_ns=stat.st_mtime_ns))
    return found


def read_object(obj: InputObject) -> bytes:
    """The raw bytes of one object."""
    if is_s3(obj.uri):
        from metering.collect import _aws

        return _aws.get_object(obj.uri)
    try:
        return Path(obj.uri).read_bytes()
    except OSError as exc:
        raise InputError(f"{obj.uri}: cannot read: {exc.strerror}") from None


def digest(obj: InputObject, data: bytes) -> str:
    """A content fingerprint: the S3 ETag when there is one, else SHA-256 of the bytes."""
    return obj.tag or hashlib.sha256(data).hexdigest()


def text_chunks(data: bytes, size: int = CHUNK_BYTES) -> Iterator[tuple[bytes, str | None]]:
    """The text of ``data`` (gunzipped if gzip), as pieces of whole lines of about ``size``.

    Pieces come as ``(text, None)``; a damaged stream ends with ``(b"", damage)``. What was
    readable before the damage has been given out, up to its last complete line, so a
    truncated file's good lines can still be billed. Memory stays at about ``size`` however
    large the file is.
    """
    if not data.startswith(GZIP_MAGIC):
        start = 0
        while start < len(data):
            cut = data.rfind(b"\n", start, start + size) + 1 or len(data)
            if cut <= start:
                cut = data.find(b"\n", start + size) + 1 or len(data)
            yield data[start:cut], None
            start = cut
        return
    carry = b""
    rest = data
    problem = None
    while rest and problem is None:
        inflater = _inflater(wbits=16 + zlib.MAX_WBITS)
        pending = rest
        while True:
            try:
                out = inflater.decompress(pending, size)
            except _inflate_error as exc:
                problem = f"corrupt gzip data: {exc}"
                break
            pending = inflater.unconsumed_tail
            if out:
                block = carry + out
                cut = block.rfind(b"\n") + 1
                if cut:
                    yield block[:cut], None
                carry = block[cut:]
            if inflater.eof:
                break
            if not out and not pending:
                problem = "truncated gzip: the file ends before the gzip stream does"
                break
        if problem is None:
            rest = inflater.unused_data.lstrip(b"\x00")
            if rest and not rest.startswith(GZIP_MAGIC):
                problem = "trailing garbage after the gzip stream"
    if problem is not None:
        yield b"", problem
    elif carry:
        yield carry, None


def decompress(data: bytes) -> tuple[bytes, str | None]:
    """All of ``text_chunks`` at once: (text, damage or None)."""
    pieces = []
    damage = None
    for piece, problem in text_chunks(data, size=1 << 30):
        pieces.append(piece)
        damage = damage or problem
    return b"".join(pieces), damage


def iter_lines(text: bytes) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line) for each non-blank line."""
    for number, line in enumerate(text.split(b"\n"), start=1):
        if line.strip():
            yield number, line
