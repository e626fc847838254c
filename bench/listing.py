"""Listing a flat S3 prefix: one chain of LIST requests (`fs.find`) against `objectstore.find_all`,
which cuts the prefix into key ranges listed at once.

Against moto (a Python server on this machine: it serves about one request at a time and
scans the whole bucket for each LIST), then against a model of a remote store (an in-memory
bucket answering every request after a delay), since moto has no network to hide.

    python bench/listing.py                      # 20,000 keys, 3 repeats
    python bench/listing.py --keys 5000 --repeats 1 --shapes dated,numbered
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import datetime as dt
import os
import random
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "src"))

from tests.helpers.servers import S3Server  # noqa: E402

from newsetl import objectstore  # noqa: E402


def names(shape: str, n: int, seed: int = 7) -> list[str]:
    """`dated`: records as sites name them (2021-03-04-a-title.md over about three years);
    `numbered`: 000001.md...; `hashed`: 32 hex digits."""
    r = random.Random(seed)
    words = "azure cloud data news update release preview security power apps sql server build".split()
    out: set[str] = set()
    while len(out) < n:
        if shape == "dated":
            day = dt.date(2019, 1, 1) + dt.timedelta(days=r.randrange(1100))
            out.add(f"{day.isoformat()}-{'-'.join(r.sample(words, 3))}-{r.randrange(10**6)}.md")
        elif shape == "numbered":
            out.add(f"{len(out):06d}.md")
        else:
            out.add(f"{r.getrandbits(128):032x}")
    return sorted(out)


def timed(f) -> float:
    t = time.perf_counter()
    f()
    return time.perf_counter() - t


def counted(fs):
    """Wrap the filesystem's requests: (how many LIST requests, the most in flight at once)."""
    seen = {"lists": 0, "now": 0, "most": 0}
    call = fs._call_s3

    async def wrapper(method, *args, **kw):
        if method == "list_objects_v2":
            seen["lists"] += 1
            seen["now"] += 1
            seen["most"] = max(seen["most"], seen["now"])
        try:
            return await call(method, *args, **kw)
        finally:
            if method == "list_objects_v2":
                seen["now"] -= 1

    fs._call_s3 = wrapper
    return seen


def against_moto(shapes: list[str], n: int, repeats: int, work: Path) -> None:
    server = S3Server(work / "moto.log")
    os.environ.update(server.env)
    try:
        fs = objectstore.filesystem("s3://bench-listing")
        for shape in shapes:
            bucket = f"bench-listing-{shape}"
            fs.mkdir(bucket)
            t = time.perf_counter()
            keys = names(shape, n)
            for i in range(0, n, 2000):
                fs.pipe({f"{bucket}/flat/{k}": b"x" for k in keys[i:i + 2000]})
            print(f"{shape}: put {n:,} objects in {time.perf_counter() - t:.0f} s", flush=True)
            prefix = f"{bucket}/flat/"
            want = fs.find(prefix, detail=True)
            assert objectstore.find_all(fs, prefix) == want and len(want) == n
            plain, ranged = [], []
            for _ in range(repeats):  # side by side
                plain.append(timed(lambda: fs.find(prefix, detail=True)))
                ranged.append(timed(lambda: objectstore.find_all(fs, prefix)))
            seen = counted(fs)
            objectstore.find_all(fs, prefix)
            del fs._call_s3  # the class's own again
            print(f"  moto, {n:,} keys: one chain {statistics.median(plain):.2f} s "
                  f"({', '.join(f'{x:.2f}' for x in plain)}), by ranges {statistics.median(ranged):.2f} s "
                  f"({', '.join(f'{x:.2f}' for x in ranged)}); by ranges: {seen['lists']} LIST requests "
                  f"(one chain: {-(-n // objectstore.LIST_PAGE)}), at most {seen['most']} at once", flush=True)
    finally:
        server.stop()


class ModelStore:
    """A bucket in memory that answers ListObjectsV2 after `base` seconds plus `per_key` a key
    returned, with no limit on requests at once: what a remote store looks like from here."""

    def __init__(self, keys: list[str], base: float, per_key: float):
        self.keys, self.base, self.per_key, self.lists = keys, base, per_key, 0

    async def _call_s3(self, method, Bucket, Prefix="", StartAfter=None, ContinuationToken=None,
                       MaxKeys=1000, Delimiter=None):
        assert method == "list_objects_v2"
        self.lists += 1
        if ContinuationToken:  # where the last answer stopped
            i = int(ContinuationToken)
        else:
            i = bisect.bisect_right(self.keys, StartAfter) if StartAfter else bisect.bisect_left(self.keys, Prefix)
        contents, groups = [], []
        while i < len(self.keys) and self.keys[i].startswith(Prefix) and len(contents) + len(groups) < MaxKeys:
            k = self.keys[i]
            cut = k.find(Delimiter, len(Prefix)) if Delimiter else -1
            if cut >= 0:  # the group, then past it
                g = k[:cut + len(Delimiter)]
                groups.append({"Prefix": g})
                i = bisect.bisect_left(self.keys, g + "\U0010ffff")
            else:
                contents.append({"Key": k, "Size": 1, "ETag": '"e"', "StorageClass": "STANDARD"})
                i += 1
        more = i < len(self.keys) and self.keys[i].startswith(Prefix)
        await asyncio.sleep(self.base + self.per_key * len(contents))
        return {"Contents": contents, "CommonPrefixes": groups, "IsTruncated": more,
                **({"NextContinuationToken": str(i)} if more else {})}


def against_model(shapes: list[str], sizes: list[int], base: float, per_key: float) -> None:
    from fsspec.asyn import get_loop
    from s3fs import S3FileSystem

    class Model(S3FileSystem):  # s3fs's own listing code, over the model's requests
        async def _call_s3(self, method, *args, **kw):
            return await self.store._call_s3(method, **kw)

    Model.__name__ = "S3FileSystem"  # objectstore.is_s3 goes by the name

    for shape in shapes:
        for n in sizes:
            keys = [f"flat/{k}" for k in names(shape, n)]
            fs = Model(skip_instance_cache=True, use_listings_cache=False, anon=True, loop=get_loop())
            fs.store = ModelStore(keys, base, per_key)
            plain = timed(lambda: fs.find("b/flat/", detail=True))
            chain = fs.store.lists
            fs.store.lists = 0
            got = {}
            ranged = timed(lambda: got.update(objectstore.find_all(fs, "b/flat/")))
            assert set(got) == {f"b/{k}" for k in keys}
            print(f"  model ({1000 * base:.0f} ms + {1e6 * per_key:.0f} us a key), {shape}, {n:,} keys: "
                  f"one chain {plain:.2f} s ({chain} LISTs), by ranges {ranged:.2f} s "
                  f"({fs.store.lists} LISTs), {plain / ranged:.1f}x", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--shapes", default="dated")
    ap.add_argument("--model-sizes", default="20000,100000")
    ap.add_argument("--no-moto", action="store_true", help="only the model")
    ap.add_argument("--work", type=Path, default=Path("/tmp/newsetl-bench-listing"))
    args = ap.parse_args()
    shapes = args.shapes.split(",")
    args.work.mkdir(parents=True, exist_ok=True)
    if not args.no_moto:
        against_moto(shapes, args.keys, args.repeats, args.work)
    against_model(shapes, [int(x) for x in args.model_sizes.split(",")], base=0.030, per_key=0.00007)


if __name__ == "__main__":
    main()
