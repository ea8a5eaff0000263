"""What a month's last bill leaves for the next one: its joined calls and what they came from.

A re-bill that only adds input files (a new day, late deliveries) joins again only the
calls the new files touch (``attribute.delta``) and rewrites only those calls in the
warehouse. That is safe only while everything else is as the last bill left it: the same
config and the same meter SQL (the ``recipe``), the warehouse's newest run of the month is
that bill, and every spooled file it read is still there, unchanged. Otherwise the month
is joined from scratch.

Kept in the spool folder, in ``joined/<month>/`` (``meter bill --fresh`` forgets it with
the rest): ``manifest.json`` names the run, the recipe and the spooled Parquet files read
(with size and modification time: a file decoded again is a changed file), and the parts
the joined calls are kept in: the calls one bill joined, ``<run_id>.parquet``, then for
each re-bill after it its ``attribute.delta.Patch``: the calls it joined again and the
ids it touched (``<run_id>.parquet``, ``<run_id>.events.parquet`` and
``<run_id>.requests.parquet``). After ``MAX_PATCHES`` patches, or once they would hold
more calls than half the base, a re-bill writes the month's joined calls as one file again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Stamp = tuple[int, int]  # size, modification time in ns
SOURCES = ("events", "records")
MAX_PATCHES = 8  # each one costs every read of the month's calls a filter
NAMES = ("joined", "events", "requests")  # the files of a patch, as PatchFiles has them
KINDS = ("", ".events", ".requests")  # and how their names end


def _stamps(paths: Sequence[Path]) -> dict[str, Stamp] | None:
    stamps = {}
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            return None
        stamps[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return stamps


def _manifest(folder: Path, month: str) -> Path:
    return folder / "joined" / month / "manifest.json"


@dataclass(frozen=True, slots=True)
class PatchFiles:
    """The files of an ``attribute.delta.Patch``."""

    joined: Path
    events: Path
    requests: Path
    replaces: bool

    def files(self) -> list[Path]:
        return [self.joined, self.events, self.requests]


@dataclass(frozen=True, slots=True)
class Kept:
    """The Parquet files a month's joined calls are kept in: the calls one bill joined,
    then patches over them (see ``attribute.delta.Patch``)."""

    base: Path
    patches: tuple[PatchFiles, ...] = ()

    def files(self) -> list[Path]:
        return [self.base, *(path for patch in self.patches for path in patch.files())]

    def patched(self, patch: PatchFiles) -> Kept:
        return Kept(self.base, (*self.patches, patch))


@dataclass(frozen=True, slots=True)
class Previous:
    """The last bill of a month, as it left its joined calls."""

    run_id: str
    kept: Kept
    read: dict[str, dict[str, Stamp]]  # per source, the spooled files it read

    def compact(self, patched: int, base: int) -> bool:
        """Whether the next bill should write the joined calls as one file again, when its
        patches (this bill's too) would hold ``patched`` calls and the base ``base``: after
        MAX_PATCHES patches, or once they hold more than half as many calls as the base (a
        new full export of the metering table, say, touches every call)."""
        return len(self.kept.patches) >= MAX_PATCHES or 2 * patched > base

    def added(self, read: Mapping[str, Sequence[Path]]) -> dict[str, list[Path]] | None:
        """Per source, the spooled files of ``read`` the last bill did not read; None if a
        file it read is not among them any more or has changed since."""
        added = {}
        for source in SOURCES:
            now, before = _stamps(read[source]), self.read[source]
            if now is None or any(now.get(path) != stamp for path, stamp in before.items()):
                return None
            added[source] = [path for path in read[source] if str(path) not in before]
        return added


def recall(folder: Path, month: str, recipe: str) -> Previous | None:
    """The last bill of ``month`` with the same ``recipe`` (config and SQL fingerprint), if
    it left its joined calls (a manifest that cannot be read counts as none)."""
    manifest = _manifest(folder, month)
    try:
        meta = json.loads(manifest.read_text())
        place = manifest.parent
        base = place / meta["base"]
        patches = tuple(_patch_files(place, patch) for patch in meta["patches"])
        read = {
            source: {path: (int(size), int(mtime)) for path, (size, mtime) in meta[source].items()}
            for source in SOURCES
        }
        run_id = str(meta["run_id"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    kept = Kept(base, patches)
    if meta.get("recipe") != recipe or not all(path.is_file() for path in kept.files()):
        return None
    return Previous(run_id, kept, read)


def _patch_files(place: Path, named: dict[str, Any]) -> PatchFiles:
    """A patch as the manifest names it (see ``_kept_patch``)."""
    joined, events, requests = (place / named[name] for name in NAMES)
    return PatchFiles(joined, events, requests, named["replaces"] is True)


class Scratch:
    """Where a bill writes the files it keeps while it runs (``remember`` renames them).
    What a killed bill left there is removed: only one bill runs on a warehouse at a time."""

    def __init__(self, folder: Path, month: str) -> None:
        self.place = _manifest(folder, month).parent
        self.place.mkdir(parents=True, exist_ok=True)
        self.clear("*")

    def base(self) -> Path:
        return self._named("")

    def patch(self, replaces: bool) -> PatchFiles:
        joined, events, requests = (self._named(kind) for kind in KINDS)
        return PatchFiles(joined, events, requests, replaces)

    def _named(self, kind: str) -> Path:
        return self.place / f"joined{kind}.{os.getpid()}.tmp"

    def clear(self, pid: str | None = None) -> None:
        """Remove this bill's files (or those of ``pid``: ``*`` for any bill's)."""
        for stale in self.place.glob(f"*.{pid or os.getpid()}.tmp"):
            stale.unlink(missing_ok=True)


def remember(
    folder: Path,
    month: str,
    recipe: str,
    run_id: str,
    read: Mapping[str, Sequence[Path]],
    kept: Kept,
) -> None:
    """Keep this bill's joined calls (``kept``) for the next bill of ``month``; call it
    once the bill is in the warehouse. The files this bill wrote (named by ``Scratch``)
    are renamed after ``run_id``.

    Failing to is no error: the next bill then joins everything, as a first one does.
    """
    stamps = {source: _stamps(read[source]) for source in SOURCES}
    manifest = _manifest(folder, month)
    tmp = manifest.with_suffix(f".{os.getpid()}.tmp")
    try:
        manifest.unlink(missing_ok=True)
        if any(s is None for s in stamps.values()):  # a spooled file vanished meanwhile
            return
        base = _keep(kept.base, run_id, "")
        patches = [_kept_patch(patch, run_id) for patch in kept.patches]
        meta = {"run_id": run_id, "recipe": recipe, "base": base.name, "patches": patches}
        tmp.write_text(json.dumps({**meta, **stamps}))
        os.replace(tmp, manifest)
    except OSError:
        tmp.unlink(missing_ok=True)
        return
    wanted = {base.name, *(patch[name] for patch in patches for name in NAMES)}
    for old in manifest.parent.glob("*.parquet"):
        if old.name not in wanted:
            old.unlink(missing_ok=True)


def _kept_patch(patch: PatchFiles, run_id: str) -> dict[str, str | bool]:
    """A patch as the manifest names it, its files kept."""
    files = zip(NAMES, patch.files(), KINDS, strict=True)
    return {
        **{name: _keep(path, run_id, kind).name for name, path, kind in files},
        "replaces": patch.replaces,
    }


def _keep(path: Path, run_id: str, kind: str) -> Path:
    """The file of a part under its kept name (renamed there if this bill wrote it)."""
    if path.suffix != ".tmp":
        return path
    kept = path.with_name(f"{run_id}{kind}.parquet")
    os.replace(path, kept)
    return kept
