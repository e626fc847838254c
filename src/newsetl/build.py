"""Build: the live staging rows -> the tables of a new snapshot, with DuckDB.

The build reads the live rows of every staging batch (those of the files in
the run's manifest) and writes each warehouse table as zstd Parquet into a
partial snapshot; `sql/build/tables.sql` holds the logic. Child tables
(images, related links and their images) are kept in parts that later runs
reuse while an article's lists do not change. History (`article_versions`)
extends the previous snapshot's; `runs` gets this run's row.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import _package_version
from . import schema as S
from .duck import read_list, sql_literal
from .parse import BatchResult
from .plan import PARSE_VERSION, Plan
from .remote import open_warehouse
from .store import (MANIFEST_SCHEMA, PARTS_SCHEMA, fsync_path, read_manifest, read_parts, table_files,
                    write_info, write_manifest, write_parts)

# Row order of each table: stable, so two builds of the same files give the
# same rows in the same order, and sorted for the filters people use most.
ORDER_BY = {
    "articles": "published_at, article_id",
    "providers": "provider_domain",
    "source_files": "source_path",
    "data_issues": "source_path, field",
    "article_versions": "article_id, version",
}


BUILT = tuple(t for t in S.WAREHOUSE_TABLES if t.name in ORDER_BY)


# child tables, stored as parts that later runs reuse, and the digest that says
# whether an article's rows in one of them are still right
CHILDREN = {"images": "images_digest", "related_links": "related_digest", "related_images": "related_digest"}


MAX_PARTS = 32  # past this, the smallest parts are merged into the run's new part


PARQUET_OPTIONS = "FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 50000"


# DuckDB spills to disk past this, and row groups stay small: the build's memory stays flat whatever the corpus size
# (a flow machine with memory to spare for 10M records sets NEWSETL_BUILD_MEMORY=8GB: docs/scaling.md)
BUILD_MEMORY = os.environ.get("NEWSETL_BUILD_MEMORY") or "384MB"


@dataclass
class Built:
    run_id: str
    snapshot: str  # the partial snapshot directory, complete but not yet published
    counts: dict
    run_row: dict


def build(p: Plan, results: list[BatchResult], flow_run_id: str | None = None,
          memory_limit: str = BUILD_MEMORY, threads: int | None = None) -> Built:
    """Write every table of the new snapshot into a partial directory."""
    wh = open_warehouse(p.warehouse)
    out = wh.partial_dir(p.run_id)
    manifest = new_manifest(p, results)
    tmp = out / "_tmp"
    previous = Path(p.previous) if p.previous else None
    changed = p.deleted or any(r.files.num_rows for r in results)
    if previous is not None and not changed:
        # nothing changed: the tables are the previous ones, byte for byte
        prev_files = table_files(previous)
        counts, files = {}, {}
        for t in S.WAREHOUSE_TABLES:
            if t.name != "runs":
                counts[t.name], files[t.name] = link_table(prev_files[t.name], out, t.name)
        parts = read_parts(previous)
    else:
        con = build_connection(tmp, memory_limit, threads)
        try:
            manifest = compact_staging(con, wh.staging, manifest, f"{p.run_id}-compact")
            counts, parts, files = build_tables(con, wh.staging, manifest, out, previous, p.as_of, p.run_id)
        finally:
            con.close()
    write_parts(out, parts)
    shutil.rmtree(tmp, ignore_errors=True)
    status = manifest.column("status")
    finished = dt.datetime.now(dt.timezone.utc)
    reread = len(p.to_read)
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
        "files_rejected": pc.sum(pc.equal(status, "rejected")).as_py() or 0,
        "files_parsed": sum(r.parsed + r.rejected for r in results),
        "fast_parsed": sum(r.fast for r in results),
        **{f"{name}_rows": n for name, n in counts.items()},
        "duration_s": (finished - p.started_at).total_seconds(),
        "newsetl_version": _package_version(),
    }
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
    write_manifest(out, manifest)
    write_info(out, {
        "run_id": p.run_id,
        "parse_version": PARSE_VERSION,
        "batches": sorted(set(manifest.column("batch_id").to_pylist())),
        "counts": counts,
        "inputs": p.inputs,
        # every file of every table: readers read these and nothing else (store.table_files)
        "files": {t.name: sorted(files[t.name]) for t in S.WAREHOUSE_TABLES},
    })
    return Built(p.run_id, str(out), counts, row)


def new_manifest(p: Plan, results: list[BatchResult]) -> pa.Table:
    """The live files after this run: unchanged rows of the old manifest plus what was parsed."""
    parts = []
    old = read_manifest(Path(p.previous)) if p.previous else None
    if old is not None:
        reread = {f.source_path for f, _ in p.to_read}
        same = {sp: m for r in results for sp, m in r.same}
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


def _previous_runs(p: Plan) -> pa.Table:
    if p.previous:
        f = Path(p.previous) / "runs" / "part-0.parquet"
        if f.exists():
            return pq.read_table(f).cast(S.RUNS.schema)
    return S.RUNS.schema.empty_table()


def _failed_row(dead: dict) -> dict:
    def ts(v):
        return dt.datetime.fromisoformat(v) if isinstance(v, str) else v

    return {"run_id": dead["run_id"], "started_at": ts(dead.get("started_at")), "as_of": ts(dead.get("as_of")),
            "status": "failed", "inputs": json.dumps(dead.get("inputs"))}


def _files(staging: Path, batches: list[str], table: str) -> str:
    return read_list(staging / b / f"{table}.parquet" for b in batches)


def build_connection(temp_dir: Path, memory_limit: str = BUILD_MEMORY, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={"memory_limit": memory_limit, "temp_directory": str(temp_dir),
                                 "preserve_insertion_order": False})
    # DuckDB would draw its own progress bar on stdout during long builds, in
    # the middle of the caller's output
    con.execute("SET enable_progress_bar = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def build_tables(con: duckdb.DuckDBPyConnection, staging: Path, manifest: pa.Table, out: Path,
                 previous: Path | None, as_of, run_id: str) -> tuple[dict[str, int], pa.Table, dict[str, list[str]]]:
    """Write the warehouse tables (all but `runs`) from the live staging rows into `out`.

    `manifest` has one row per live file: source_path and the batch_id holding its rows.
    `previous` is the last snapshot: its article_versions the history extends,
    and its child-table parts are reused where still right.
    Returns the row count of each table written, the parts of the child tables, and the
    names of each table's files.
    """
    _replace_table(con, "live", manifest.select(["source_path", "batch_id"]))
    batches = sorted(set(manifest.column("batch_id").to_pylist()))
    for t in S.STAGING_TABLES:
        name = t.name  # stg_articles ...
        cols = ", ".join(f's."{c}"' for c in t.names)
        if batches:
            src = f"read_parquet({_files(staging, batches, name[4:])})"
            con.execute(
                f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {cols}, s.batch_id FROM {src} s "
                "SEMI JOIN live USING (source_path, batch_id)"
            )
        else:  # an empty input folder still gives empty, well-typed tables
            con.register(f"{name}_empty", t.schema.append(pa.field("batch_id", pa.string())).empty_table())
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {name}_empty")
    con.execute(_sql("build/tables.sql"))
    prev_versions = previous / "article_versions" / "part-0.parquet" if previous else None
    if prev_versions is not None and prev_versions.exists():
        con.execute(f"CREATE OR REPLACE TEMP VIEW prev_versions AS SELECT * FROM read_parquet({read_list([prev_versions])})")
    else:
        con.register("prev_versions_empty", S.ARTICLE_VERSIONS.schema.empty_table())
        con.execute("CREATE OR REPLACE TEMP VIEW prev_versions AS SELECT * FROM prev_versions_empty")
    con.execute("SET VARIABLE as_of = CAST($as_of AS TIMESTAMPTZ)", {"as_of": as_of})
    con.execute("SET VARIABLE run_id = CAST($run_id AS VARCHAR)", {"run_id": run_id})
    con.execute(_sql("build/history.sql"))
    counts, files = {}, {}
    for t in BUILT:
        (out / t.name).mkdir(parents=True, exist_ok=True)
        target = out / t.name / "part-0.parquet"
        con.execute(
            f"COPY (SELECT * FROM wh_{t.name} ORDER BY {ORDER_BY[t.name]}) "
            f"TO {sql_literal(str(target))} ({PARQUET_OPTIONS})"
        )
        counts[t.name] = pq.read_metadata(target).num_rows
        files[t.name] = [target.name]
    child_counts, parts, child_files = build_children(con, out, previous, run_id)
    counts.update(child_counts)
    files.update(child_files)
    return {t.name: counts[t.name] for t in S.WAREHOUSE_TABLES if t.name in counts}, parts, files


def _replace_table(con: duckdb.DuckDBPyConnection, name: str, data: pa.Table) -> None:
    con.register(f"{name}_arrow", data)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_arrow")
    con.unregister(f"{name}_arrow")


def build_children(con: duckdb.DuckDBPyConnection, out: Path, previous: Path | None,
                   run_id: str) -> tuple[dict[str, int], pa.Table, dict[str, list[str]]]:
    """images, related_links and related_images: reuse the previous parts that are still right.

    These tables hold most of the warehouse's bytes, and a typical run changes
    heat or quality of a few articles, not their links: rewriting them every
    run would cost more than parsing the changed files. A part is reused
    (hard-linked) when every article in it has the same child list as before
    and no link of it points at an article that appeared or went away.
    """
    prev_parts = read_parts(previous)
    prev_files = table_files(previous)["articles"] if previous is not None else []  # named, never listed
    if prev_files:
        con.execute("CREATE OR REPLACE TEMP TABLE prev_ids AS SELECT article_id, "
                    "article_identity(url, source_path) AS identity FROM "
                    f"read_parquet({read_list(prev_files)})")
    else:
        _replace_table(con, "prev_ids", pa.table({"article_id": pa.array([], pa.string()),
                                                  "identity": pa.array([], pa.string())}))
    con.execute(_sql("build/id_delta.sql"))
    no_targets = pa.table({"article_id": pa.array([], pa.string())})
    changed_ids = con.execute("SELECT count(*) FROM id_delta").fetchall()[0][0]
    counts, parts, names = {}, [], {}
    for table, digest in CHILDREN.items():
        mine = prev_parts.filter(pc.equal(prev_parts.column("table"), table)).select(["part", "article_id", "digest"])
        _replace_table(con, "prev_parts", mine)
        if table == "related_links" and changed_ids and mine.num_rows:  # no old parts (a first run): nothing to go stale
            con.execute(_sql("build/stale_targets.sql"))
        else:
            _replace_table(con, "stale_targets", no_targets)
        con.execute(_sql("build/children.sql").format(table=table, digest=digest))
        state = con.execute("SELECT part, articles, still_valid FROM part_state ORDER BY articles, part").fetchall()
        kept = [part for part, n, ok in state if n == ok]
        if len(kept) >= MAX_PARTS:  # merge the smallest into the new part
            kept = kept[len(kept) - MAX_PARTS // 2:]
        _replace_table(con, "kept_parts", pa.table({"part": pa.array(kept, pa.string())}))
        con.execute(_sql("build/children_rewrite.sql").format(table=table))
        folder = out / table
        folder.mkdir(parents=True, exist_ok=True)
        for part in kept:
            os.link(previous / table / part, folder / part)
        new_part = f"{run_id}.parquet"
        written: set[str] = set()
        if con.execute("SELECT count(*) FROM rewrite").fetchall()[0][0]:
            target = folder / new_part
            con.execute(f"COPY ({_sql(f'build/rows_{table}.sql')}) TO {sql_literal(str(target))} ({PARQUET_OPTIONS})")
            if pq.read_metadata(target).num_rows:
                written = {r[0] for r in con.execute(
                    f"SELECT DISTINCT article_id FROM read_parquet({read_list([target])})").fetchall()}
            else:
                target.unlink()
        files = [folder / part for part in kept] + ([folder / new_part] if written else [])
        if not files:  # the view needs a file to know the columns
            pq.write_table(S.BY_NAME[table].schema.empty_table(), folder / "empty.parquet")
            files = [folder / "empty.parquet"]
        counts[table] = sum(pq.read_metadata(f).num_rows for f in files)
        names[table] = [f.name for f in files]
        keep_rows = con.sql(
            "SELECT part, article_id, digest FROM valid WHERE part IS NULL OR part IN (SELECT part FROM kept_parts)"
        ).to_arrow_table()
        new_rows = con.sql("SELECT article_id, digest FROM rewrite").to_arrow_table()
        new_part_col = pa.array([new_part if a in written else None for a in new_rows.column("article_id").to_pylist()],
                                pa.string())
        for rows, part_col in ((keep_rows, keep_rows.column("part")), (new_rows, new_part_col)):
            parts.append(pa.table({"table": pa.array([table] * rows.num_rows, pa.string()), "part": part_col,
                                   "article_id": rows.column("article_id"), "digest": rows.column("digest")},
                                  schema=PARTS_SCHEMA))
    return counts, pa.concat_tables(parts), names


SMALL_BATCH_FILES = 250  # a batch with fewer live files than this is merged by compaction ...


MAX_SMALL_BATCHES = 16  # ... once there are more small batches than this


def compact_staging(con: duckdb.DuckDBPyConnection, staging: Path, manifest: pa.Table, batch_id: str) -> pa.Table:
    """Merge the live rows of small staging batches into one batch; returns the updated manifest.

    Every incremental run adds a batch of the few files it parsed; without
    this, a warehouse on a 30-minute schedule would read thousands of tiny
    files per run after a few weeks. Old batches are left for `collect`.
    """
    counts = manifest.group_by("batch_id").aggregate([("source_path", "count")])
    small = [b for b, n in zip(counts.column("batch_id").to_pylist(), counts.column("source_path_count").to_pylist())
             if n < SMALL_BATCH_FILES]
    if len(small) <= MAX_SMALL_BATCHES:
        return manifest
    con.register("compact_manifest", manifest.select(["source_path", "batch_id"]))
    out = staging / batch_id
    out.mkdir(parents=True, exist_ok=True)
    for t in S.STAGING_TABLES:
        target = out / f"{t.name[4:]}.parquet"
        cols = ", ".join(f's."{c}"' for c in t.names)
        con.execute(
            f"COPY (SELECT {cols}, {sql_literal(batch_id)} AS batch_id FROM read_parquet({_files(staging, small, t.name[4:])}) s "
            f"SEMI JOIN compact_manifest USING (source_path, batch_id)) TO {sql_literal(str(target))} "
            "(FORMAT parquet, COMPRESSION lz4)"
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


def link_table(files: list[Path], out: Path, name: str) -> tuple[int, list[str]]:
    """Reuse a table of the previous snapshot unchanged (its `files`, as it names them): hard
    links, no copy. Returns its row count and its files' names."""
    (out / name).mkdir(parents=True, exist_ok=True)
    n = 0
    for f in files:
        os.link(f, out / name / f.name)
        n += pq.read_metadata(f).num_rows
    return n, [f.name for f in files]


def _sql(name: str) -> str:
    return (resources.files("newsetl") / "sql" / name).read_text(encoding="utf-8")
