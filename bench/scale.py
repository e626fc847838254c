"""`make bench`, the scale section: does a run cost what changed, not what the warehouse holds?

For each size (records of `newsetl demo --profile azure --seed 7 --no-malformed`,
generated once into --data), side by side in each round: a cold run, the same
number of files edited (spread at random over the whole folder), the
incremental run, and a run with nothing changed. Each is `newsetl run DIR
--warehouse WH -q` in its own process, as a user or a schedule runs it: wall
time and peak RSS (the largest process of the tree, what /usr/bin/time's %M
reports). Then the read cost of the incremental warehouse (delete files pending)
against a compacted one (the same files rebuilt): a few queries, median of 5.

    python bench/scale.py                                   # 10,000 and 100,000 records, 3 rounds
    python bench/scale.py --sizes 10000 100000 1000000 --rounds 1
    python bench/scale.py --sizes 2000 20000 --rounds 1      # a quick look
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
QUERIES = {
    "count related_links": "SELECT count(*) FROM related_links",
    "provider_stats": "SELECT * FROM provider_stats",
    "quality by provider": "SELECT provider_domain, avg(quality), count(*) FROM articles GROUP BY ALL",
    "loaded files": "SELECT count(*) FROM source_files WHERE status = 'loaded'",
}


def timed(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (MB) of a command: the largest process of its tree."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss // 1024


def run(data: Path, wh: Path) -> tuple[float, int]:
    return timed([str(BIN / "newsetl"), "run", str(data), "--warehouse", str(wh), "-q"])


def ensure_records(root: Path, n: int) -> Path:
    d = root / f"azure-{n}"
    if not (d / ".complete").exists():
        shutil.rmtree(d, ignore_errors=True)
        print(f"generating {n:,} records into {d} ...", flush=True)
        subprocess.run([str(BIN / "newsetl"), "demo", str(d), "--records", str(n), "--profile", "azure",
                        "--seed", "7", "--no-malformed", "-q"], check=True)
        (d / ".complete").touch()
    return d


def edit(data: Path, files: int, seed: int) -> int:
    from newsetl import demo

    n = sum(1 for _ in data.glob("*.md"))
    return len(demo.edit(data, min(1.0, files / n), seed=seed))


def read_cost(wh: Path, reps: int = 5) -> dict[str, float]:
    import newsetl

    con = newsetl.connect(wh)
    out = {}
    try:
        for name, q in QUERIES.items():
            times = []
            for _ in range(reps):
                t = time.perf_counter()
                con.sql(q).fetchall()
                times.append(time.perf_counter() - t)
            out[name] = statistics.median(times)
    finally:
        con.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--edits", type=int, default=1000, help="files edited before the incremental run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("NEWSETL_BENCH_DATA", HERE / ".data")))
    a = ap.parse_args()
    work = a.data / "warehouses"
    data = {n: ensure_records(a.data, n) for n in a.sizes}
    res = {n: {"cold": [], "incremental": [], "nothing changed": []} for n in a.sizes}
    for r in range(a.rounds):
        for n in a.sizes:  # side by side in each round: the machine's load falls on every size alike
            wh = work / f"wh-{n}"
            shutil.rmtree(wh, ignore_errors=True)
            res[n]["cold"].append(run(data[n], wh))
            edited = edit(data[n], a.edits, seed=1000 + r)
            res[n]["incremental"].append(run(data[n], wh))
            res[n]["nothing changed"].append(run(data[n], wh))
            print(f"round {r + 1}, {n:,} records ({edited:,} edited): " + ", ".join(
                f"{k} {v[-1][0]:.2f} s / {v[-1][1]:,} MB" for k, v in res[n].items()), flush=True)
    print(f"\n{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}; medians of {a.rounds} round(s), {a.edits:,} files edited\n")
    small = a.sizes[0]
    print("| records | cold s | cold peak MB | incremental s | nothing changed s | incremental peak MB |"
          " incremental vs smallest | cold peak vs smallest |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    med = {n: {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
               for k, v in res[n].items()} for n in a.sizes}
    for n in a.sizes:
        m = med[n]
        print(f"| {n:,} | {m['cold'][0]:.1f} | {m['cold'][1]:,} | {m['incremental'][0]:.2f} | "
              f"{m['nothing changed'][0]:.2f} | {m['incremental'][1]:,} | "
              f"{m['incremental'][0] / med[small]['incremental'][0]:.2f}x | {m['cold'][1] / med[small]['cold'][1]:.2f}x |")
    print("\nread cost with delete files pending, against the same files rebuilt (compacted):\n")
    print("| records | query | pending s | compacted s | ratio |")
    print("|---:|---|---:|---:|---:|")
    for n in a.sizes:
        if n > 200_000:
            continue  # a second cold run of a million records is not worth a read-cost figure
        pending = read_cost(work / f"wh-{n}")
        fresh = work / f"wh-{n}-rebuilt"
        shutil.rmtree(fresh, ignore_errors=True)
        run(data[n], fresh)
        compacted = read_cost(fresh)
        for q in QUERIES:
            print(f"| {n:,} | {q} | {pending[q]:.4f} | {compacted[q]:.4f} | {pending[q] / compacted[q]:.2f} |")
        shutil.rmtree(fresh, ignore_errors=True)


if __name__ == "__main__":
    main()
