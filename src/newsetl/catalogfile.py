"""What the marker tells about the catalog file without opening it: which snapshot it shows,
whether it is byte for byte what newsetl wrote, whether the warehouse moved since.

No DuckDB here: `newsetl status` and the read commands' first look cost a stat, the marker and
at most one digest of the file (newsetl.catalog opens it when these cannot tell)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .store import Warehouse, read_marker


def sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def shown(wh: Warehouse) -> dict | None:
    """The marker entry of the catalog file as it is now, if known."""
    try:
        ino = os.stat(wh.catalog).st_ino
    except OSError:
        return None
    m = read_marker(wh)
    for entry in (m, m.get("previous") or {}):
        if entry.get("inode") == ino:
            return {k: entry[k] for k in ("snapshot", "inode", "stamp") if k in entry}
    if "inode" not in m and m.get("snapshot"):  # an older newsetl's marker, written after the file
        return {"snapshot": m["snapshot"], "inode": ino}
    return None


def catalog_snapshot(wh: Warehouse) -> str | None:
    """The name of the snapshot the catalog file shows (None: no catalog file, or not known)."""
    entry = shown(wh)
    return entry["snapshot"] if entry else None


def moved_from(wh: Warehouse) -> str | None:
    """Where the warehouse was when newsetl last wrote its catalog, if not here (it was copied
    or moved since: the catalog's fallback path names that folder); "" for a catalog of an
    older newsetl, whose views name every file by its absolute path; None otherwise."""
    marker = read_marker(wh)
    if not marker.get("snapshot"):
        return None  # no catalog written yet
    root = marker.get("root")
    if not isinstance(root, str):
        return ""
    return None if root == os.path.realpath(wh.root) else root


def as_written(wh: Warehouse) -> bool:
    """The catalog file holds, byte for byte, what newsetl wrote there (its digest is the
    marker's) for the warehouse where it is now: its objects are the snapshot's, as written,
    without opening it (most of `newsetl status`). Any change to the file, or a move, is a no."""
    marker = read_marker(wh)
    return bool(marker.get("sha256")) and moved_from(wh) is None and sha256(wh.catalog) == marker["sha256"]
