"""Faults outside the records: a run killed between its commit and its catalog write, a
full disk, a killed run's processes. Real SIGKILLs, a real full filesystem (tmpfs), real
Prefect temporary servers; figures counted from the files, not asked of newsetl."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from newsetl import demo

from .helpers.cli import newsetl_here
from .helpers.servers import prefect_home_like_a_users
from .helpers.waiting import lock_held_as_by_a_run, wait_until

SHELL = Path(sys.executable).parent / "duckdb"


def newsetl_cli(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, "-m", "newsetl.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def env_with(**extra) -> dict:
    """The environment of a `newsetl run` as a user starts it: no fault, no Prefect server
    (Prefect starts a temporary one, given time to: this machine may be busy)."""
    env = {k: v for k, v in os.environ.items() if k not in ("NEWSETL_FAULT", "PREFECT_API_URL")}
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    env.update(extra)
    return env


def md_count(folder: Path) -> int:
    return sum(1 for _d, _s, files in os.walk(folder) for f in files if f.endswith((".md", ".markdown")))


def catalog_files(wh: Path) -> int:
    """source_files rows as the catalog file shows them (what the DuckDB shell sees)."""
    con = duckdb.connect(str(wh / "news.duckdb"), read_only=True)
    try:
        return con.sql("SELECT count(*) FROM source_files").fetchall()[0][0]
    finally:
        con.close()


def current_files(wh: Path) -> int:
    """source_files rows of the snapshot `current` points to, read straight from its Parquet."""
    import pyarrow.parquet as pq

    snap = wh / os.readlink(wh / "current")
    return sum(pq.read_metadata(f).num_rows for f in (snap / "source_files").glob("*.parquet"))


def grow(site: Path, n: int, seed: int) -> None:
    more = site.parent / f"more-{seed}"
    demo.generate(more, records=n, seed=seed, malformed=False)
    for f in more.glob("*.md"):
        f.rename(site / (f"new{seed}-" + f.name))


# -- killed between the commit and the catalog write ------------------------------------------

@pytest.fixture
def killed_after_commit(tmp_path):
    """A warehouse whose last run was SIGKILLed right after publishing `current`."""
    site = tmp_path / "site"
    demo.generate(site, records=60, seed=2)
    wh = tmp_path / "wh"
    r = newsetl_cli("run", site, "--warehouse", wh, "--no-prefect", "-q", env=env_with())
    assert r.returncode == 0, r.stderr
    old_snap, old_files = os.readlink(wh / "current").split("/")[-1], md_count(site)
    grow(site, 15, seed=7)
    r = newsetl_cli("run", site, "--warehouse", wh, "--no-prefect", "-q", env=env_with(NEWSETL_FAULT="committed:kill"))
    assert r.returncode == -signal.SIGKILL, r.stderr
    new_snap = os.readlink(wh / "current").split("/")[-1]
    assert new_snap != old_snap
    # the state this is about: `current` is the new run, the catalog file still the old one
    assert current_files(wh) == md_count(site) == old_files + 15
    assert catalog_files(wh) == old_files
    return wh, site, old_snap, new_snap


@pytest.mark.parametrize("command", [["sql", "SELECT 1"], ["report", "top_providers"], ["runs"], ["status"]],
                         ids=["sql", "report", "runs", "status"])
def test_the_next_read_command_heals_the_catalog(killed_after_commit, command):
    wh, site, _old, new_snap = killed_after_commit
    r = newsetl_here(*command, "--warehouse", wh)
    assert r.returncode == 0, r.stderr
    assert catalog_files(wh) == md_count(site)
    if SHELL.exists():  # what an analyst opens
        s = subprocess.run([str(SHELL), "-readonly", "-csv", "-noheader", str(wh / "news.duckdb"), "-c",
                            "SELECT count(*) FROM source_files"], capture_output=True, text=True, timeout=60)
        assert s.stdout.strip() == str(md_count(site)), s.stderr
    status = newsetl_here("status", "--warehouse", wh)
    assert f"snapshot  {new_snap}" in status.stdout and "STALE" not in status.stdout


def test_a_run_holding_the_lock_is_left_to_write_the_catalog_and_status_says_so(killed_after_commit):
    wh, site, old_snap, new_snap = killed_after_commit
    with lock_held_as_by_a_run(wh):
        r = newsetl_here("status", "--warehouse", wh)
        assert r.returncode == 0, r.stderr
        assert f"shows snapshot {old_snap}, not the current {new_snap}" in r.stdout
        assert "the run that holds the lock (pid 4242 since 2026-01-01T00:00:00Z) rewrites it" in r.stdout
        assert catalog_files(wh) == md_count(site) - 15  # untouched while the run holds the lock
        # readers through newsetl see the current snapshot meanwhile
        q = newsetl_here("sql", "SELECT count(*) FROM source_files", "--warehouse", wh, "--format", "csv")
        assert q.stdout.split() == ["count_star()", str(md_count(site))]
    r = newsetl_here("status", "--warehouse", wh)  # the lock is free: healed first
    assert "STALE" not in r.stdout
    assert catalog_files(wh) == md_count(site)


@pytest.fixture
def tmpfs(tmp_path):
    """A real, small filesystem of its own (as root), unmounted afterwards."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.strip() or r.returncode}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_read_only_warehouse_is_left_alone_and_status_says_how_to_fix(tmpfs, tmp_path):
    site = tmp_path / "site"
    demo.generate(site, records=40, seed=3)
    wh = tmpfs / "wh"
    assert newsetl_cli("run", site, "--warehouse", wh, "--no-prefect", "-q", env=env_with()).returncode == 0
    old_snap = os.readlink(wh / "current").split("/")[-1]
    grow(site, 5, seed=8)
    r = newsetl_cli("run", site, "--warehouse", wh, "--no-prefect", "-q", env=env_with(NEWSETL_FAULT="committed:kill"))
    assert r.returncode == -signal.SIGKILL
    new_snap = os.readlink(wh / "current").split("/")[-1]
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    try:
        r = newsetl_here("status", "--warehouse", wh)
        assert r.returncode == 0, r.stderr
        assert f"shows snapshot {old_snap}, not the current {new_snap}" in r.stdout
        assert "as a user who may write to that folder" in r.stdout
        q = newsetl_here("sql", "SELECT count(*) FROM source_files", "--warehouse", wh, "--format", "csv")
        assert q.returncode == 0, q.stderr
        assert q.stdout.split() == ["count_star()", str(md_count(site))]
        assert catalog_files(wh) == md_count(site) - 5
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(tmpfs)], check=True)
    assert newsetl_here("runs", "--warehouse", wh).returncode == 0
    assert catalog_files(wh) == md_count(site)


# -- a full disk ---------------------------------------------------------------------------------

def fill(mnt: Path, leave: int) -> Path:
    """Fill the filesystem with one file, then give back `leave` bytes."""
    filler = mnt / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        for chunk in (1 << 20, 1 << 12):
            try:
                while True:
                    os.write(fd, b"\0" * chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC
    finally:
        os.close(fd)
    os.truncate(filler, max(filler.stat().st_size - leave, 0))
    return filler


def tree(root: Path) -> dict[Path, tuple[int, int]]:
    """Every path under root (not following links): its inode and mtime."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            st = Path(dirpath, n).lstat()
            out[Path(dirpath, n)] = (st.st_ino, st.st_mtime_ns)
    return out


def sql_count(wh: Path, table: str) -> int:
    r = newsetl_here("sql", f"SELECT count(*) FROM {table}", "--warehouse", wh, "--format", "csv")
    assert r.returncode == 0, r.stderr
    return int(r.stdout.split()[1])


@pytest.fixture
def full_disk_site(tmpfs, tmp_path):
    """A warehouse on a 20 MB filesystem after one good run, and much more input to load."""
    site = tmp_path / "site"
    demo.generate(site, records=300, seed=1, malformed=False)
    wh = tmpfs / "wh"
    r = newsetl_cli("run", site, "--warehouse", wh, "--no-prefect", "-q", env=env_with())
    assert r.returncode == 0, r.stderr
    before = md_count(site)
    more = tmp_path / "more"
    demo.generate(more, records=600, seed=2, profile="bench", malformed=False)  # 18 MB: parsed by workers
    for f in more.glob("*.md"):
        f.rename(site / ("new-" + f.name))
    return site, wh, before


def message(wh: Path) -> str:
    return (f"newsetl run: error: no space left on device while writing {wh}: free space and run again; "
            "the last complete snapshot is intact")


def test_a_full_disk_is_one_line_keeps_the_snapshot_and_the_next_run_succeeds(full_disk_site, tmpfs):
    site, wh, before = full_disk_site
    baseline = tree(wh)
    dead = set()
    # free space left each time: none (the run cannot even note that it started), some staging,
    # all staging but not the build
    for leave in (0, 200 << 10, 800 << 10, 1600 << 10, 200 << 10):
        filler = fill(tmpfs, leave)
        start = time.time_ns()
        r = newsetl_cli("run", site, "--warehouse", wh, "--no-prefect", "-q", env=env_with())
        assert r.returncode == 1, (leave, r.stdout, r.stderr)
        assert r.stderr.strip().splitlines() == [message(wh)], leave
        # the last complete snapshot answers, with its figures, through newsetl and the catalog file
        assert sql_count(wh, "source_files") == before
        assert catalog_files(wh) == before
        # what an earlier failed run left is gone: anything new is this run's
        for p, (_ino, mtime) in tree(wh).items():
            if p not in baseline:
                assert mtime >= start, (leave, p)
        st = newsetl_here("status", "--warehouse", wh).stdout
        if "died before publishing:" in st:
            dead.add(st.split("died before publishing: ")[1].split()[0])
        filler.unlink()
    start = time.time_ns()
    r = newsetl_cli("run", site, "--warehouse", wh, "--no-prefect", "-q", env=env_with())
    assert r.returncode == 0, r.stderr
    assert sql_count(wh, "source_files") == catalog_files(wh) == md_count(site) == before + 600
    # nothing of the failed runs is left on the filesystem
    kept = {ino for ino, _ in baseline.values()}  # parts of the first snapshot, reused by hard link
    for p, (ino, mtime) in tree(tmpfs).items():
        assert p in baseline or ino in kept or mtime >= start, p
        assert not any(s in p.name for s in (".partial", ".tmp", "_tmp", ".running", ".write-test")), p
    # and every run that got as far as noting its start is in `runs` as failed, once
    runs = newsetl_here("runs", "--warehouse", wh, "--format", "json", "--limit", "100")
    rows = json.loads(runs.stdout)
    assert sorted(r["run_id"] for r in rows if r["status"] == "failed") == sorted(dead)
    assert [r["status"] for r in rows].count("completed") == 2
    assert len(dead) >= 3


def test_a_build_out_of_memory_is_one_line_and_more_memory_completes_it(tmp_path):
    """DuckDB out of its memory limit in the build: one line that names the setting, the last
    snapshot still current; a setting that is not a size is refused before anything is parsed."""
    site, wh = tmp_path / "site", tmp_path / "wh"
    demo.generate(site, records=120, seed=5, malformed=False)
    first = newsetl_cli("run", site, "--warehouse", wh, "--no-prefect", "-q", env=env_with())
    assert first.returncode == 0, first.stderr
    demo.generate(tmp_path / "more", records=60, seed=6, malformed=False)
    for f in (tmp_path / "more").glob("*.md"):
        f.rename(site / f"more-{f.name}")
    r = newsetl_cli("run", site, "--warehouse", wh, "--no-prefect", "-q", env=env_with(NEWSETL_BUILD_MEMORY="2MB"))
    assert r.returncode == 1, r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert lines[0].startswith("newsetl run: error: the build ran out of memory within its limit of 2MB"), lines
    assert "NEWSETL_BUILD_MEMORY=" in lines[0] and "Possible solutions" not in lines[0]
    assert sql_count(wh, "source_files") == catalog_files(wh) == 120
    for bad in ("lots", "0MB", "-1GB"):
        staged = sorted(p.name for p in (wh / "staging").iterdir())
        r = newsetl_cli("run", site, "--warehouse", wh, "--no-prefect", "-q", env=env_with(NEWSETL_BUILD_MEMORY=bad))
        assert r.returncode == 1 and r.stderr.strip().splitlines() == [
            f"newsetl run: error: NEWSETL_BUILD_MEMORY={bad!r} is not a memory size: give one like 512MB or 2GB"], r.stderr
        assert sorted(p.name for p in (wh / "staging").iterdir()) == staged  # nothing parsed
    r = newsetl_cli("run", site, "--warehouse", wh, "--no-prefect", "-q", env=env_with(NEWSETL_BUILD_MEMORY="256MB"))
    assert r.returncode == 0, r.stderr
    assert sql_count(wh, "source_files") == catalog_files(wh) == md_count(site) == 180


def test_a_build_out_of_memory_in_memory_is_built_again_on_disk(tmp_path, monkeypatch):
    """A default-sized build that runs out in an in-memory database is built once more from the
    start in a database file with twice the memory (384 MB at least): the tables are those of a run that fitted."""
    from newsetl import build, pipeline

    from .helpers.tables import assert_same_tables

    site = tmp_path / "site"
    demo.generate(site, records=150, seed=8)
    pipeline.run([site], tmp_path / "roomy", workers=1)
    tries = []
    once = build._build_once

    def recorded(p, manifest, old, touched, out, previous, limit, threads, on_disk, fetch):
        tries.append((limit, on_disk))
        return once(p, manifest, old, touched, out, previous, limit, threads, on_disk, fetch)

    monkeypatch.setattr(build, "_build_once", recorded)
    # 8 MB: below what DuckDB needs for any build (measured: 32 MB is too little for 300 records)
    monkeypatch.setattr(build, "build_memory", lambda live_files, in_memory: "8MB")
    pipeline.run([site], tmp_path / "tight", workers=1)
    assert tries == [("8MB", False), ("384MB", True)]
    assert_same_tables(tmp_path / "tight", tmp_path / "roomy")
    snap = tmp_path / "tight" / "snapshots"
    assert not [d for d in snap.iterdir() if d.name.endswith(".partial")]


@pytest.mark.integration
def test_a_full_disk_on_the_prefect_path_is_logged_without_tracebacks(full_disk_site, tmpfs, prefect_server):
    site, wh, before = full_disk_site
    filler = fill(tmpfs, 200 << 10)  # fails in the parse workers (Prefect task processes)
    url, _home = prefect_server
    r = newsetl_cli("run", site, "--warehouse", wh, "--prefect", "-q", env=env_with(PREFECT_API_URL=url))
    assert r.returncode == 1, r.stderr
    assert r.stderr.strip().splitlines()[-1] == message(wh)
    assert "Traceback" not in r.stderr and "No space left on device" in r.stderr  # Prefect's log lines, one each
    assert sql_count(wh, "source_files") == catalog_files(wh) == before
    filler.unlink()
    r = newsetl_cli("run", site, "--warehouse", wh, "--no-prefect", "-q", env=env_with())
    assert r.returncode == 0, r.stderr
    assert sql_count(wh, "source_files") == md_count(site)


# -- a killed run leaves no process behind ------------------------------------------------------

def marked(mark: str) -> dict[int, str]:
    """Live (not zombie) processes whose environment holds `mark`, a variable the test gave the
    run it started (every descendant inherits it): pid -> command line."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if mark.encode() not in (d / "environ").read_bytes().split(b"\0"):
                continue
            if (d / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            out[int(d.name)] = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            pass
    return out


def start_cli_run(site: Path, wh: Path, mark: str, *args, fault: str | None = None, **extra: str) -> subprocess.Popen:
    name, value = mark.split("=")
    env = env_with(**{name: value}, **({"NEWSETL_FAULT": fault} if fault else {}), **extra)
    return subprocess.Popen([sys.executable, "-m", "newsetl.cli", "run", str(site), "--warehouse", str(wh), "-q", *args],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def new_mark():
    """Marks for the runs a test starts; whatever carries one is killed at teardown, so a failing
    test leaves nothing running either."""
    marks = []

    def make() -> str:
        marks.append(f"NEWSETL_TEST_MARK={os.urandom(8).hex()}")
        return marks[-1]

    yield make
    for m in marks:
        for pid in marked(m):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


pytestmark_linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


@pytestmark_linux
@pytest.mark.integration
def test_a_killed_prefect_run_leaves_no_process_and_a_normal_one_neither(tmp_path, new_mark, prefect_server):
    site = tmp_path / "site"
    demo.generate(site, records=300, seed=4, malformed=False)  # several parse batches
    wh = tmp_path / "wh"
    # the temporary server's home, where Prefect has run before (its first start: test_run_modes)
    home = str(prefect_home_like_a_users(prefect_server[1], tmp_path / "prefect-home"))

    mark = new_mark()
    run = start_cli_run(site, wh, mark, "--prefect", fault="parsed:sleep=600", PREFECT_HOME=home)

    # the parse workers are forked by the run before Prefect is imported (runners.fork_early):
    # their command line is the run's own; where forking is not used (runners._start_method),
    # they come from a forkserver
    workers = os.cpu_count() if (os.cpu_count() or 1) > 1 else 0

    def all_started():
        cmds = list(marked(mark).values())
        return (any("uvicorn" in c for c in cmds) and any("newsetl.watchdog" in c for c in cmds)
                and (sum("newsetl.cli run" in c for c in cmds) >= 1 + workers
                     or any("forkserver" in c for c in cmds)))

    # the temporary server, the watchdog and the parse workers are up, then the run is killed
    assert wait_until(all_started, timeout=300, every=1), (marked(mark), run.poll())
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)
    left = wait_until(lambda: not marked(mark), timeout=10)
    assert left, marked(mark)
    with open(wh / ".lock", "a+") as fh:  # and nothing holds the warehouse
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)

    mark = new_mark()
    run = start_cli_run(site, wh, mark, "--prefect", PREFECT_HOME=home)
    assert run.wait(timeout=900) == 0, run.stderr.read()
    assert wait_until(lambda: not marked(mark), timeout=10), marked(mark)
    assert catalog_files(wh) == md_count(site)


@pytestmark_linux
def test_a_killed_in_process_run_leaves_no_process(tmp_path, new_mark):
    site = tmp_path / "site"
    demo.generate(site, records=400, seed=9, profile="bench", malformed=False)  # > 8 MB: parsed by workers
    wh = tmp_path / "wh"
    mark = new_mark()
    run = start_cli_run(site, wh, mark, "--no-prefect", fault="parsing:sleep=600")
    assert wait_until(lambda: len(marked(mark)) >= 3, timeout=120), marked(mark)  # the run, the watchdog, workers
    run.send_signal(signal.SIGKILL)
    run.wait(timeout=30)
    assert wait_until(lambda: not marked(mark), timeout=10), marked(mark)


SLEEPER = "import time; time.sleep(120)"


@pytestmark_linux
def test_the_watchdog_kills_only_processes_with_its_exact_token(tmp_path):
    from newsetl import watchdog

    token = os.urandom(16).hex()
    env = {k: v for k, v in os.environ.items() if k != watchdog.ENV}

    def sleeper(**extra):
        return subprocess.Popen([sys.executable, "-c", SLEEPER], env={**env, **extra})

    ours = sleeper(**{watchdog.ENV: token})
    others = [sleeper(**{watchdog.ENV: token + "0"}), sleeper(**{watchdog.ENV: token[:-1]}),
              sleeper(NEWSETL_OTHER=token), sleeper()]
    def execd(p) -> bool:  # its environment is the one given (before exec, it is this process's)
        try:
            return (Path("/proc") / str(p.pid) / "cmdline").read_bytes().endswith(SLEEPER.encode() + b"\0")
        except OSError:
            return False

    try:
        assert wait_until(lambda: all(execd(p) for p in [ours, *others]), timeout=60)
        assert watchdog.sweep(token) == 1
        assert ours.wait(timeout=10) == -signal.SIGKILL
        assert watchdog.sweep(token) == 0  # nothing else carries the token
        # and none of the others dies meanwhile (a negative: it takes the whole half second)
        assert not wait_until(lambda: any(p.poll() is not None for p in others), timeout=0.5)
    finally:
        for p in [ours, *others]:
            p.kill()
            p.wait()
