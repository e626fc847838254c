"""Publish: make a built snapshot the current one, then show it in the catalog.

A commit is one atomic step (store.Warehouse.commit: the `current` link is
swapped), so a reader sees the old snapshot or the new one, never a mix. The
catalog file is written after it, beside the old one and renamed into place;
a run killed in between leaves a catalog that the next command heals
(catalog.heal_catalog). pipeline.run calls these in order, with its fault
points between them. `rollback` makes a kept snapshot current again with the
same swap (on disk the `current` link, in object storage the pointer).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .catalog import write_catalog
from .remote import open_warehouse
from .store import LOCK_TIMEOUT, NoSuchSnapshot, Warehouse

if TYPE_CHECKING:
    from .build import Built


def commit(built: Built, wh: Warehouse) -> Path:
    """Make the built snapshot current (atomic) and clear the run's in-progress marker."""
    final = wh.commit(Path(built.snapshot), built.run_id)
    wh.end()
    return final


def catalog(wh: Warehouse, snapshot: Path, con=None) -> None:
    """Point the catalog file at the new snapshot (written on `con`, an in-memory DuckDB
    connection, if given)."""
    if wh.remote:  # no catalog file in object storage: readers read the pointer (`--catalog PATH` writes one)
        return
    write_catalog(wh, snapshot, con)


def rollback(warehouse, snapshot: str | None = None, *, lock_timeout: float = LOCK_TIMEOUT) -> tuple[str, str]:
    """Make the kept snapshot `snapshot` current again (default: the one the current snapshot was made
    from, which undoes the last run; for a snapshot that does not record it, the newest kept one older
    than it), under the run lock, atomically; returns (the snapshot current before, the one now).

    Nothing is copied or deleted: the snapshot rolled back from stays kept until collected, so a
    rollback can be undone by name. The next run compares the files with this snapshot's manifest
    and builds on its tables, as if the runs after it had not happened."""
    wh = open_warehouse(warehouse)
    wh.require_current()  # a folder that is not a warehouse yet is said so, and not created
    with wh.lock(lock_timeout):
        before = wh.current().name
        kept = wh.kept()
        if snapshot is None:
            snapshot = _back_one(wh, before, kept)
        if snapshot != before:
            final = wh.make_current(snapshot)
            catalog(wh, final)
    return before, snapshot


def _back_one(wh: Warehouse, current: str, kept: list[str]) -> str:
    """The snapshot `current` was made from, if kept; else, when it does not say, the newest kept
    older one. Never a snapshot that a rollback left behind: after `rollback S1` and a run that made
    S4 from S1, back one from S4 is S1, not the newer S3 rolled back from."""
    info = wh.snapshot_info(current)
    if "previous" in info:
        made_from = info["previous"]
        if made_from is None:
            raise NoSuchSnapshot(f"snapshot {current} of {wh.root} is its first: nothing to go back to "
                                 f"(kept: {', '.join(kept)})")
        if made_from not in kept:
            raise NoSuchSnapshot(f"snapshot {current} of {wh.root} was made from {made_from}, which is no longer "
                                 f"kept: name one of the kept snapshots ({', '.join(kept)})")
        return made_from
    older = [k for k in kept if k < current]
    if not older:
        raise NoSuchSnapshot(f"no kept snapshot of {wh.root} is older than the current one, {current}: "
                             f"nothing to go back to (kept: {', '.join(kept)})")
    return older[-1]


def kept_snapshots(warehouse):
    """The kept snapshots, newest first, as a table (`newsetl rollback --list`): each one's id,
    whether it is current, what made it (a run, or `newsetl check` recording its results again),
    and its articles and files."""
    import pyarrow as pa

    wh = open_warehouse(warehouse)
    doc = wh.require_current()
    current = doc["snapshot"] if isinstance(doc, dict) else doc.name
    rows = []
    for name in reversed(wh.kept()):
        info = wh.snapshot_info(name)
        counts = info.get("counts") or {}
        rows.append({"snapshot": name, "current": name == current, "made_by": "check" if "checked" in info else "run",
                     "articles": counts.get("articles"), "files": counts.get("source_files")})
    return pa.Table.from_pylist(rows, schema=pa.schema([("snapshot", pa.string()), ("current", pa.bool_()),
                                                        ("made_by", pa.string()), ("articles", pa.int64()),
                                                        ("files", pa.int64())]))
