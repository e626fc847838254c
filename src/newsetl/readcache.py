"""Reads of an S3 warehouse from a local cache of what never changes (issue 24).

A snapshot's objects are never rewritten under their key; only the pointer moves. So a
reader (`newsetl sql`, `status`, `report`, `newsetl.connect`) keeps, per machine, under
$NEWSETL_CACHE_DIR/reads/<warehouse>/:

    pointer.json                 the pointer's last body and its ETag
    objects/<key below the URL>  each object a read needed, as it is in the store
    snapshots/<run>.json         a snapshot's keys and each one's size, once all are here

Every read asks the store for the pointer, always (`If-None-Match` its cached ETag: a
`304 Not Modified` has no body), so a commit from any machine is seen at once. The
snapshot's files then come from the cache, checked by size against what was downloaded;
only those missing or damaged are fetched. An object is written to a temporary name and
renamed into place, so a reader killed mid-download leaves nothing that looks complete.
The machine that ran the last commit has the snapshot in its mirror: it is linked, not
downloaded. The cache keeps the snapshots the pointer lists (its last commits) and any read
in the last READ_GRACE; the rest is removed by a later read.

The requests go through botocore's client directly: s3fs, aiobotocore and aiohttp (about
1.5 s of imports) are not loaded by a read.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from .objectstore import bucket as bucket_of
from .objectstore import errors_as
from .store import WarehouseError

READ_GRACE = 3600.0  # seconds: a snapshot read this recently stays cached, listed by the pointer or not
FETCHES = 16  # GETs in flight at once on a cold read
_client = None
_client_lock = threading.Lock()


def s3_client():
    """botocore's S3 client, configured from the standard AWS environment and files; one per process."""
    global _client
    with _client_lock:
        if _client is None or _client[0] != os.getpid():
            import botocore.config
            import botocore.session

            config = botocore.config.Config(max_pool_connections=FETCHES)
            _client = (os.getpid(), botocore.session.get_session().create_client("s3", config=config))
        return _client[1]


def _write_atomic(path: Path, data) -> int:
    """`data` (bytes, or an iterable of them) at `path`, never seen half-written: a temporary
    name in the same folder, then a rename. Returns how many bytes were written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    n = 0
    try:
        with open(tmp, "wb") as f:
            for chunk in [data] if isinstance(data, bytes) else data:
                n += f.write(chunk)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n


def _error_code(e: Exception) -> str:
    return str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))


class ReadCache:
    """The cache of one warehouse URL (s3://bucket/prefix) on this machine."""

    def __init__(self, url: str, root: Path, mirror: Path | None = None):
        self.url = url
        self.bucket = bucket_of(url)
        self.prefix = url.split("://", 1)[1].partition("/")[2]
        self.root = root
        self.mirror = mirror  # the runs' working copy (remote.mirror_dir): its complete snapshots are linked

    def _key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    # -- the pointer: always asked for --------------------------------------------------------------
    def pointer(self, name: str = "_current.json") -> tuple[bytes | None, str | None]:
        """(the pointer's bytes, its ETag) from the store, or (None, None) if there is none: one GET,
        conditional on the cached copy's ETag (a 304 sends no body)."""
        cached = self.root / "pointer.json"
        try:
            saved = json.loads(cached.read_text())
            etag, body = saved["etag"], saved["body"].encode()
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            etag, body = None, None
        client = s3_client()
        with errors_as(WarehouseError, self.url):
            try:
                r = client.get_object(Bucket=self.bucket, Key=self._key(name),
                                      **({"IfNoneMatch": etag} if etag else {}))
            except Exception as e:
                code = _error_code(e)
                if code in ("304", "NotModified"):
                    return body, etag
                if code in ("NoSuchKey", "404"):
                    return None, None
                raise
            data = r["Body"].read()
        etag = r.get("ETag")
        if etag:  # a store that gives none: asked for whole every time
            try:
                _write_atomic(cached, json.dumps({"etag": etag, "body": data.decode()}).encode())
            except (OSError, UnicodeDecodeError):
                pass  # a cache that cannot be written: the read goes on without it
        return data, etag

    def list_keys(self, folder: str) -> list[str]:
        """The keys below `<url>/<folder>` (ListObjectsV2, a page of 1,000 a request)."""
        out, token = [], None
        with errors_as(WarehouseError, self.url):
            while True:
                r = s3_client().list_objects_v2(Bucket=self.bucket, Prefix=self._key(folder),
                                                **({"ContinuationToken": token} if token else {}))
                out += [c["Key"] for c in r.get("Contents", [])]
                token = r.get("NextContinuationToken")
                if not r.get("IsTruncated") or not token:
                    return out

    # -- the snapshot's files ---------------------------------------------------------------------
    def files(self, snapshot: str, keys: list[str], mirror_rel: dict[str, str], keep: list[str]) -> dict[str, Path]:
        """A local path for each key (below the warehouse URL) of `snapshot`: from the cache where
        it is whole, else linked from the mirror's copy of the snapshot, else downloaded. After a
        download, the snapshots neither in `keep` nor read lately are removed (`prune`)."""
        manifest = self.root / "snapshots" / f"{snapshot}.json"
        sizes = _read_sizes(manifest)
        paths = {k: self.root / "objects" / k for k in keys}
        missing = [k for k in keys if not _whole(paths[k], sizes.get(k))]
        if not missing:
            try:
                os.utime(manifest)  # read now: kept for READ_GRACE whatever the pointer says
            except OSError:
                pass
            return paths
        with self._lock(fcntl.LOCK_SH):  # a prune waits for this read's files to be named
            known = self._known_sizes()
            missing = [k for k in missing if not _whole(paths[k], known.get(k))]
            sizes = {k: known[k] for k in keys if k in known}
            sizes.update(self._fetch(snapshot, missing, paths, mirror_rel))
            _write_atomic(manifest, json.dumps({"sizes": sizes}, sort_keys=True).encode())
        self.prune(keep)
        return paths

    def _known_sizes(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for m in (self.root / "snapshots").glob("*.json"):
            out.update(_read_sizes(m))
        return out

    def _fetch(self, snapshot: str, keys: list[str], paths: dict[str, Path],
               mirror_rel: dict[str, str]) -> dict[str, int]:
        """Bring `keys` into the cache; their sizes."""
        sizes: dict[str, int] = {}
        todo = []
        for k in keys:
            rel = mirror_rel.get(k)
            src = self.mirror / "snapshots" / snapshot / rel if self.mirror is not None and rel else None
            if src is not None and _link(src, paths[k]):
                sizes[k] = paths[k].stat().st_size
            else:
                todo.append(k)
        if not todo:
            return sizes
        client = s3_client()

        def get(k: str) -> tuple[str, int]:
            r = client.get_object(Bucket=self.bucket, Key=self._key(k))
            expected = r.get("ContentLength")

            def chunks():  # streamed to the file, not held in memory; a short body is no file
                n = 0
                for chunk in r["Body"].iter_chunks(1 << 20):
                    n += len(chunk)
                    yield chunk
                if expected is not None and n != expected:
                    raise OSError(f"{self.url}/{k}: {n} of {expected} bytes read")

            return k, _write_atomic(paths[k], chunks())

        with errors_as(WarehouseError, self.url):
            if len(todo) == 1:
                sizes.update([get(todo[0])])
            else:
                from concurrent.futures import ThreadPoolExecutor

                with ThreadPoolExecutor(min(FETCHES, len(todo))) as pool:
                    sizes.update(pool.map(get, todo))
        return sizes

    # -- keeping it bounded -----------------------------------------------------------------------
    @contextmanager
    def _lock(self, how: int):
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+b") as fh:
            fcntl.flock(fh, how)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def prune(self, keep: list[str]) -> None:
        """Remove the snapshots neither in `keep` (the pointer's) nor read within READ_GRACE, and
        every object no remaining snapshot names. Skipped while another read downloads."""
        folder = self.root / "snapshots"
        if not folder.is_dir():
            return
        try:
            fh = open(self.root / ".lock", "a+b")
        except OSError:
            return
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return
            now = time.time()
            named: set[str] = set()
            for m in folder.glob("*.json"):
                try:
                    if m.stem not in keep and now - m.stat().st_mtime > READ_GRACE:
                        m.unlink()
                        continue
                except OSError:
                    continue
                named.update(_read_sizes(m))
            objects = self.root / "objects"
            if not objects.is_dir():
                return
            for folder_, _subs, names in os.walk(objects, topdown=False):
                here = Path(folder_)
                for n in names:
                    f = here / n
                    try:
                        if f.relative_to(objects).as_posix() not in named and (
                                not n.endswith(".tmp") or now - f.stat().st_mtime > READ_GRACE):
                            f.unlink()
                    except OSError:
                        pass
                if here != objects:
                    try:
                        here.rmdir()  # only if empty: a removed snapshot's folders go with it
                    except OSError:
                        pass


def _read_sizes(manifest: Path) -> dict[str, int]:
    try:
        sizes = json.loads(manifest.read_text())["sizes"]
        return {k: v for k, v in sizes.items() if isinstance(k, str) and isinstance(v, int)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _whole(path: Path, size: int | None) -> bool:
    """Whether the cached file is there with the size it was downloaded with (a truncated or
    grown file is fetched again)."""
    if size is None:
        return False
    try:
        return path.stat().st_size == size
    except OSError:
        return False


def _link(src: Path, target: Path) -> bool:
    """Hard-link the mirror's copy into the cache (renamed into place); False if it cannot be."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(src, tmp)
        os.replace(tmp, target)
        return True
    except OSError:
        tmp.unlink(missing_ok=True)
        return False
