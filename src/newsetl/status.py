"""`newsetl status`: what the warehouse holds, in a few lines for a human."""

from __future__ import annotations

import datetime as dt
import json
import os

from .catalog import catalog_snapshot, connect
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
    """Nothing when the catalog file shows the current snapshot; else what is wrong and the fix."""
    if wh.catalog.exists():
        shown = catalog_snapshot(wh)
        if shown == snap.name:
            return []
        what = (f"STALE: {wh.catalog.name} shows {f'snapshot {shown}' if shown else 'an older snapshot'}, not the "
                f"current {snap.name} (a run stopped after publishing): the DuckDB shell sees older data than newsetl")
    else:
        what = f"MISSING: {wh.catalog.name} was never written (a run stopped after publishing): the DuckDB shell cannot open it"
    holder = wh.locked_by()
    if holder:
        fix = f"the run that holds the lock ({holder}) rewrites it when it publishes"
    elif not os.access(wh.root, os.W_OK):
        fix = f"run `newsetl status --warehouse {wh.root}` as a user who may write to that folder: it rewrites the catalog"
    else:
        fix = f"run `newsetl status --warehouse {wh.root}` (any newsetl command rewrites it when it can write the folder)"
    return [f"          {what}", f"          to fix: {fix}"]


def status(warehouse) -> str:
    wh = open_warehouse(warehouse)
    if wh.remote:
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
