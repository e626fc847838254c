"""Plan: what a run has to do, from the file listing and the last run's manifest.

A plan lists the input files, decides which need reading (new, or with
another size or mtime; an object: another size or ETag), which are unchanged and which are gone, checks the
run's as-of time, and cuts the files to read into batches for the parse.

The listing is compared with the manifest as Arrow columns (`decide`): a run costs
Python objects for the files it reads, not for the files the warehouse holds.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import limits
from .sources import InputError, Listing, SourceFile, list_inputs, rejection_key
from .remote import open_warehouse
from .store import STATE, Warehouse, read_info

BATCH_FILES = 1000  # a batch is at most this many files ...


BATCH_BYTES = 8 << 20  # ... or this many bytes, so memory stays flat per worker


# The meaning of staging rows: bump it when the same bytes would give other
# rows, and the first run of the new version parses every file again.
PARSE_VERSION = 2


def new_run_id(now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S.%fZ") + "-" + secrets.token_hex(3)


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
    unchanged: pa.Array  # source paths with the same size and mtime as before (Arrow: one per file held)
    deleted: list[str]
    files_new: int
    abandoned: list[dict] = field(default_factory=list)  # runs that died before publishing
    reading: int = 0  # len(to_read), kept after the run lets go of the files it parsed
    idle: bool = False  # nothing to read and nothing gone: the run publishes the last snapshot's tables again
    held: int = 0  # files the last snapshot's manifest holds (what `deleted` is a share of)
    roots: dict[str, str] = field(default_factory=dict)  # input name -> folder or URL, this run's
    roots_before: dict[str, str] | None = None  # ... and the last run's (None: not recorded, or a first run)

    def __post_init__(self) -> None:
        self.reading = len(self.to_read)
        self.idle = not self.to_read and not self.deleted

    def parsed(self) -> None:
        """Every file to read is in a batch's result now: let go of them (a first run of a
        million files holds a million SourceFiles, 300 MB, through the build otherwise)."""
        self.to_read = []


# what the plan reads of the last manifest
MANIFEST_COLUMNS = ["source_path", "bytes", "mtime_ns", "sha256", "status", "error"]


def plan(inputs, warehouse, run_id: str | None = None, as_of: dt.datetime | None = None) -> Plan:
    """List the input files and compare them with the last run's manifest.

    Size and mtime (an object's ETag) decide which files need reading; the content hash (checked
    when the file is read) decides whether a read file really changed.
    """
    started = dt.datetime.now(dt.timezone.utc)
    run_id = run_id or new_run_id(started)
    wh = open_warehouse(warehouse)
    listing = list_inputs(inputs)
    previous = wh.current()
    as_of, racy_ns = _check_as_of(as_of or started, previous)
    manifest, reuse, roots_before = None, False, None
    if previous is not None:
        roots_before = _roots(previous)
        reuse = _parse_version(previous) == PARSE_VERSION  # parsed by another version: every old row goes
        # only the columns compared, as Arrow (ParquetFile: pq.read_table imports pyarrow.dataset, and pandas)
        manifest = pq.ParquetFile(previous / STATE / "manifest.parquet").read(
            columns=MANIFEST_COLUMNS if reuse else ["source_path"])
    files = listing_table(listing)
    # a file edited just before the last run is not read again for it on a filesystem with fine
    # times (ext4, xfs, APFS, NTFS ...): a schedule's edits are not all "racy" for two seconds
    d = decide(files, manifest, racy_ns, limits.RECORD.file_bytes, reuse,
               racy_ns + RACY_NS - FINE_RACY_NS if racy_ns else None)
    paths = files.column("source_path").take(pa.array(d.to_read, pa.int64())).to_pylist()
    # a SourceFile for each file to read only (few, run after run), in source_path order
    to_read = sorted(((listing.file(i, sp), key) for i, sp, key in zip(d.to_read, paths, d.keys)),
                     key=lambda item: item[0].source_path)
    return Plan(run_id, started, as_of, [str(i) for i in ([inputs] if isinstance(inputs, (str, os.PathLike)) else inputs)],
                str(wh.root), str(previous) if previous else None, len(listing), to_read, d.unchanged, d.deleted,
                d.new, held=manifest.num_rows if manifest is not None else 0, roots=dict(listing.roots),
                roots_before=roots_before)


def _roots(snapshot: Path) -> dict[str, str] | None:
    try:
        roots = read_info(snapshot).get("input_roots")
    except (FileNotFoundError, ValueError):
        return None
    return roots if isinstance(roots, dict) else None


class TooManyDeletes(InputError):
    """A run would delete more of the warehouse's files than it may (`check_deletes`): nothing was written."""


def check_deletes(p: Plan, max_share: float, allow: bool = False) -> None:
    """Stop a run that would delete more than `max_share` of the files the last snapshot holds
    (an unmounted share, a typo in a deployment, another set of inputs), before it writes
    anything; `allow` lets it through. A first run deletes nothing; a re-run with some of the
    inputs deletes the others' files, and stops too when they are more than the share."""
    if allow or not p.deleted or len(p.deleted) <= max_share * p.held:
        return
    why = ""
    if p.roots_before is not None and p.roots_before != p.roots:
        def show(roots: dict) -> str:
            return ", ".join(f"{n}={r}" for n, r in sorted(roots.items())) or "none"
        why = f"; its inputs differ from the last run's ({show(p.roots_before)} before, {show(p.roots)} now)"
    raise TooManyDeletes(
        f"this run would delete {len(p.deleted):,} of the {p.held:,} files in {p.warehouse} "
        f"({len(p.deleted) / p.held:.0%}, more than max_delete_share {max_share:g}){why}: nothing was written; "
        "if that is meant, run again with --allow-deletes (pipeline.run(allow_deletes=True), the flow's "
        "allow_deletes), or set max_delete_share under [run] in newsetl.toml")


def _false() -> pa.Scalar:
    # typed: pyarrow imports pandas to infer a Python value's type (cli._pyarrow_without_pandas)
    return pa.scalar(False, pa.bool_())


def listing_table(listing: Listing) -> pa.Table:
    """The listing as an Arrow table, a row per listing row: source_path, size, mtime_ns, problem
    (an entry not readable as a file) and object (an object in storage, whose stamp is exact)."""
    n = len(listing)
    if listing.extra:  # entries with a problem, followed links, objects: a flag each
        problem, obj = [False] * n, [False] * n
        for i, f in listing.extra.items():
            problem[i] = f.problem is not None
            obj[i] = f.version is not None
        problem, obj = pa.array(problem, pa.bool_()), pa.array(obj, pa.bool_())
    else:
        problem = obj = pa.repeat(_false(), n)
    return pa.table({
        "source_path": pa.array(listing.source_paths(), pa.string()),
        "size": pa.array(listing.size, pa.int64()),
        "mtime_ns": pa.array(listing.mtime_ns, pa.int64()),
        "problem": problem,
        "object": obj,
    })


@dataclass
class Decisions:
    to_read: list[int]  # rows of the listing table to read
    keys: list[str | None]  # each one's sha256 before, or rejection key (sources.rejection_key), or None
    unchanged: pa.Array  # source paths
    deleted: list[str]  # source paths, sorted
    new: int


def decide(files: pa.Table, manifest: pa.Table | None, racy_ns: int, cap: int, reuse: bool = True,
           fine_racy_ns: int | None = None) -> Decisions:
    """Which listed files need reading, in Arrow (a hash join of the listing with the manifest).

    A file is unchanged when the manifest has its size and mtime (an object's: its ETag's stamp)
    and that mtime is older than `racy_ns` (a file written in the tick the last run listed it
    may have changed after that listing; an object's stamp is exact). A file whose mtime has a
    part below the second lives on a filesystem that keeps fine times: `fine_racy_ns`, if given,
    is its limit (a tick there is milliseconds, not seconds). A file rejected last run
    before its bytes were read (no hash) is read again each run unless it is past `cap` (a
    permission or a link may have been fixed without touching its size or mtime), and so is an
    entry that is not a readable file; its key is then the rejection key, which makes the same
    rejection again `unchanged` (parse.parse_batch). Without `reuse` (the manifest was written by
    another parse version) every file is read, and the manifest only tells which are new."""
    paths = files.column("source_path")
    n = files.num_rows
    if manifest is None:
        manifest = pa.table({c: pa.array([], pa.int64() if c in ("bytes", "mtime_ns") else pa.string())
                             for c in MANIFEST_COLUMNS})
        reuse = True
    old_paths = manifest.column("source_path").combine_chunks()
    idx = pc.index_in(paths, value_set=old_paths)  # the manifest's row of each file; null: new
    known = pc.count(idx).as_py() or 0
    deleted = [] if known == len(old_paths) else \
        sorted(pc.filter(old_paths, pc.invert(pc.is_in(old_paths, value_set=paths))).to_pylist())
    if not reuse:
        return Decisions(list(range(n)), [None] * n, pa.array([], pa.string()), deleted, n - known)
    size, mtime = files.column("size"), files.column("mtime_ns")
    # rejected last run before its bytes were read: no hash to compare
    was_rejected = pc.and_(pc.equal(manifest.column("status"), pa.scalar("rejected", pa.string())),
                           pc.is_null(manifest.column("sha256")))
    rejected = pc.fill_null(was_rejected.take(idx), _false())
    again = pc.or_(files.column("problem"), pc.and_(rejected, pc.less_equal(size, pa.scalar(cap, pa.int64()))))
    same = pc.fill_null(pc.and_(pc.equal(manifest.column("bytes").take(idx), size),
                                pc.equal(manifest.column("mtime_ns").take(idx), mtime)), _false())
    limit = pa.scalar(racy_ns, pa.int64())
    if fine_racy_ns is not None:
        second = pa.scalar(1_000_000_000, pa.int64())
        fine = pc.not_equal(pc.subtract(mtime, pc.multiply(pc.divide(mtime, second), second)), pa.scalar(0, pa.int64()))
        limit = pc.if_else(fine, pa.scalar(fine_racy_ns, pa.int64()), limit)
    settled = pc.or_(files.column("object"), pc.less(mtime, limit))
    unchanged = pc.and_(pc.and_(pc.invert(again), same), settled)
    rows = pc.indices_nonzero(pc.invert(unchanged))
    old = manifest.select(["bytes", "error", "sha256"]).take(idx.take(rows))
    keys = [rejection_key(b, e) if r else (None if p else h) for b, e, h, r, p in zip(
        old.column("bytes").to_pylist(), old.column("error").to_pylist(), old.column("sha256").to_pylist(),
        rejected.take(rows).to_pylist(), files.column("problem").take(rows).to_pylist())]
    return Decisions(rows.to_pylist(), keys, pc.filter(paths, unchanged), deleted, n - known)


def _parse_version(snapshot: Path) -> int:
    try:
        return read_info(snapshot).get("parse_version", 1)
    except FileNotFoundError:
        return 1


RACY_NS = 2_000_000_000  # mtime resolution to distrust: some filesystems keep whole (even 2) seconds
# ... and where a file's mtime shows a part below the second: a clock tick of the kernel (1-10 ms), with room
FINE_RACY_NS = 100_000_000


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
        runs = pq.ParquetFile(previous / "runs" / "part-0.parquet").read(columns=["as_of", "started_at"])
        last = pc.max(runs.column("as_of")).as_py()
        if last is not None and as_of < last:
            raise ValueError(f"as-of time {as_of.isoformat()} is before the last run's ({last.isoformat()}): "
                             "history only moves forward")
        listed = pc.max(runs.column("started_at")).as_py()
        if listed is not None:
            racy_ns = int(listed.timestamp() * 1e9) - RACY_NS
    return as_of, racy_ns


def begin(wh: Warehouse, p: Plan) -> None:
    """Note that run `p` started; a run that died before publishing becomes a `failed` row."""
    dead = wh.begin({"run_id": p.run_id, "started_at": p.started_at, "as_of": p.as_of, "inputs": p.inputs})
    if dead and dead.get("run_id") != p.run_id:
        p.abandoned.append(dead)


@dataclass
class BatchSpec:
    batch_id: str
    run_id: str
    staging_dir: str
    files: list[tuple[SourceFile, str | None]]
    parser: str = "fast"  # or "pyyaml": PyYAML only, the reference
    sync: bool = False  # fsync the staging files where parsed; a run syncs each finished batch itself (pipeline.run)
    keys: object = None  # mapping.Mapping: generator keys -> the news format's; None: the news format's own


def make_batches(p: Plan, staging_dir, max_files: int = BATCH_FILES, max_bytes: int = BATCH_BYTES,
                 workers: int | None = None, parser: str = "fast", keys=None) -> list[BatchSpec]:
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
    return [BatchSpec(f"{p.run_id}-{i:05d}", p.run_id, str(staging_dir), b, parser, keys=keys)
            for i, b in enumerate(batches)]
