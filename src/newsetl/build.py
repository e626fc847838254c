"""Build: the rows of what changed -> a new snapshot, with DuckDB.

A run reads the staging rows of the files it parsed (and of the other files of
the articles those touch), and writes, per table, one delete file naming the
keys it replaces and one part holding their new rows; the last snapshot's
files that are still right are hard-linked (newsetl.parts has the layout).
So its cost follows the files that changed, not the warehouse's size. The
first run writes every row the same way. `sql/build/` holds the logic;
history (`article_versions`) extends the affected articles' versions;
providers are mention counts updated by difference; `runs` gets this run's row.
Compaction rewrites parts that have lost too many rows, within the same run.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import json
import os
import re
import shutil
import sys
import tempfile
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import _package_version
from . import schema as S
from .duck import read_list, sql_literal, threads_for
from .parse import BatchResult
from .parts import DELETES, ROW_KEY, is_delete, spans, view_sql
from .plan import PARSE_VERSION, Plan
from .remote import open_warehouse
from .store import (MANIFEST_SCHEMA, STATE, WarehouseError, fsync_path, read_batches, read_info, read_manifest,
                    table_files, write_info, write_manifest)

# Row order of each part a run writes with only its own rows: stable, so two first runs of
# the same files give the same rows in the same order, and sorted for the filters people use
# most (row groups skipped by their min/max). A compaction keeps the order its parts had.
ORDER_BY = {
    "articles": "published_at, article_id",
    "providers": "provider_domain",
    "source_files": "source_path",
    "data_issues": "source_path, field",
    "article_versions": "article_id, version",
}


SNAPSHOT_FORMAT = 2  # 2: keyed tables are parts and delete files (newsetl.parts)


# a row group ends at 50,000 rows or 8 MB: each writing thread holds one open row group, and
# related_links' rows are wide (at 50,000 rows alone, writing them cost 190 MB at 10,000 records)
PARQUET_OPTIONS = "FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 50000, ROW_GROUP_SIZE_BYTES '8MB'"

# zstd levels other than DuckDB's 3: articles' text (bodies) compresses within 2% of level 3 at
# level 1 in a third less time (20,000 records: its part 0.30 -> 0.235 s in the build, 10.3 ->
# 10.5 MB); the other tables gained nothing measurable, and the related ones lose 2-34% of their bytes
COMPRESSION_LEVEL = {"articles": 1}


def build_memory(live_files: int, in_memory: bool) -> str:
    """DuckDB's memory limit for a build of a warehouse of `live_files` files.

    NEWSETL_BUILD_MEMORY sets it (a flow machine with memory to spare: 8GB; docs/scaling.md).
    Else a build in a database file (a large change: `IN_MEMORY_FILES`), which writes its
    tables out past the limit, gets 192 MB; one in memory (a schedule's usual few files), whose
    tables stay pinned, 384 MB: at 192 MB, runs of a few thousand edits to 100,000 records ran
    out. Both get 192 MB more a million live files, for the ids of every live article the
    related links' lookup holds (a million-record first run ran out at 192 MB, completes at 384).
    So a 100,000-record first run peaks near a 10,000-record one (bench/scale.py)."""
    base = 384 if in_memory else 192
    return check_build_memory() or f"{base + 192 * live_files // 1_000_000}MB"


_MEMORY_SIZE = re.compile(r"\s*\d+(\.\d+)?\s*([KMGT]i?B|B)?\s*", re.IGNORECASE)


def check_build_memory() -> str | None:
    """NEWSETL_BUILD_MEMORY if set (None if not), or a one-line error if it is not a size DuckDB
    takes: checked when a run starts, not after its parse."""
    value = os.environ.get("NEWSETL_BUILD_MEMORY", "").strip()
    if not value:
        return None
    if not _MEMORY_SIZE.fullmatch(value) or not float(re.match(r"\s*([\d.]+)", value).group(1)):
        raise WarehouseError(f"NEWSETL_BUILD_MEMORY={value!r} is not a memory size: give one like 512MB or 2GB")
    return value


class BuildOutOfMemory(WarehouseError):
    """DuckDB ran out of the memory the build may use: one line that says what to do."""

    def __init__(self, limit: str, e: Exception):
        first = " ".join(str(e).split("Possible solutions")[0].split())[:200]  # not DuckDB's advice: ours
        super().__init__(f"the build ran out of memory within its limit of {limit} ({first}): nothing was "
                         "published, the last complete snapshot is current; give it more with "
                         "NEWSETL_BUILD_MEMORY=2GB (or more, below the machine's free memory) and run again")


@dataclass
class Built:
    run_id: str
    snapshot: str  # the partial snapshot directory, complete but not yet published
    counts: dict
    run_row: dict


def build(p: Plan, results: list[BatchResult], flow_run_id: str | None = None,
          memory_limit: str | None = None, threads: int | None = None, fetch=None) -> Built:
    """Write the new snapshot into a partial directory: this run's rows, and links to the
    last snapshot's files that are still right. `fetch(batch_ids)` brings staging batches the
    build reads into the local staging folder (a warehouse in object storage: its mirror)."""
    fetch = fetch or (lambda batches: None)
    release_memory()
    wh = open_warehouse(p.warehouse)
    out = wh.partial_dir(p.run_id)
    previous = Path(p.previous) if p.previous else None
    tmp = out / "_tmp"
    compacted = 0
    by_status = None  # source files by status, as status shows them (the build counts them, or they are the last run's)
    if previous is not None and p.idle:
        # nothing read, nothing gone: the tables and the manifest are the last snapshot's, linked
        manifest = None
        counts, files = carry_over(previous, out)
        by_status = _summary(previous).get("files")
        status = pq.ParquetFile(previous / STATE / "manifest.parquet").read(columns=["status"]).column("status")
        batches = read_batches(previous)
    else:
        old_manifest = read_manifest(previous)
        manifest = new_manifest(p, results, old_manifest)
        # every file whose rows change: parsed or rejected now (a result's files), or deleted
        touched = pc.unique(pa.chunked_array([r.files.column("source_path").combine_chunks() for r in results]
                                             + [pa.array(p.deleted, pa.string())], pa.string())).sort()
        for r in results:  # read into the manifest and `touched`: let go (100,000 files: 31 MB)
            r.files = r.files.schema.empty_table()
        if old_manifest is not None:  # what the build reads of it (build_tables' old_live): the rest goes now
            old_manifest = old_manifest.select(LIVE_COLUMNS)
        release_memory()  # the merge's copies (a manifest is about 300 bytes a file in Arrow)
        if previous is not None and not len(touched):
            counts, files = carry_over(previous, out)  # files touched, none changed: only their mtimes are new
            by_status = _summary(previous).get("files")
        else:
            # a database file for a large change (its tables can be written out, where an in-memory
            # database's stay pinned); a small one, a schedule's usual run, in memory: no file to sync
            on_disk = len(touched) > IN_MEMORY_FILES
            limit = memory_limit or build_memory(manifest.num_rows, not on_disk)
            try:
                manifest, counts, files, compacted, by_status = _build_once(
                    p, manifest, old_manifest, touched, out, previous, limit, threads, on_disk, fetch)
            except duckdb.OutOfMemoryException as e:
                if memory_limit or check_build_memory():
                    raise BuildOutOfMemory(limit, e) from None
                # DuckDB's needs vary with the plan (a compaction reads whole parts, wide rows): once
                # more from the start, in a database file, which can spill, with twice the memory (384 MB at least)
                limit = f"{max(2 * int(limit[:-2]), 384)}MB"
                out = wh.partial_dir(p.run_id)  # emptied
                try:
                    manifest, counts, files, compacted, by_status = _build_once(
                        p, manifest, old_manifest, touched, out, previous, limit, threads, True, fetch)
                except duckdb.OutOfMemoryException as e:
                    raise BuildOutOfMemory(limit, e) from None
    shutil.rmtree(tmp, ignore_errors=True)
    if manifest is not None:
        status, batches = manifest.column("status"), sorted(set(manifest.column("batch_id").to_pylist()))
    finished = dt.datetime.now(dt.timezone.utc)
    reread = p.reading
    same = sum(len(r.same) for r in results)
    row = {
        "run_id": p.run_id,
        "started_at": p.started_at,
        "as_of": p.as_of,
        "finished_at": finished,
        "status": "completed",
        "inputs": json.dumps(p.inputs),
        "flow_run_id": flow_run_id,
        "files_seen": p.files_seen,
        "files_new": p.files_new,
        "files_changed": reread - p.files_new - same,
        "files_unchanged": len(p.unchanged) + same,
        "files_deleted": len(p.deleted),
        "files_rejected": pc.sum(pc.equal(status, pa.scalar("rejected", pa.string()))).as_py() or 0,
        "files_parsed": sum(r.parsed + r.rejected for r in results),
        "fast_parsed": sum(r.fast for r in results),
        "rows_compacted": compacted,
        **{f"{name}_rows": n for name, n in counts.items()},
        "duration_s": (finished - p.started_at).total_seconds(),
        "newsetl_version": _package_version(),
    }
    if previous is not None and not all(t.name in files for t in S.CHECK_TABLES):
        # the checks' history goes on (newsetl.checks adds this run's results to it)
        c, f = carry_over(previous, out, [t for t in S.CHECK_TABLES if t.name not in files])
        counts.update(c)
        files.update(f)
    previous_runs = _previous_runs(p)
    # every run that died since the last one completed (several, after a full disk), once:
    # one killed between its commit and clearing its marker is already in `runs`
    known = set(previous_runs.column("run_id").to_pylist())
    dead = {}
    for d in p.abandoned:
        for e in [*d.get("earlier", []), d]:
            if e.get("run_id") not in known and e.get("run_id") != p.run_id:
                dead.setdefault(e["run_id"], e)
    rows = [_failed_row(d) for d in dead.values()] + [row]
    runs = pa.concat_tables([previous_runs, pa.Table.from_pylist(rows, schema=S.RUNS.schema)])
    counts["runs"] = write_table(out, S.RUNS, runs)
    files["runs"] = ["part-0.parquet"]
    if manifest is None:
        os.link(previous / STATE / "manifest.parquet", out / STATE / "manifest.parquet")
    else:
        write_manifest(out, manifest)
    write_info(out, {
        "run_id": p.run_id,
        "parse_version": PARSE_VERSION,
        "format": SNAPSHOT_FORMAT,
        "batches": batches,
        "counts": counts,
        "inputs": p.inputs,
        "input_roots": p.roots,  # what the next run compares its inputs with (plan.check_deletes)
        "previous": previous.name if previous is not None else None,  # made from it: `newsetl rollback` goes back to it
        "summary": status_summary(runs, by_status if isinstance(by_status, dict) else
                                  _files_by_status(duckdb.connect(), out, files["source_files"])),
        # every file of every table, in order (parts, and the delete files that apply to the parts
        # before them: newsetl.parts): readers read these and nothing else (store.table_files)
        "files": {t.name: files.get(t.name, []) for t in S.WAREHOUSE_TABLES},
    })
    # the checks' tables are the checks stage's to count (newsetl.checks): not this run's build
    return Built(p.run_id, str(out), {t.name: counts[t.name] for t in S.BUILT_TABLES if t.name in counts}, row)


def _summary(snapshot: Path) -> dict:
    """What a snapshot recorded for `newsetl status` ({} for one written before it was)."""
    try:
        summary = read_info(snapshot).get("summary")
    except (OSError, ValueError, AttributeError):
        return {}
    return summary if isinstance(summary, dict) else {}


def _files_by_status(con: duckdb.DuckDBPyConnection, out: Path, files: list[str]) -> dict[str, int]:
    """source_files' rows by status in the snapshot at `out` (its status column only)."""
    with con:
        sql = view_sql("source_files", [out / "source_files" / f for f in files])
        return dict(con.execute(f"SELECT status, count(*) FROM ({sql}) GROUP BY 1 ORDER BY 1").fetchall())


def status_summary(runs: pa.Table, files: dict[str, int]) -> dict:
    """What `newsetl status` says of the runs and files, as this snapshot's tables hold them:
    status reads it here rather than open the tables (and asks them in SQL when it is absent)."""
    done = runs.filter(pc.equal(runs.column("status"), pa.scalar("completed", pa.string())))
    last = done.take(pc.sort_indices(done, [("started_at", "descending")])[:1]).to_pylist()[0]
    moved = pc.add(pc.add(done.column("files_new"), done.column("files_changed")), done.column("files_deleted"))
    changed = pc.max(done.filter(pc.greater(moved, 0)).column("finished_at")).as_py()
    return {
        "last_run": {"run_id": last["run_id"], "finished_at": last["finished_at"].isoformat(),
                     "duration_s": last["duration_s"]},
        "last_change": changed.isoformat() if changed is not None else None,
        "failed_runs": pc.sum(pc.equal(runs.column("status"), pa.scalar("failed", pa.string()))).as_py() or 0,
        "files": files,
    }


def new_manifest(p: Plan, results: list[BatchResult], old: pa.Table | None) -> pa.Table:
    """The live files after this run: unchanged rows of the old manifest plus what was parsed."""
    parts = []
    if old is not None:
        # every file read is in a result: parsed or rejected (its rows), or the same as before
        same = {sp: m for r in results for sp, m in r.same}
        reread = {sp for r in results for sp in r.files.column("source_path").to_pylist()}.union(same)
        gone = reread.difference(same).union(p.deleted)
        keep = old.filter(pc.invert(pc.is_in(old.column("source_path"), pa.array(sorted(gone), pa.string()))))
        if same:  # touched but identical: keep the row, note the new mtime
            mt = [same.get(sp, m) for sp, m in zip(keep.column("source_path").to_pylist(),
                                                   keep.column("mtime_ns").to_pylist())]
            keep = keep.set_column(keep.schema.get_field_index("mtime_ns"), "mtime_ns", pa.array(mt, pa.int64()))
        parts.append(keep.cast(MANIFEST_SCHEMA))
    parts.extend(r.files.cast(MANIFEST_SCHEMA) for r in results)
    if not parts:
        return MANIFEST_SCHEMA.empty_table()
    return pa.concat_tables(parts).sort_by("source_path")


# what the build reads of the manifests (live, old_live)
LIVE_COLUMNS = ["source_path", "batch_id", "article_id", "status", "images_digest", "related_digest"]


def _build_once(p: Plan, manifest: pa.Table, old_manifest: pa.Table | None, touched: pa.Array, out: Path,
                previous: Path | None, memory_limit: str, threads: int | None, on_disk: bool, fetch):
    """One try at the tables of a run that changed something: (manifest, counts, files, rows compacted,
    source files by status)."""
    wh = open_warehouse(p.warehouse)
    tmp = out / "_tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    db = database_folder(tmp) if on_disk else None
    con = build_connection(tmp, memory_limit, threads or threads_for(manifest.num_rows),
                           db / "build.duckdb" if db else ":memory:")
    try:
        manifest = compact_staging(con, wh.staging, manifest, f"{p.run_id}-compact", fetch)
        counts, files, compacted = build_in_steps(con, wh.staging, manifest, old_manifest, touched, out, previous,
                                                  p.as_of, p.run_id, fetch)
        return manifest, counts, files, compacted, _files_by_status(con.cursor(), out, files["source_files"])
    finally:
        con.close()
        if db is not None and db != tmp:
            shutil.rmtree(db, ignore_errors=True)


def _previous_runs(p: Plan) -> pa.Table:
    if p.previous:
        f = Path(p.previous) / "runs" / "part-0.parquet"
        if f.exists():
            runs = pq.ParquetFile(f).read()
            for field in S.RUNS.schema:  # a column added since that run: NULL for it
                if field.name not in runs.column_names:
                    runs = runs.append_column(field.name, pa.nulls(runs.num_rows, field.type))
            return runs.select(S.RUNS.schema.names).cast(S.RUNS.schema)
    return S.RUNS.schema.empty_table()


def _failed_row(dead: dict) -> dict:
    def ts(v):
        return dt.datetime.fromisoformat(v) if isinstance(v, str) else v

    return {"run_id": dead["run_id"], "started_at": ts(dead.get("started_at")), "as_of": ts(dead.get("as_of")),
            "status": "failed", "inputs": json.dumps(dead.get("inputs"))}


def _files(staging: Path, batches: list[str], table: str) -> str:
    return read_list(staging / b / f"{table}.parquet" for b in batches)


def release_memory() -> None:
    """Give back what the listing, the plan and the parse freed before DuckDB takes its memory.

    Python's and Arrow's allocators keep freed memory for reuse; at 100,000 files that
    was 66 MB held through the build (the listing's strings, the files to read). No gc.collect():
    what is freed here is freed by reference counts, and a collection costs 50 ms a run."""
    pa.default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).malloc_trim(0)  # glibc's own heap; absent from musl: nothing to do
        except (OSError, AttributeError):
            pass


def build_connection(temp_dir: Path, memory_limit: str = "384MB", threads: int | None = None,
                     database: Path | None = None) -> duckdb.DuckDBPyConnection:
    # `database`: a file (build() gives one for a large change: the build's intermediate tables, a
    # million rows each in a first run of a million records, are written out when they do not fit in
    # `memory_limit`, where an in-memory database's must stay pinned) or ":memory:"
    temp_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(database or temp_dir / "build.duckdb"),
                         config={"memory_limit": memory_limit, "temp_directory": str(temp_dir),
                                 "preserve_insertion_order": False})
    # DuckDB would draw its own progress bar on stdout during long builds, in
    # the middle of the caller's output
    con.execute("SET enable_progress_bar = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def database_folder(temp_dir: Path) -> Path:
    """Where the build's database file goes: `temp_dir`, unless its path holds a `?` (DuckDB names
    a database's WAL by cutting its path at the first one, as catalog._write_views_file says):
    then a folder of its own in the system's temporary folder, which the caller removes."""
    if "?" not in os.path.realpath(temp_dir):
        return temp_dir
    away = Path(tempfile.mkdtemp(prefix="newsetl-build-"))
    if "?" in os.path.realpath(away):
        shutil.rmtree(away, ignore_errors=True)
        raise WarehouseError(f"cannot build in {temp_dir.parent}: its path and the temporary folder "
                             f"{away.parent} both hold a '?' (set TMPDIR to a folder without one)")
    return away


IN_MEMORY_FILES = 20_000  # a change of at most this many files is built in an in-memory database


STEP_FILES = 150_000  # a run that touches more files builds in steps of about this many: its memory stays a step's


def build_in_steps(con: duckdb.DuckDBPyConnection, staging: Path, manifest: pa.Table, old_manifest: pa.Table | None,
                   touched: pa.Array, out: Path, previous: Path | None, as_of, run_id: str,
                   fetch=None) -> tuple[dict[str, int], dict[str, list[str]], int]:
    """`build_tables` in as many steps as the touched files need (a first run of a million files:
    seven), each over the articles that fall to it, each building on the last one's tables in a
    folder of the partial snapshot; the last writes `out`. Steps never share an article, so
    each step is an incremental run over a disjoint part of the change."""
    k = max(1, -(-len(touched) // STEP_FILES))
    compacted = 0
    # articles whose related links a step of this run wrote, with the run's final related_article_id
    con.execute("CREATE OR REPLACE TABLE run_related (article_id VARCHAR)")
    for i in range(k):
        target = out if i == k - 1 else out / "_tmp" / "steps" / str(i)
        target.mkdir(parents=True, exist_ok=True)
        counts, files, n = build_tables(con, staging, manifest, old_manifest, touched, target, previous, as_of,
                                        run_id, fetch, step=(i, k))
        compacted += n
        if i < k - 1:
            write_info(target, {"files": {**files, "runs": []}})
            previous = target
    return counts, files, compacted


def build_tables(con: duckdb.DuckDBPyConnection, staging: Path, manifest: pa.Table, old_manifest: pa.Table | None,
                 touched: pa.Array, out: Path, previous: Path | None, as_of,
                 run_id: str, fetch=None, step: tuple[int, int] = (0, 1)) -> tuple[dict[str, int], dict[str, list[str]], int]:
    """Write this run's rows of every table (all but `runs`) into `out`, beside the files of the
    last snapshot that are still right.

    `manifest` has one row per live file after this run (source_path, batch_id holding its
    rows, article_id, status, digests), `old_manifest` the last run's; `touched` names every
    file parsed again with new bytes or gone. Only the rows of the articles and files these
    affect are read and written: per keyed table, one delete file naming the keys replaced and
    one part holding their new rows (newsetl.parts); `previous` is the last snapshot.
    Returns each table's row count, its files (in order) and the rows compaction rewrote.
    """
    prev_files = table_files(previous) if previous is not None else {}
    con.execute(_sql("build/identity.sql"))
    con.execute("CREATE TABLE IF NOT EXISTS run_related (article_id VARCHAR)")
    i, k = step
    # which articles (or files without one) this step builds: all of them, in one step
    con.execute("CREATE OR REPLACE TEMP MACRO in_step(aid, sp) AS "
                + ("true" if k == 1 else f"hash(coalesce(aid, sp)) % {int(k)} = {int(i)}"))
    stem = run_id if i == k - 1 else f"{run_id}.{i}"
    cols = LIVE_COLUMNS
    # the manifests as Arrow, not copied: DuckDB scans them where they are
    con.register("live", manifest.select(cols))
    con.register("old_live", (old_manifest if old_manifest is not None else MANIFEST_SCHEMA.empty_table()).select(cols))
    _replace_table(con, "touched", pa.table({"source_path": touched}))
    con.execute("CREATE OR REPLACE TABLE live_ids AS SELECT DISTINCT article_id FROM live "
                "WHERE status = 'parsed' AND article_id IS NOT NULL")
    for t in S.WAREHOUSE_TABLES:
        if t.name in ROW_KEY:
            _old_view(con, t, prev_files.get(t.name, []))
    con.execute(_sql("build/affected.sql"))
    batches = [b for (b,) in con.execute("SELECT DISTINCT batch_id FROM affected_files ORDER BY 1").fetchall()]
    if fetch is not None:
        fetch(batches)
    _staging_views(con, staging, batches, [t for t in S.STAGING_TABLES if t.name not in CHILD_STAGING], "affected_files")
    con.execute(_sql("build/tables.sql"))
    # child rows are read for the winning files only: one semi join, with the winners (a row per
    # article) as its hash table
    _staging_views(con, staging, batches, [t for t in S.STAGING_TABLES if t.name in CHILD_STAGING], "winners")
    # a table, not a view: history.sql reads it three times, each a scan of every version's article_id
    con.execute("CREATE OR REPLACE TABLE prev_versions AS SELECT * FROM old_article_versions "
                "SEMI JOIN affected_ids USING (article_id)")
    con.execute("SET VARIABLE as_of = CAST($as_of AS TIMESTAMPTZ)", {"as_of": as_of})
    con.execute("SET VARIABLE run_id = CAST($run_id AS VARCHAR)", {"run_id": run_id})
    con.execute(_sql("build/history.sql"))
    con.execute(_sql("build/children.sql"))
    # links of kept articles to one that appeared or went away (a first run keeps no article)
    if previous is not None and con.execute("SELECT count(*) FROM delta_identities").fetchall()[0][0]:
        con.execute(_sql("build/stale_targets.sql"))
    else:
        con.execute("CREATE OR REPLACE TABLE stale AS SELECT article_id FROM live_ids LIMIT 0")
    _prev_mentions(con, previous)
    con.execute(_sql("build/providers.sql"))
    counts, files, compacted = {}, {}, 0
    for t in S.WAREHOUSE_TABLES:
        if t.name in ROW_KEY:
            keys, rows = CHANGES[t.name]
            counts[t.name], files[t.name], n = write_keyed(
                con, t, prev_files.get(t.name, []), keys, _sql(rows) if rows.endswith(".sql") else rows,
                out, stem)
            compacted += n
    con.execute("INSERT INTO run_related SELECT article_id FROM rewrite_related UNION SELECT article_id FROM stale")
    (out / "providers").mkdir(parents=True, exist_ok=True)
    target = out / "providers" / "part-0.parquet"
    counts["providers"] = con.execute(f"COPY (SELECT * FROM wh_providers ORDER BY {ORDER_BY['providers']}) "
                                      f"TO {sql_literal(str(target))} ({PARQUET_OPTIONS})").fetchall()[0][0]
    files["providers"] = [target.name]
    (out / STATE).mkdir(parents=True, exist_ok=True)
    con.execute(f"COPY (SELECT * FROM mentions ORDER BY ALL) TO {sql_literal(str(out / STATE / MENTIONS))} "
                f"({PARQUET_OPTIONS})")
    return {t.name: counts[t.name] for t in S.WAREHOUSE_TABLES if t.name in counts}, files, compacted


# per keyed table: the keys whose rows this run replaces, and the rows it writes for them
CHANGES = {
    "articles": ("SELECT article_id AS key FROM affected_ids", "SELECT * FROM wh_articles"),
    "article_versions": ("SELECT article_id AS key FROM affected_ids", "SELECT * FROM wh_article_versions"),
    "source_files": ("SELECT source_path AS key FROM affected_paths", "SELECT * FROM wh_source_files"),
    "data_issues": ("SELECT source_path AS key FROM affected_paths", "SELECT * FROM wh_data_issues"),
    "images": ("SELECT article_id AS key FROM rewrite_images", "build/rows_images.sql"),
    "related_links": ("SELECT article_id AS key FROM rewrite_related UNION SELECT article_id FROM stale",
                      "build/rows_related_links.sql"),
    "related_images": ("SELECT article_id AS key FROM rewrite_related", "build/rows_related_images.sql"),
}

MENTIONS = "provider_mentions.parquet"  # the providers' mention counts, in a snapshot's _state

MENTIONS_SCHEMA = pa.schema([("provider_domain", pa.string()), ("provider_name", pa.string()),
                             ("logo_url", pa.string()), ("is_article", pa.int32()), ("n", pa.int64())])


CHILD_STAGING = ("stg_images", "stg_related_links", "stg_related_images")  # rows read for the winning files only


def _staging_views(con: duckdb.DuckDBPyConnection, staging: Path, batches: list[str], tables, files: str) -> None:
    """A view per staging table (stg_articles ...) holding its rows of the files `files` names
    (a table of source_path and batch_id: the batch that holds each file's current rows)."""
    for t in tables:
        name = t.name
        cols_sql = ", ".join(f's."{c}"' for c in t.names)
        if batches:
            src = f"read_parquet({_files(staging, batches, name[4:])})"
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {cols_sql}, s.batch_id FROM {src} s "
                        f"SEMI JOIN {files} USING (source_path, batch_id)")
        else:  # nothing to read: empty, well-typed views
            con.register(f"{name}_empty", t.schema.append(pa.field("batch_id", pa.string())).empty_table())
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {name}_empty")


def _replace_table(con: duckdb.DuckDBPyConnection, name: str, data: pa.Table) -> None:
    con.register(f"{name}_arrow", data)
    con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT * FROM {name}_arrow")
    con.unregister(f"{name}_arrow")


def _old_view(con: duckdb.DuckDBPyConnection, table: S.Table, files: list[Path]) -> None:
    """old_<table>: the table's live rows in the last snapshot (empty before the first run)."""
    name = f"old_{table.name}"
    if files:
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {view_sql(table.name, files)}")
    else:
        con.register(f"{name}_empty", table.schema.empty_table())
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {name}_empty")


def _prev_mentions(con: duckdb.DuckDBPyConnection, previous: Path | None) -> None:
    """prev_mentions: the last snapshot's provider mention counts (counted from its tables once,
    for a snapshot written before they were kept)."""
    path = previous / STATE / MENTIONS if previous is not None else None
    if path is not None and path.exists():
        con.execute(f"CREATE OR REPLACE TEMP VIEW prev_mentions AS SELECT * FROM read_parquet({read_list([path])})")
    elif previous is not None:
        con.execute("CREATE OR REPLACE TABLE prev_mentions AS "
                    "SELECT provider_domain, provider_name, provider_logo_url AS logo_url, 1 AS is_article, "
                    "count(*) AS n FROM old_articles WHERE provider_domain IS NOT NULL GROUP BY ALL "
                    "UNION ALL SELECT provider_domain, provider_name, NULL, 0, count(*) FROM old_related_links "
                    "WHERE provider_domain IS NOT NULL GROUP BY ALL")
    else:
        con.register("prev_mentions", MENTIONS_SCHEMA.empty_table())


def write_keyed(con: duckdb.DuckDBPyConnection, table: S.Table, previous: list[Path], keys_sql: str,
                rows_sql: str, out: Path, stem: str) -> tuple[int, list[str], int]:
    """One keyed table of the new snapshot: the last snapshot's files that still hold live rows
    (hard-linked), a delete file naming the keys this run replaces, and one part with this run's
    rows plus the live rows of the parts compaction rewrites. Returns the live row count, the
    files in order (names relative to the table's folder) and the rows compaction rewrote."""
    folder = out / table.name
    folder.mkdir(parents=True, exist_ok=True)
    entries = list(previous)
    old_parts = [f for f in entries if not is_delete(f)]
    if old_parts:
        # only keys that had rows: those the last run's manifest names (a new article's need no delete)
        # (and related links an earlier step of this run wrote: a step may find them stale again)
        held = "source_path" if ROW_KEY[table.name] == "source_path" else "article_id"
        earlier = " OR key IN (SELECT article_id FROM run_related)" if table.name == "related_links" else ""
        replaced = con.execute(f"CREATE OR REPLACE TABLE run_keys AS SELECT DISTINCT key FROM ({keys_sql}) "
                               f"WHERE key IN (SELECT {held} FROM old_live){earlier}").fetchall()[0][0]  # its rows
        if replaced:
            (folder / DELETES).mkdir(exist_ok=True)
            deletes = folder / DELETES / f"{stem}.parquet"
            con.execute(f"COPY (SELECT key FROM run_keys ORDER BY key) TO {sql_literal(str(deletes))} "
                        f"({PARQUET_OPTIONS})")
            entries.append(deletes)
    rows = {f: pq.read_metadata(f).num_rows for f in old_parts}
    live = dict(rows)
    for parts, deletes in spans(entries):
        if deletes:
            for f in parts:
                live[f] = con.execute(f"SELECT count(*) FROM ({view_sql(table.name, [f, *deletes])})").fetchall()[0][0]
    compact = _to_compact(old_parts, rows, live)
    source = rows_sql
    if compact:
        kept_order = [f for f in entries if f in compact or is_delete(f)]
        source = f"{rows_sql}\nUNION ALL\n{view_sql(table.name, kept_order)}"
    # a table's first part keeps the name a whole table always had; later ones are named by their run
    new_part = folder / (f"{stem}.parquet" if old_parts else "part-0.parquet")
    # child rows are not sorted: the largest tables, nobody filters them by their order, and a sort
    # of every link is what a first run's build would spend its memory on. Nor are rows compaction
    # merges of big parts: each part was sorted when written, and a sort of a whole table took more
    # memory than the build has (DuckDB ran out at 422 MB compacting 100,000 articles); a merge of
    # small parts (a table of a few thousand rows rewritten whole) is sorted, as a first run's is
    small = sum(live[f] for f in compact) <= SORTED_MERGE_ROWS
    order = f" ORDER BY {ORDER_BY[table.name]}" if table.name in ORDER_BY and small else ""
    level = f", COMPRESSION_LEVEL {COMPRESSION_LEVEL[table.name]}" if table.name in COMPRESSION_LEVEL else ""
    with _joins_as_written(con, table.name in AS_WRITTEN):
        written = con.execute(f"COPY (SELECT * FROM ({source}){order}) TO {sql_literal(str(new_part))} "
                              f"({PARQUET_OPTIONS}{level})").fetchall()[0][0]  # the rows it wrote
    kept, seen_part = [], False
    for f in entries:  # a delete file stays while a part before it stays
        if f in compact:
            continue
        if is_delete(f):
            if seen_part:
                kept.append(f)
        else:
            seen_part = True
            kept.append(f)
    names = []
    for f in kept:
        name = f"{DELETES}/{f.name}" if is_delete(f) else f.name
        if f.parent not in (folder, folder / DELETES):  # the last snapshot's: linked, never copied
            (folder / name).parent.mkdir(exist_ok=True)
            os.link(f, folder / name)
        names.append(name)
    for f in entries:  # this run's delete file, if every part it applied to was compacted away
        if is_delete(f) and f.parent == folder / DELETES and f not in kept:
            f.unlink()
    if written:
        names.append(new_part.name)
    else:
        new_part.unlink()
    if not any(not is_delete(n) for n in names):  # the view needs a file to know the columns
        pq.write_table(table.schema.empty_table(), folder / "empty.parquet")
        names = ["empty.parquet"]
    count = sum(live[f] for f in kept if not is_delete(f)) + written
    return count, names, sum(live[f] for f in compact)


# tables whose rows' query runs with its joins' sides as written (rows_related_links.sql: the
# links are the hash table, so that they come out grouped by target, which is what compresses them)
AS_WRITTEN = {"related_links"}


@contextmanager
def _joins_as_written(con: duckdb.DuckDBPyConnection, on: bool):
    """With `on`, DuckDB's optimizer keeps each join's hash table on the side the SQL puts it (the
    right one), for the statements inside; a DuckDB without that switch plans as it likes."""
    if not on:
        yield
        return
    try:
        con.execute("SET disabled_optimizers = 'build_side_probe_side'")
    except duckdb.Error:  # an optimizer by another name: the rows are the same, only their order is not
        yield
        return
    try:
        yield
    except BaseException:
        with suppress(duckdb.Error):  # the statement failed (out of memory: build() retries on a new connection)
            con.execute("RESET disabled_optimizers")
        raise
    con.execute("RESET disabled_optimizers")


MAX_PARTS = 8  # past this many parts, the smallest are merged into the run's new part


DEAD_SHARE = 0.1  # a part with more of its rows deleted than this is rewritten: reads stay near a compacted table's cost


SMALL_PART_ROWS = 2_000  # a part with fewer live rows than this is merged into the run's new part
SORTED_MERGE_ROWS = 20_000  # a compaction that rewrites at most this many rows sorts them


def _to_compact(parts: list[Path], rows: dict, live: dict) -> set[Path]:
    """The parts this run rewrites: those with more than DEAD_SHARE of their rows deleted, those
    under SMALL_PART_ROWS live rows, and, past MAX_PARTS parts, the smallest, so reads open few
    files and read few dead rows. Small parts cost every read a file (about a millisecond a
    query each) and their rewrite next to nothing: a schedule's runs of a few edits keep one
    small part per table, not one per run, and a table of a few thousand rows stays one file.
    A run rewrites at most SMALL_PART_ROWS more rows for it, whatever the warehouse's size."""
    compact = {f for f in parts if rows[f] and rows[f] - live[f] > DEAD_SHARE * rows[f]}
    compact |= {f for f in parts if rows[f] == 0 or live[f] < SMALL_PART_ROWS}
    rest = sorted((f for f in parts if f not in compact), key=lambda f: live[f])
    if len(rest) + 1 > MAX_PARTS:
        compact |= set(rest[:len(rest) + 1 - MAX_PARTS // 2])
    return compact


SMALL_BATCH_FILES = 250  # a batch with fewer live files than this is merged by compaction ...


MAX_SMALL_BATCHES = 16  # ... once there are more small batches than this


def compact_staging(con: duckdb.DuckDBPyConnection, staging: Path, manifest: pa.Table, batch_id: str,
                    fetch=None) -> pa.Table:
    """Merge the live rows of small staging batches into one batch; returns the updated manifest.

    Every incremental run adds a batch of the few files it parsed, kept while
    one of its files is live; without this, a warehouse on a 30-minute schedule
    would keep thousands of tiny batches after a few weeks (folders to list and
    collect, objects to fetch on a new machine). Old batches are left for `collect`.
    """
    counts = manifest.group_by("batch_id").aggregate([("source_path", "count")])
    small = [b for b, n in zip(counts.column("batch_id").to_pylist(), counts.column("source_path_count").to_pylist())
             if n < SMALL_BATCH_FILES]
    if len(small) <= MAX_SMALL_BATCHES:
        return manifest
    if fetch is not None:
        fetch(small)
    con.register("compact_manifest", manifest.select(["source_path", "batch_id"]))
    out = staging / batch_id
    out.mkdir(parents=True, exist_ok=True)
    for t in S.STAGING_TABLES:
        target = out / f"{t.name[4:]}.parquet"
        cols = ", ".join(f's."{c}"' for c in t.names)
        con.execute(
            f"COPY (SELECT {cols}, {sql_literal(batch_id)} AS batch_id FROM read_parquet({_files(staging, small, t.name[4:])}) s "
            f"SEMI JOIN compact_manifest USING (source_path, batch_id)) TO {sql_literal(str(target))} "
            "(FORMAT parquet, COMPRESSION lz4, ROW_GROUP_SIZE_BYTES '8MB')"  # rows as wide as the parts': PARQUET_OPTIONS
        )
        fsync_path(target)
    con.unregister("compact_manifest")
    moved = pc.is_in(manifest.column("batch_id"), pa.array(small, pa.string()))
    batch = pc.if_else(moved, pa.scalar(batch_id), manifest.column("batch_id"))
    return manifest.set_column(manifest.schema.get_field_index("batch_id"), "batch_id", batch)


def write_table(out: Path, table: S.Table, data: pa.Table) -> int:
    """Write a table built in Python (runs, history) with its declared schema."""
    (out / table.name).mkdir(parents=True, exist_ok=True)
    pq.write_table(data.cast(table.schema), out / table.name / "part-0.parquet", compression="zstd")
    return data.num_rows


def carry_over(previous: Path, out: Path, tables=None) -> tuple[dict[str, int], dict[str, list[str]]]:
    """Nothing changed: every table is the last snapshot's (all but `runs`; or `tables`), its files
    hard-linked (no copy), its row counts as that snapshot recorded them."""
    info = read_info(previous)
    names = info.get("files") or {}
    counts, files = {}, {}
    held = table_files(previous)
    for t in tables or S.WAREHOUSE_TABLES:
        if t.name == "runs":
            continue
        paths = held[t.name]
        for f in paths:
            rel = f.relative_to(previous)
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            os.link(f, out / rel)
        files[t.name] = [f.relative_to(previous / t.name).as_posix() for f in paths]
        n = (info.get("counts") or {}).get(t.name) if t.name in names else None
        counts[t.name] = n if isinstance(n, int) else sum(pq.read_metadata(f).num_rows for f in paths)
    mentions = previous / STATE / MENTIONS
    if tables is None and mentions.exists():
        (out / STATE).mkdir(parents=True, exist_ok=True)
        os.link(mentions, out / STATE / MENTIONS)
    return counts, files


def _sql(name: str) -> str:
    return (resources.files("newsetl") / "sql" / name).read_text(encoding="utf-8")
