"""`make bench`, the core: how far newsetl's CPU per file is from the limit.

For each data set (generated records of the azure shape, and the real corpus's
`azure-2021-01` and `powerapps/latest` folders, read in place), each of these
runs in a fresh process, side by side in one loop, `--repeats` times:

  naive             bench/naive.py: PyYAML's C safe loader per file, pandas, to_parquet
  rapidyaml parse   `ryml.parse_csubstr` alone over every file's front matter, split
                    beforehand (untimed), on one core: the physical limit
  newsetl run       `newsetl run DIR --warehouse WH -q`, no Prefect API, a fresh
                    warehouse: as users run it (all cores)
  newsetl, 1 proc   `pipeline.run([DIR], WH, workers=1)` with every phase function
                    wrapped in CPU-time accumulators: where the CPU goes, per file

Wall and CPU time (user + system of the process and its parse workers) and
peak memory (summed PSS of the process tree, sampled every 250 ms; at least the
child's own peak RSS) of each; then the CPU per file of
each phase, exclusive (a phase called inside another counts once, in itself):
"other" is the run's CPU that no wrapped function took. Medians of the repeats,
best in brackets. The 1-process run also gives the import times and the fallback
rate (records PyYAML parsed).

    python bench/core.py                                   # 5,000 and 20,000 records + the corpus
    python bench/core.py --sizes 200 --repeats 1           # a smoke check, a minute
    python bench/core.py --json bench/results/core-before.json   # save the figures
    python bench/core.py --before bench/results/core-before.json # before/after, per phase
    NEWSETL_CORPUS=/data/corpus python bench/core.py --sizes 5000
    python bench/core.py --sizes 0 --repeats 5             # the corpus only

The children import the newsetl of this checkout (its src/ goes first on
PYTHONPATH), so a worktree measures its own code.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import run as bench_run  # noqa: E402 - bench/run.py: corpus(), machine(), run_sampled(), NAIVE

PY = bench_run.PY
CORPUS_FOLDERS = ("azure-2021-01", "powerapps/latest")
NAIVE_ONCE_ABOVE = 10_000  # files: the naive way takes about 100 s at 20,000; run it once there by default

# --- the phases: (label, [(module, function or Class.method), ...]) -------------------------
#
# Each function is wrapped where it is looked up: in every newsetl module that holds it under
# that name (so `from .x import f` is caught as well as `x.f`). A name that is gone (renamed by
# later work) makes its phase "n/a", never a crash. "hash" is special: `hashlib` is replaced,
# in the newsetl modules that import it, by a proxy whose sha256 is timed.
HASH = "hash (sha256)"
FALLBACK = "PyYAML fallback (safeyaml)"
PHASES: list[tuple[str, list[tuple[str, str]]]] = [
    ("plan (list files, batches)", [("newsetl.pipeline", "plan"), ("newsetl.pipeline", "begin"),
                                    ("newsetl.pipeline", "make_batches")]),
    ("read files", [("newsetl.parse", "read_file"), ("newsetl.parse", "fetch_objects")]),
    (HASH, []),
    ("split front matter", [("newsetl.frontmatter", "split_record")]),
    ("subset test, batch (precheck)", [("newsetl.fastyaml", "precheck")]),
    ("fast-path checks (regex, keys, dates)", [("newsetl.fastyaml", "_load_fast")]),
    ("rapidyaml parse", [("newsetl.fastyaml", "_parse_quietly")]),
    ("rapidyaml JSON emit", [("newsetl.fastyaml", "_emit_json")]),
    ("orjson decode (and tree)", [("newsetl.fastyaml", "_ryml_to_python")]),
    (FALLBACK, [("newsetl.safeyaml", "load_record"), ("newsetl.safeyaml", "load")]),
    ("front matter glue (extract_all)", [("newsetl.frontmatter", "extract_all"), ("newsetl.frontmatter", "_parse")]),
    ("flatten articles (Python)", [("newsetl.flatten", "BatchBuilder.add"),
                                   ("newsetl.flatten", "BatchBuilder._related_from_python")]),
    ("related lists (Arrow)", [("newsetl.related_json", "flatten_lists")]),
    ("typing (BatchBuilder.tables)", [("newsetl.flatten", "BatchBuilder.tables")]),
    ("staging write", [("newsetl.parse", "write_staging")]),
    ("batch glue (parse_batch)", [("newsetl.runners", "parse_batch"), ("newsetl.parse", "flatten_files")]),
    ("build", [("newsetl.pipeline", "build")]),
    ("publish, catalog", [("newsetl.pipeline", "ensure_catalog"), ("newsetl.publish", "commit"),
                          ("newsetl.publish", "catalog"), ("newsetl.store", "Warehouse.collect")]),
]
OTHER = "other"
PARSER_MODULES = ("newsetl.runners", "newsetl.parse", "newsetl.frontmatter", "newsetl.fastyaml", "newsetl.safeyaml",
                  "newsetl.related_json", "newsetl.store", "newsetl.publish")

# the front matter, as the task defines it for the limit: between the first `---` line and the next
FRONT_MATTER = re.compile(rb"\A(?:\xef\xbb\xbf)?---[ \t]*\r?\n(.*?)^---[ \t]*\r?$", re.M | re.S)


# --- children: each runs in a fresh interpreter, prints one JSON line ---------------------------

def child_phases(src: str, wh: str) -> dict:
    """pipeline.run with one worker (this process parses), every phase function timed."""
    import importlib
    import resource
    from time import perf_counter, process_time

    c0, w0 = process_time(), perf_counter()
    from newsetl import pipeline
    c1, w1 = process_time(), perf_counter()
    import newsetl.flatten  # noqa: F401 - the parser
    c2, w2 = process_time(), perf_counter()
    for name in PARSER_MODULES:  # the rest of what the run imports, so that it can be wrapped
        importlib.import_module(name)
    c3, w3 = process_time(), perf_counter()

    acc = {label: [0.0, 0.0, 0] for label, _ in PHASES}  # label -> [cpu, wall, calls]
    calls: dict[str, int] = {}
    stack: list[list[float]] = []  # [cpu at entry, wall at entry, cpu of callees, wall of callees]
    extra = {"related_lists_refused": 0}

    def timer(label: str, name: str, fn, observe=None):
        rec = acc[label]
        calls[name] = 0

        def timed(*args, **kwargs):
            frame = [process_time(), perf_counter(), 0.0, 0.0]
            stack.append(frame)
            try:
                out = fn(*args, **kwargs)
            finally:
                stack.pop()
                cpu, wall = process_time() - frame[0], perf_counter() - frame[1]
                rec[0] += cpu - frame[2]
                rec[1] += wall - frame[3]
                rec[2] += 1
                calls[name] += 1
                if stack:
                    stack[-1][2] += cpu
                    stack[-1][3] += wall
            if observe is not None:
                observe(out)
            return out

        timed.__wrapped__ = fn
        timed.timed = label
        return timed

    def count_refused(rows):
        extra["related_lists_refused"] += len(getattr(rows, "fallback", ()) or ())

    newsetl_modules = [m for n, m in list(sys.modules.items()) if n == "newsetl" or n.startswith("newsetl.")]
    wrapped: dict[str, list[str]] = {}
    missing: list[str] = []
    for label, targets in PHASES:
        for modname, attr in targets:
            name = f"{modname}.{attr}"
            try:
                owner = importlib.import_module(modname)
                *path, last = attr.split(".")
                for part in path:
                    owner = getattr(owner, part)
                fn = getattr(owner, last)
            except (ImportError, AttributeError):
                missing.append(name)
                continue
            # (inherited: not this class's own, so not wrapped here; already wrapped: a name given twice)
            if not callable(fn) or (isinstance(owner, type) and last not in owner.__dict__) or hasattr(fn, "timed"):
                missing.append(name)
                continue
            observe = count_refused if attr == "flatten_lists" else None
            w = timer(label, name, fn, observe)
            if isinstance(owner, type):
                setattr(owner, last, w)
                wrapped[name] = [f"{modname}.{attr}"]
                continue
            places = []
            for m in newsetl_modules:
                if m.__dict__.get(last) is fn:
                    setattr(m, last, w)
                    places.append(f"{m.__name__}.{last}")
            wrapped[name] = places

    import hashlib

    class _Hashlib:
        """hashlib, with sha256 timed."""

        def __getattr__(self, name):
            return getattr(hashlib, name)

    proxy = _Hashlib()
    proxy.sha256 = timer(HASH, "hashlib.sha256", hashlib.sha256)
    places = []
    for m in newsetl_modules:
        if m.__dict__.get("hashlib") is hashlib:
            m.hashlib = proxy
            places.append(f"{m.__name__}.hashlib")
        if m.__dict__.get("sha256") is hashlib.sha256:
            m.sha256 = proxy.sha256
            places.append(f"{m.__name__}.sha256")
    if places:
        wrapped["hashlib.sha256"] = places
    else:
        missing.append("hashlib.sha256")

    c4, w4 = process_time(), perf_counter()
    result = pipeline.run([src], wh, workers=1)
    c5, w5 = process_time(), perf_counter()
    run_cpu, run_wall = c5 - c4, w5 - w4

    # what the wrapping itself costs a call (two clocks of each kind, the stack), to read "other" by
    acc["_calibrate"] = [0.0, 0.0, 0]
    probe = timer("_calibrate", "_probe", lambda: None)
    n = 20_000
    t = process_time()
    for _ in range(n):
        probe()
    per_call = (process_time() - t) / n
    acc.pop("_calibrate")
    calls.pop("_probe")

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "import_pipeline": {"cpu": c1 - c0, "wall": w1 - w0},
        "import_parser": {"cpu": c2 - c1, "wall": w2 - w1},
        "import_rest": {"cpu": c3 - c2, "wall": w3 - w2},
        "run_cpu": run_cpu, "run_wall": run_wall,
        "process_cpu": usage.ru_utime + usage.ru_stime,
        "phases": {label: {"cpu": v[0], "wall": v[1], "calls": v[2]} for label, v in acc.items()},
        "calls": calls, "wrapped": wrapped, "missing": missing,
        "wrapper_us_per_call": per_call * 1e6,
        "files_parsed": result.run.get("files_parsed"), "fast_parsed": result.run.get("fast_parsed"),
        "fallback_calls": {k: v for k, v in calls.items() if k.startswith("newsetl.safeyaml.")},
        "related_lists_refused": extra["related_lists_refused"],
        "counts": result.counts, "maxrss": maxrss(),
    }


def maxrss() -> int:
    """This process's peak RSS in bytes: the sampler may miss the peak of a short child."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def front_matters(src: str) -> tuple[list[bytes], int]:
    """Every file's front matter bytes, and how many files had none."""
    out, without = [], 0
    for p in sorted(Path(src).rglob("*.md")):
        m = FRONT_MATTER.match(p.read_bytes())
        if m:
            out.append(m.group(1))
        else:
            without += 1
    return out, without


def child_ryml(src: str, min_cpu: float) -> dict:
    """rapidyaml's parse alone, on the front matter split beforehand, on one core. Small data
    sets are parsed again until `min_cpu` seconds have gone: the figures are per pass."""
    from time import perf_counter, process_time

    c, w = process_time(), perf_counter()
    import ryml
    import_cpu, import_wall = process_time() - c, perf_counter() - w
    fms, without = front_matters(src)
    tree = ryml.Tree()
    failed = 0
    passes, cpu, wall = 0, 0.0, 0.0
    while passes == 0 or (cpu < min_cpu and passes < 100):
        c, w = process_time(), perf_counter()
        for b in fms:
            tree.clear()
            tree.clear_arena()
            try:
                ryml.parse_csubstr(b, tree)
            except Exception:  # noqa: BLE001 - counted: the limit is of the texts it parses
                failed += 1
        cpu += process_time() - c
        wall += perf_counter() - w
        passes += 1
    return {"files": len(fms), "without_front_matter": without, "failed": failed // passes,
            "fm_bytes": sum(map(len, fms)), "passes": passes, "cpu": cpu / passes, "wall": wall / passes,
            "import_cpu": import_cpu, "import_wall": import_wall, "maxrss": maxrss()}


def child_main(argv: list[str]) -> None:
    kind, *args = argv
    if kind == "phases":
        out = child_phases(*args)
    elif kind == "ryml":
        out = child_ryml(args[0], float(args[1]))
    else:
        raise SystemExit(f"unknown child {kind!r}")
    print(json.dumps(out))


# --- the parent ------------------------------------------------------------------------------

def child_env() -> dict:
    """The children's environment: no Prefect API (the in-process run), this checkout's newsetl."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), env.get("PYTHONPATH")) if p)
    return env


def job(cmd: list[str], env: dict, what: str) -> dict:
    res = bench_run.run_sampled(cmd, env)
    if res["returncode"] != 0:
        raise SystemExit(f"benchmark job failed ({what}):\n{res['stderr'][-3000:]}")
    return res


def child_json(res: dict) -> dict:
    return json.loads(res["stdout"].strip().splitlines()[-1])


def newsetl_cmd() -> list[str]:
    script = Path(PY).with_name("newsetl")
    if script.exists():
        return [str(script)]
    return [PY, "-c", "import sys; from newsetl.cli import main; sys.argv[0] = 'newsetl'; sys.exit(main())"]


def datasets(a) -> list[tuple[str, Path]]:
    out = []
    for n in (int(s) for s in a.sizes.split(",") if s.strip()):
        if n > 0:
            out.append((f"azure-{n}", bench_run.corpus(a.workdir, n, "azure")))
    if a.corpus is None:
        return out
    root = Path(a.corpus)
    if not root.is_dir():
        print(f"note: no corpus at {root} (--corpus or $NEWSETL_CORPUS): the real records are skipped", flush=True)
        return out
    for sub in CORPUS_FOLDERS:
        if (root / sub).is_dir():
            out.append((f"corpus/{sub}", root / sub))
        else:
            print(f"note: {root / sub} is missing: skipped", flush=True)
    return out


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def bench_dataset(name: str, src: Path, a, env: dict) -> dict:
    files = sorted(src.rglob("*.md"))
    nbytes = sum(p.stat().st_size for p in files)
    naive_repeats = a.naive_repeats if a.naive_repeats is not None else (
        1 if len(files) > NAIVE_ONCE_ABOVE else a.repeats)
    naive_repeats = min(naive_repeats, a.repeats)
    out = a.workdir / "core-out"
    d = {"name": name, "path": str(src), "files": len(files), "bytes": nbytes, "naive_repeats": naive_repeats,
         "load_start": loadavg(), "naive": [], "ryml": [], "cli": [], "phases": []}
    print(f"\n{name}: {len(files):,} files, {nbytes / 1e6:,.1f} MB; load average {d['load_start']}"
          + (f"; the naive way runs {naive_repeats} time(s) of {a.repeats}" if naive_repeats < a.repeats else ""),
          flush=True)
    for r in range(a.repeats):
        line = []
        if r < naive_repeats:
            shutil.rmtree(out, ignore_errors=True)
            code = bench_run.NAIVE.format(here=str(HERE), inp=str(src), out=str(out / "naive"))
            res = job([PY, "-c", code], env, "naive")
            d["naive"].append({"wall": res["wall"], "cpu": res["cpu"], "peak_rss": res["peak_rss"]})
            line.append(f"naive {res['wall']:.1f} s")
        res = job([PY, str(Path(__file__).resolve()), "--child", "ryml", str(src), str(a.ryml_min_cpu)], env, "ryml")
        got = child_json(res)
        d["ryml"].append({**got, "peak_rss": max(res["peak_rss"], got["maxrss"])})
        d["fm_bytes"] = got["fm_bytes"]
        line.append(f"rapidyaml parse {got['cpu'] * 1e3:.0f} ms CPU")
        shutil.rmtree(out, ignore_errors=True)
        res = job([*newsetl_cmd(), "run", str(src), "--warehouse", str(out / "cli-wh"), "-q"], env, "newsetl run")
        d["cli"].append({"wall": res["wall"], "cpu": res["cpu"], "peak_rss": res["peak_rss"]})
        line.append(f"newsetl run {res['wall']:.2f} s ({res['cpu']:.2f} s CPU)")
        shutil.rmtree(out, ignore_errors=True)
        res = job([PY, str(Path(__file__).resolve()), "--child", "phases", str(src), str(out / "phases-wh")], env,
                  "phases")
        got = child_json(res)
        peak = max(res["peak_rss"], got["maxrss"])
        d["phases"].append({**got, "wall": res["wall"], "cpu": res["cpu"], "peak_rss": peak})
        line.append(f"newsetl 1 process {res['wall']:.2f} s")
        d.setdefault("load_rounds", []).append(loadavg())
        print(f"  run {r + 1}/{a.repeats}: " + ", ".join(line) + f"; load {d['load_rounds'][-1][0]}", flush=True)
    shutil.rmtree(out, ignore_errors=True)
    d["load_end"] = loadavg()
    d["summary"] = summarise(d)
    return d


def med(xs) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def phase_targets(label: str) -> list[str]:
    if label == HASH:
        return ["hashlib.sha256"]
    return [f"{m}.{a}" for lab, targets in PHASES if lab == label for m, a in targets]


def summarise(d: dict) -> dict:
    """The figures the tables print (and a later --before compares), from the runs."""
    n, mb = d["files"], d["bytes"] / 1e6
    rows = {}
    for key, runs in (("naive", d["naive"]), ("ryml", d["ryml"]), ("cli", d["cli"]), ("one_process", d["phases"])):
        if not runs:
            continue
        wall = [x["wall"] for x in runs]
        cpu = [x["cpu"] for x in runs]
        rows[key] = {"wall": med(wall), "wall_best": min(wall), "cpu": med(cpu), "cpu_best": min(cpu),
                     "cpu_ms_per_file": med(cpu) / n * 1e3, "mb_per_s": mb / med(wall),
                     "peak_rss_mb": max(x["peak_rss"] for x in runs) / 2**20, "runs": len(runs)}
    if "ryml" in rows:
        rows["ryml"]["fm_mb_per_s_cpu"] = d["fm_bytes"] / 1e6 / rows["ryml"]["cpu"]
    limit = rows.get("ryml", {}).get("cpu")
    naive = rows.get("naive", {}).get("wall")
    for r in rows.values():
        r["speedup_vs_naive"] = naive / r["wall"] if naive else None
        r["cpu_vs_limit"] = r["cpu"] / limit if limit else None

    phases, ph = {}, d["phases"]
    if ph:
        labels = [label for label, _ in PHASES]
        for label in labels:
            if any(label not in run["phases"] for run in ph):
                continue
            missing = all(t in ph[-1]["missing"] for t in phase_targets(label))
            cpu = [run["phases"][label]["cpu"] for run in ph]
            phases[label] = None if missing else {
                "us_per_file": med(cpu) / n * 1e6, "us_per_file_best": min(cpu) / n * 1e6,
                "calls_per_file": med(run["phases"][label]["calls"] for run in ph) / n}
        other = [run["run_cpu"] - sum(v["cpu"] for v in run["phases"].values()) for run in ph]
        phases[OTHER] = {"us_per_file": med(other) / n * 1e6, "us_per_file_best": min(other) / n * 1e6,
                         "calls_per_file": None}
        total = med(run["run_cpu"] for run in ph)
        for v in phases.values():
            if v is not None:
                v["share"] = v["us_per_file"] * n / 1e6 / total
        last = ph[-1]
        parsed = last.get("files_parsed") or 0
        calls = sum(med(run["calls"].get(k, 0) for run in ph) for k in last["calls"])
        rows_extra = {
            "run_cpu": total, "run_cpu_us_per_file": total / n * 1e6, "run_wall": med(run["run_wall"] for run in ph),
            "import_pipeline_ms": med(run["import_pipeline"]["cpu"] for run in ph) * 1e3,
            "import_parser_ms": med(run["import_parser"]["cpu"] for run in ph) * 1e3,
            "import_rest_ms": med(run["import_rest"]["cpu"] for run in ph) * 1e3,
            "import_pipeline_wall_ms": med(run["import_pipeline"]["wall"] for run in ph) * 1e3,
            "import_parser_wall_ms": med(run["import_parser"]["wall"] for run in ph) * 1e3,
            "files_parsed": parsed, "fast_parsed": last.get("fast_parsed"),
            "fallback_rate": (parsed - (last.get("fast_parsed") or 0)) / parsed if parsed else None,
            "fallback_calls": last.get("fallback_calls"),
            "related_lists_refused": last.get("related_lists_refused"),
            "wrapper_us_per_file": med(run["wrapper_us_per_call"] for run in ph) * calls / n,
            "wrapped": last["wrapped"], "missing": last["missing"],
        }
    else:
        rows_extra = {}
    return {"rows": rows, "phases": phases, **rows_extra}


# --- printing --------------------------------------------------------------------------------

ROW_NAMES = {"naive": "naive (PyYAML, pandas)", "ryml": "rapidyaml parse alone (1 core)",
             "cli": "newsetl run (all cores)", "one_process": "newsetl, 1 process (phases)"}


def fmt(x, spec: str, none: str = "n/a") -> str:
    return none if x is None else format(x, spec)


def times(x, spec: str) -> str:
    return "n/a" if x is None else f"{x:{spec}}x"


def dataset_table(d: dict) -> list[str]:
    s = d["summary"]
    lines = [f"### {d['name']}: {d['files']:,} files, {d['bytes'] / 1e6:,.1f} MB "
             f"(front matter {d.get('fm_bytes', 0) / 1e6:,.1f} MB); load average {d['load_start']} -> {d['load_end']}",
             "",
             "| | wall s, median (best) | CPU s | CPU ms/file | MB/s | peak MB | speed-up vs naive (wall) "
             "| CPU / rapidyaml parse |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for key, label in ROW_NAMES.items():
        r = s["rows"].get(key)
        if r is None:
            continue
        runs = f" [{r['runs']} run{'s' if r['runs'] > 1 else ''}]" if key == "naive" and r["runs"] < len(d["cli"]) else ""
        lines.append(f"| {label}{runs} | {r['wall']:.2f} ({r['wall_best']:.2f}) | {r['cpu']:.2f} | "
                     f"{r['cpu_ms_per_file']:.3f} | {r['mb_per_s']:,.1f} | {r['peak_rss_mb']:,.0f} | "
                     f"{times(r['speedup_vs_naive'], '.2f')} | {times(r['cpu_vs_limit'], '.1f')} |")
    ry = s["rows"].get("ryml")
    if ry:
        lines.append(f"\n(rapidyaml: {ry['fm_mb_per_s_cpu']:,.0f} MB/s of front matter per CPU second; "
                     f"MB/s in the table is the data set's MB over the wall time for every row)")
    if s["phases"]:
        lines += ["", "| phase (exclusive CPU) | µs/file, median (best) | share | calls/file |", "|---|---:|---:|---:|"]
        for label, v in s["phases"].items():
            if v is None:
                lines.append(f"| {label} | n/a | | |")
                continue
            lines.append(f"| {label} | {v['us_per_file']:,.1f} ({v['us_per_file_best']:,.1f}) | {v['share']:.1%} | "
                         f"{fmt(v['calls_per_file'], '.3g', '')} |")
        lines.append(f"| **total (pipeline.run's CPU)** | **{s['run_cpu_us_per_file']:,.1f}** | 100% | |")
        fb = ", ".join(f"{k.rsplit('.', 1)[1]} {v:,}" for k, v in (s["fallback_calls"] or {}).items())
        lines += ["",
                  f"imports in a fresh process (CPU): newsetl.pipeline {s['import_pipeline_ms']:.0f} ms, then the parser "
                  f"(newsetl.flatten) {s['import_parser_ms']:.0f} ms, the rest {s['import_rest_ms']:.0f} ms; "
                  f"pipeline.run {s['run_wall']:.2f} s wall, {s['run_cpu']:.2f} s CPU"
                  + (f" ({s['run_cpu'] / ry['cpu']:.1f}x the rapidyaml parse)" if ry else ""),
                  f"fallback: {s['files_parsed'] - (s['fast_parsed'] or 0):,} of {s['files_parsed']:,} files parsed "
                  f"by PyYAML ({fmt(s['fallback_rate'], '.2%')}); safeyaml calls: {fb or 'none'}; "
                  f"related lists the Arrow path refused: {s['related_lists_refused']:,}",
                  f"the wrapping itself costs about {s['wrapper_us_per_file']:.1f} µs/file (in the phases and other)"]
        if s["missing"]:
            lines.append(f"not found, so not timed: {', '.join(s['missing'])}")
    return lines


def compare(before: dict, now: dict) -> list[str]:
    """Before/after per data set: the rows and the phases, side by side."""
    lines = [f"## before ({before.get('when', '?')}, {before.get('commit', '?')[:10]}, load "
             f"{before.get('load_start')} -> {before.get('load_end')}) and after "
             f"({now['when']}, {now['commit'][:10]}, load {now['load_start']} -> {now['load_end']})"]
    old = {d["name"]: d for d in before.get("datasets", [])}
    for d in now["datasets"]:
        b = old.get(d["name"])
        if b is None:
            lines += ["", f"{d['name']}: not in the before file"]
            continue
        sb, sa = b["summary"], d["summary"]
        lines += ["", f"### {d['name']}", "",
                  "| | wall s before | after | after/before | CPU ms/file before | after | after/before |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for key, label in ROW_NAMES.items():
            rb, ra = sb["rows"].get(key), sa["rows"].get(key)
            if rb is None or ra is None:
                continue
            lines.append(f"| {label} | {rb['wall']:.2f} | {ra['wall']:.2f} | {ra['wall'] / rb['wall']:.2f} | "
                         f"{rb['cpu_ms_per_file']:.3f} | {ra['cpu_ms_per_file']:.3f} | "
                         f"{ra['cpu_ms_per_file'] / rb['cpu_ms_per_file']:.2f} |")
        for key in ("cli", "one_process"):
            rb, ra = sb["rows"].get(key), sa["rows"].get(key)
            if rb and ra and rb.get("cpu_vs_limit") and ra.get("cpu_vs_limit"):
                lines.append(f"\n{ROW_NAMES[key]}: CPU / rapidyaml parse {rb['cpu_vs_limit']:.1f}x before, "
                             f"{ra['cpu_vs_limit']:.1f}x after")
        pb, pa = sb.get("phases") or {}, sa.get("phases") or {}
        if pb or pa:
            lines += ["", "| phase | µs/file before | after | after/before |", "|---|---:|---:|---:|"]
            for label in [*pa, *(k for k in pb if k not in pa)]:
                vb, va = pb.get(label), pa.get(label)
                ub = vb["us_per_file"] if vb else None
                ua = va["us_per_file"] if va else None
                ratio = fmt(ua / ub if ub and ua is not None else None, ".2f", "")
                lines.append(f"| {label} | {fmt(ub, ',.1f')} | {fmt(ua, ',.1f')} | {ratio} |")
            if sb.get("run_cpu_us_per_file") and sa.get("run_cpu_us_per_file"):
                lines.append(f"| **total** | **{sb['run_cpu_us_per_file']:,.1f}** | **{sa['run_cpu_us_per_file']:,.1f}** | "
                             f"**{sa['run_cpu_us_per_file'] / sb['run_cpu_us_per_file']:.2f}** |")
    return lines


def git(*args: str) -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def code_version() -> str:
    """The code measured: the last commit that changed src/ (a bench-only commit on top does not
    change it), and whether src/ has changes not committed."""
    src = git("log", "-1", "--format=%H", "--", "src") or "unknown"
    return src + (" (src/ modified)" if git("status", "--porcelain", "--", "src") else "")


def rounded(x):
    """Floats to 5 significant digits, all the way down: the JSON stays small."""
    if isinstance(x, float):
        return float(f"{x:.5g}")
    if isinstance(x, dict):
        return {k: rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [rounded(v) for v in x]
    return x


def slim(d: dict) -> dict:
    """A data set for the JSON file: the summary and each run's figures (a phase: [CPU s, calls]);
    the names wrapped are saved once, for the whole file."""
    d = {**d, "summary": {k: v for k, v in d["summary"].items() if k != "wrapped"}}
    d["phases"] = [{**{k: v for k, v in run.items() if k not in ("wrapped", "calls", "counts", "phases")},
                    "phase_cpu": [run["phases"][label]["cpu"] for label, _ in PHASES]}
                   for run in d["phases"]]
    return rounded(d)


def dumps(doc: dict) -> str:
    """JSON, indented, but a list of numbers on one line."""
    blob = json.dumps(doc, indent=1, ensure_ascii=False)
    return re.sub(r"\[\s+([-+0-9.eE,\s]+?)\s+\]", lambda m: "[" + " ".join(m.group(1).split()) + "]", blob)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child_main(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="5000,20000", help="records of the azure shape, comma-separated; 0: none")
    ap.add_argument("--repeats", type=int, default=3, help="rounds of every measure, side by side (default 3)")
    ap.add_argument("--naive-repeats", type=int, default=None,
                    help=f"rounds with the naive way (default: every round, but one above "
                         f"{NAIVE_ONCE_ABOVE:,} files, where it takes minutes); 0: skip it")
    ap.add_argument("--workdir", type=Path, default=HERE / "out", help="generated corpora and warehouses (bench/out)")
    default_corpus = os.environ.get("NEWSETL_CORPUS") or str(REPO.parent / "shared" / "corpus")
    ap.add_argument("--corpus", default=default_corpus,
                    help="the real records, read in place: its folders " + " and ".join(CORPUS_FOLDERS)
                         + " (default: $NEWSETL_CORPUS, else ../shared/corpus from the repository root)")
    ap.add_argument("--no-corpus", dest="corpus", action="store_const", const=None, help="skip the real records")
    ap.add_argument("--ryml-min-cpu", type=float, default=0.0,
                    help="parse a small data set with rapidyaml again until this many CPU seconds, figures per "
                         "pass (default 0: one pass, cold as newsetl's; later passes find the bytes in cache)")
    ap.add_argument("--json", type=Path, help="also save every figure here (the workdir's core-latest.json always)")
    ap.add_argument("--before", type=Path, help="a saved --json: print before/after per data set and phase")
    a = ap.parse_args()
    sys.path.insert(0, str(REPO / "src"))  # the corpus generator too is this checkout's (newsetl.demo)
    if a.repeats < 1:
        ap.error("--repeats must be at least 1")
    before = json.loads(a.before.read_text()) if a.before else None
    a.workdir.mkdir(parents=True, exist_ok=True)
    env = child_env()
    now = {"when": dt.datetime.now().isoformat(timespec="seconds"), "commit": code_version(),
           "head": git("rev-parse", "HEAD"),
           "machine": bench_run.machine(), "load_start": loadavg(), "repeats": a.repeats, "argv": sys.argv[1:]}
    print(f"machine: {now['machine']}; load average {now['load_start']}\ncode (src/): {now['commit']}", flush=True)
    t0 = time.perf_counter()
    now["datasets"] = [bench_dataset(name, src, a, env) for name, src in datasets(a)]
    now["load_end"] = loadavg()
    now["seconds"] = time.perf_counter() - t0

    lines = [f"machine: {now['machine']}", f"code (the last commit that changed src/): {now['commit']}",
             f"load average {now['load_start']} at the start, {now['load_end']} at the end; "
             f"medians of {a.repeats} rounds side by side, best in brackets; {now['seconds']:.0f} s in all"]
    for d in now["datasets"]:
        lines += [""] + dataset_table(d)
    last = next((d["summary"] for d in reversed(now["datasets"]) if d["summary"].get("wrapped")), None)
    if last:
        lines += ["", "wrapped (in each module that looks it up): " + "; ".join(
            f"{name} (in {', '.join(p.rsplit('.', 1)[0].removeprefix('newsetl.') for p in places)})"
            for name, places in last["wrapped"].items())]
    if before:
        lines += [""] + compare(before, now)
    text = "\n".join(lines)
    print("\n" + text)
    now["wrapped"] = last["wrapped"] if last else {}
    now["phase_labels"] = [label for label, _ in PHASES]  # the order of each run's phase_cpu
    now["ryml_method"] = "ryml.parse_csubstr into one reused Tree (cleared), front matter split beforehand"
    now["datasets"] = [slim(d) for d in now["datasets"]]
    (a.workdir / "core-latest.md").write_text(text + "\n")
    blob = dumps(now)
    (a.workdir / "core-latest.json").write_text(blob)
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(blob)
        print(f"\nsaved {a.json}")


if __name__ == "__main__":
    main()
