"""The ETL as plain functions: plan -> parse batches -> build -> publish.

`run()` composes them in-process (library use, benchmarks); `flows/etl.py`
composes the same functions as Prefect tasks. Each stage takes and returns
small explicit values, so any of them can be called and tested alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import datetime as dt
import hashlib
import json
import multiprocessing
import os
import secrets
import shutil
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import __version__
from . import schema as S
from .catalog import ensure_catalog, write_catalog
from .extract import EMPTY_SHA256, Extracted, SourceFile, discover, extract_all, read_error, read_file, unexpected
from .flatten import BatchBuilder
from .load import (
    BUILD_MEMORY,
    build_connection,
    build_tables,
    compact_staging,
    link_table,
    read_parts,
    sync_staging,
    write_parts,
    write_staging,
    write_table,
)
from .store import Warehouse, read_info, read_manifest, write_failures_in_one_line, write_info, write_manifest

BATCH_FILES = 1000  # a batch is at most this many files ...
BATCH_BYTES = 8 << 20  # ... or this many bytes, so memory stays flat per worker
LOCK_TIMEOUT = 600.0
IN_PROCESS_BYTES = 8 << 20  # less to parse than this: no worker processes

MANIFEST_SCHEMA = S.STG_FILES.schema.append(pa.field("batch_id", pa.string()))
# The meaning of staging rows: bump it when the same bytes would give other
# rows, and the first run of the new version parses every file again.
PARSE_VERSION = 2


def new_run_id(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S.%fZ") + "-" + secrets.token_hex(3)


def fault_point(name: str) -> None:
    """Crash tests set NEWSETL_FAULT=<point>:kill (or <point>:sleep=<s>) to stop a real run here.

    Points: parsing (each parsed batch, while workers run), parsed, built, committed,
    cataloged. Unset, this costs one dict lookup.
    """
    spec = os.environ.get("NEWSETL_FAULT")
    if not spec or not spec.startswith(name + ":"):
        return
    action = spec.split(":", 1)[1]
    if action == "kill":
        os.kill(os.getpid(), 9)
    elif action.startswith("sleep="):
        time.sleep(float(action[6:]))


# -- plan ---------------------------------------------------------------------------

@dataclass
class Plan:
    """What a run has to do, decided from the file listing and the last run's manifest."""

    run_id: str
    started_at: dt.datetime
    as_of: dt.datetime  # when the files were observed; history's valid_from
    inputs: list[str]
    warehouse: str
    previous: str | None  # snapshot directory of the last complete run
    files_seen: int
    to_read: list[tuple[SourceFile, str | None]]  # (file, sha256 it had before, if any)
    unchanged: list[str]  # source paths with the same size and mtime as before
    deleted: list[str]
    files_new: int
    abandoned: list[dict] = field(default_factory=list)  # runs that died before publishing


def plan(inputs, warehouse, run_id: str | None = None, as_of: dt.datetime | None = None) -> Plan:
    """List the input files and compare them with the last run's manifest.

    Size and mtime decide which files need reading; the content hash (checked
    when the file is read) decides whether a read file really changed.
    """
    started = dt.datetime.now(dt.timezone.utc)
    run_id = run_id or new_run_id(started)
    wh = Warehouse(warehouse)
    files = discover(inputs)
    previous = wh.current()
    as_of, racy_ns = _check_as_of(as_of or started, previous)
    old = {}
    manifest = read_manifest(previous) if previous is not None and _parse_version(previous) == PARSE_VERSION else None
    if manifest is not None:
        cols = manifest.select(["source_path", "bytes", "mtime_ns", "sha256"]).to_pydict()
        old = {p: (b, m, h) for p, b, m, h in zip(cols["source_path"], cols["bytes"], cols["mtime_ns"], cols["sha256"])}
    to_read, unchanged, new = [], [], 0
    for f in files:
        before = old.get(f.source_path)
        if f.problem is not None:  # not a readable file: looked at again every run
            new += before is None
            to_read.append((f, None))
        elif before is None:
            new += 1
            to_read.append((f, None))
        elif before[0] == f.size and before[1] == f.mtime_ns and f.mtime_ns < racy_ns:
            unchanged.append(f.source_path)
        else:
            to_read.append((f, before[2]))
    seen = {f.source_path for f in files}
    if previous is not None and manifest is None:  # parsed by another version: every old row goes
        old = {p: None for p in read_manifest(previous).column("source_path").to_pylist()}
        new = sum(f.source_path not in old for f in files)
    deleted = sorted(p for p in old if p not in seen)
    return Plan(run_id, started, as_of, [str(i) for i in ([inputs] if isinstance(inputs, (str, os.PathLike)) else inputs)],
                str(wh.root), str(previous) if previous else None, len(files), to_read, unchanged, deleted, new)


def _parse_version(snapshot: Path) -> int:
    try:
        return read_info(snapshot).get("parse_version", 1)
    except FileNotFoundError:
        return 1


RACY_NS = 2_000_000_000  # mtime resolution to distrust: some filesystems keep whole (even 2) seconds


# how far ahead of this machine's clock an as-of time may be: the clocks of a scheduler
# and of the machine that runs the flow may disagree by a little, never by more
AS_OF_SKEW = dt.timedelta(minutes=5)


def check_as_of(as_of: dt.datetime, now: dt.datetime | None = None) -> dt.datetime:
    """An as-of time a run may use (a naive one is UTC), or a one-line ValueError.

    Not in the future beyond AS_OF_SKEW: history only moves forward, so one run far
    ahead would refuse every run after it. And in UTC within years 1 to 9999, what
    Python's datetime, and so the CSV/JSON exports and the next run, can read back.
    The CLI, `run` and the flow call this before anything is written.
    """
    if not isinstance(as_of, dt.datetime):
        raise ValueError(f"as-of time must be a date and time, not {type(as_of).__name__}")
    if as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=dt.timezone.utc)
    try:
        utc = as_of.astimezone(dt.timezone.utc)
    except OverflowError:
        raise ValueError(f"as-of time {as_of.isoformat()} is out of range: in UTC it must fall "
                         "between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z") from None
    now = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    if utc > now + AS_OF_SKEW:
        raise ValueError(f"as-of time {as_of.isoformat()} is in the future (now is {now:%Y-%m-%dT%H:%M:%SZ}; "
                         f"at most {AS_OF_SKEW.seconds // 60} minutes ahead are allowed, for clock skew)")
    return as_of


def _check_as_of(as_of: dt.datetime, previous: Path | None) -> tuple[dt.datetime, int]:
    """The run's as-of time (never before the last run's), and the mtime from which
    an unchanged size and mtime prove nothing: a file written in the same
    tick as the last run listed it may have changed after that listing."""
    as_of = check_as_of(as_of)
    racy_ns = 0
    if previous is not None:
        runs = pq.read_table(previous / "runs" / "part-0.parquet", columns=["as_of", "started_at"])
        last = pc.max(runs.column("as_of")).as_py()
        if last is not None and as_of < last:
            raise ValueError(f"as-of time {as_of.isoformat()} is before the last run's ({last.isoformat()}): "
                             "history only moves forward")
        listed = pc.max(runs.column("started_at")).as_py()
        if listed is not None:
            racy_ns = int(listed.timestamp() * 1e9) - RACY_NS
    return as_of, racy_ns


# -- parse --------------------------------------------------------------------------

@dataclass
class BatchSpec:
    batch_id: str
    run_id: str
    staging_dir: str
    files: list[tuple[SourceFile, str | None]]
    parser: str = "fast"  # or "pyyaml": PyYAML only, the reference
    sync: bool = True  # fsync the staging files here; False: the caller does (sync_staging)


@dataclass
class BatchResult:
    batch_id: str
    files: pa.Table  # stg_files rows of the files parsed (or rejected) in this batch
    same: list[tuple[str, int]] = field(default_factory=list)  # (source_path, mtime_ns): content unchanged
    parsed: int = 0
    rejected: int = 0
    fast: int = 0
    bytes: int = 0
    rows: dict = field(default_factory=dict)


def make_batches(p: Plan, staging_dir, max_files: int = BATCH_FILES, max_bytes: int = BATCH_BYTES,
                 workers: int | None = None, parser: str = "fast") -> list[BatchSpec]:
    """Cut the files to read into batches: at most `max_files` files or `max_bytes` bytes each,
    and small enough that every worker gets several (the last batch to finish sets the pace)."""
    workers = workers or os.cpu_count() or 1
    total = sum(f.size for f, _ in p.to_read)
    max_bytes = max(min(max_bytes, total // (4 * workers) + 1), 256 << 10)
    max_files = max(min(max_files, len(p.to_read) // (4 * workers) + 1), 50)
    batches, current, size = [], [], 0
    for item in p.to_read:
        if current and (len(current) >= max_files or size + item[0].size > max_bytes):
            batches.append(current)
            current, size = [], 0
        current.append(item)
        size += item[0].size
    if current:
        batches.append(current)
    return [BatchSpec(f"{p.run_id}-{i:05d}", p.run_id, str(staging_dir), b, parser) for i, b in enumerate(batches)]


def parse_batch(spec: BatchSpec) -> BatchResult:
    """Read, parse and flatten one batch of files; write its staging tables.

    A file whose content hash equals the one it had before is not parsed again.
    Whatever happens to one file while it is read, split, parsed, typed or
    flattened makes that file `rejected` with a one-line error; only the
    warehouse (writing the staging files) can make this raise.
    """
    same = []
    read = []
    unreadable = []
    nbytes = 0
    for f, old_sha in spec.files:
        try:
            data = read_file(f)
        except Exception as e:  # noqa: BLE001 - vanished, unreadable or not a file since listing: never fatal
            unreadable.append(Extracted(f, EMPTY_SHA256, 0, error=read_error(e)))
            continue
        nbytes += len(data)
        # touched but not changed (a checkout, a copy): not worth parsing
        if old_sha is not None and hashlib.sha256(data).hexdigest() == old_sha:
            same.append((f.source_path, f.mtime_ns))
            continue
        read.append((f, data))
    tables = flatten_files(spec.run_id, unreadable + extract_all(read, fast=spec.parser == "fast", split_related=True))
    files = tables["stg_files"]
    if files.num_rows:
        write_staging(Path(spec.staging_dir) / spec.batch_id, spec.batch_id,
                      {name[4:]: t for name, t in tables.items()}, sync=spec.sync)
    status = files.column("status")
    return BatchResult(
        batch_id=spec.batch_id,
        files=files.append_column("batch_id", pa.array([spec.batch_id] * files.num_rows, pa.string())),
        same=same,
        parsed=pc.sum(pc.equal(status, "parsed")).as_py() or 0,
        rejected=pc.sum(pc.equal(status, "rejected")).as_py() or 0,
        fast=pc.sum(pc.equal(files.column("parser"), "fast")).as_py() or 0,
        bytes=nbytes,
        rows={name: t.num_rows for name, t in tables.items()},
    )


def flatten_files(run_id: str, extracted: list[Extracted]) -> dict[str, pa.Table]:
    """The staging tables of extracted files. Typing runs a column at a time over
    the batch; should one file's values still break that, each file is typed on
    its own, so that only the file that breaks is rejected."""
    builder = BatchBuilder(run_id)
    for ex in extracted:
        builder.add(ex)
    try:
        return builder.tables()
    except Exception as e:  # noqa: BLE001 - one file must never stop its batch
        if len(extracted) == 1:
            ex = extracted[0]
            return flatten_files(run_id, [Extracted(ex.file, ex.sha256, ex.size, error=unexpected("type", e))])
    parts = [flatten_files(run_id, [ex]) for ex in extracted]
    return {name: pa.concat_tables([p[name] for p in parts]) for name in parts[0]}


def _start_method() -> str:
    """How worker processes start: forked from this process when that is safe, else
    from a forkserver that imports newsetl first.

    A fork starts a worker at once, with every module already imported; the
    forkserver costs about 0.4 s of imports before the first batch. Forking is
    safe here on Linux when no other Python thread runs (a Prefect flow, a web
    server: their locks could be copied held). The only other threads are
    OpenBLAS's and jemalloc's, which prepare for fork themselves; Python 3.12+
    still warns about any thread at fork, so there the forkserver is used.
    """
    if (sys.platform == "linux" and sys.version_info < (3, 12) and threading.active_count() == 1
            and "fork" in multiprocessing.get_all_start_methods()):
        return "fork"
    return "forkserver"


def _worker_init(parent: int | None) -> None:
    """Parse workers die with the process that forked them (Linux): a killed run
    must not leave workers behind, holding memory and waiting for work forever."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # no prctl: orphans are possible, as elsewhere
        return
    if parent is not None and os.getppid() != parent:  # it died before prctl
        os._exit(1)


def _pool(workers: int) -> ProcessPoolExecutor:
    ctx = multiprocessing.get_context(_start_method())
    parent = os.getpid()
    if ctx.get_start_method() == "forkserver":
        # workers fork from a clean process that already imported us, not
        # from a parent holding other threads
        ctx.set_forkserver_preload(["newsetl.pipeline"])
        parent = None  # the forkserver, whose pid we do not know
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init, initargs=(parent,))


def parse_all(batches: list[BatchSpec], workers: int | None = None, progress=None,
              pool: ProcessPoolExecutor | None = None) -> list[BatchResult]:
    """Parse every batch, in worker processes when there is more than one batch.

    `pool`, if given, is used (and left open) instead of starting one."""
    workers = workers or os.cpu_count() or 1
    results = []
    done_files = 0
    sum_files = sum(len(b.files) for b in batches)
    work = sum(f.size for b in batches for f, _ in b.files)
    # starting worker processes costs about half a second: not worth it for a few files
    if workers <= 1 or len(batches) <= 1 or work < IN_PROCESS_BYTES:
        for b in batches:
            results.append(parse_batch(b))
            done_files += len(b.files)
            if progress:
                progress(done_files, sum_files)
    else:
        with contextlib.ExitStack() as stack:
            if pool is None:
                pool = stack.enter_context(_pool(min(workers, len(batches))))
            # the workers do not wait for the disk: this process, idle
            # meanwhile, makes each finished batch durable
            futures = {pool.submit(parse_batch, dataclasses.replace(b, sync=False)): b for b in batches}
            for fut in as_completed(futures):
                results.append(fut.result())
                sync_staging(Path(futures[fut].staging_dir) / futures[fut].batch_id)
                fault_point("parsing")
                done_files += len(futures[fut].files)
                if progress:
                    progress(done_files, sum_files)
    results.sort(key=lambda r: r.batch_id)
    return results


# -- build --------------------------------------------------------------------------

@dataclass
class Built:
    run_id: str
    snapshot: str  # the partial snapshot directory, complete but not yet published
    counts: dict
    run_row: dict


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


def build(p: Plan, results: list[BatchResult], flow_run_id: str | None = None,
          memory_limit: str = BUILD_MEMORY, threads: int | None = None) -> Built:
    """Write every table of the new snapshot into a partial directory."""
    wh = Warehouse(p.warehouse)
    out = wh.partial_dir(p.run_id)
    manifest = new_manifest(p, results)
    tmp = out / "_tmp"
    previous = Path(p.previous) if p.previous else None
    changed = p.deleted or any(r.files.num_rows for r in results)
    if previous is not None and not changed:
        # nothing changed: the tables are the previous ones, byte for byte
        counts = {t.name: link_table(previous, out, t.name) for t in S.WAREHOUSE_TABLES if t.name != "runs"}
        parts = read_parts(previous)
    else:
        con = build_connection(tmp, memory_limit, threads)
        try:
            manifest = compact_staging(con, wh.staging, manifest, f"{p.run_id}-compact")
            counts, parts = build_tables(con, wh.staging, manifest, out, previous, p.as_of, p.run_id)
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
        "newsetl_version": __version__,
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
    write_manifest(out, manifest)
    write_info(out, {
        "run_id": p.run_id,
        "parse_version": PARSE_VERSION,
        "batches": sorted(set(manifest.column("batch_id").to_pylist())),
        "counts": counts,
        "inputs": p.inputs,
    })
    return Built(p.run_id, str(out), counts, row)


# -- publish ------------------------------------------------------------------------

def publish(b: Built, warehouse) -> Path:
    """Make the snapshot current (atomic), point the catalog at it, collect old state."""
    wh = Warehouse(warehouse)
    final = wh.commit(Path(b.snapshot), b.run_id)
    wh.end()
    fault_point("committed")
    write_catalog(wh, final)
    fault_point("cataloged")
    wh.collect()
    return final


def begin(wh: Warehouse, p: Plan) -> None:
    """Note that run `p` started; a run that died before publishing becomes a `failed` row."""
    dead = wh.begin({"run_id": p.run_id, "started_at": p.started_at, "as_of": p.as_of, "inputs": p.inputs})
    if dead and dead.get("run_id") != p.run_id:
        p.abandoned.append(dead)


def _failed_row(dead: dict) -> dict:
    def ts(v):
        return dt.datetime.fromisoformat(v) if isinstance(v, str) else v

    return {"run_id": dead["run_id"], "started_at": ts(dead.get("started_at")), "as_of": ts(dead.get("as_of")),
            "status": "failed", "inputs": json.dumps(dead.get("inputs"))}


# -- the whole run ------------------------------------------------------------------

@dataclass
class RunResult:
    run_id: str
    warehouse: str
    snapshot: str
    counts: dict
    run: dict

    def summary(self) -> str:
        r = self.run
        return (
            f"run {self.run_id}: {r['files_seen']} files "
            f"({r['files_new']} new, {r['files_changed']} changed, {r['files_unchanged']} unchanged, "
            f"{r['files_deleted']} deleted, {r['files_rejected']} rejected); "
            + ", ".join(f"{k} {v:,}" for k, v in self.counts.items())
        )


@write_failures_in_one_line
def run(inputs, warehouse="warehouse", *, workers: int | None = None, lock_timeout: float = LOCK_TIMEOUT,
        progress=None, run_id: str | None = None, flow_run_id: str | None = None, as_of: dt.datetime | None = None,
        batch_files: int = BATCH_FILES, batch_bytes: int = BATCH_BYTES, parser: str = "fast") -> RunResult:
    """Run the ETL on `inputs` (folders) into `warehouse`, in this process and its workers.

    `parser="pyyaml"` parses every file with PyYAML alone: slower, and the
    reference the fast parser's tables are tested against."""
    if parser not in ("fast", "pyyaml"):
        raise ValueError(f"unknown parser {parser!r}: fast or pyyaml")
    if as_of is not None:
        as_of = check_as_of(as_of)  # before the warehouse folder is made
    wh = Warehouse(warehouse)
    wh.prepare()
    workers = workers or os.cpu_count() or 1
    with wh.lock(lock_timeout), contextlib.ExitStack() as stack:
        pool = None
        if workers > 1 and wh.current() is None:
            # a first run has every file to parse: start the workers (with a
            # forkserver, half a second of imports) while this process lists
            # the files. (A first run on a few files parses in-process and
            # pays for that start at the end instead; later runs start
            # workers only when needed.)
            pool = stack.enter_context(_pool(workers))
            pool.submit(os.getpid)
        ensure_catalog(wh)
        p = plan(inputs, warehouse, run_id, as_of)
        begin(wh, p)
        batches = make_batches(p, wh.staging, batch_files, batch_bytes, workers, parser)
        results = parse_all(batches, workers, progress, pool)
        stack.close()  # the workers' memory is freed before the build
        fault_point("parsed")
        built = build(p, results, flow_run_id)
        fault_point("built")
        final = publish(built, warehouse)
    return RunResult(p.run_id, str(wh.root), str(final), built.counts, built.run_row)
