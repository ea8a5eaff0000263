"""What a month's last bill leaves for the next one: its joined calls and what they came from.

A re-bill that only adds input files (a new day, late deliveries) joins again only the
calls the new files touch (``attribute.delta``) and rewrites only those calls in the
warehouse. That is safe only while everything else is as the last bill left it: the same
config and the same meter SQL (the ``recipe``), the warehouse's newest run of the month is
that bill, and every spooled file it read is still there, unchanged. Otherwise the month
is joined from scratch.

Kept in the spool folder, in ``joined/<month>/`` (``meter bill --fresh`` forgets it with
the rest): ``manifest.json`` names the run, the recipe and the spooled Parquet files read
(with size and modification time: a file decoded again is a changed file), and the joined
calls are in ``<run_id>.parquet``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

Stamp = tuple[int, int]  # size, modification time in ns
SOURCES = ("events", "records")


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
class Previous:
    """The last bill of a month, as it left its joined calls."""

    run_id: str
    joined: Path
    read: dict[str, dict[str, Stamp]]  # per source, the spooled files it read

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
        joined = manifest.with_name(meta["joined"])
        read = {
            source: {path: (int(size), int(mtime)) for path, (size, mtime) in meta[source].items()}
            for source in SOURCES
        }
        run_id = str(meta["run_id"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if meta.get("recipe") != recipe or not joined.is_file():
        return None
    return Previous(run_id, joined, read)


def scratch(folder: Path, month: str) -> Path:
    """Where a bill writes its joined calls while it runs (``remember`` keeps them). What
    a killed bill left there is removed: only one bill runs on a warehouse at a time."""
    place = _manifest(folder, month).parent
    place.mkdir(parents=True, exist_ok=True)
    for stale in place.glob("*.tmp"):
        stale.unlink(missing_ok=True)
    return place / f"joined.{os.getpid()}.tmp"


def remember(
    folder: Path,
    month: str,
    recipe: str,
    run_id: str,
    read: Mapping[str, Sequence[Path]],
    written: Path,
) -> None:
    """Keep this bill's joined calls (``written``) for the next bill of ``month``; call it
    once the bill is in the warehouse.

    Failing to is no error: the next bill then joins everything, as a first one does.
    """
    stamps = {source: _stamps(read[source]) for source in SOURCES}
    manifest = _manifest(folder, month)
    joined = manifest.with_name(f"{run_id}.parquet")
    tmp = manifest.with_suffix(f".{os.getpid()}.tmp")
    try:
        manifest.unlink(missing_ok=True)
        if any(s is None for s in stamps.values()):  # a spooled file vanished meanwhile
            return
        os.replace(written, joined)
        meta = {"run_id": run_id, "recipe": recipe, "joined": joined.name}
        tmp.write_text(json.dumps({**meta, **stamps}))
        os.replace(tmp, manifest)
    except OSError:
        tmp.unlink(missing_ok=True)
        return
    for old in manifest.parent.glob("*.parquet"):
        if old != joined:
            old.unlink(missing_ok=True)
