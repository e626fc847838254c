"""`newsetl status`: what the warehouse holds, in a few lines for a human."""

from __future__ import annotations

import datetime as dt
import json
import os

from .catalogfile import as_written, catalog_snapshot
from .schema import WAREHOUSE_TABLES
from .remote import open_warehouse
from .store import Warehouse, read_info, recorded_counts, table_files

# DuckDB (newsetl.catalog) is imported only when the marker and snapshot.json cannot tell: a
# status of a warehouse as newsetl left it costs no DuckDB start-up (issue 24: 0.3 s)


class Report(str):
    """What `status` prints; `healthy` is false when the catalog's views do not all resolve in
    the DuckDB shell, or the snapshot cannot be read (`newsetl status` then exits 1)."""

    healthy = True


def _ago(t: dt.datetime | None) -> str:
    if t is None:
        return "never"
    s = (dt.datetime.now(dt.timezone.utc) - t).total_seconds()
    for unit, n in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if s >= n:
            k = int(s // n)
            return f"{t:%Y-%m-%d %H:%M:%S} UTC ({k} {unit}{'s' if k > 1 else ''} ago)"
    return f"{t:%Y-%m-%d %H:%M:%S} UTC (just now)"


def _quick(wh: Warehouse, snap) -> list[str] | None:
    """What status says of the runs, files and rows, from the snapshot's own figures
    (snapshot.json's counts and summary, written by its build and checks): None when they
    cannot tell it all, or the catalog file is not byte for byte the one newsetl wrote for this
    snapshot here, or a file of the snapshot is missing or does not end as Parquet does (then
    DuckDB looks)."""
    try:
        summary = read_info(snap).get("summary")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(summary, dict) or catalog_snapshot(wh) != snap.name or not as_written(wh):
        return None  # a snapshot written before it was kept, or a catalog changed since
    counts = recorded_counts(snap)
    if counts is None:
        return None
    try:
        last, files = summary["last_run"], summary["files"]
        finished = dt.datetime.fromisoformat(last["finished_at"]).astimezone(dt.timezone.utc)
        changed = summary["last_change"]
        changed = dt.datetime.fromisoformat(changed).astimezone(dt.timezone.utc) if changed else None
        lines = [f"last run  {last['run_id']}, finished {_ago(finished)}, took {last['duration_s']:.1f} s",
                 f"last change to the data: {_ago(changed)}"]
        if summary["failed_runs"]:
            lines.append(f"failed runs: {summary['failed_runs']} (killed or crashed before publishing; see `newsetl runs`)")
        lines.append("files     " + ", ".join(f"{files.get(s, 0):,} {s}" for s in ("loaded", "duplicate", "rejected")))
    except (KeyError, TypeError, ValueError):
        return None
    return lines + ["rows      " + ", ".join(f"{t.name} {counts[t.name]:,}" for t in WAREHOUSE_TABLES)]


def _catalog_state(wh: Warehouse, snap) -> list[str]:
    """Nothing when the catalog file shows the current snapshot exactly (its views checked
    against the snapshot's, not only its marker), or was just rewritten to; else what is wrong
    and the fix. A catalog changed by hand, or written before the warehouse moved, is
    rewritten when it can be, and said so."""
    import duckdb

    from .catalog import inspect_catalog, moved_note

    try:
        state, details = inspect_catalog(wh, snap)
    except duckdb.Error:  # the snapshot's views cannot be made (a file is missing): _views_state says which
        return []
    if state == "ok":
        return []
    repaired = _repaired(wh, snap, state) if state in ("moved", "stale", "missing", "changed") else False
    if repaired is None:
        return []  # the snapshot's files are not all there: the views' check says which
    if repaired:
        if state == "moved":
            return [f"          note: {moved_note(wh, details[0])}"]
        if state != "changed":
            return []  # what a run killed after publishing leaves: healed as every read command does
        return [f"          REWRITTEN: {wh.catalog.name} had been changed outside newsetl ({'; '.join(details)}); "
                f"newsetl wrote it again for snapshot {snap.name}"]
    if state == "moved":
        where = f"at {details[0]}" if details[0] else "by an older newsetl, with absolute paths"
        what = (f"MOVED: {wh.catalog.name} was written {where}, and newsetl could not rewrite it for {wh.root}: "
                "a DuckDB shell that opens it by its path still reads the files here, but one that ATTACHes it "
                "does not")
    elif state == "stale":
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
    return [f"          {what}", f"          to fix: {_rewrite_fix(wh)}"]


def _repaired(wh: Warehouse, snap, state: str) -> bool | None:
    """repair_catalog; None when the snapshot's views cannot be made (a file of it is missing:
    _views_state says which)."""
    import duckdb

    from .catalog import repair_catalog

    try:
        return repair_catalog(wh, snap, state)
    except duckdb.Error:
        return None


def _rewrite_fix(wh: Warehouse) -> str:
    """The command that rewrites the catalog file, or who will."""
    holder = wh.locked_by()
    if holder:
        return f"the run that holds the lock ({holder}) rewrites it when it publishes"
    if not os.access(wh.root, os.W_OK):
        return f"run `newsetl status --warehouse {wh.root}` as a user who may write to that folder: it rewrites the catalog"
    return f"run `newsetl status --warehouse {wh.root}` (any newsetl command rewrites it when it can write the folder)"


def _views_state(wh: Warehouse, snap) -> list[str]:
    """Nothing when every view of the catalog file resolves as the DuckDB shell opens it; else
    which do not, why, and what to run."""
    if not wh.catalog.exists() or wh.foreign_catalog():
        return []
    if as_written(wh) and _missing_fix(snap) is None:
        return []  # newsetl's own file, here, over files that are all there: every view resolves
    from .catalog import unresolved_views

    bad = unresolved_views(wh)
    if not bad:
        return []  # all resolve, or the file is open for writing in a shell (inspect_catalog said so)
    lines = [f"          BROKEN: {len(bad)} view{'s' if len(bad) > 1 else ''} of {wh.catalog.name} do"
             f"{'' if len(bad) > 1 else 'es'} not resolve in the DuckDB shell: {', '.join(n for n, _ in bad)}"]
    reasons: dict[str, str] = {}  # a missing file breaks every view over its table: each reason once
    for name, why in sorted(bad, key=lambda b: b[0] not in {t.name for t in WAREHOUSE_TABLES}):
        reasons.setdefault(why, name)
    lines += [f"          {name}: {why}" for why, name in list(reasons.items())[:3]]
    return lines + [_missing_fix(snap) or f"          to fix: {_rewrite_fix(wh)}"]


def _missing_fix(snap) -> str | None:
    """The fix for a snapshot whose files are not all there; None if they are."""
    missing = [p for paths in table_files(snap).values() for p in paths if not os.path.exists(p)]
    if not missing:
        return None
    return (f"          to fix: snapshot {snap.name} lacks {len(missing):,} of its files (first {missing[0]}): "
            "the warehouse was copied in part; copy the whole folder again (`cp -a` or `rsync -a`)")


def status(warehouse, snapshot: str | None = None) -> Report:
    """What the warehouse holds; with `snapshot`, what that kept snapshot holds (the catalog file,
    which shows the current one, is then left out)."""
    wh = open_warehouse(warehouse)
    if snapshot is None and not wh.remote:
        snap = wh.require_current()
        quick = _quick(wh, snap)
        if quick is not None:
            return Report("\n".join([f"warehouse {wh.root}", f"snapshot  {snap.name}", f"catalog   {wh.catalog}",
                                      *quick, *_in_progress(wh)]))
    import duckdb

    from .catalog import UnreadableSnapshot, connect

    broken: list[str] = []  # what the DuckDB shell cannot read (the current snapshot's catalog file)
    if snapshot is not None:
        current = wh.require_current()
        current = current["snapshot"] if isinstance(current, dict) else current.name
        con = connect(warehouse, snapshot=wh.snapshot(snapshot), for_sql="")  # tables only
        head = [f"warehouse {wh.url if wh.remote else wh.root}", f"snapshot  {snapshot} ({'the current one' if snapshot == current else f'kept; the current one is {current}'})"]
    elif wh.remote:
        doc = wh.require_current()
        con = connect(warehouse, snapshot=doc, for_sql="")  # tables only
        head = [f"warehouse {wh.url}", f"snapshot  {doc['snapshot']} (committed {doc.get('committed_at', '?')})",
                "catalog   none in object storage (`newsetl run ... --catalog PATH` writes one for the DuckDB shell)"]
    else:
        snap = wh.require_current()
        head = [f"warehouse {wh.root}", f"snapshot  {snap.name}", f"catalog   {wh.catalog}", *_catalog_state(wh, snap)]
        broken = _views_state(wh, snap)
        try:
            con = connect(warehouse, snapshot=snap, for_sql="")  # tables only
        except (duckdb.Error, UnreadableSnapshot) as e:  # a file of the snapshot is missing or damaged: what is known, and why
            e = e.__cause__ or e if isinstance(e, UnreadableSnapshot) else e
            if not broken:
                broken = [f"          BROKEN: snapshot {snap.name} cannot be read: {(str(e).splitlines() or [''])[0]}",
                          *filter(None, [_missing_fix(snap)])]
            report = Report("\n".join(head + broken))
            report.healthy = False
            return report
        head += [line for line in broken if line not in head]  # a fix said once
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
        return Report("\n".join(lines))
    report = Report("\n".join(lines + _in_progress(wh)))
    report.healthy = not broken
    return report


def _in_progress(wh: Warehouse) -> list[str]:
    """A line for a run that is going on, or died before publishing (its marker is there)."""
    try:
        running = json.loads(wh.running_marker.read_text())
    except (FileNotFoundError, ValueError):
        return []
    return [f"a run is in progress or died before publishing: {running.get('run_id')} "
            f"(started {running.get('started_at')})"]
