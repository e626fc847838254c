"""Crash safety and concurrency, with real processes and real SIGKILLs.

A run is started as its own process and killed with SIGKILL at a named point
(NEWSETL_FAULT=<point>:kill) or at a random moment; the warehouse must still
show the last complete run, readable, and the next run must complete it with
nothing lost and nothing doubled.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

import newsetl
from newsetl import demo, pipeline
from newsetl.store import Warehouse

from .helpers.tables import assert_same_as_rebuild
from .helpers.waiting import run_holds_lock, wait_until

RUN = "import sys; from newsetl import pipeline; pipeline.run([sys.argv[1]], sys.argv[2], workers=2, lock_timeout=float(sys.argv[3]))"


def start_run(site: Path, wh: Path, fault: str | None = None, lock_timeout: float = 60) -> subprocess.Popen:
    env = {**os.environ}
    env.pop("NEWSETL_FAULT", None)
    if fault:
        env["NEWSETL_FAULT"] = fault
    return subprocess.Popen([sys.executable, "-c", RUN, str(site), str(wh), str(lock_timeout)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def counts(wh: Path) -> dict:
    con = newsetl.connect(wh)
    try:
        return {t: con.sql(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                for t in ("articles", "images", "related_links", "related_images", "source_files")}
    finally:
        con.close()


def catalog_count(wh: Path) -> int:
    con = duckdb.connect(str(wh / "news.duckdb"), read_only=True)
    try:
        return con.sql("SELECT count(*) FROM articles").fetchall()[0][0]
    finally:
        con.close()


@pytest.fixture
def setup(tmp_path):
    """A warehouse with one complete run, and the site then edited and grown."""
    site = tmp_path / "site"
    demo.generate(site, records=400, seed=5)
    wh = tmp_path / "wh"
    pipeline.run([site], wh, workers=1)
    before = counts(wh)
    demo.edit(site, 0.1, seed=8)
    more = tmp_path / "more"
    demo.generate(more, records=40, seed=77, malformed=False)
    for f in more.glob("*.md"):
        f.rename(site / ("new-" + f.name))
    return site, wh, before


@pytest.mark.parametrize("point", ["parsed", "built", "committed", "cataloged"])
def test_kill_at_each_stage_then_next_run_completes(setup, tmp_path, point):
    site, wh, before = setup
    proc = start_run(site, wh, f"{point}:kill")
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    # readable at the last complete run: before the commit, the old state; after it, the new one
    after_kill = counts(wh)
    if point in ("parsed", "built"):
        assert after_kill == before
        assert catalog_count(wh) == before["articles"]
    # the next run completes, with nothing lost or doubled
    r = pipeline.run([site], wh, workers=1).run
    assert r["status"] == "completed"
    assert_same_as_rebuild([site], wh, tmp_path)
    assert catalog_count(wh) == counts(wh)["articles"]
    con = newsetl.connect(wh)
    statuses = [s for (s,) in con.sql("SELECT status FROM runs ORDER BY started_at").fetchall()]
    # a run killed before its commit is recorded as failed; after it, it had completed
    assert statuses == (["completed", "failed", "completed"] if point in ("parsed", "built")
                        else ["completed", "completed", "completed"])
    assert not list((wh / "snapshots").glob("*.partial"))


def test_kill_at_random_moments(setup, tmp_path):
    site, wh, before = setup
    pipeline.run([site], tmp_path / "expected", workers=1)
    new = counts(tmp_path / "expected")
    rng = random.Random(1234)
    for _ in range(3):
        proc = start_run(site, wh)
        time.sleep(rng.uniform(0.2, 3.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        c = counts(wh)  # always readable, whatever the moment: the old state or the new, whole
        assert c in (before, new)
        assert catalog_count(wh) in (before["articles"], new["articles"])
    pipeline.run([site], wh, workers=1)
    assert_same_as_rebuild([site], wh, tmp_path)


def test_second_run_waits_then_gives_up_with_a_clear_message(setup):
    site, wh, _ = setup
    first = start_run(site, wh, "parsed:sleep=5")
    assert wait_until(run_holds_lock(wh, first), timeout=120)  # and keeps it 5 s after its parse
    second = start_run(site, wh, lock_timeout=1)
    out, err = second.communicate(timeout=60)
    assert second.returncode != 0
    assert "another run is writing to" in err and "gave up after waiting 1 s" in err
    first.wait(timeout=120)
    assert first.returncode == 0, first.stderr.read()


def test_second_run_waits_for_the_first_and_then_runs(setup, tmp_path):
    site, wh, _ = setup
    first = start_run(site, wh, "parsed:sleep=4")
    assert wait_until(run_holds_lock(wh, first), timeout=120)
    second = start_run(site, wh, lock_timeout=120)
    assert first.wait(timeout=120) == 0
    assert second.wait(timeout=120) == 0, second.stderr.read()
    con = newsetl.connect(wh)
    runs = con.sql("SELECT files_parsed FROM runs WHERE status = 'completed' ORDER BY started_at").fetchall()
    assert len(runs) == 3 and runs[-1] == (0,)  # the second found the first's work done
    assert_same_as_rebuild([site], wh, tmp_path)


SHELL = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])  # read-write, as the DuckDB shell opens it
for line in sys.stdin:
    print(con.sql("SELECT count(*) FROM articles").fetchall()[0][0], flush=True)
"""


def test_readers_are_not_blocked_and_see_old_or_new(setup):
    site, wh, before = setup
    # an analyst's session holds the catalog file open, read-write, for the whole run
    shell = subprocess.Popen([sys.executable, "-c", SHELL, str(wh / "news.duckdb")],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask() -> int:
        shell.stdin.write("?\n")
        shell.stdin.flush()
        return int(shell.stdout.readline())

    assert ask() == before["articles"]
    reader = newsetl.connect(wh)
    proc = start_run(site, wh, "built:sleep=3")
    # the new snapshot is built (its state is written last) and not yet published
    assert wait_until(lambda: list((wh / "snapshots").glob("*.partial/_state/snapshot.json")) or proc.poll() is not None,
                      timeout=120)
    # mid-run: both see the old state, complete
    assert ask() == before["articles"]
    assert reader.sql("SELECT count(*) FROM articles").fetchall()[0][0] == before["articles"]
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err  # not blocked by the open catalog
    after = counts(wh)
    assert after["articles"] > before["articles"]
    # sessions opened before the run keep their snapshot, whole; new ones see the new run
    assert ask() == before["articles"]
    assert reader.sql("SELECT count(*) FROM source_files").fetchall()[0][0] == before["source_files"]
    assert catalog_count(wh) == after["articles"]
    shell.stdin.close()
    shell.wait(timeout=30)
    reader.close()


def _processes_with(marker: str) -> list[int]:
    """Live processes whose command line mentions `marker`."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if marker in (d / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(d.name))
            except OSError:
                pass
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_killed_run_leaves_no_worker_behind_and_no_lock(tmp_path):
    site = tmp_path / "site"
    demo.generate(site, records=400, seed=9, profile="bench", malformed=False)  # > 8 MB: parsed by workers
    wh = tmp_path / "wh"
    proc = start_run(site, wh, "parsing:kill")  # the run dies while its workers are alive
    proc.wait(timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    deadline = time.monotonic() + 10
    while _processes_with(str(wh)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_with(str(wh)) == []
    with Warehouse(wh).lock(timeout=1):  # free at once
        pass
    assert pipeline.run([site], wh, workers=1).run["status"] == "completed"


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="no fork on this platform")
def test_a_forked_child_does_not_keep_the_run_lock(tmp_path):
    wh = Warehouse(tmp_path / "wh")
    with wh.lock(timeout=1):
        child = multiprocessing.get_context("fork").Process(target=_sleep, args=(30,))
        child.start()
    try:
        with wh.lock(timeout=2):  # the child still runs, and the lock is free
            assert child.is_alive()
    finally:
        child.kill()
        child.join()
