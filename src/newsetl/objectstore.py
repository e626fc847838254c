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


LIST_CHAINS = 32  # LIST requests in flight at once
LIST_PAGE = 1000  # keys a LIST request returns at most (S3's own limit)
GUESS_PAGE = 8  # a range that begins at a guess first asks for this fraction of a page
SEPARATED_GROUPS = 4  # a page's keys in at most this many groups: group the rest (see _separator)


def find_all(fs, prefix: str, *, page: int = LIST_PAGE) -> dict[str, dict]:
    """Every object under `prefix` with its details (what `fs.find(prefix, detail=True)` gives).

    A LIST returns 1,000 keys a request and each request waits for the one before. On an async
    store the prefix's first level is listed once with a delimiter and each sub-prefix (a year,
    a site) is then listed on its own chain, LIST_CHAINS requests at a time; on S3 a prefix
    with more than a page of keys is also cut into key ranges listed at once (`_s3_find_all`),
    so a flat folder of 100,000 keys is not 100 round trips one after another. `page` is
    the keys a request asks for (tests ask for a few)."""
    if not getattr(fs, "async_impl", False):
        return fs.find(prefix, detail=True)
    from fsspec.asyn import sync

    if is_s3(fs) and not getattr(fs, "version_aware", False):
        return sync(fs.loop, _s3_find_all, fs, prefix, page)
    return sync(fs.loop, _find_by_chains, fs, prefix)


async def _find_by_chains(fs, prefix: str) -> dict[str, dict]:
    """The first level with a delimiter, then each sub-prefix on a chain of its own."""
    import asyncio

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


async def _s3_find_all(fs, prefix: str, page: int) -> dict[str, dict]:
    """Every object under `prefix` on S3, listed with ListObjectsV2 by key ranges.

    The first request lists the first level with the delimiter `/`, as before: a prefix of
    one page costs that one request, and each sub-prefix it names is listed on a chain of
    its own. Any listing that comes back full (IsTruncated) goes on from its last key in
    parallel, cut where the page just read suggests:

    - by a separator. When the page's keys fall in a few groups by a character other than
      a letter or a digit (all in `2021-` of `2021-01-05-title.md`, or in `2021-01-` and
      `2021-02-` below `2021-`; `2021/` of `2021/01/...`), the rest of the last key's group
      is listed on its own, and one request with that character as the delimiter names
      every later group (`2022-`, `2023-`...), each then listed as a prefix of its own, in
      the same way. The store says where the groups are: no request is spent on a guess,
      and a prefix returns no key of another;
    - else by key ranges (`_cut_points`): the rest is cut after the last key at the next
      characters of the same kind (digit, lower-case, upper-case, other) at each place
      of the key the page did not move past (`00` of `001000.md`: `01`...`09`, `1`...`9`).
      Each range lists from its start (StartAfter) and stops at the first key past its
      end; a range that begins at a guess first asks for an eighth of a page, so a guess
      that holds few keys or none costs a small request, not a page of the next range's.

    A listing that fills a page again is cut again, so every range splits until it fits
    in a few pages. No boundary can lose or repeat a key: the ranges partition the key
    space in S3's order (UTF-8 bytes, the order of Python's str), whatever the keys are;
    a poor cut only costs requests. The details of each object are those s3fs's own
    listing gives (`_iterdir`)."""
    import asyncio

    bucket, key = _s3_key(prefix.rstrip("/"))
    top = f"{key}/" if key else ""
    gate = asyncio.Semaphore(LIST_CHAINS)
    found: dict[str, dict] = {}

    async def call(**kw) -> dict:
        """A page of the listing that holds something, unless it is the last (S3 may answer a
        page of nothing that says there is more: the next page is asked for then)."""
        kw.setdefault("MaxKeys", page)
        while True:
            async with gate:
                r = await fs._call_s3("list_objects_v2", Bucket=bucket, **kw)
            if r.get("Contents") or r.get("CommonPrefixes") or not r.get("IsTruncated"):
                return r
            kw.pop("StartAfter", None)
            kw["ContinuationToken"] = r["NextContinuationToken"]

    def take(contents: list[dict]) -> list[str]:
        """The objects' details as s3fs's listing makes them; their keys as listed."""
        keys = [c["Key"] for c in contents]
        for c in contents:
            c["type"] = "file"
            c["size"] = c["Size"]
            fs._fill_info(c, bucket)
            found[c["name"]] = c
        return keys

    async def marker(p: str) -> None:
        """The object whose key is `p` itself (a folder's marker), if there is one."""
        r = await call(Prefix=p, MaxKeys=1)
        take([c for c in r.get("Contents", [])[:1] if c["Key"] == p])

    async def under(p: str, after: str | None = None) -> None:
        """Every key that starts with `p` (and sorts after `after`)."""
        r = await call(Prefix=p, **({"StartAfter": after} if after is not None else {}))
        keys = take(r.get("Contents", []))
        if r.get("IsTruncated"):
            rest(p, keys)

    def rest(p: str, seen: list[str]) -> None:
        """Every key that starts with `p` after `seen[-1]`, the end of a full page: in parallel."""
        last = seen[-1]
        sep = _separator(p, seen)
        if sep is not None:
            group = last[:last.index(sep, len(p)) + 1]
            tg.create_task(under(group, last))
            tg.create_task(groups(p, sep, last, group))
            return
        tg.create_task(span(p, last, cut(p, seen, None), guessed=False))

    def cut(p: str, seen: list[str], hi: str | None) -> str | None:
        """Cut the keys of `p` in (seen[-1], hi] into ranges and list all but the first: its end."""
        cuts = [c for c in _cut_points(p, seen, LIST_CHAINS) if hi is None or c < hi]
        for a, b in zip(cuts, [*cuts[1:], hi]):
            tg.create_task(span(p, a, b, guessed=True))
        return cuts[0] if cuts else hi

    async def groups(p: str, sep: str, after: str, group: str) -> None:
        """The keys after `after` and its `group`, group by group (the delimiter `sep`)."""
        token = None
        while True:
            kw = {"ContinuationToken": token} if token else {"StartAfter": after}
            r = await call(Prefix=p, Delimiter=sep, **kw)
            take(r.get("Contents", []))
            for g in r.get("CommonPrefixes", []):
                if g["Prefix"] > group:  # S3 may name the group `after` is in again
                    tg.create_task(under(g["Prefix"]))
            token = r.get("NextContinuationToken")
            if not r.get("IsTruncated") or not token:
                return

    async def span(p: str, lo: str, hi: str | None, guessed: bool) -> None:
        """The keys that start with `p` in (lo, hi] (hi None: no end); a range that begins at a
        guess asks for a small page first."""
        size = max(1, page // GUESS_PAGE) if guessed else page
        while True:
            r = await call(Prefix=p, StartAfter=lo, MaxKeys=size)
            contents = r.get("Contents", [])
            mine = [c for c in contents if hi is None or c["Key"] <= hi]
            keys = take(mine)
            if len(mine) < len(contents) or not r.get("IsTruncated"):
                return
            lo = keys[-1]
            if size == page:  # a full page inside the range: cut what is left of it
                hi = cut(p, keys, hi)
            size = page

    r = await call(Prefix=top, Delimiter="/")
    files = r.get("Contents", [])
    subs = [d["Prefix"] for d in r.get("CommonPrefixes", [])]
    if not files and not subs:  # nothing under it: as s3fs's ls says (the object itself, or not found)
        return await _find_by_chains(fs, prefix)
    names = sorted([c["Key"] for c in files] + subs)
    take(files)
    failed = None
    try:
        async with asyncio.TaskGroup() as tg:
            if r.get("IsTruncated"):
                if names[-1] in subs:  # the rest lists the keys under the last sub-prefix ...
                    subs.remove(names[-1])
                    tg.create_task(marker(names[-1]))  # ... after the one named as it is
                rest(top, names)
            for d in subs:
                tg.create_task(under(d))
    except BaseExceptionGroup as e:
        failed = e
    while isinstance(failed, BaseExceptionGroup):  # the first failure as itself: errors_as reads its chain
        failed = failed.exceptions[0]
    if failed is not None:
        raise failed
    return dict(sorted(found.items()))  # in the order of s3fs's find, whatever order the ranges ended in


def _separator(prefix: str, keys: list[str]) -> str | None:
    """The character to group the keys after `keys` (a full page, sorted) by: of the characters
    in the last key below `prefix` that are neither letters nor digits, the last one (at its first
    place there) by which the page's keys fall in at most four groups, so that each later group
    likely holds a quarter of a page or more. None if there is none."""
    last = keys[-1][len(prefix):]
    best = None
    for c in dict.fromkeys(ch for ch in last if not ch.isalnum()):
        groups = {k[len(prefix):].partition(c)[:2] for k in keys}
        if len(groups) <= SEPARATED_GROUPS:
            best = c
    return best


def _kind(c: str) -> int:
    return 0 if "0" <= c <= "9" else 1 if "a" <= c <= "z" else 2 if "A" <= c <= "Z" else 3


def _cut_points(prefix: str, keys: list[str], most: int) -> list[str]:
    """Where to cut the keys after `keys[-1]` (a full page, sorted) into ranges: sorted strings
    above it, at most `most`.

    At each place of the last key up to the first one where the page's keys differ, the
    characters of the same kind seen in the page that sort after the last key's: `...01000.md`
    gives `1`...`9`, `01`...`09`, `002`...`009`... At the place where the page moved (from `0`
    to `4`, say), every fourth one, so that each range holds about a page."""
    first, last = keys[0][len(prefix):], keys[-1][len(prefix):]
    if not last:
        return []
    moved = min(len(os.path.commonprefix([first, last])), len(last) - 1)
    seen = sorted(set("".join(k[len(prefix):] for k in keys)))
    cuts = []
    for i in range(moved + 1):
        alphabet = [c for c in seen if _kind(c) == _kind(last[i])]
        at = alphabet.index(last[i])
        step = 1
        if i == moved and i < len(first) and first[i] in alphabet:
            step = max(1, at - alphabet.index(first[i]))
        cuts += [prefix + last[:i] + c for c in alphabet[at + step::step]]
    cuts.sort()
    if len(cuts) > most:
        cuts = [cuts[k * len(cuts) // most] for k in range(most)]
    return cuts


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
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs = filesystem(directory)
    data = {}
    for name, table in tables.items():
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="lz4")
        data[fs_path(fs, f"{directory}/{name}.parquet")] = sink.getvalue().to_pybytes()
    with errors_as(kind, directory):
        fs.pipe(data)
