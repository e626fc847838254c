"""Publish: make a built snapshot the current one, then show it in the catalog.

A commit is one atomic step (store.Warehouse.commit: the `current` link is
swapped), so a reader sees the old snapshot or the new one, never a mix. The
catalog file is written after it, beside the old one and renamed into place;
a run killed in between leaves a catalog that the next command heals
(catalog.heal_catalog). pipeline.run calls these in order, with its fault
points between them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .catalog import write_catalog
from .store import Warehouse

if TYPE_CHECKING:
    from .build import Built


def commit(built: Built, wh: Warehouse) -> Path:
    """Make the built snapshot current (atomic) and clear the run's in-progress marker."""
    final = wh.commit(Path(built.snapshot), built.run_id)
    wh.end()
    return final


def catalog(wh: Warehouse, snapshot: Path) -> None:
    """Point the catalog file at the new snapshot."""
    if wh.remote:  # no catalog file in object storage: readers read the pointer (`--catalog PATH` writes one)
        return
    write_catalog(wh, snapshot)
