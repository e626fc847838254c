"""The warehouse on disk: layout, the run lock, snapshots and their state.

    warehouse/
      news.duckdb              DuckDB catalog: a view per table over the current snapshot
      current -> snapshots/R   the last complete run (the commit point, swapped atomically)
      snapshots/R/<table>/*.parquet        one Parquet dataset per table (child tables in parts)
      snapshots/R/_state/      what the next run needs: manifest of live files, history
      staging/B/<table>.parquet            parsed rows of one batch of files, reused by later runs
      .lock                    held by the run that is writing
      .catalog-snapshot        which snapshot news.duckdb shows (by inode: exact whenever a run died)

A snapshot is never modified once published; a run writes a new one and swaps
`current`. Readers holding an older snapshot keep reading it until it is
collected (the newest `KEEP_SNAPSHOTS` are kept).
"""

from __future__ import annotations

import errno
import fcntl
import functools
import inspect
import json
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .schema import STG_FILES

KEEP_SNAPSHOTS = 3
LOCK_TIMEOUT = 600.0  # seconds a run waits for another run on the same warehouse (--lock-timeout)

# File descriptors of the run locks this process holds. A flock belongs to the
# open file, which a forked child (a parse worker) shares: the child must let
# go of it, or a worker outliving a killed run would keep the warehouse locked.
_held_locks: set[int] = set()


def _drop_locks_in_child() -> None:
    if not _held_locks:
        return
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        for fd in _held_locks:
            os.dup2(null, fd)  # not close: the child's file object may still close it later
    finally:
        os.close(null)
    _held_locks.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_locks_in_child)
CATALOG = "news.duckdb"


class WarehouseError(Exception):
    """The warehouse cannot be used (unwritable, locked, damaged)."""


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_FULL_TEXT = {errno.ENOSPC: os.strerror(errno.ENOSPC), errno.EDQUOT: os.strerror(errno.EDQUOT)}
NO_PERMISSION = (errno.EACCES, errno.EPERM, errno.EROFS)


def _causes(exc: BaseException):
    seen, todo = set(), [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend([e.__cause__, e.__context__, *getattr(e, "exceptions", ())])


def write_failures_in_one_line(fn):
    """Decorate a function taking a `warehouse` argument: a full disk (or no permission) wherever
    it struck becomes one WarehouseError naming that warehouse, the rest passes unchanged."""
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            err = write_failure(e, Path(bound.arguments["warehouse"]).expanduser().absolute())
            if err is None:
                raise
            raise err from e

    return wrapper


def disk_full(exc: BaseException) -> str | None:
    """"No space left on device" (or "Disk quota exceeded") if that is what `exc` comes down to,
    raised by Python, pyarrow or DuckDB, here or in a worker; else None."""
    for e in _causes(exc):
        code = getattr(e, "errno", None) if isinstance(e, OSError) else None
        if code in DISK_FULL:
            return _FULL_TEXT[code]
        text = str(e)
        for t in _FULL_TEXT.values():
            if t in text:  # pyarrow and DuckDB keep errno in the message only
                return t
        if "max_temp_directory_size" in text:  # DuckDB could not spill: its temp folder is full
            return _FULL_TEXT[errno.ENOSPC]
    return None


def write_failure(exc: BaseException, root) -> WarehouseError | None:
    """A one-line WarehouseError for an exception that means the warehouse cannot be written
    (disk full, over quota, no permission), from Python, pyarrow or DuckDB, in this process or
    a worker's; None for anything else."""
    wh = Path(root)
    try:
        intact = "the last complete snapshot is intact" if os.path.lexists(wh / "current") else "nothing was published"
    except OSError:
        intact = "the last complete snapshot is intact"
    full = disk_full(exc)
    if full:
        return WarehouseError(f"{full.lower()} while writing {wh}: free space and run again; {intact}")
    for e in _causes(exc):
        if (isinstance(e, OSError) and e.errno in NO_PERMISSION
                and str(e.filename or "").startswith(str(wh) + os.sep)):
            return WarehouseError(f"cannot write to {wh}: {e.strerror} ({e.filename}): "
                                  f"fix its permissions and run again; {intact}")
    return None


class Warehouse:
    """A warehouse folder. remote.RemoteWarehouse is the same interface in object storage;
    remote.open_warehouse gives the one a path or URL names."""

    remote = False

    def __init__(self, root):
        if isinstance(root, str) and root.lower().startswith("file://"):
            root = root[7:] or "/"
        self.root = Path(root).expanduser().absolute()
        if "\\" in str(self.root):
            # DuckDB opens `a\b` as `a/b` (the catalog file, the spill folder): it could not work
            raise WarehouseError(f"warehouse {self.root}: DuckDB reads a backslash in a path as a folder separator; "
                                 "choose a folder whose path has none")

    # -- paths ------------------------------------------------------------------
    @property
    def catalog(self) -> Path:
        return self.root / CATALOG

    @property
    def snapshots(self) -> Path:
        return self.root / "snapshots"

    @property
    def staging(self) -> Path:
        return self.root / "staging"

    @property
    def current_link(self) -> Path:
        return self.root / "current"

    def snapshot_dir(self, run_id: str) -> Path:
        return self.snapshots / run_id

    def staging_dir(self, batch_id: str) -> Path:
        return self.staging / batch_id

    @property
    def parse_staging(self) -> str:
        """Where the parse workers write their staging batches (a URL for a warehouse in object storage)."""
        return str(self.staging)

    def batch_done(self, batch_id: str) -> None:
        """A batch was parsed: make it durable (the run's process, idle meanwhile, does it for the workers)."""
        sync_staging(self.staging / batch_id)

    def where(self, snapshot: Path) -> str:
        """A snapshot's location, as a user would give it."""
        return str(snapshot)

    # -- state ------------------------------------------------------------------
    def current(self) -> Path | None:
        """The directory of the last complete run, or None for a new warehouse."""
        try:
            target = os.readlink(self.current_link)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise WarehouseError(f"{self.current_link}: {e.strerror}") from None
        path = (self.root / target).resolve()
        if not path.is_dir():
            raise WarehouseError(f"{self.current_link} points to {target}, which is missing")
        return path

    def require_current(self) -> Path:
        cur = self.current()
        if cur is None:
            raise WarehouseError(
                f"no warehouse at {self.root}: run `newsetl run INPUT --warehouse {self.root}` first"
            )
        return cur

    def prepare(self) -> None:
        """Create the folders, or say clearly why the warehouse is not writable."""
        try:
            for d in (self.root, self.snapshots, self.staging):
                d.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            if e.errno in DISK_FULL:
                if all(d.is_dir() for d in (self.root, self.snapshots, self.staging)):
                    return  # full, not unwritable: the run first collects what failed runs left, then tries
                raise write_failure(e, self.root) from None
            raise WarehouseError(f"warehouse {self.root} is not writable: {e.strerror or e}") from None

    @contextmanager
    def lock(self, timeout: float):
        """Hold the run lock; wait up to `timeout` seconds for another run to finish.

        Once held, what earlier runs left behind when they died or failed
        (partial snapshots, staging batches no snapshot names, temporary and
        spill files) is removed first: after a full disk, the space they hold
        is what the next run needs."""
        self.prepare()
        fh = open(self.root / ".lock", "a+")
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as e:
                    if e.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() >= deadline:
                        holder = fh.read().strip() if fh.seek(0) == 0 else ""
                        raise WarehouseError(
                            f"another run is writing to {self.root}{f' ({holder})' if holder else ''}; "
                            f"gave up after waiting {timeout:g} s (--lock-timeout)"
                        ) from None
                    time.sleep(0.2)
            _held_locks.add(fh.fileno())
            self._note_holder(fh, "")
            self.collect()
            yield
        finally:
            _held_locks.discard(fh.fileno())
            fh.close()  # closing releases the lock, also when the process is killed

    @staticmethod
    def _note_holder(fh, what: str) -> None:
        # only for the message of a run that waits: a full disk must not stop the run here
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(f"pid {os.getpid()}{what} since {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
            fh.flush()
        except OSError:
            pass

    @contextmanager
    def try_lock(self):
        """The run lock if it is free right now: yields True while held, False if another
        process holds it or the folder cannot be written. Never waits, never creates folders."""
        try:
            fh = open(self.root / ".lock", "a+")
        except OSError:
            yield False
            return
        try:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                yield False
                return
            _held_locks.add(fh.fileno())
            self._note_holder(fh, " (rewriting the catalog)")
            yield True
        finally:
            _held_locks.discard(fh.fileno())
            fh.close()

    def locked_by(self) -> str | None:
        """Who holds the run lock ("pid N since T"), or None if nobody does."""
        try:
            fh = open(self.root / ".lock")
        except OSError:
            return None
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    return None
                return fh.read().strip() or "another process"
            fcntl.flock(fh, fcntl.LOCK_UN)
            return None

    # -- runs in progress -------------------------------------------------------
    @property
    def running_marker(self) -> Path:
        return self.root / ".running.json"

    def begin(self, run: dict) -> dict | None:
        """Mark a run as started; returns the marker of a run that died before publishing, if any.

        Called under the lock, so a marker still present belongs to a dead run.
        """
        abandoned = None
        try:
            abandoned = json.loads(self.running_marker.read_text())
        except (FileNotFoundError, ValueError):
            pass
        # runs that died one after another (a full disk) are all recorded by the next that completes
        earlier = []
        if isinstance(abandoned, dict) and abandoned.get("run_id") != run.get("run_id"):
            earlier = [*abandoned.get("earlier", []), {k: v for k, v in abandoned.items() if k != "earlier"}]
        tmp = self.root / f".running-{os.getpid()}.tmp"
        tmp.write_text(json.dumps({**run, "earlier": earlier}, default=str))
        os.replace(tmp, self.running_marker)
        return abandoned

    def end(self) -> None:
        self.running_marker.unlink(missing_ok=True)

    # -- publishing -------------------------------------------------------------
    def partial_dir(self, run_id: str) -> Path:
        d = self.snapshots / f"{run_id}.partial"
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        return d

    def commit(self, partial: Path, run_id: str) -> Path:
        """Make a fully written snapshot the current one: one atomic rename of the link.

        Idempotent, so a retried publish after a transient error completes the first.
        """
        final = self.snapshot_dir(run_id)
        if partial.exists():
            _fsync_tree(partial)
            os.replace(partial, final)
        elif not final.exists():
            raise WarehouseError(f"snapshot {run_id} is gone: neither {partial} nor {final} exists")
        tmp_link = self.root / f".current-{run_id}"
        if tmp_link.is_symlink():
            tmp_link.unlink()
        os.symlink(os.path.relpath(final, self.root), tmp_link)
        os.replace(tmp_link, self.current_link)
        fsync_path(self.root)
        return final

    def collect(self, keep: int = KEEP_SNAPSHOTS) -> None:
        """Remove old snapshots, leftovers of killed runs and unreferenced staging batches."""
        cur = self.current()
        done = sorted(p for p in self.snapshots.iterdir() if p.is_dir() and not p.name.endswith(".partial"))
        kept = done[-keep:]
        if cur is not None and cur not in kept:
            kept.append(cur)
        for p in self.snapshots.iterdir():
            if p not in kept:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
        referenced: set[str] = set()
        for snap in kept:
            referenced.update(read_batches(snap))
        for b in self.staging.iterdir():
            if b.name not in referenced:
                shutil.rmtree(b, ignore_errors=True)
        for pattern in (".current-*", ".running-*.tmp", ".write-test-*", ".catalog-snapshot.*.tmp", f"{CATALOG}.*.tmp*"):
            for p in self.root.glob(pattern):
                p.unlink(missing_ok=True)


# -- snapshot state files ------------------------------------------------------

STATE = "_state"
# the live files after a run: one stg_files row each, and the staging batch holding its rows
MANIFEST_SCHEMA = STG_FILES.schema.append(pa.field("batch_id", pa.string()))


def write_manifest(snapshot: Path, manifest: pa.Table) -> None:
    (snapshot / STATE).mkdir(exist_ok=True)
    pq.write_table(manifest, snapshot / STATE / "manifest.parquet", compression="zstd")


def read_manifest(snapshot: Path | None) -> pa.Table | None:
    if snapshot is None:
        return None
    return pq.read_table(snapshot / STATE / "manifest.parquet")


def write_info(snapshot: Path, info: dict) -> None:
    (snapshot / STATE).mkdir(exist_ok=True)
    (snapshot / STATE / "snapshot.json").write_text(json.dumps(info, indent=2, sort_keys=True, default=str))


def read_info(snapshot: Path) -> dict:
    return json.loads((snapshot / STATE / "snapshot.json").read_text())


def read_batches(snapshot: Path) -> list[str]:
    try:
        return read_info(snapshot).get("batches", [])
    except FileNotFoundError:
        return []


def fsync_path(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    # durable before the link points at it: a power cut must not publish empty files
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            fsync_path(Path(dirpath, name))
        fsync_path(Path(dirpath))



# -- staging: parsed rows of one batch of files, reused by later runs ------------------------

def batch_dir(staging, batch_id: str):
    """A staging batch's folder: a Path, or a URL when the warehouse is in object storage."""
    if isinstance(staging, str) and "://" in staging:
        return f"{staging.rstrip('/')}/{batch_id}"
    return Path(staging) / batch_id


def write_staging(directory, batch_id: str, tables: dict[str, pa.Table], sync: bool = True) -> None:
    """Write one batch's staging tables; each row gets the batch id (to tell versions apart).

    `sync=False` leaves `sync_staging` to the caller (the run's main process,
    which waits for workers anyway). A URL `directory` writes objects (objectstore)."""
    tables = {name: table.append_column("batch_id", pa.array([batch_id] * table.num_rows, pa.string()))
              for name, table in tables.items()}
    if isinstance(directory, str):
        from .objectstore import write_tables

        write_tables(directory, tables, WarehouseError)
        return
    directory.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        # staging is written once and read by every build: lz4 is the fastest both ways
        pq.write_table(table, directory / f"{name}.parquet", compression="lz4")
    if sync:
        sync_staging(directory)


def sync_staging(directory: Path) -> None:
    """Make a staging batch durable: its files, and its entry in the staging folder.
    (Later runs reuse it, so it must be on disk before a snapshot names it.)"""
    if not directory.is_dir():  # a batch whose files were all unchanged writes nothing
        return
    for path in directory.iterdir():
        fsync_path(path)
    fsync_path(directory)
    fsync_path(directory.parent)


# -- child-table parts: which Parquet part holds which article's child rows -----------------

PARTS_SCHEMA = pa.schema([("table", pa.string()), ("part", pa.string()),
                          ("article_id", pa.string()), ("digest", pa.string())])


def read_parts(snapshot: Path | None) -> pa.Table:
    path = snapshot / "_state" / "parts.parquet" if snapshot else None
    if path is None or not path.exists():
        return PARTS_SCHEMA.empty_table()
    return pq.read_table(path).cast(PARTS_SCHEMA)


def write_parts(snapshot: Path, parts: pa.Table) -> None:
    (snapshot / "_state").mkdir(exist_ok=True)
    pq.write_table(parts, snapshot / "_state" / "parts.parquet", compression="zstd")
