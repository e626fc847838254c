"""The warehouse on disk: layout, the run lock, snapshots and their state.

    warehouse/
      news.duckdb              DuckDB catalog: a view per table over the current snapshot
      current -> snapshots/R   the last complete run (the commit point, swapped atomically)
      snapshots/R/<table>/*.parquet        one Parquet dataset per table (child tables in parts)
      snapshots/R/_state/      what the next run needs: manifest of live files, history, and
                               snapshot.json, which names every file of every table (readers read those)
      staging/B/<table>.parquet            parsed rows of one batch of files, reused by later runs
      .lock                    held by the run that is writing
      .catalog-snapshot        which snapshot news.duckdb shows (by inode: exact whenever a run died)
      .noted                   the notes a command prints once per warehouse, one name a line

A snapshot is never modified once published; a run writes a new one and swaps
`current`. Readers holding an older snapshot keep reading it until it is
collected (the newest `KEEP_SNAPSHOTS` are kept).

Everything newsetl writes here has a name of its own (`recognise` knows them
all): a folder holding anything else is not taken for a warehouse, nothing is
written into it, and garbage collection removes only newsetl's names. Readers
never list a table's folder: they read the files the snapshot names, so a file
that appears there (a sync tool's conflicted copy, a `COPY ... TO`) is not data.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import inspect
import json
import os
import re
import shutil
import stat
import time
from contextlib import contextmanager
from pathlib import Path

from .defaults import LOCK_TIMEOUT  # noqa: F401 - seconds a run waits for another run (--lock-timeout)
from .schema import CHECK_TABLES, STAGING_TABLES, STG_FILES, WAREHOUSE_TABLES

KEEP_SNAPSHOTS = 3

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
MARKER = ".catalog-snapshot"  # which snapshot news.duckdb shows: catalog.write_catalog writes it
# the macro of news.duckdb that gives, as a query runs, the folder of the catalog file the
# shell opened: its views read the snapshot's files relative to it (catalog.root_macro_sql)
ROOT_MACRO = "newsetl_root"


def note_once(root, name: str) -> bool:
    """True the first time the note `name` is asked about for the warehouse folder `root`, and
    records that it was (in `root/.noted`); False from then on. A folder that cannot be written
    (or is not there yet) records nothing: the note is shown again next time."""
    path = Path(root) / NOTED
    try:
        if name in path.read_text(encoding="utf-8").split():
            return False
    except (OSError, UnicodeDecodeError):
        pass
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(name + "\n")
    except OSError:
        pass
    return True


class WarehouseError(Exception):
    """The warehouse cannot be used (unwritable, locked, damaged)."""


class NoSuchSnapshot(ValueError):
    """A snapshot asked for by name (--snapshot, rollback) is not one the warehouse keeps."""


def not_kept(name: str, root, kept: list[str]) -> str:
    return (f"snapshot {name!r} is not kept in {root}: the kept snapshots are {', '.join(kept) or 'none'} "
            "(newsetl rollback --list describes them)")


class NotAWarehouse(WarehouseError):
    """The folder holds things newsetl did not write: it is not used as a warehouse."""


# -- newsetl's own names ----------------------------------------------------------------------
# A run id is its start time and a random tag (plan.new_run_id); snapshots, staging batches and
# child-table parts are named after it. Garbage collection removes nothing else.
RUN_ID = r"\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{6}"
RUN_ID_RE = re.compile(RUN_ID)
SNAPSHOT_NAME = re.compile(rf"(?P<run>{RUN_ID})(?:\.partial)?")
STAGING_NAME = re.compile(rf"(?:\.dl-)?{RUN_ID}-(?:\d{{5}}|compact)")  # a batch; `.dl-`: one being downloaded
# files of a table folder: one part, an empty table's placeholder, a child-table part of a run
# a table's part: `<run id>.<step>` when the run built in steps (build.STEP_FILES)
TABLE_FILE = re.compile(rf"(?:part-0|empty|{RUN_ID}(?:\.\d+)?)\.parquet")
DELETE_FILE = re.compile(rf"_deletes/{RUN_ID}(?:\.\d+)?\.parquet")  # a table's delete file (newsetl.parts), as snapshot.json names it
# in the warehouse folder itself: its state, and the temporary names of writes under way
NOTED = ".noted"  # the notes a command prints once per warehouse (note_once)
ROOT_FILES = {".lock", ".running.json", ".catalog-snapshot", NOTED}
ROOT_TEMP = re.compile(rf"\.current-{RUN_ID}|\.running-\d+\.tmp|\.write-test-\d+|\.catalog-snapshot\.\d+\.tmp"
                       rf"|news\.duckdb\.{RUN_ID}\.tmp(?:\.wal)?")
# the layout note this repository keeps in its default ./warehouse (warehouse/README.md): newsetl's
# own, known by how it starts; left alone
LAYOUT_NOTE = ("README.md", b"# warehouse/\n\nWritten by `newsetl run`")
# written by the operating system (its file browsers, mkfs), never by a user; left alone
OS_FILES = {".DS_Store", "Thumbs.db", "desktop.ini", "lost+found"}


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

    def fetch_batches(self, batches) -> None:
        """Staging batches the build is about to read: on disk already (in object storage, fetched)."""

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
            self.recognise()  # `current` is a folder or a file, the warehouse path a file: says which
            raise WarehouseError(f"{self.current_link}: {e.strerror}") from None
        if not _is_snapshot_link(target):
            self.recognise()
        path = (self.root / target).resolve()
        if not path.is_dir():
            raise WarehouseError(f"{self.current_link} points to {target}, which is missing")
        return path

    def require_current(self) -> Path:
        cur = self.current()
        if cur is None:
            self.recognise()  # a folder of something else is named as such, not as an empty warehouse
            raise WarehouseError(
                f"no warehouse at {self.root}: run `newsetl run INPUT --warehouse {self.root}` first"
            )
        return cur

    # -- kept snapshots: what readers may read (--snapshot) and rollback may make current --------
    def kept(self) -> list[str]:
        """The names of the complete snapshots kept, oldest first (a snapshot is named by its run)."""
        try:
            entries = list(self.snapshots.iterdir())
        except FileNotFoundError:
            return []
        return sorted(p.name for p in entries if SNAPSHOT_NAME.fullmatch(p.name) and not p.name.endswith(".partial")
                      and p.is_dir() and not p.is_symlink() and (p / STATE / "snapshot.json").is_file())

    def snapshot(self, name: str | None = None):
        """What readers read: the current snapshot (None), or the kept snapshot `name`, else a
        one-line NoSuchSnapshot naming the kept ones. A folder here (a document in object storage)."""
        if name is None:
            return self.require_current()
        kept = self.kept()
        if name not in kept:
            self.require_current()  # an empty or foreign folder is named as such
            raise NoSuchSnapshot(not_kept(name, self.root, kept))
        return self.snapshot_dir(name)

    def snapshot_info(self, name: str) -> dict:
        """A kept snapshot's snapshot.json."""
        return read_info(self.snapshot_dir(name))

    def make_current(self, name: str) -> Path:
        """Make the kept snapshot `name` current again (rollback): the commit's atomic swap of
        `current`, nothing copied. Under the run lock."""
        if name not in self.kept():
            raise NoSuchSnapshot(not_kept(name, self.root, self.kept()))
        return Warehouse.commit(self, self.snapshots / f"{name}.partial", name)

    def foreign(self) -> list[str]:
        """What this folder holds that newsetl did not write (empty for a new or a newsetl warehouse).

        Looks at the folder, snapshots/ and staging/ by name, the `current` link's target, and
        whether news.duckdb is the catalog newsetl wrote; never at a snapshot's insides (its
        readers read only the files it names)."""
        try:
            st = os.stat(self.root)
        except (FileNotFoundError, NotADirectoryError):
            return []  # nothing there yet (a file on the way: `recognise` says so)
        if not stat.S_ISDIR(st.st_mode):
            return []  # a file: `recognise` says so
        found = []
        entries = sorted(os.listdir(self.root))
        for name in entries:
            path = self.root / name
            if name in ROOT_FILES or ROOT_TEMP.fullmatch(name) or name in OS_FILES:
                if name in ROOT_FILES and path.is_dir():
                    found.append(f"{name}/ (a folder)")
                continue
            if name == "current":
                try:
                    target = os.readlink(path)
                except OSError:
                    found.append("current (a folder, not newsetl's link to a snapshot)" if path.is_dir()
                                 else "current (a file, not newsetl's link to a snapshot)")
                    continue
                if not _is_snapshot_link(target):
                    found.append(f"current (a link to {target}, not to a snapshot)")
                continue
            if name in ("snapshots", "staging"):
                if not path.is_dir():
                    found.append(f"{name} (a file)")
                    continue
                pattern = SNAPSHOT_NAME if name == "snapshots" else STAGING_NAME
                for sub in sorted(os.listdir(path)):
                    if sub in OS_FILES:
                        continue
                    if not pattern.fullmatch(sub) or not (path / sub).is_dir() or (path / sub).is_symlink():
                        found.append(f"{name}/{sub}")
                continue
            if name == CATALOG:
                why = self.foreign_catalog()
                if why:
                    found.append(f"{CATALOG} ({why})")
                continue
            if name == LAYOUT_NOTE[0] and _starts_with(path, LAYOUT_NOTE[1]):
                continue
            if name in (f"{CATALOG}.wal", f"{CATALOG}.tmp"):  # DuckDB's, beside a catalog opened in a shell
                if CATALOG in entries:
                    continue
            found.append(name + ("/" if path.is_dir() and not path.is_symlink() else ""))
        return found

    def foreign_catalog(self) -> str | None:
        """None if news.duckdb is the catalog newsetl wrote (or there is none); else what it is."""
        try:
            st = os.stat(self.catalog)
        except FileNotFoundError:
            return None
        except OSError as e:
            return f"unreadable ({e.strerror})"
        if not stat.S_ISREG(st.st_mode):
            return "not a file"
        marker = read_marker(self)
        by_inode = [e for e in (marker, marker.get("previous") or {}) if e.get("inode") == st.st_ino]
        if self.catalog_untouched():  # the file as newsetl wrote it: no need to open it
            return None
        from .duck import database_objects

        try:
            objects = database_objects(self.catalog)
        except Exception as e:  # noqa: BLE001 - not DuckDB's, damaged, or open for writing elsewhere
            if by_inode or ("inode" not in marker and marker.get("snapshot")):
                return None  # the file newsetl wrote, open in a shell meanwhile: still its own
            return f"a file newsetl did not write and cannot open: {' '.join(str(e).split())[:160]}"
        own = catalog_object_names()
        theirs = [f"{kind} {name}" for kind, name in objects if kind not in ("view", "macro") or name not in own]
        if not objects and not by_inode:
            return "an empty DuckDB database newsetl did not write"
        if theirs:
            more = f" and {len(theirs) - 3} more" if len(theirs) > 3 else ""
            return f"a DuckDB database holding {', '.join(theirs[:3])}{more}, which newsetl does not write"
        return None

    def catalog_untouched(self) -> bool:
        """Whether news.duckdb is as newsetl wrote it, as far as the marker tells: the same inode,
        size and modification time, and no changes pending in a write-ahead log (a shell's)."""
        try:
            st = os.stat(self.catalog)
        except OSError:
            return False
        try:
            if os.stat(f"{self.catalog}.wal").st_size > 0:
                return False
        except OSError:
            pass
        marker = read_marker(self)
        return any(e.get("inode") == st.st_ino and e.get("stamp") == [st.st_size, st.st_mtime_ns]
                   for e in (marker, marker.get("previous") or {}))

    def holds(self, path) -> bool:
        """Whether `path` (as it would be written) lies inside this warehouse's folder."""
        try:
            target = Path(os.path.realpath(Path(path).expanduser().absolute()))
            root = Path(os.path.realpath(self.root))
        except (OSError, ValueError):
            return False
        return target == root or root in target.parents

    def recognise(self) -> None:
        """Raise NotAWarehouse (one line: what was found) unless this is a folder newsetl may
        write to: missing, empty, or a warehouse of newsetl's (this version's or an older one's).
        Called before anything is written or removed; it changes nothing."""
        blocker = _first_file(self.root)
        if blocker == self.root and self.root.exists() and not self.root.is_dir():
            raise NotAWarehouse(f"warehouse {self.root} is a file, not a folder: give --warehouse a new folder "
                                "or a newsetl warehouse (nothing was changed)")
        if blocker != self.root:
            raise NotAWarehouse(f"warehouse {self.root} is not writable: {blocker} is a file, not a folder "
                                "(nothing was changed)")
        found = self.foreign()
        if found:
            more = f" and {len(found) - 5} more" if len(found) > 5 else ""
            raise NotAWarehouse(
                f"{self.root} is not a newsetl warehouse: it holds {', '.join(found[:5])}{more}; "
                "nothing was changed (give --warehouse a new folder, or move those out of the way)")

    def prepare(self) -> None:
        """Create the folders, or say clearly why the warehouse is not writable."""
        self.recognise()
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
            if e.errno == errno.ENOTDIR:
                raise WarehouseError(f"warehouse {self.root}: {_first_file(self.root)} is a file, not a folder "
                                     "(nothing was changed)") from None
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
        if not RUN_ID_RE.fullmatch(run_id):  # garbage collection and `recognise` know run ids by their form
            raise ValueError(f"run id {run_id!r} is not of newsetl's form (plan.new_run_id)")
        d = self.snapshots / f"{run_id}.partial"
        if d.exists():
            shutil.rmtree(d)  # this run's own partial snapshot, from a try that failed: nobody else writes in it
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

    def collect(self, keep: int = KEEP_SNAPSHOTS, made_from: bool = True) -> None:
        """Remove old snapshots, leftovers of killed runs and unreferenced staging batches:
        only entries with newsetl's own names (anything else there is left as it is). The newest
        `keep` snapshots stay, the current one, and (`made_from`) the one it was made from."""
        cur = self.current()
        ours = [p for p in self.snapshots.iterdir() if SNAPSHOT_NAME.fullmatch(p.name) and p.is_dir()
                and not p.is_symlink()]
        done = sorted(p for p in ours if not p.name.endswith(".partial") and (p / STATE / "snapshot.json").exists())
        kept = done[-keep:]
        if cur is not None and cur not in kept:
            kept.append(cur)
        if cur is not None and made_from:  # and the one it was made from, which `newsetl rollback` goes back to (after a rollback
            # and a run, it is older than the snapshots rolled back from)
            made_from = _made_from(cur)
            if made_from is not None and self.snapshot_dir(made_from) in done and self.snapshot_dir(made_from) not in kept:
                kept.append(self.snapshot_dir(made_from))
        for p in ours:
            if p not in kept:
                remove_snapshot(p)
        referenced: set[str] = set()
        for snap in kept:
            referenced.update(read_batches(snap))
        for b in self.staging.iterdir():
            if STAGING_NAME.fullmatch(b.name) and b.name not in referenced and b.is_dir() and not b.is_symlink():
                _remove_own_files(b, STAGING_FILES.__contains__)
        for p in self.root.iterdir():
            if ROOT_TEMP.fullmatch(p.name) and not p.is_dir():
                p.unlink(missing_ok=True)


def _made_from(snapshot: Path) -> str | None:
    """The snapshot `snapshot` was made from (the last run's, or the one a check recorded its results
    on), as its snapshot.json says; None for a first run, or a snapshot written before it was recorded."""
    try:
        name = read_info(snapshot).get("previous")
    except (OSError, ValueError):
        return None
    return name if isinstance(name, str) and SNAPSHOT_NAME.fullmatch(name) else None


def _is_snapshot_link(target: str) -> bool:
    """Whether a `current` link's target is what Warehouse.commit writes: snapshots/<run id>."""
    parts = Path(target).parts
    return len(parts) >= 2 and parts[-2] == "snapshots" and SNAPSHOT_NAME.fullmatch(parts[-1]) is not None


def _starts_with(path: Path, head: bytes) -> bool:
    try:
        with open(path, "rb") as fh:
            return path.is_file() and fh.read(len(head)) == head
    except OSError:
        return False


def _first_file(path: Path) -> Path:
    """The first component of `path` that exists and is not a folder (`path` if none is)."""
    for p in reversed([path, *path.parents]):
        if os.path.lexists(p) and not p.is_dir():
            return p
    return path


def _own_snapshot_file(rel: str) -> bool:
    """Whether a path inside a snapshot folder is one newsetl writes there."""
    parts = rel.split("/")
    if parts[0] == "_tmp":  # the build's spill folder: all DuckDB's
        return True
    if len(parts) == 3:  # a table's delete file (or DuckDB's temporary name for one)
        return DELETE_FILE.fullmatch(parts[1] + "/" + parts[2].removeprefix("tmp_")) is not None
    if len(parts) != 2:
        return False
    folder, name = parts
    if folder == STATE:
        return name in STATE_FILES
    # a table's file, or DuckDB's temporary name for one it was writing when the run died
    return TABLE_FILE.fullmatch(name.removeprefix("tmp_")) is not None


def remove_snapshot(snapshot: Path) -> None:
    """Delete a snapshot folder: the files newsetl wrote in it, then the folders left empty.
    A file someone else put there (a sync tool's conflicted copy) is left where it is."""
    _remove_own_files(snapshot, _own_snapshot_file)


def _remove_own_files(folder: Path, own) -> None:
    for dirpath, dirs, files in os.walk(folder, topdown=False):
        d = Path(dirpath)
        for name in files:
            rel = (d / name).relative_to(folder).as_posix()
            if own(rel):
                try:
                    (d / name).unlink()
                except OSError:
                    pass
        for name in dirs:
            if (d / name).is_symlink():
                continue
            try:
                (d / name).rmdir()  # only once empty
            except OSError:
                pass
    try:
        folder.rmdir()
    except OSError:
        pass


# -- snapshot state files ------------------------------------------------------

STATE = "_state"
# parts.parquet: the child parts' articles, written before delete files; still newsetl's own name
# objects.json: in object storage, where the files a snapshot reuses from earlier ones are
OBJECTS = "objects.json"
STATE_FILES = {"manifest.parquet", "snapshot.json", "parts.parquet", "provider_mentions.parquet", OBJECTS}
STAGING_FILES = {f"{t.name[4:]}.parquet" for t in STAGING_TABLES}  # stg_articles -> articles.parquet


def __getattr__(name: str):
    # MANIFEST_SCHEMA, the live files after a run (one stg_files row each, and the staging batch
    # holding its rows): an Arrow schema, made when first asked for, as pyarrow is imported only
    # where tables are read or written (a read command starts without it)
    if name == "MANIFEST_SCHEMA":
        import pyarrow as pa

        value = globals()[name] = STG_FILES.schema.append(pa.field("batch_id", pa.string()))
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def write_manifest(snapshot: Path, manifest: pa.Table) -> None:
    import pyarrow.parquet as pq

    (snapshot / STATE).mkdir(exist_ok=True)
    pq.write_table(manifest, snapshot / STATE / "manifest.parquet", compression="zstd")


def read_manifest(snapshot: Path | None) -> pa.Table | None:
    if snapshot is None:
        return None
    import pyarrow.parquet as pq

    return pq.read_table(snapshot / STATE / "manifest.parquet")


def write_info(snapshot: Path, info: dict) -> None:
    """Replace (never write through) the snapshot's snapshot.json: in a snapshot that `newsetl
    check` made it starts as a hard link to the last snapshot's, which must stay as it was."""
    (snapshot / STATE).mkdir(exist_ok=True)
    target = snapshot / STATE / "snapshot.json"
    tmp = target.with_name(f".snapshot.json.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(info, indent=2, sort_keys=True, default=str))
    os.replace(tmp, target)


def read_info(snapshot: Path) -> dict:
    return json.loads((snapshot / STATE / "snapshot.json").read_text())


def recorded_counts(snapshot: Path) -> dict[str, int] | None:
    """Each table's rows as the snapshot's build and checks recorded them in snapshot.json, when
    it has them all and every file it names is there and ends as Parquet does (a copy cut short
    does not); None otherwise (an older snapshot, a file missing: DuckDB counts, or says why
    it cannot). What `status` and `tables` show without starting DuckDB."""
    try:
        counts = read_info(snapshot).get("counts") or {}
        files = table_files(snapshot)
    except (OSError, ValueError, AttributeError, WarehouseError):
        return None
    if not all(isinstance(counts.get(t.name), int) for t in WAREHOUSE_TABLES):
        return None
    for paths in files.values():
        for p in paths:
            try:
                with open(p, "rb") as f:
                    f.seek(-4, os.SEEK_END)
                    if f.read(4) != b"PAR1":
                        return None
            except OSError:
                return None
    return {t.name: counts[t.name] for t in WAREHOUSE_TABLES}


def table_files(snapshot: Path) -> dict[str, list[Path]]:
    """Each table's Parquet files in `snapshot`: the ones its build wrote, as snapshot.json names
    them. What else is in a table's folder is never read."""
    try:
        info = read_info(snapshot)
    except FileNotFoundError:
        info = {}
    except ValueError:
        raise WarehouseError(f"{snapshot / STATE / 'snapshot.json'} is damaged: not JSON") from None
    files = info.get("files")
    if files is None:
        # A snapshot written by a newsetl older than the list: its table folders are listed,
        # keeping only the names newsetl gives its files (part-0, empty, a run's child part), so
        # a conflicted copy or a file written there by hand is still not read.
        return {t.name: sorted(p for p in (snapshot / t.name).glob("*.parquet") if TABLE_FILE.fullmatch(p.name))
                for t in WAREHOUSE_TABLES}
    out = {}
    for t in WAREHOUSE_TABLES:
        names = files.get(t.name)
        if names is None and t in CHECK_TABLES:  # a snapshot older than the checks: none yet
            out[t.name] = []
            continue
        if not isinstance(names, list) or not all(isinstance(n, str) and (TABLE_FILE.fullmatch(n) or DELETE_FILE.fullmatch(n))
                                                  for n in names):
            raise WarehouseError(f"{snapshot / STATE / 'snapshot.json'} is damaged: no valid file list for {t.name}")
        out[t.name] = [snapshot / t.name / n for n in names]
    return out


def read_batches(snapshot: Path) -> list[str]:
    try:
        return read_info(snapshot).get("batches", [])
    except FileNotFoundError:
        return []


def read_marker(wh: Warehouse) -> dict:
    """The catalog marker: {"snapshot", "inode", "stamp": [size, mtime_ns], "views", "root",
    "previous": {...}}; "root" is the warehouse's real path when the catalog was written."""
    try:
        text = (wh.root / MARKER).read_text()
    except (OSError, ValueError):
        return {}
    try:
        m = json.loads(text)
    except ValueError:
        m = None
    return m if isinstance(m, dict) else {"snapshot": text.strip()}  # older newsetl: the name alone


@functools.cache
def catalog_object_names() -> frozenset[str]:
    """The names of everything newsetl creates in its catalog: a view per table, the macro that
    gives its folder, the analytics views and their macros (from sql/views, as
    catalog.create_views runs them)."""
    from importlib import resources

    names = {t.name for t in WAREHOUSE_TABLES} | {ROOT_MACRO}
    for f in (resources.files("newsetl") / "sql" / "views").iterdir():
        if f.name.endswith(".sql"):
            names.update(re.findall(r"CREATE\s+OR\s+REPLACE\s+(?:VIEW|MACRO)\s+(\w+)", f.read_text(encoding="utf-8"),
                                    re.IGNORECASE))
    return frozenset(names)


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
            path = Path(dirpath, name)
            if os.stat(path).st_nlink == 1:  # a hard link to an earlier snapshot's file is on disk already
                fsync_path(path)
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
    import pyarrow as pa
    import pyarrow.parquet as pq

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
