"""`make bench`: newsetl against the naive way, side by side in one run.

For each corpus size it generates records (`newsetl demo --profile bench`,
about 20 KB, 30 related links and 20 related images a file), then alternates
runs of the naive way (bench/naive.py) and of `newsetl.pipeline.run` on a
fresh warehouse, each in its own process while a sampler adds up the resident
memory of that process and all its children. It prints the best of
`--repeats` runs of each: records/s, MB/s, the ratio to the naive way and
peak memory (the summed PSS of the process tree, sampled every 250 ms).
Then, on the smallest size, the incremental runs: a re-run with nothing
changed and a run with 1% of files edited, as ratios to the cold run.

    python bench/run.py                          # 20,000 and 100,000 records
    python bench/run.py --sizes 2000 --repeats 2 # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = sys.executable

NAIVE = "import json, sys, time; sys.path.insert(0, {here!r}); import naive; t = time.perf_counter(); " \
        "naive.run({inp!r}, {out!r}); print(json.dumps({{'seconds': time.perf_counter() - t}}))"
OURS = "import json, time; from newsetl import pipeline; t = time.perf_counter(); " \
       "r = pipeline.run([{inp!r}], {out!r}, workers={workers}); " \
       "print(json.dumps({{'seconds': time.perf_counter() - t, 'run': r.run}}, default=str))"


SAMPLE_S = 0.25  # reading PSS walks page tables (about 4 ms a sample here): often enough, cheap enough


def _children(pid: int) -> list[int]:
    kids = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                kids.extend(int(c) for c in fh.read().split())
    except OSError:
        pass
    return kids


def _rss_tree(root: int) -> int:
    """Memory of `root` and all its descendants: the sum of their PSS (proportional set
    size: a page shared by n processes counts 1/n in each), so forked workers that
    share their parent's pages are not counted several times."""
    tree, frontier = {root}, [root]
    while frontier:
        for c in _children(frontier.pop()):
            if c not in tree:
                tree.add(c)
                frontier.append(c)
    total = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as fh:
                for line in fh:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
    return total


def run_sampled(cmd: list[str], env: dict | None = None) -> dict:
    """Run `cmd` to its end: its output, return code, wall time, CPU time (user + system of
    it and every descendant it waited for: forked parse workers included) and the peak PSS
    of its process tree."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_tree(proc.pid))
            time.sleep(SAMPLE_S)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, err = proc.communicate()
    wall = time.perf_counter() - t
    done.set()
    th.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"stdout": out, "stderr": err, "returncode": proc.returncode, "wall": wall, "cpu": cpu, "peak_rss": peak}


def measure(code: str) -> dict:
    """Run `code` in a fresh interpreter; its own timing plus the peak RSS of its process tree."""
    res = run_sampled([PY, "-c", code])
    if res["returncode"] != 0:
        raise SystemExit(f"benchmark job failed:\n{res['stderr'][-3000:]}")
    result = json.loads(res["stdout"].strip().splitlines()[-1])
    result["peak_rss"] = res["peak_rss"]
    return result


def corpus(workdir: Path, size: int, profile: str) -> Path:
    from newsetl.demo import generate

    d = workdir / f"corpus-{profile}-{size}"
    if not (d / ".complete").exists():
        shutil.rmtree(d, ignore_errors=True)
        print(f"generating {size:,} records ({profile} profile) in {d} ...", flush=True)
        generate(d, records=size, seed=size, profile=profile, malformed=False)
        (d / ".complete").write_text("")
    return d


def folder_bytes(d: Path) -> int:
    return sum(p.stat().st_size for p in d.glob("*.md"))


def bench_size(workdir: Path, size: int, profile: str, repeats: int, workers: int | None) -> dict:
    src = corpus(workdir, size, profile)
    nbytes = folder_bytes(src)
    naive, ours = [], []
    for r in range(repeats):
        out = workdir / "out"
        shutil.rmtree(out, ignore_errors=True)
        naive.append(measure(NAIVE.format(here=str(HERE), inp=str(src), out=str(out / "naive"))))
        ours.append(measure(OURS.format(inp=str(src), out=str(out / "wh"), workers=workers)))
        print(f"  {size:,} records, run {r + 1}/{repeats}: naive {naive[-1]['seconds']:.1f} s, "
              f"newsetl {ours[-1]['seconds']:.1f} s", flush=True)
    best_n = min(x["seconds"] for x in naive)
    best_o = min(x["seconds"] for x in ours)
    return {
        "records": size, "mb": nbytes / 1e6,
        "naive_s": best_n, "ours_s": best_o,
        "naive_median_s": statistics.median(x["seconds"] for x in naive),
        "ours_median_s": statistics.median(x["seconds"] for x in ours),
        "ratio": best_n / best_o,
        "naive_rss_mb": max(x["peak_rss"] for x in naive) / 2**20,
        "ours_rss_mb": max(x["peak_rss"] for x in ours) / 2**20,
        "fast_parsed": ours[-1]["run"]["fast_parsed"], "files_parsed": ours[-1]["run"]["files_parsed"],
    }


def bench_incremental(workdir: Path, size: int, profile: str, repeats: int, workers: int | None) -> dict:
    from newsetl.demo import edit

    src = corpus(workdir, size, profile)
    work = workdir / f"incremental-{size}"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(src, work / "input")  # edits must not touch the cached corpus
    inp, wh = work / "input", work / "wh"
    cold, same, changed = [], [], []
    for r in range(repeats):
        shutil.rmtree(wh, ignore_errors=True)
        cold.append(measure(OURS.format(inp=str(inp), out=str(wh), workers=workers))["seconds"])
        same.append(measure(OURS.format(inp=str(inp), out=str(wh), workers=workers))["seconds"])
        edited = edit(inp, 0.01, seed=100 + r)
        res = measure(OURS.format(inp=str(inp), out=str(wh), workers=workers))
        changed.append(res["seconds"])
        assert res["run"]["files_changed"] == len(edited), (res["run"], len(edited))
        print(f"  incremental run {r + 1}/{repeats}: cold {cold[-1]:.2f} s, unchanged {same[-1]:.2f} s, "
              f"1% changed ({len(edited)} files) {changed[-1]:.2f} s", flush=True)
    c, s, ch = statistics.median(cold), statistics.median(same), statistics.median(changed)
    return {"records": size, "cold_s": c, "unchanged_s": s, "changed_1pct_s": ch,
            "unchanged_ratio": s / c, "changed_ratio": ch / c}


def timed(cmd: list[str], env: dict) -> float:
    t = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"benchmark job failed: {' '.join(cmd)}\n{res.stderr[-3000:]}")
    return time.perf_counter() - t


def bench_defaults(workdir: Path, size: int, profile: str, repeats: int) -> dict:
    """What `newsetl run` costs over `pipeline.run`: with no Prefect API (in-process, the
    default), and as a flow run on a local Prefect server that is already running."""
    src = corpus(workdir, size, profile)
    out = workdir / "defaults"
    home = out / "prefect-home"
    shutil.rmtree(out, ignore_errors=True)
    home.mkdir(parents=True)
    newsetl_cmd = str(Path(PY).with_name("newsetl"))
    base = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    base.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api = f"http://127.0.0.1:{port}/api"
    server = subprocess.Popen([PY, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env={**base, "PREFECT_SERVER_UI_ENABLED": "false"}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{api}/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("benchmark: the local Prefect server did not start") from None
                time.sleep(0.5)
        lib, cli, flow = [], [], []
        for r in range(repeats):
            for name, times, cmd, env in (
                    ("lib", lib, [PY, "-c", f"from newsetl import pipeline; pipeline.run([{str(src)!r}], {str(out / 'lib')!r})"], base),
                    ("cli", cli, [newsetl_cmd, "run", str(src), "--warehouse", str(out / "cli"), "-q"], base),
                    ("flow", flow, [newsetl_cmd, "run", str(src), "--warehouse", str(out / "flow"), "-q"],
                     {**base, "PREFECT_API_URL": api})):
                shutil.rmtree(out / name, ignore_errors=True)
                times.append(timed(cmd, env))
            print(f"  {size:,} records, run {r + 1}/{repeats}: pipeline.run {lib[-1]:.2f} s, newsetl run "
                  f"{cli[-1]:.2f} s, newsetl run on a Prefect server {flow[-1]:.2f} s", flush=True)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait()
    m = {k: statistics.median(v) for k, v in (("lib", lib), ("cli", cli), ("flow", flow))}
    return {"records": size, "lib_s": m["lib"], "cli_s": m["cli"], "flow_s": m["flow"],
            "cli_ratio": m["cli"] / m["lib"], "flow_extra_s": m["flow"] - m["cli"]}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="20000,100000", help="corpus sizes, comma-separated")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each, best (and median) reported")
    ap.add_argument("--profile", default="bench", help="newsetl demo profile of the corpus")
    ap.add_argument("--workers", type=int, default=None, help="parse processes (default: one per core)")
    ap.add_argument("--workdir", type=Path, default=HERE / "out", help="where corpora and warehouses go")
    ap.add_argument("--no-incremental", action="store_true", help="skip the incremental runs")
    ap.add_argument("--defaults-sizes", default="5000,20000",
                    help="records for the comparison of newsetl run with pipeline.run, comma-separated "
                         "(two sizes: does the flow's cost grow with the records?); 0: skip it")
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    a.workdir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}\n", flush=True)
    rows = [bench_size(a.workdir, n, a.profile, a.repeats, a.workers) for n in sizes]
    inc = None if a.no_incremental else bench_incremental(a.workdir, min(sizes), a.profile, a.repeats, a.workers)
    dflt = [bench_defaults(a.workdir, int(n), a.profile, a.repeats) for n in a.defaults_sizes.split(",") if int(n)]

    lines = [
        f"machine: {machine()}",
        f"corpus: newsetl demo --profile {a.profile}; best of {a.repeats} runs each, side by side",
        "",
        "| records | MB | naive s | newsetl s | newsetl records/s | newsetl MB/s | speed-up vs naive | peak memory naive | peak memory newsetl |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['records']:,} | {r['mb']:,.0f} | {r['naive_s']:.1f} | {r['ours_s']:.2f} | "
            f"{r['records'] / r['ours_s']:,.0f} | {r['mb'] / r['ours_s']:,.0f} | **{r['ratio']:.1f}x** | "
            f"{r['naive_rss_mb']:,.0f} MB | {r['ours_rss_mb']:,.0f} MB |")
    if inc:
        lines += [
            "",
            f"incremental, {inc['records']:,} records (medians): cold {inc['cold_s']:.2f} s; "
            f"nothing changed {inc['unchanged_s']:.2f} s (**{inc['unchanged_ratio']:.3f}** of cold); "
            f"1% of files changed {inc['changed_1pct_s']:.2f} s (**{inc['changed_ratio']:.3f}** of cold)",
        ]
    for d in dflt:
        lines += [
            "",
            f"newsetl run, {d['records']:,} records (medians): pipeline.run {d['lib_s']:.2f} s; "
            f"`newsetl run` with no Prefect API {d['cli_s']:.2f} s (**{d['cli_ratio']:.2f}x** pipeline.run); "
            f"as a flow run on a running local Prefect server {d['flow_s']:.2f} s "
            f"(**{d['flow_extra_s']:+.1f} s** over the in-process run)",
        ]
    text = "\n".join(lines)
    print("\n" + text)
    (a.workdir / "latest.md").write_text(text + "\n")
    (a.workdir / "latest.json").write_text(json.dumps({"sizes": rows, "incremental": inc, "defaults": dflt}, indent=2))


if __name__ == "__main__":
    main()
