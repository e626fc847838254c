"""`make bench`, the checks' cost: what the checks stage adds to a run's wall time.

For each size (records of `newsetl demo --profile azure --seed 7 --no-malformed`, the same
cached folders as bench/scale.py), in each round: a cold run, 1,000 files edited, the
incremental run, and a run with nothing changed; each is `pipeline.run` in this process (all
cores), with the checks stage (`checks.check_snapshot`, between the build and the commit)
timed where the pipeline calls it. Medians of the rounds; the target is at most 10% of a
run's wall time, or at most 3 s.

    python bench/checks.py                             # 10,000 and 100,000 records, 3 rounds
    python bench/checks.py --sizes 10000 --rounds 1    # a quick look
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from scale import edit, ensure_records  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--edits", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("NEWSETL_BENCH_DATA", HERE / ".data")))
    a = ap.parse_args()

    from newsetl import pipeline

    spent: list[float] = []
    stage = pipeline.check_snapshot

    def timed_stage(*args, **kw):
        t = time.perf_counter()
        try:
            return stage(*args, **kw)
        finally:
            spent.append(time.perf_counter() - t)

    pipeline.check_snapshot = timed_stage
    data = {n: ensure_records(a.data, n) for n in a.sizes}
    kinds = ("cold", "incremental", "nothing changed")
    res = {n: {k: [] for k in kinds} for n in a.sizes}
    results = {}
    for r in range(a.rounds):
        for n in a.sizes:
            wh = a.data / "warehouses" / f"checks-{n}"
            shutil.rmtree(wh, ignore_errors=True)
            for kind in kinds:
                if kind == "incremental":
                    edit(data[n], a.edits, seed=2000 + r)
                t = time.perf_counter()
                out = pipeline.run([data[n]], wh)
                res[n][kind].append((time.perf_counter() - t, spent[-1]))
                results[(n, kind)] = len(out.checks.results)
            print(f"round {r + 1}, {n:,} records: " + ", ".join(
                f"{k} {v[-1][0]:.2f} s (checks {v[-1][1]:.2f} s)" for k, v in res[n].items()), flush=True)
    print(f"\n{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}; medians of {a.rounds} round(s)\n")
    print("| records | run | run wall s | checks s | checks share | results |")
    print("|---:|---|---:|---:|---:|---:|")
    for n in a.sizes:
        for k in kinds:
            wall = statistics.median(x[0] for x in res[n][k])
            chk = statistics.median(x[1] for x in res[n][k])
            print(f"| {n:,} | {k} | {wall:.2f} | {chk:.2f} | {100 * chk / wall:.1f}% | {results[(n, k)]:,} |")


if __name__ == "__main__":
    main()
