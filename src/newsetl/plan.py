"""Plan: what a run has to do, from the file listing and the last run's manifest.

A plan lists the input files, decides which need reading (new, or with
another size or mtime; an object: another size or ETag), which are unchanged and which are gone, checks the
run's as-of time, and cuts the files to read into batches for the parse.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import limits
from .sources import SourceFile, discover, rejection_key
from .remote import open_warehouse
from .store import Warehouse, read_info, read_manifest

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
    unchanged: list[str]  # source paths with the same size and mtime as before
    deleted: list[str]
    files_new: int
    abandoned: list[dict] = field(default_factory=list)  # runs that died before publishing


def plan(inputs, warehouse, run_id: str | None = None, as_of: dt.datetime | None = None) -> Plan:
    """List the input files and compare them with the last run's manifest.

    Size and mtime (an object's ETag) decide which files need reading; the content hash (checked
    when the file is read) decides whether a read file really changed.
    """
    started = dt.datetime.now(dt.timezone.utc)
    run_id = run_id or new_run_id(started)
    wh = open_warehouse(warehouse)
    files = discover(inputs)
    previous = wh.current()
    as_of, racy_ns = _check_as_of(as_of or started, previous)
    old = {}
    manifest = read_manifest(previous) if previous is not None and _parse_version(previous) == PARSE_VERSION else None
    if manifest is not None:
        cols = manifest.select(["source_path", "bytes", "mtime_ns", "sha256", "status", "error"]).to_pydict()
        old = {p: (b, m, h, s == "rejected" and h is None, e) for p, b, m, h, s, e in
               zip(cols["source_path"], cols["bytes"], cols["mtime_ns"], cols["sha256"], cols["status"], cols["error"])}
    to_read, unchanged, new = [], [], 0
    cap = limits.RECORD.file_bytes
    for f in files:
        before = old.get(f.source_path)
        # rejected last run before its bytes were read (no hash to compare): the same rejection
        # again is `unchanged` (parse.parse_batch compares this key)
        key = rejection_key(before[0], before[4]) if before is not None and before[3] else None
        if f.problem is not None or (key is not None and f.size <= cap):
            # not a readable file, or one that could not be read: looked at again every run (a
            # permission or a link may have been fixed without touching its size or mtime); only a
            # file past the cap is known to be rejected again from its listing alone
            new += before is None
            to_read.append((f, key))
        elif before is None:
            new += 1
            to_read.append((f, None))
        elif before[0] == f.size and before[1] == f.mtime_ns and (f.version is not None or f.mtime_ns < racy_ns):
            # an object's stamp is its ETag's, exact: no clock to distrust
            unchanged.append(f.source_path)
        else:
            to_read.append((f, key if key is not None else before[2]))
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
