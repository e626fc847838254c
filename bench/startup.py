"""Start-up of the read commands, and a run that finds nothing changed, side by side with the
DuckDB shell (issue 24: at most 0.3 s for a read command, 0.8 s for the no-change run).

On a demo warehouse (`newsetl demo --records 2000 --seed 42`, loaded once), each round runs
every command once, in a fresh process as a user types it (the `newsetl` script next to this
Python, the DuckDB shell `duckdb`), so a busy machine slows them all alike; it prints the
median (and best) wall time and the CPU time (user + system, the process and its children) of
`--repeats` rounds, then the top entries of `python -X importtime` for `newsetl --help` and
`newsetl tables`: where the start-up goes, by cumulative import time.

Every process writes its bytecode (PYTHONDONTWRITEBYTECODE is taken out of their environment)
and a first round, not counted, writes it: as a user's second command finds it.

    python bench/startup.py                      # 9 rounds
    python bench/startup.py --repeats 21 --json bench/results/startup.json
    python bench/startup.py --before bench/results/startup-before.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import machine  # noqa: E402

BIN = Path(sys.executable).parent
READ_BUDGET_S = 0.3
RUN_BUDGET_S = 0.8


def commands(wh: Path, demo: Path) -> list[tuple[str, list[str], float | None]]:
    """(label, argv, budget in seconds) of what is timed; the warehouse comes from
    $NEWSETL_WAREHOUSE, as a user who has set it types these."""
    nl = str(BIN / "newsetl")
    duckdb = shutil.which("duckdb", path=str(BIN)) or shutil.which("duckdb")
    out = [
        ("python -c pass", [sys.executable, "-c", "pass"], None),
        ("newsetl --help", [nl, "--help"], READ_BUDGET_S),
        ("newsetl tables", [nl, "tables"], READ_BUDGET_S),  # after a run: the views over the checks are counted
        ("newsetl tables (again)", [nl, "tables"], READ_BUDGET_S),  # every count recorded or cached: no DuckDB
        ("newsetl describe articles", [nl, "describe", "articles"], READ_BUDGET_S),
        ('newsetl sql "select 1"', [nl, "sql", "select 1"], READ_BUDGET_S),
        ("newsetl status", [nl, "status"], READ_BUDGET_S),
        ("newsetl run (no change)", [nl, "run", str(demo), "--warehouse", str(wh), "-q"], RUN_BUDGET_S),
    ]
    if duckdb:
        out.insert(1, ('duckdb -c "select 1"', [duckdb, "-c", "select 1"], None))
    return out


def child_env(wh: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PREFECT_API_URL")}
    env["NEWSETL_WAREHOUSE"] = str(wh)
    env["PREFECT_API_URL"] = ""  # no Prefect API: a local run, as on a fresh machine
    return env


def timed(argv: list[str], env: dict) -> tuple[float, float]:
    """(wall s, CPU s of the process and its children) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"{' '.join(argv)} exited {p.returncode}: {p.stderr.decode(errors='replace')[-500:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def importtime(argv: list[str], env: dict, top: int) -> list[tuple[str, int, int]]:
    """The `top` imports by cumulative time: (module, self µs, cumulative µs)."""
    p = subprocess.run([sys.executable, "-X", "importtime", *argv], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    rows = []
    for line in p.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cum_us, name = (x.strip() for x in line[len("import time:"):].split("|"))
        rows.append((name, int(self_us), int(cum_us)))
    rows.sort(key=lambda r: -r[2])
    return rows[:top]


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def set_up(work: Path, records: int, seed: int, env: dict) -> tuple[Path, Path]:
    demo, wh = work / "demo", work / "wh"
    if not (wh / "current").exists():
        nl = str(BIN / "newsetl")
        subprocess.run([nl, "demo", str(demo), "--records", str(records), "--seed", str(seed), "-q"], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        subprocess.run([nl, "run", str(demo), "--warehouse", str(wh), "-q"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
    return demo, wh


def code_measured(env: dict) -> str:
    """The commit of src/ (and whether it is modified), or the folder of the newsetl the
    commands import when it is not this checkout's (PYTHONPATH pointing at another tree)."""
    p = subprocess.run([sys.executable, "-c", "import newsetl; print(newsetl.__file__)"], env=env,
                       capture_output=True, text=True)
    where = Path(p.stdout.strip()).resolve().parent if p.returncode == 0 else None
    if where is not None and where != (HERE.parent / "src" / "newsetl").resolve():
        return f"newsetl from {where}"
    return git_commit()


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "-C", str(HERE.parent), "log", "-1", "--format=%h", "--", "src"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(HERE.parent), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return head + (" (src/ modified)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=9, help="rounds of every command, side by side (default 9)")
    ap.add_argument("--records", type=int, default=2000, help="demo records of the warehouse (default 2000)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--workdir", type=Path, default=None,
                    help="demo records and warehouse, made once and kept (default: a temporary folder)")
    ap.add_argument("--top", type=int, default=15, help="imports listed per command (default 15)")
    ap.add_argument("--json", type=Path, help="save the figures here")
    ap.add_argument("--before", type=Path, help="a saved --json: its medians side by side with these")
    a = ap.parse_args()

    work = a.workdir or Path(tempfile.mkdtemp(prefix="newsetl-startup-"))
    env = child_env(work / "wh")
    try:
        demo, wh = set_up(work, a.records, a.seed, env)
        cmds = commands(wh, demo)
        now = {"when": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": code_measured(env),
               "machine": machine(), "repeats": a.repeats, "load_start": loadavg(), "commands": {}}
        print(f"machine: {now['machine']}\ncode (src/): {now['commit']}; {now['when']}; "
              f"load average {now['load_start']}", flush=True)
        for _label, argv, _ in cmds:  # writes the bytecode; not counted
            timed(argv, env)
        walls = {label: [] for label, _, _ in cmds}
        cpus = {label: [] for label, _, _ in cmds}
        for r in range(a.repeats):
            for label, argv, _ in cmds:
                w, c = timed(argv, env)
                walls[label].append(w)
                cpus[label].append(c)
            print(f"  round {r + 1}/{a.repeats}; load {loadavg()[0]}", flush=True)
        now["load_end"] = loadavg()
        before = json.loads(a.before.read_text())["commands"] if a.before else {}
        print(f"\nmedians of {a.repeats} rounds (best in brackets), load average {now['load_start']} -> "
              f"{now['load_end']}:\n")
        head = "| command | wall ms | CPU ms | budget ms |" + (" before: wall ms | CPU ms |" if before else "")
        print(head)
        print("|---" * (head.count("|") - 1) + "|")
        for label, _, budget in cmds:
            med, best, cpu = (statistics.median(walls[label]), min(walls[label]), statistics.median(cpus[label]))
            now["commands"][label] = {"wall_s": walls[label], "cpu_s": cpus[label], "median_wall_s": med,
                                      "median_cpu_s": cpu, "budget_s": budget}
            mark = "" if budget is None else (" ok" if med <= budget else " OVER")
            row = (f"| {label} | {med * 1e3:,.0f} ({best * 1e3:,.0f}) | {cpu * 1e3:,.0f} | "
                   f"{'' if budget is None else f'{budget * 1e3:,.0f}{mark}'} |")
            if before:
                b = before.get(label)
                row += (f" {b['median_wall_s'] * 1e3:,.0f} ({min(b['wall_s']) * 1e3:,.0f}) | "
                        f"{b['median_cpu_s'] * 1e3:,.0f} |" if b else " | |")
            print(row)
        now["importtime"] = {}
        for label, argv in (("newsetl --help", [str(BIN / "newsetl"), "--help"]),
                            ("newsetl tables", [str(BIN / "newsetl"), "tables"])):
            top = importtime(argv, env, a.top)
            now["importtime"][label] = top
            print(f"\n`python -X importtime` of {label}: the top {len(top)} imports by cumulative time\n")
            print("| module | cumulative ms | self ms |\n|---|---:|---:|")
            for name, self_us, cum_us in top:
                print(f"| {name.strip()} | {cum_us / 1e3:,.1f} | {self_us / 1e3:,.1f} |")
        if a.json:
            a.json.parent.mkdir(parents=True, exist_ok=True)
            a.json.write_text(json.dumps(now, indent=1) + "\n")
            print(f"\nsaved {a.json}")
    finally:
        if a.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
