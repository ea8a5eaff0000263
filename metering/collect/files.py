"""Finding input objects, local or ``s3://``, and reading their bytes piece by piece.

Collectors see only ``InputObject``s and byte pieces; where they came from stays here and
in ``_aws`` (the only module that imports boto3). Nothing here holds a whole object: a
file of any size is read in pieces of ``RAW_PIECE_BYTES``.

Only regular files are read. A named pipe, socket or device among the inputs (``/dev/zero``
behind a symlink, say), a dangling symlink, a symlink loop or a folder that cannot be
listed is refused with a quarantine entry and the rest is read; a configured root that is
no folder or regular file is an ``InputError``. Symlinked folders are followed, each real
folder once.
"""

from __future__ import annotations

import errno
import hashlib
import os
import posixpath
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from metering.errors import InputError
from metering.schemas import QuarantineEntry

RAW_PIECE_BYTES = 8 * 1024 * 1024  # bytes read from a file or S3 object at once


@dataclass(frozen=True, slots=True)
class InputObject:
    """One file or S3 object under a configured root."""

    uri: str  # where it is: an absolute path or s3://bucket/key
    name: str  # its path relative to the configured root, with '/' separators
    size: int
    tag: str = ""  # S3 ETag, or "" for local files (their digest is computed on read)
    mtime_ns: int = 0  # local files: modification time, to notice a changed file


@dataclass(slots=True)
class Listing:
    """The objects under a root, and what was found there but cannot be read."""

    objects: list[InputObject] = field(default_factory=list)
    refused: list[QuarantineEntry] = field(default_factory=list)


def is_s3(uri: str) -> bool:
    return uri.startswith("s3://")


def _kind(mode: int) -> str | None:
    """What a non-regular, non-folder file is (None for a regular file or a folder)."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "not a regular file"


def list_objects(root: str, keep: Callable[[str], bool] = lambda name: True) -> Listing:
    """Every object under ``root`` whose relative name ``keep`` accepts, sorted by name."""
    if is_s3(root):
        from metering.collect import _aws

        return Listing(sorted(_aws.list_objects(root, keep), key=lambda o: o.name))
    base = Path(root)
    try:
        info = base.stat()
    except FileNotFoundError:
        raise InputError(f"{root}: no such folder; check the path in meter.toml") from None
    except OSError as exc:
        raise InputError(f"{root}: cannot read it: {exc.strerror}") from None
    if stat.S_ISREG(info.st_mode):
        return Listing([InputObject(str(base), base.name, info.st_size, mtime_ns=info.st_mtime_ns)])
    if not stat.S_ISDIR(info.st_mode):
        raise InputError(
            f"{root}: is {_kind(info.st_mode)}, not a folder or a file; "
            "point meter.toml at the folder that holds the files"
        )
    listing = _walk(base, keep, (info.st_dev, info.st_ino))
    listing.objects.sort(key=lambda o: o.name)
    return listing


def find_object(uri: str, root: str) -> InputObject | None:
    """The one object at ``uri`` (a file or S3 object named outright, perhaps outside
    ``root``, which its name is relative to), or None when there is none. What cannot be
    read is found all the same: reading it says why."""
    name = posixpath.relpath(uri, root)
    if is_s3(uri):
        from metering.collect import _aws

        return _aws.find_object(uri, name)
    try:
        info = Path(uri).stat()
    except FileNotFoundError:
        return None
    except OSError:
        return InputObject(uri, name, 0)
    if stat.S_ISDIR(info.st_mode):
        return None
    return InputObject(uri, name, info.st_size, mtime_ns=info.st_mtime_ns)


def _walk(base: Path, keep: Callable[[str], bool], identity: tuple[int, int]) -> Listing:
    """The files under the folder ``base``, following symlinks, each real folder once."""
    listing = Listing()
    seen = {identity}
    # (folder, its name relative to base, the real folders it lies in, its own included)
    stack: list[tuple[Path, str, tuple[tuple[int, int], ...]]] = [(base, "", (identity,))]
    while stack:
        folder, prefix, ancestors = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            listing.refused.append(
                QuarantineEntry(str(folder), "folder", f"cannot list the folder: {exc.strerror}")
            )
            continue
        for entry in reversed(entries):  # the stack pops them in name order
            name = prefix + entry.name
            # A plain file no month needs is passed over without a system call (the
            # folder's listing says what it is); folders and symlinks are looked at.
            try:
                symlink = entry.is_symlink()
                is_folder = not symlink and entry.is_dir(follow_symlinks=False)
            except OSError:  # looked at below, and refused if it cannot be read
                symlink, is_folder = True, False
            wanted = not is_folder and keep(name)
            if not (wanted or symlink or is_folder):
                continue
            try:
                info = entry.stat()  # follows symlinks
            except OSError as exc:
                if wanted or symlink:
                    listing.refused.append(QuarantineEntry(entry.path, "file", _unreachable(exc)))
                continue
            if stat.S_ISDIR(info.st_mode):
                real = (info.st_dev, info.st_ino)
                if real in ancestors:
                    reason = "a symlink loop: it leads back to a folder it lies in; not followed"
                    listing.refused.append(QuarantineEntry(entry.path, "folder", reason))
                elif real not in seen:  # a folder reached twice is read once
                    seen.add(real)
                    stack.append((Path(entry.path), f"{name}/", (*ancestors, real)))
                continue
            if not wanted:
                continue
            kind = _kind(info.st_mode)
            if kind is not None:
                listing.refused.append(
                    QuarantineEntry(entry.path, "file", f"{kind}, not a regular file: not read")
                )
                continue
            listing.objects.append(
                InputObject(entry.path, name, info.st_size, mtime_ns=info.st_mtime_ns)
            )
    return listing


def _unreachable(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "a dangling symlink: what it points to does not exist"
    if exc.errno == errno.ELOOP:
        return "a symlink loop: it never reaches a file"
    return f"cannot read it: {exc.strerror}"


class Reader:
    """The bytes of one object, piece by piece, and their fingerprint once read.

    Raises ``InputError`` when the object cannot be opened or read (a file that vanished
    or became a pipe since it was listed, an S3 object AWS refuses).
    """

    def __init__(self, obj: InputObject, md5: bool = False) -> None:
        self.obj = obj
        self.read = 0  # bytes read so far
        self.complete = False  # read to its end
        self._sha = None if obj.tag else hashlib.sha256()
        self._md5 = hashlib.md5(usedforsecurity=False) if md5 else None

    def __iter__(self) -> Iterator[bytes]:
        pieces = _s3_pieces(self.obj.uri) if is_s3(self.obj.uri) else _file_pieces(self.obj.uri)
        for piece in pieces:
            self.read += len(piece)
            if self._sha is not None:
                self._sha.update(piece)
            if self._md5 is not None:
                self._md5.update(piece)
            yield piece
        self.complete = True

    @property
    def digest(self) -> str:
        """A content fingerprint: the S3 ETag when there is one, else SHA-256 of the bytes."""
        return self.obj.tag or (self._sha.hexdigest() if self._sha is not None else "")

    @property
    def md5(self) -> bytes | None:
        """MD5 of all the bytes (when asked for, and read to the end)."""
        return self._md5.digest() if self._md5 is not None and self.complete else None


def _file_pieces(path: str) -> Iterator[bytes]:
    try:
        # O_NONBLOCK: a file that became a pipe since it was listed must not block the open.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise InputError(f"{path}: cannot open: {exc.strerror}") from None
    with os.fdopen(fd, "rb", buffering=0) as f:
        kind = _kind(os.fstat(fd).st_mode)
        if kind is not None:
            raise InputError(f"{path}: {kind}, not a regular file: not read")
        while True:
            try:
                piece = f.read(RAW_PIECE_BYTES)
            except OSError as exc:
                raise InputError(f"{path}: cannot read: {exc.strerror}") from None
            if not piece:
                return
            yield piece


def _s3_pieces(uri: str) -> Iterator[bytes]:
    from metering.collect import _aws

    yield from _aws.object_pieces(uri, RAW_PIECE_BYTES)


def read_small(obj: InputObject, limit: int) -> bytes:
    """All the bytes of a small object (a manifest); ``InputError`` past ``limit`` bytes."""
    pieces = []
    size = 0
    for piece in Reader(obj):
        size += len(piece)
        if size > limit:
            raise InputError(f"{obj.uri}: larger than {limit:,} bytes; not a manifest meter reads")
        pieces.append(piece)
    return b"".join(pieces)
