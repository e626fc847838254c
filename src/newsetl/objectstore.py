"""Object storage access: a URL (s3://, and the other fsspec protocols) wherever a path is taken.

The filesystem of a URL (fsspec: s3fs, gcsfs, adlfs, memory), one-line errors
for storage failures, listing by prefix, objects' versions, staging written as
objects. It knows nothing of records or warehouses: sources lists and reads
input objects through it, remote.RemoteWarehouse keeps a warehouse in it.

Credentials and the endpoint come from the standard AWS environment and
files (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
AWS_PROFILE, AWS_ENDPOINT_URL, ~/.aws/credentials, ~/.aws/config): never from
flags, never stored in the warehouse.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from contextlib import contextmanager

import pyarrow as pa
import pyarrow.parquet as pq


_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


CREDENTIAL_HELP = ("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE with ~/.aws/credentials; "
                   "AWS_SESSION_TOKEN for temporary ones), and AWS_ENDPOINT_URL for an S3-compatible store")

# the extra and the package that bring each protocol
_EXTRAS = {"s3": ("s3", "s3fs"), "s3a": ("s3", "s3fs"), "gs": (None, "gcsfs"), "gcs": (None, "gcsfs"),
           "abfs": (None, "adlfs"), "az": (None, "adlfs"), "abfss": (None, "adlfs")}


class MissingExtra(ValueError):
    """An optional dependency is not installed: the message says what to install."""


def is_url(x) -> bool:
    """A URL that fsspec reads (s3://bucket/key...), not a local path. `file://` is a local path."""
    return isinstance(x, str) and _URL.match(x) is not None and not x.lower().startswith("file://")


def protocol(url: str) -> str:
    return _URL.match(url).group(1).lower()


def normalize(url: str) -> str:
    """One spelling per location: no trailing slash, lower-case scheme."""
    p = protocol(url)
    return p + "://" + url.split("://", 1)[1].strip("/")


def bucket(url: str) -> str:
    return url.split("://", 1)[1].split("/", 1)[0]


_fs_lock = threading.Lock()
_fs_cache: dict[tuple[int, str], object] = {}


def filesystem(url: str, *, listings_cache: bool = False):
    """The fsspec filesystem for `url`, configured from the environment; one per process and protocol.

    Listings are never cached: a long-lived process (`newsetl serve`) lists the
    same prefixes run after run and must see what changed. `listings_cache=True` gives a
    new instance of its own that caches them, for reading objects that never change."""
    p = protocol(url)
    key = (os.getpid(), p)
    with _fs_lock:
        fs = None if listings_cache else _fs_cache.get(key)
        if fs is None:
            try:
                import fsspec

                cls = fsspec.get_filesystem_class(p)
            except ImportError:
                extra, package = _EXTRAS.get(p, (None, p + "fs"))
                what = f"pip install 'newsetl[{extra}]'" if extra else f"pip install {package}"
                raise MissingExtra(f"{url}: reading {p}:// needs {package}: {what} "
                                   "(make install installs it)") from None
            except ValueError:
                raise MissingExtra(f"{url}: {p}:// is not a protocol fsspec knows") from None
            if p == "memory":  # one process's dict: a worker process would write into its own copy
                owner = _fs_cache.setdefault((0, "memory-owner"), os.getpid())
                if owner != os.getpid():
                    raise MissingExtra(f"{url}: memory:// lives in one process; run with workers=1 (tests only)")
            opts = {"use_listings_cache": listings_cache, "skip_instance_cache": True} if p in ("s3", "s3a") else {}
            fs = cls(**opts)
            if not listings_cache:
                _fs_cache[key] = fs
    return fs


def fs_path(fs, url: str) -> str:
    return fs._strip_protocol(url)


def is_s3(fs) -> bool:
    return type(fs).__name__ == "S3FileSystem"


# -- errors: one line naming the thing and what to do ---------------------------------------------

def exception_chain(exc: BaseException):
    """The exception, its causes and contexts."""
    seen, todo = set(), [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend([e.__cause__, e.__context__])


def describe(exc: BaseException, url: str) -> str | None:
    """The one-line message for a storage failure on `url` (no bucket, no credentials, no
    access, no endpoint), or None for anything else."""
    for e in exception_chain(exc):
        name = type(e).__name__
        # a missing key's message is its name, which may hold any word: judge it by its type alone
        text = "" if type(e) is FileNotFoundError and "bucket does not exist" not in str(e) else str(e)
        if name in ("NoCredentialsError", "PartialCredentialsError", "CredentialRetrievalError"):
            return f"no credentials for {url}: {CREDENTIAL_HELP}"
        if "The specified bucket does not exist" in text or "NoSuchBucket" in text:
            return f"bucket {bucket(url)!r} does not exist ({url}): check its name, or create it"
        if name in ("EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError") or \
                "Could not connect to the endpoint" in text:
            endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "AWS"
            return f"cannot reach the object store at {endpoint} for {url}: check AWS_ENDPOINT_URL and the network"
        if name in ("InvalidAccessKeyId", "SignatureDoesNotMatch") or "InvalidAccessKeyId" in text \
                or "SignatureDoesNotMatch" in text:
            return f"the credentials were refused for {url}: {CREDENTIAL_HELP}"
        if isinstance(e, PermissionError) or "AccessDenied" in text or "Forbidden" in text:
            return f"access denied to {url}: the credentials in use may not read or write it ({CREDENTIAL_HELP})"
    return None


@contextmanager
def errors_as(kind: type[Exception], url: str):
    """Turn a storage failure on `url` into one line of `kind` (InputError, WarehouseError)."""
    try:
        yield
    except (MissingExtra, kind):
        raise
    except Exception as e:
        msg = describe(e, url)
        if msg is None:
            raise
        raise kind(msg) from None


# -- inputs: listing and reading objects ------------------------------------------------------------

def check_bucket(fs, url: str, kind: type[Exception]) -> None:
    """A one-line `kind` error when the bucket of `url` does not exist or cannot be reached."""
    with errors_as(kind, url):
        try:
            fs.info(bucket(url))
        except FileNotFoundError:
            raise kind(f"bucket {bucket(url)!r} does not exist ({url}): check its name, or create it") from None


def version_of(info: dict) -> str:
    """What changes whenever an object's bytes do: its version id, else its ETag (else, for a
    store that has neither, its modification time)."""
    for k in ("VersionId", "ETag", "etag", "generation", "md5Hash", "content_settings"):
        v = info.get(k)
        if v:
            return str(v)
    return str(info.get("LastModified") or info.get("mtime") or info.get("created") or "")


def stamp(version: str, size: int) -> int:
    """A 63-bit number for an object's version, kept where a file keeps its mtime_ns: the
    manifest compares it as it compares mtimes, but exactly (an ETag has no clock)."""
    return int.from_bytes(hashlib.blake2b(f"{version}\0{size}".encode(), digest_size=8).digest(), "big") >> 1


LIST_CHAINS = 32  # sub-prefixes listed at once


def find_all(fs, prefix: str) -> dict[str, dict]:
    """Every object under `prefix` with its details. A LIST returns 1,000 keys a request and
    each request waits for the one before: on an async store (S3) the prefix's first level is
    listed once with a delimiter, and each sub-prefix (a year, a site) is then listed on its
    own chain, LIST_CHAINS at a time. A flat folder stays one chain (docs/scaling.md)."""
    if not getattr(fs, "async_impl", False):
        return fs.find(prefix, detail=True)
    import asyncio

    from fsspec.asyn import sync

    async def walk():
        top = await fs._ls(prefix.rstrip("/"), detail=True)
        found = {i["name"]: i for i in top if i.get("type") != "directory"}
        subs = [i["name"] for i in top if i.get("type") == "directory"]
        gate = asyncio.Semaphore(LIST_CHAINS)

        async def one(sub):
            async with gate:
                return await fs._find(sub, detail=True)

        for part in await asyncio.gather(*(one(d) for d in subs)):
            found.update(part)
        return found

    return sync(fs.loop, walk)


# -- keys as written: no glob ------------------------------------------------------------------------
# fsspec reads `[`, `]`, `*` and `?` in the paths given to cat, rm, get, put and copy as glob
# patterns (`site/[abc].md` matches `site/a.md`, or nothing): an object named so would be "gone".
# Keys here are always literal: these read and remove objects one key at a time, and get, put
# and copy are only ever given lists of both sources and targets, which fsspec takes as they are.
# find, ls and info take a prefix literally.

GATHER = 64  # requests in flight at once


def _s3_key(path: str) -> tuple[str, str]:
    """(bucket, key) of an s3 path as written: s3fs's split_path would also cut a `?versionId=`."""
    b, _, k = path.partition("/")
    return b, k


def cat_literal(fs, paths: list[str]) -> dict[str, bytes | Exception]:
    """The bytes of each object, read by its key as written, or the exception that reading it
    raised. One GET per object (never a HEAD first), GATHER at once on an async store."""
    if not getattr(fs, "async_impl", False):
        out: dict[str, bytes | Exception] = {}
        for p in paths:
            try:
                out[p] = fs.cat_file(p)
            except Exception as e:  # noqa: BLE001 - each key's own outcome, judged by the caller
                out[p] = e
        return out
    import asyncio

    from fsspec.asyn import sync

    async def get(p: str) -> bytes:
        if not is_s3(fs):
            return await fs._cat_file(p)
        b, k = _s3_key(p)
        r = await fs._call_s3("get_object", Bucket=b, Key=k)
        async with r["Body"] as body:
            return await body.read()

    async def gather():
        gate = asyncio.Semaphore(GATHER)

        async def one(p):
            async with gate:
                try:
                    return await get(p)
                except Exception as e:  # noqa: BLE001 - each key's own outcome, judged by the caller
                    return e

        return dict(zip(paths, await asyncio.gather(*(one(p) for p in paths))))

    return sync(fs.loop, gather)


def delete_literal(fs, keys: list[str]) -> None:
    """Remove these objects, each by its key as written; one that is already gone is no error."""
    keys = list(dict.fromkeys(keys))
    if not keys:
        return
    if not is_s3(fs):
        for k in keys:
            try:
                fs.rm_file(k)
            except FileNotFoundError:
                pass
        return
    by_bucket: dict[str, list[str]] = {}
    for k in keys:
        b, key = _s3_key(k)
        by_bucket.setdefault(b, []).append(key)
    for b, names in by_bucket.items():
        for i in range(0, len(names), 1000):  # DeleteObjects takes 1,000 keys a request
            r = fs.call_s3("delete_objects", Bucket=b, Delete={"Objects": [{"Key": n} for n in names[i:i + 1000]],
                                                                "Quiet": True})
            failed = [e for e in r.get("Errors", []) if e.get("Code") != "NoSuchKey"]
            if failed:
                raise PermissionError(f"cannot delete {b}/{failed[0].get('Key')}: {failed[0].get('Code')} "
                                      f"{failed[0].get('Message', '')}".strip())


def delete_prefixes(fs, prefixes: list[str]) -> None:
    """Remove every object under each prefix (a folder: `<prefix>/...`), the prefix taken as written."""
    keys = []
    for prefix in prefixes:
        try:
            keys.extend(fs.find(prefix.rstrip("/") + "/"))
        except FileNotFoundError:
            continue
    delete_literal(fs, keys)


# -- staging written by the workers -------------------------------------------------------------------

def write_tables(directory: str, tables: dict[str, pa.Table], kind: type[Exception]) -> None:
    """One batch's staging tables as `<directory>/<name>.parquet` objects (lz4, as on disk);
    a storage failure raises one line of `kind`."""
    fs = filesystem(directory)
    data = {}
    for name, table in tables.items():
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="lz4")
        data[fs_path(fs, f"{directory}/{name}.parquet")] = sink.getvalue().to_pybytes()
    with errors_as(kind, directory):
        fs.pipe(data)
