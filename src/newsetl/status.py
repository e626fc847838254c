"""`newsetl status`: what the warehouse holds, in a few lines for a human."""

from __future__ import annotations

import datetime as dt
import json
import os

from .catalog import connect, inspect_catalog, repair_catalog
from .schema import WAREHOUSE_TABLES
from .remote import open_warehouse
from .store import Warehouse


def _ago(t: dt.datetime | None) -> str:
    if t is None:
        return "never"
    s = (dt.datetime.now(dt.timezone.utc) - t).total_seconds()
    for unit, n in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if s >= n:
            k = int(s // n)
            return f"{t:%Y-%m-%d %H:%M:%S} UTC ({k} {unit}{'s' if k > 1 else ''} ago)"
    return f"{t:%Y-%m-%d %H:%M:%S} UTC (just now)"


def _catalog_state(wh: Warehouse, snap) -> list[str]:
    """Nothing when the catalog file shows the current snapshot exactly (its views checked
    against the snapshot's, not only its marker), or was just rewritten to; else what is wrong
    and the fix. A catalog changed by hand is rewritten when it can be, and said so."""
    state, details = inspect_catalog(wh, snap)
    if state == "ok":
        return []
    if state in ("stale", "missing", "changed") and repair_catalog(wh, snap, state):
        if state != "changed":
            return []  # what a run killed after publishing leaves: healed as every read command does
        return [f"          REWRITTEN: {wh.catalog.name} had been changed outside newsetl ({'; '.join(details)}); "
                f"newsetl wrote it again for snapshot {snap.name}"]
    if state == "stale":
        shown = details[0] if details else None
        what = (f"STALE: {wh.catalog.name} shows {f'snapshot {shown}' if shown else 'an older snapshot'}, not the "
                f"current {snap.name} (a run stopped after publishing): the DuckDB shell sees older data than newsetl")
    elif state == "missing":
        what = f"MISSING: {wh.catalog.name} was never written (a run stopped after publishing): the DuckDB shell cannot open it"
    elif state == "changed":
        what = (f"CHANGED: {wh.catalog.name} does not match snapshot {snap.name} ({'; '.join(details)}): it was changed "
                "outside newsetl, and the DuckDB shell may see wrong data")
    elif state == "unreadable":
        what = (f"UNREADABLE: {wh.catalog.name} cannot be opened ({details[0]}); if a DuckDB shell has it open for "
                "writing, close it")
    else:  # foreign
        return [f"          NOT NEWSETL'S: {wh.catalog.name} is {details[0]}: newsetl leaves it as it is, and runs "
                "refuse this folder until it is gone",
                f"          to fix: move {wh.catalog} elsewhere (with the objects you added); the next newsetl command "
                "writes the catalog again"]
    holder = wh.locked_by()
    if holder:
        fix = f"the run that holds the lock ({holder}) rewrites it when it publishes"
    elif not os.access(wh.root, os.W_OK):
        fix = f"run `newsetl status --warehouse {wh.root}` as a user who may write to that folder: it rewrites the catalog"
    else:
        fix = f"run `newsetl status --warehouse {wh.root}` (any newsetl command rewrites it when it can write the folder)"
    return [f"          {what}", f"          to fix: {fix}"]


def status(warehouse, snapshot: str | None = None) -> str:
    """What the warehouse holds; with `snapshot`, what that kept snapshot holds (the catalog file,
    which shows the current one, is then left out)."""
    wh = open_warehouse(warehouse)
    if snapshot is not None:
        current = wh.require_current()
        current = current["snapshot"] if isinstance(current, dict) else current.name
        con = connect(warehouse, snapshot=wh.snapshot(snapshot))
        head = [f"warehouse {wh.root}", f"snapshot  {snapshot} ({'the current one' if snapshot == current else f'kept; the current one is {current}'})"]
    elif wh.remote:
        doc = wh.require_current()
        con = connect(warehouse, snapshot=doc)
        head = [f"warehouse {wh.url}", f"snapshot  {doc['snapshot']} (committed {doc.get('committed_at', '?')})",
                "catalog   none in object storage (`newsetl run ... --catalog PATH` writes one for the DuckDB shell)"]
    else:
        snap = wh.require_current()
        con = connect(warehouse, snapshot=snap)
        head = [f"warehouse {wh.root}", f"snapshot  {snap.name}", f"catalog   {wh.catalog}", *_catalog_state(wh, snap)]
    try:
        lines = head
        last = con.execute("SELECT run_id, finished_at, duration_s FROM runs WHERE status = 'completed' "
                           "ORDER BY started_at DESC LIMIT 1").fetchall()[0]
        changed = con.execute(
            "SELECT max(finished_at) FROM runs WHERE status = 'completed' AND "
            "(files_new + files_changed + files_deleted) > 0").fetchall()[0][0]
        failed = con.execute("SELECT count(*) FROM runs WHERE status = 'failed'").fetchall()[0][0]
        lines.append(f"last run  {last[0]}, finished {_ago(last[1])}, took {last[2]:.1f} s")
        lines.append(f"last change to the data: {_ago(changed)}")
        if failed:
            lines.append(f"failed runs: {failed} (killed or crashed before publishing; see `newsetl runs`)")
        files = dict(con.execute("SELECT status, count(*) FROM source_files GROUP BY 1").fetchall())
        lines.append("files     " + ", ".join(f"{files.get(s, 0):,} {s}" for s in ("loaded", "duplicate", "rejected")))
        lines.append("rows      " + ", ".join(
            f"{t.name} {con.execute(f'SELECT count(*) FROM {t.name}').fetchall()[0][0]:,}" for t in WAREHOUSE_TABLES))
    finally:
        con.close()
    if wh.remote:
        running = wh.running()
        if running:
            lines.append(f"runs in progress or died before publishing: {', '.join(running)}")
        return "\n".join(lines)
    try:
        running = json.loads(wh.running_marker.read_text())
        lines.append(f"a run is in progress or died before publishing: {running.get('run_id')} "
                     f"(started {running.get('started_at')})")
    except (FileNotFoundError, ValueError):
        pass
    return "\n".join(lines)
