"""A warehouse in object storage (s3://, and the other fsspec protocols): `open_warehouse`
gives one for a URL, and a store.Warehouse for a folder.

    s3://analytics/news/
      _current.json                 the commit point: names the current snapshot, its files, the last few
      snapshots/<run>/<table>/*.parquet, _state/...     as on disk
      staging/<batch>/<table>.parquet                   written by the parse workers, wherever they run
      _running/<run>.json           a run in progress (or one that died before publishing)

Object stores have no rename and no symlink, so a run writes its snapshot's
objects first and then one pointer object with a conditional put (`If-Match`
the ETag it read at its start, `If-None-Match: *` for the first commit): a
reader sees the old snapshot or the new one, and a writer that raced another
loses with an error instead of overwriting. That is the lock on object
storage. On disk a warehouse keeps its `current` symlink (store.Warehouse):
renaming a link is atomic there, and `warehouse/current/<table>/*.parquet`
stays readable by any tool.

A run on an object-store warehouse works on a local copy of it (the *mirror*,
under $NEWSETL_CACHE_DIR or ~/.cache/newsetl): the snapshot the pointer names
and its live staging batches, downloaded once per machine (objects are never
rewritten under the same key, so a copy never goes stale). Plan and build run
on the mirror exactly as on a local warehouse; the commit uploads the new
snapshot (parts kept from the last one are copied inside the store), then
swaps the pointer.

Readers of an S3 warehouse (`sql`, `status`, `newsetl.connect`) keep their own cache next
to the mirror (newsetl.readcache): every read asks for the pointer, with its cached ETag, and
reads the snapshot's files from local copies, downloading only those not cached yet.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

from .parts import DELETES
from .objectstore import (check_bucket, delete_literal, delete_prefixes, errors_as, exception_chain, filesystem,
                          fs_path, is_s3, is_url, normalize, protocol)
from .store import (KEEP_SNAPSHOTS, OBJECTS, SNAPSHOT_NAME, STAGING_NAME, STATE, NoSuchSnapshot, NotAWarehouse,
                    Warehouse, WarehouseError, not_kept, read_batches, read_info)


def _common_folder(folders) -> str:
    common = []
    for parts in zip(*(f.split("/") for f in folders)):
        if len(set(parts)) > 1:
            break
        common.append(parts[0])
    return "/".join(common)


def open_warehouse(root) -> Warehouse:
    """The warehouse at `root`: a folder (store.Warehouse), or a URL (a RemoteWarehouse,
    with the same interface)."""
    if isinstance(root, Warehouse):
        return root
    if isinstance(root, str) and is_url(root):
        return RemoteWarehouse(root)
    return Warehouse(root)


POINTER = "_current.json"
POINTER_FORMAT = 2  # 2: `objects` says where each file is (a snapshot reuses earlier snapshots' files in place)
# Objects no committed snapshot names (a run that lost a race or died, its staging) are
# removed only when their run started longer ago than this: until then they may belong to
# a run still working on another machine. A run must finish within this time.
GRACE = dt.timedelta(hours=24)


def _run_time(name: str) -> dt.datetime | None:
    """When the run that made a snapshot or staging batch started (its id begins with it)."""
    try:
        return dt.datetime.strptime(name[:22], "%Y%m%dT%H%M%S.%fZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return None


def is_s3_url(url: str) -> bool:
    return protocol(url) in ("s3", "s3a")


def cache_dir() -> Path:
    base = os.environ.get("NEWSETL_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "newsetl")
    return Path(base)


def mirror_dir(url: str) -> Path:
    """The local working copy of a warehouse URL on this machine."""
    tag = re.sub(r"[^A-Za-z0-9._-]+", "_", url.split("://", 1)[1])[-60:]
    return cache_dir() / "warehouses" / f"{tag}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


class CommitConflict(WarehouseError):
    """Another run moved the pointer since this run read it: this run published nothing."""


class RemoteWarehouse(Warehouse):
    """A warehouse at a URL. Runs work on `self.local`, the mirror (a store.Warehouse);
    readers read the pointer and the snapshot's objects (`reader_files`)."""

    remote = True

    def __init__(self, url: str):  # noqa: D107 - open_warehouse(url) lands here
        self.url = normalize(url)
        self.root = self.url
        self._fs = None
        if is_s3_url(self.url) and importlib.util.find_spec("s3fs") is not None:
            pass  # s3fs (1.5 s of imports) is loaded when a run needs it: reads go through readcache
        else:
            self._fs = filesystem(self.url)  # or the one line saying which extra to install
        self.local = Warehouse(mirror_dir(self.url))
        self._etag: str | None = None
        self._doc: dict | None = None
        self._parsed: set[str] = set()  # staging batches this run's workers wrote to the store
        self._dead: list[str] = []  # markers of runs that died, recorded by this run

    def __repr__(self) -> str:
        return f"RemoteWarehouse({self.url!r})"

    @property
    def fs(self):
        """The fsspec filesystem of the URL, made when first used (a read of S3 never uses it)."""
        if self._fs is None:
            self._fs = filesystem(self.url)
        return self._fs

    def key(self, *parts: str) -> str:
        return fs_path(self.fs, "/".join([self.url, *parts]))

    # paths of the working copy: the build and plan read and write these
    catalog = property(lambda self: None)
    snapshots = property(lambda self: self.local.snapshots)
    staging = property(lambda self: self.local.staging)
    current_link = property(lambda self: self.local.current_link)
    running_marker = property(lambda self: self.local.running_marker)

    @property
    def parse_staging(self) -> str:
        return f"{self.url}/staging"

    def snapshot_dir(self, run_id):
        return self.local.snapshot_dir(run_id)

    def staging_dir(self, batch_id):
        return self.local.staging_dir(batch_id)

    def partial_dir(self, run_id):
        return self.local.partial_dir(run_id)

    def where(self, snapshot) -> str:
        return f"{self.url}/snapshots/{Path(snapshot).name}"

    def current(self):
        """In a run: the mirror's current snapshot, which `lock` made the pointer's."""
        return self.local.current()

    def locked_by(self):
        return self.local.locked_by()

    # -- the pointer ----------------------------------------------------------------
    def read_pointer(self) -> tuple[dict | None, str | None]:
        """(the pointer's document, its ETag), or (None, None) before the first commit."""
        key = self.key(POINTER)
        with errors_as(WarehouseError, self.url):
            if is_s3(self.fs):
                from fsspec.asyn import sync

                async def get():
                    try:
                        r = await self.fs._call_s3("get_object", Bucket=key.split("/", 1)[0], Key=key.split("/", 1)[1])
                    except FileNotFoundError:
                        return None, None
                    async with r["Body"] as body:
                        return await body.read(), r["ETag"]

                data, etag = sync(self.fs.loop, get)
            else:
                try:
                    data = self.fs.cat_file(key)
                except FileNotFoundError:
                    data = None
                etag = hashlib.sha256(data).hexdigest() if data is not None else None
        return self._parse_pointer(data), (etag if data is not None else None)

    def _parse_pointer(self, data: bytes | None) -> dict | None:
        if data is None:
            return None
        try:
            doc = json.loads(data)
            doc["snapshot"]
        except (ValueError, KeyError, TypeError):
            raise WarehouseError(f"{self.url}/{POINTER} is not a newsetl pointer: is this a warehouse?") from None
        if isinstance(doc.get("format"), int) and doc["format"] > POINTER_FORMAT:
            raise WarehouseError(f"{self.url}/{POINTER} was written by a newer newsetl (pointer format "
                                 f"{doc['format']}, this one reads up to {POINTER_FORMAT}): upgrade newsetl")
        return doc

    def _swap_pointer(self, doc: dict) -> None:
        """Write the pointer if nobody else did since this run read it; CommitConflict otherwise."""
        key = self.key(POINTER)
        body = json.dumps(doc, indent=1, sort_keys=True).encode()
        if is_s3(self.fs):
            cond = {"IfMatch": self._etag} if self._etag else {"IfNoneMatch": "*"}
            b, k = key.split("/", 1)
            try:
                with errors_as(WarehouseError, self.url):
                    self.fs.call_s3("put_object", Bucket=b, Key=k, Body=body, ContentType="application/json", **cond)
                return
            except WarehouseError:
                raise
            except Exception as e:  # noqa: BLE001 - a refused precondition, told apart from the rest below
                if not any("PreconditionFailed" in repr(c) or "pre-condition" in str(c) or "ConditionalRequestConflict"
                           in repr(c) for c in exception_chain(e)):
                    raise
        else:
            # no conditional write in fsspec's API: compare, then write (one writer at a time there)
            _doc, etag = self.read_pointer()
            if etag == self._etag:
                self.fs.pipe_file(key, body)
                return
        theirs, _ = self.read_pointer()
        ours = self._doc["snapshot"] if self._doc else "an empty warehouse"
        raise CommitConflict(
            f"another run committed snapshot {theirs['snapshot'] if theirs else '?'} to {self.url} while this run "
            f"was building on {ours}: this run published nothing (the other run's snapshot is current); "
            "run again to load on top of it")

    # -- a run ---------------------------------------------------------------------
    def prepare(self) -> None:
        check_bucket(self.fs, self.url, WarehouseError)
        self.recognise()
        self.local.prepare()

    # what newsetl writes at the top of a warehouse prefix
    TOP_NAMES = {POINTER, "snapshots", "staging", "_running"}

    def foreign(self) -> list[str]:
        """The names at the top of the prefix that newsetl did not write (one listing)."""
        with errors_as(WarehouseError, self.url):
            try:
                entries = self.fs.ls(self.key(), detail=False, refresh=True)
            except FileNotFoundError:
                return []
        base = self.key().rstrip("/")
        names = sorted({e.rstrip("/")[len(base) + 1:].split("/", 1)[0] for e in entries
                        if e.rstrip("/").startswith(base + "/")})
        return [n for n in names if n and n not in self.TOP_NAMES]

    def recognise(self) -> None:
        found = self.foreign()
        if found:
            more = f" and {len(found) - 5} more" if len(found) > 5 else ""
            raise NotAWarehouse(f"{self.url} is not a newsetl warehouse: it holds {', '.join(found[:5])}{more}; "
                                "nothing was changed (give --warehouse a new prefix, or move those out of the way)")

    @contextmanager
    def lock(self, timeout: float):
        """Runs on this machine take turns on the mirror (the local lock); runs on other
        machines are caught by the pointer's conditional put when they commit."""
        with self.local.lock(timeout):
            self._sync()
            self.collect()
            yield

    def _sync(self) -> None:
        """Make the mirror's current snapshot the pointer's."""
        self._doc, self._etag = self.read_pointer()
        self._parsed.clear()
        cur = self.local.current()
        if self._doc is None:
            if cur is not None:  # the store was emptied: start afresh
                self.local.current_link.unlink()
            return
        name = self._doc["snapshot"]
        if cur is None or cur.name != name:
            self._download_snapshot(name)
            self.local.commit(self.local.snapshot_dir(name + ".partial"), name)  # just the link, when complete
        # staging batches are fetched when the build reads them (fetch_batches): only those of the
        # files a run changes, never the whole live staging

    def _get(self, pairs: list[tuple[str, Path]]) -> None:
        if pairs:
            with errors_as(WarehouseError, self.url):
                self.fs.get([k for k, _ in pairs], [str(p) for _, p in pairs])

    def _download_snapshot(self, name: str) -> None:
        final = self.local.snapshot_dir(name)
        if final.is_dir():
            return
        tmp = self.local.partial_dir(name)
        prefix = self.key("snapshots", name) + "/"
        with errors_as(WarehouseError, self.url):
            keys = sorted(self.fs.find(prefix))
        if not keys:
            raise WarehouseError(f"{self.url}/{POINTER} names snapshot {name}, which is missing from the store")
        # parts and delete files are named by the run that wrote them and never rewritten: one
        # already in the mirror is linked, not downloaded again. Not `_state/`: its files
        # (manifest.parquet...) have the same names in every snapshot and differ in each
        have = {}
        for snap in self.local.snapshots.iterdir():
            if snap.is_dir() and not snap.name.endswith(".partial"):
                for f in [*snap.glob("*/*.parquet"), *snap.glob(f"*/{DELETES}/*.parquet")]:
                    rel = f.relative_to(snap).as_posix()
                    if f.name not in ("part-0.parquet", "empty.parquet") and not rel.startswith(f"{STATE}/"):
                        have.setdefault(rel, f)
        wanted = {k[len(prefix):]: k for k in keys}
        if self._doc is not None and self._doc.get("snapshot") == name:  # files that stay in earlier snapshots
            for rel, k in self._locations(final).items():
                wanted.setdefault(rel, self.key(*k.split("/")))
        todo = []
        for rel, k in sorted(wanted.items()):
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            if rel in have:
                os.link(have[rel], target)
            else:
                todo.append((k, target))
        self._get(todo)
        os.replace(tmp, final)

    def fetch_batches(self, batches) -> None:
        """Bring these staging batches into the mirror (the build is about to read them)."""
        self._download_batches(batches)

    def _download_batches(self, batches) -> None:
        for b in batches:
            if not self.local.staging_dir(b).is_dir():
                self._download_batch(b)

    def _download_batch(self, batch_id: str) -> None:
        prefix = self.key("staging", batch_id) + "/"
        with errors_as(WarehouseError, self.url):
            keys = self.fs.find(prefix)
        if not keys:
            return
        tmp = self.local.staging / f".dl-{batch_id}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self._get([(k, tmp / k[len(prefix):]) for k in keys])
        os.replace(tmp, self.local.staging_dir(batch_id))

    def batch_done(self, batch_id: str) -> None:
        """A worker wrote this batch to the store: fetch it for the build (while others parse)."""
        self._parsed.add(batch_id)
        self._download_batch(batch_id)

    def begin(self, run: dict) -> dict | None:
        """Note the run in the store; returns the runs that died before publishing, if any.

        A marker found here belongs to a dead run, or to one racing this one on
        another machine, which read the pointer before this run and so will lose."""
        prefix = self.key("_running") + "/"
        with errors_as(WarehouseError, self.url):
            try:
                keys = sorted(self.fs.find(prefix))
            except FileNotFoundError:
                keys = []
            found = []
            for k in keys:
                try:
                    found.append(json.loads(self.fs.cat_file(k)))
                except (FileNotFoundError, ValueError):
                    continue
            self.fs.pipe_file(self.key("_running", f"{run['run_id']}.json"), json.dumps(run, default=str).encode())
        self._run_id = run["run_id"]
        found = [m for m in found if isinstance(m, dict) and m.get("run_id") != run["run_id"]]
        self._dead = [m["run_id"] for m in found]
        if not found:
            return None
        return {**found[-1], "earlier": found[:-1]}

    def running(self) -> list[str]:
        """The run ids of the markers in the store: runs in progress, or dead before publishing."""
        if self._fs is None and is_s3_url(self.url):  # a reader (status): one LIST, without s3fs
            return sorted(k.rsplit("/", 1)[-1][:-5] for k in self.read_cache().list_keys("_running/")
                          if k.endswith(".json"))
        try:
            return sorted(k.rsplit("/", 1)[-1][:-5] for k in self.fs.find(self.key("_running") + "/"))
        except FileNotFoundError:
            return []

    def end(self) -> None:
        keys = [self.key("_running", f"{r}.json") for r in [*self._dead, getattr(self, "_run_id", None)] if r]
        with errors_as(WarehouseError, self.url):
            delete_literal(self.fs, keys)  # by key as written: fs.rm would read `[`, `*`, `?` as patterns
        self._dead = []

    def commit(self, partial: Path, run_id: str) -> Path:
        """Upload the snapshot, then swap the pointer (conditional): the commit. Then the mirror."""
        prev = self.local.current()
        objects = self._upload_snapshot(partial, run_id, prev)
        info_batches = read_batches(partial)
        known = set(read_batches(prev)) if prev else set()
        for b in info_batches:  # compaction's new batch: made by the build, in the mirror only
            if b not in known and b not in self._parsed:
                self._upload_dir(self.local.staging_dir(b), f"{self.url}/staging/{b}")
        files = read_info(partial)["files"]  # as the build named them: never a listing
        history = [run_id, *[s for s in (self._doc or {}).get("history", []) if s != run_id]][:KEEP_SNAPSHOTS]
        # where each file is: this snapshot's new ones under its own prefix, the rest where an
        # earlier snapshot put them (never copied: a run uploads what changed)
        where = {t: [objects[f"{t}/{n}"] for n in names] for t, names in files.items()}
        doc = {"format": POINTER_FORMAT, "snapshot": run_id, "history": history, "files": files,
               "objects": where, "committed_at": dt.datetime.now(dt.timezone.utc).isoformat()}
        self._swap_pointer(doc)
        self._doc = doc
        return self.local.commit(partial, run_id)

    def _upload_dir(self, folder: Path, url: str) -> None:
        files = [p for p in sorted(folder.rglob("*")) if p.is_file()]
        if files:
            with errors_as(WarehouseError, self.url):
                self.fs.put([str(p) for p in files],
                            [fs_path(self.fs, f"{url}/{p.relative_to(folder).as_posix()}") for p in files])

    def _upload_snapshot(self, partial: Path, run_id: str, prev: Path | None) -> dict[str, str]:
        """Upload the files of `partial` that are new; returns where every file of the snapshot
        is (relative path -> key below the warehouse URL). A file the build hard-linked from the
        last snapshot (a part still right, an unchanged table) stays where that snapshot's
        pointer says it is; its references go in `_state/objects.json` for collection."""
        before = self._locations(prev)
        reused = {}
        if prev is not None:
            for f in prev.rglob("*"):
                if f.is_file():
                    rel = f.relative_to(prev).as_posix()
                    reused[f.stat().st_ino] = before.get(rel, f"snapshots/{prev.name}/{rel}")
        where, puts = {}, []
        for f in sorted(partial.rglob("*")):
            if not f.is_file():
                continue
            rel = f.relative_to(partial).as_posix()
            src = reused.get(f.stat().st_ino)
            if src is not None and not rel.startswith(f"{STATE}/"):
                where[rel] = src
            else:
                where[rel] = f"snapshots/{run_id}/{rel}"
                puts.append((str(f), self.key("snapshots", run_id, rel)))
        refs = json.dumps({rel: k for rel, k in where.items() if not k.startswith(f"snapshots/{run_id}/")},
                          sort_keys=True).encode()
        with errors_as(WarehouseError, self.url):
            if puts:
                self.fs.put([a for a, _ in puts], [b for _, b in puts])
            self.fs.pipe_file(self.key("snapshots", run_id, STATE, OBJECTS), refs)
        return where

    def _locations(self, snapshot: Path | None) -> dict[str, str]:
        """Where the current snapshot's files are in the store (relative path -> key below the
        URL), from the pointer; a pointer written before it named them: the snapshot's own prefix."""
        if snapshot is None or self._doc is None or self._doc.get("snapshot") != snapshot.name:
            return {}
        objects = self._doc.get("objects") or {}
        return {f"{t}/{n}": k for t, names in self._doc.get("files", {}).items()
                for n, k in zip(names, objects.get(t, [f"snapshots/{snapshot.name}/{t}/{n}" for n in names]))}

    def collect(self, keep: int = KEEP_SNAPSHOTS) -> None:
        """Remove from the store what no kept snapshot names: the snapshots the pointer lists
        (the last `keep` commits) stay for readers that opened them; anything else, and any
        staging batch no kept snapshot reads, goes once its run started more than GRACE ago."""
        self.local.collect(keep=1, made_from=False)  # the mirror needs the current snapshot only
        if self._doc is None:
            return
        kept = list(dict.fromkeys([self._doc["snapshot"], *self._doc.get("history", [])]))
        cutoff = dt.datetime.now(dt.timezone.utc) - GRACE
        referenced: set[str] = set()
        holding = set(kept)  # and the snapshots holding files that kept ones still read
        with errors_as(WarehouseError, self.url):
            for s in kept:
                try:
                    refs = json.loads(self.fs.cat_file(self.key("snapshots", s, STATE, OBJECTS)))
                except FileNotFoundError:
                    refs = {}
                holding.update(k.split("/")[1] for k in refs.values() if k.startswith("snapshots/"))
                local = self.local.snapshot_dir(s)
                if local.is_dir():
                    referenced.update(read_batches(local))
                else:
                    try:
                        referenced.update(json.loads(self.fs.cat_file(
                            self.key("snapshots", s, "_state", "snapshot.json"))).get("batches", []))
                    except FileNotFoundError:
                        pass
            gone = []
            for folder, keep_names in (("snapshots", holding), ("staging", referenced)):
                try:
                    names = [p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self.key(folder), detail=False)]
                except FileNotFoundError:
                    continue
                pattern = SNAPSHOT_NAME if folder == "snapshots" else STAGING_NAME
                for n in names:
                    t = _run_time(n)
                    # newsetl's own names only: anything else under the prefix is left alone
                    if n not in keep_names and pattern.fullmatch(n) and t is not None and t < cutoff:
                        gone.append(self.key(folder, n))
            if gone:
                delete_prefixes(self.fs, gone)

    # -- kept snapshots -----------------------------------------------------------------
    def kept(self) -> list[str]:
        """The snapshots the pointer keeps (the current one and the last few made current), oldest first."""
        doc, _ = self.read_pointer()
        if doc is None:
            return []
        return sorted(set([doc["snapshot"], *doc.get("history", [])]))

    def snapshot(self, name: str | None = None):
        """The pointer's document (None), or one of the same form for the kept snapshot `name`:
        its files from its snapshot.json, where each is from its objects.json (no listing)."""
        doc = self.require_current()
        if name is None or name == doc["snapshot"]:
            return doc
        kept = sorted(set([doc["snapshot"], *doc.get("history", [])]))
        if name not in kept:
            raise NoSuchSnapshot(not_kept(name, self.url, kept))
        return self._snapshot_doc(name)

    def snapshot_info(self, name: str) -> dict:
        """A kept snapshot's snapshot.json."""
        with errors_as(WarehouseError, self.url):
            try:
                return json.loads(self.fs.cat_file(self.key("snapshots", name, STATE, "snapshot.json")))
            except FileNotFoundError:
                raise WarehouseError(f"{self.url}: kept snapshot {name} is missing from the store") from None

    def _snapshot_doc(self, name: str) -> dict:
        info = self.snapshot_info(name)
        with errors_as(WarehouseError, self.url):
            try:
                refs = json.loads(self.fs.cat_file(self.key("snapshots", name, STATE, OBJECTS)))
            except FileNotFoundError:
                refs = {}
        files = info["files"]
        objects = {t: [refs.get(f"{t}/{n}", f"snapshots/{name}/{t}/{n}") for n in names] for t, names in files.items()}
        return {"format": POINTER_FORMAT, "snapshot": name, "files": files, "objects": objects}

    def make_current(self, name: str) -> Path:
        """Make the kept snapshot `name` current again (rollback): one conditional put of the pointer,
        as a run commits (CommitConflict if another run committed meanwhile); then the mirror. Under
        the lock (which read the pointer)."""
        doc = self.snapshot(name)
        history = [name, *[s for s in (self._doc or {}).get("history", []) if s != name]][:KEEP_SNAPSHOTS]
        doc = {**doc, "history": history, "committed_at": dt.datetime.now(dt.timezone.utc).isoformat()}
        self._swap_pointer(doc)
        self._sync()  # the mirror's current becomes it
        return self.local.current()

    # -- readers -------------------------------------------------------------------
    def read_cache(self):
        """This machine's cache of the snapshots readers read (readcache.ReadCache), for S3."""
        from .readcache import ReadCache

        return ReadCache(self.url, cache_dir() / "reads" / self.local.root.name, self.local.root)

    def require_current(self):
        if is_s3_url(self.url):  # the pointer asked for with its cached ETag: a 304 sends no body
            doc = self._parse_pointer(self.read_cache().pointer(POINTER)[0])
        else:
            doc, _ = self.read_pointer()
        if doc is None:
            check_bucket(self.fs, self.url, WarehouseError)  # a misspelled bucket is named as such
            self.recognise()  # a prefix of other things is named as such, not as an empty warehouse
            raise WarehouseError(f"no warehouse at {self.url}: run `newsetl run INPUT --warehouse {self.url}` first")
        return doc

    def reader_files(self, doc: dict | None = None) -> dict[str, list[str]]:
        """The URL of every Parquet file of each table of the current snapshot, from the
        pointer alone: one GET, no listing; the files are never rewritten."""
        doc = doc or self.require_current()
        if "objects" in doc:
            return {t: [f"{self.url}/{k}" for k in keys] for t, keys in doc["objects"].items()}
        base = f"{self.url}/snapshots/{doc['snapshot']}"
        return {t: [f"{base}/{t}/{n}" for n in names] for t, names in doc["files"].items()}

    def local_files(self, doc: dict | None = None) -> dict[str, list[str]] | None:
        """The local path of every Parquet file of each table of the current snapshot (or of the
        pointer `doc`), from this machine's read cache: only what is not cached yet is downloaded.
        None where there is no such cache (not S3): read `reader_files` through `register` then."""
        if not is_s3_url(self.url):
            return None
        doc = doc or self.require_current()
        urls = self.reader_files(doc)
        base = self.url + "/"
        keys = {t: [u[len(base):] for u in us] for t, us in urls.items()}
        bad = [k for ks in keys.values() for k in ks if k.startswith("/") or ".." in k.split("/")]
        if bad:  # a key that would land outside the cache folder
            raise WarehouseError(f"{self.url}/{POINTER} names {bad[0]!r}, which is not a key below the warehouse")
        snapshot = doc["snapshot"]
        # where the mirror (a run's working copy) has each file, if it holds this snapshot
        mirror = {k: f"{t}/{n}" for t, names in doc["files"].items() for k, n in zip(keys.get(t, []), names)}
        keep = list(dict.fromkeys([snapshot, *doc.get("history", [])]))  # what the store keeps for readers
        try:
            paths = self.read_cache().files(snapshot, [k for ks in keys.values() for k in ks], mirror, keep)
        except OSError:  # a cache folder that cannot be written (read-only, full): read the store itself
            return None
        return {t: [str(paths[k]) for k in ks] for t, ks in keys.items()}

    def register(self, con, files: dict[str, list[str]] | None = None) -> None:
        """Let DuckDB read this store's URLs through fsspec: no DuckDB extension is downloaded.

        With `files` (reader_files), DuckDB asks each file's size and date four times before
        reading it, a HEAD request each on S3: a filesystem of its own that caches listings
        answers them from one listing of the snapshot (whose objects never change). DuckDB
        still reads only the files named."""
        fs = self.fs
        folders = {u.rsplit("/", 1)[0] for urls in (files or {}).values() for u in urls}
        if is_s3(fs) and folders:
            fs = filesystem(self.url, listings_cache=True)
            with errors_as(WarehouseError, self.url):
                fs.find(fs_path(fs, _common_folder(folders)))
        con.register_filesystem(fs)
