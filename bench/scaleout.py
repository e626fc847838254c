"""`make bench`, the scale-out section: one corpus, side by side, as ratios.

- the local pool (`newsetl run` as a flow run: parse tasks handing their batches to
  the fork-server pool, one process per core)
  against the parse on Dask with 1 and with 2 workers (`newsetl run --dask`, a
  `dask scheduler` and `dask worker --nthreads 1` processes started here);
- records and warehouse in a local S3 server (moto) against local disk
  (`newsetl run --no-prefect`, the same pool of processes).

Then the per-unit costs that docs/scaling.md's cost model is built from:
parse CPU per file and build time per row (one process, by phase), LIST and
GET latency per object and the conditional PUT of the pointer (against the
local S3 server: no network; the model says what it assumes for a real one).

Every server runs on 127.0.0.1 and stops at the end. Medians of --repeats.

    python bench/scaleout.py                        # 10,000 records, 3 repeats
    python bench/scaleout.py --size 2000 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from run import corpus, machine, timed  # noqa: E402  (bench/run.py)

from tests.helpers.servers import DaskCluster, PrefectServer, S3Server, upload_folder  # noqa: E402

NEWSETL = str(Path(sys.executable).with_name("newsetl"))

PHASES = """
import json, sys, time
from newsetl import pipeline
marks = []
r = pipeline.run([sys.argv[1]], sys.argv[2], workers=1, log=lambda line: marks.append((time.perf_counter(), line)))
t = [m[0] for m in marks]  # plan done, parse done, published
print(json.dumps({"parse_s": t[1] - t[0], "build_s": t[2] - t[1], "files": r.run["files_parsed"],
                  "rows": sum(v for k, v in r.counts.items() if k != "runs")}))
"""


def side_by_side(configs: dict[str, tuple[list[str], dict]], work: Path, repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {k: [] for k in configs}
    for r in range(repeats):
        for name, (args, env) in configs.items():
            for p in work.glob(f"wh-{name}*"):
                shutil.rmtree(p, ignore_errors=True)
            times[name].append(timed(args, env))
        print(f"  repeat {r + 1}/{repeats}: " + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()), flush=True)
    return times


def s3_units(s3: S3Server, bucket: str, prefix: str, n_get: int = 200) -> dict:
    """Per-request latency of the local S3 server: LIST (per page of 1000 keys and per object),
    sequential GET, concurrent GET (a parse batch's fetch), conditional PUT of a small object."""
    os.environ.update(s3.env)
    from newsetl import sources

    client = s3.client()
    pages, objects, t = 0, 0, time.perf_counter()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        pages += 1
        objects += len(page.get("Contents", []))
    list_s = time.perf_counter() - t
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=n_get)["Contents"]]
    lat = []
    for k in keys:
        t = time.perf_counter()
        client.get_object(Bucket=bucket, Key=k)["Body"].read()
        lat.append(time.perf_counter() - t)
    files = sources.list_records(f"s3://{bucket}/{prefix}", "x")[:n_get]
    t = time.perf_counter()
    sources.fetch_objects(files)
    fetch_s = time.perf_counter() - t
    client.put_object(Bucket=bucket, Key="pointer-test", Body=b"0")
    put = []
    for i in range(20):
        etag = client.head_object(Bucket=bucket, Key="pointer-test")["ETag"]
        t = time.perf_counter()
        client.put_object(Bucket=bucket, Key="pointer-test", Body=str(i).encode(), IfMatch=etag)
        put.append(time.perf_counter() - t)
    return {"list_pages": pages, "list_objects": objects, "list_page_s": list_s / pages,
            "list_per_object_ms": 1000 * list_s / objects, "get_ms": 1000 * statistics.median(lat),
            "fetch_concurrent_per_object_ms": 1000 * fetch_s / len(files), "put_if_match_ms": 1000 * statistics.median(put)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=10000, help="records in the corpus (default: 10,000)")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each configuration; medians reported")
    ap.add_argument("--profile", default="bench", help="newsetl demo profile of the corpus")
    ap.add_argument("--workdir", type=Path, default=HERE / "out", help="where corpora and warehouses go")
    a = ap.parse_args()
    a.workdir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}\n", flush=True)
    src = corpus(a.workdir, a.size, a.profile)
    work = a.workdir / "scaleout"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "AWS_"))}
    servers = []
    try:
        for d in ("prefect-home", "dask-1", "dask-2"):
            (work / d).mkdir()
        prefect = PrefectServer(work / "prefect-home")
        servers.append(prefect)
        s3 = S3Server(work / "moto.log")
        servers.append(s3)
        client = s3.client()
        client.create_bucket(Bucket="bench")
        print(f"uploading {a.size:,} records to the local S3 server ...", flush=True)
        upload_folder(client, src, "bench", f"sites/{src.name}")
        env = {**base, **prefect.env, "PREFECT_LOGGING_LEVEL": "WARNING"}
        s3env = {**base, **s3.env, "NEWSETL_CACHE_DIR": str(work / "cache")}
        one = DaskCluster(work / "dask-1", n=1, env=env)
        servers.append(one)
        two = DaskCluster(work / "dask-2", n=2, env=env)
        servers.append(two)
        run = [NEWSETL, "run", str(src), "-q", "--warehouse"]
        print("local pool / Dask 1 worker / Dask 2 workers (newsetl run, Prefect server running) ...", flush=True)
        compute = side_by_side({
            "pool": ([*run, str(work / "wh-pool")], env),
            "dask1": ([*run, str(work / "wh-dask1"), "--dask", one.address], env),
            "dask2": ([*run, str(work / "wh-dask2"), "--dask", two.address], env),
        }, work, a.repeats)
        for c in (one, two):
            c.stop()
        servers = [s for s in servers if s not in (one, two)]
        print("local disk / local S3 server (newsetl run --no-prefect) ...", flush=True)
        storage = side_by_side({
            "disk": ([NEWSETL, "run", str(src), "-q", "--no-prefect", "--warehouse", str(work / "wh-disk")], base),
            "s3": ([NEWSETL, "run", f"s3://bench/sites/{src.name}", "-q", "--no-prefect",
                    "--warehouse", "s3://bench/wh-s3"], s3env),
        }, work, 1)
        # the S3 warehouse is cleared between repeats by a new prefix each time
        for r in range(1, a.repeats):
            storage["disk"].append(timed([NEWSETL, "run", str(src), "-q", "--no-prefect", "--warehouse",
                                          str(work / f"wh-disk-{r}")], base))
            storage["s3"].append(timed([NEWSETL, "run", f"s3://bench/sites/{src.name}", "-q", "--no-prefect",
                                        "--warehouse", f"s3://bench/wh-s3-{r}"], {**s3env, "NEWSETL_CACHE_DIR":
                                                                                  str(work / f"cache-{r}")}))
            print(f"  repeat {r + 1}/{a.repeats}: disk {storage['disk'][-1]:.1f} s, s3 {storage['s3'][-1]:.1f} s",
                  flush=True)
        print("per-unit costs ...", flush=True)
        out = subprocess.run([sys.executable, "-c", PHASES, str(src), str(work / "wh-phases")], capture_output=True,
                             text=True, env=base)
        if out.returncode:
            raise SystemExit(out.stderr[-3000:])
        phases = json.loads(out.stdout.strip().splitlines()[-1])
        units = s3_units(s3, "bench", f"sites/{src.name}/")
    finally:
        for s in reversed(servers):
            s.stop()
    med = {k: statistics.median(v) for k, v in {**compute, **storage}.items()}
    units.update(parse_ms_per_file=1000 * phases["parse_s"] / phases["files"],
                 build_us_per_row=1e6 * phases["build_s"] / phases["rows"], rows=phases["rows"],
                 files=phases["files"], build_s=phases["build_s"], parse_s=phases["parse_s"])
    lines = [
        f"machine: {machine()}",
        f"corpus: {a.size:,} records (newsetl demo --profile {a.profile}); medians of {a.repeats} runs, side by side",
        "",
        "| configuration | median s | ratio |",
        "|---|---:|---:|",
        f"| local pool (flow run, the fork-server pool of {os.cpu_count()} processes) | {med['pool']:.1f} | 1.00 |",
        f"| Dask, 1 worker (--dask) | {med['dask1']:.1f} | {med['dask1'] / med['pool']:.2f} of the pool |",
        f"| Dask, 2 workers (--dask) | {med['dask2']:.1f} | {med['dask2'] / med['pool']:.2f} of the pool, "
        f"{med['dask2'] / med['dask1']:.2f} of 1 worker |",
        f"| local disk -> local disk (--no-prefect) | {med['disk']:.1f} | 1.00 |",
        f"| local S3 server -> local S3 server (--no-prefect) | {med['s3']:.1f} | {med['s3'] / med['disk']:.2f} of disk |",
        "",
        "per-unit costs (one process; the S3 figures are a local moto server, no network):",
        f"- parse: {units['parse_ms_per_file']:.2f} ms of one core per file ({units['files']:,} files in "
        f"{units['parse_s']:.1f} s)",
        f"- build: {units['build_us_per_row']:.2f} us per warehouse row ({units['rows']:,} rows in {units['build_s']:.1f} s)",
        f"- LIST: {1000 * units['list_page_s']:.1f} ms per page of up to 1,000 keys "
        f"({units['list_per_object_ms']:.3f} ms per object)",
        f"- GET: {units['get_ms']:.2f} ms per object one at a time; {units['fetch_concurrent_per_object_ms']:.2f} ms "
        "per object in a batch's concurrent fetch",
        f"- conditional PUT of the pointer (If-Match): {units['put_if_match_ms']:.2f} ms",
    ]
    text = "\n".join(lines)
    print("\n" + text)
    (a.workdir / "scaleout.md").write_text(text + "\n")
    (a.workdir / "scaleout.json").write_text(json.dumps({"times": {**compute, **storage}, "medians": med,
                                                         "units": units}, indent=2))


if __name__ == "__main__":
    main()
