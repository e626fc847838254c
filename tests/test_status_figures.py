"""`newsetl status` reads its figures from the snapshot (snapshot.json's counts and summary,
written by the build and the checks) instead of opening DuckDB (issue 24: read commands start
in 0.3 s). What it says that way must be what DuckDB's queries over the tables say: after any
sequence of runs (new, edited, deleted, duplicate and rejected files, a run that changed
nothing, a run killed before publishing), the two reports are the same line for line. And
where the figures cannot be trusted (a snapshot written before they were kept, a catalog
changed by hand, a file cut short), status asks DuckDB."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsetl import pipeline
from newsetl import status as status_mod
from newsetl.demo import generate
from newsetl.store import read_info, write_info

AGO = re.compile(r" \((?:just now|\d+ \w+ ago)\)")  # the two reports are made a moment apart


def both(wh: Path, monkeypatch) -> tuple[str, str]:
    """(status from the snapshot's figures, status from DuckDB's queries), with the time since
    each event taken out. The first is really from the figures: the quick path answers."""
    assert status_mod._quick(status_mod.open_warehouse(wh), (wh / "current").resolve()) is not None
    quick = status_mod.status(wh)
    with monkeypatch.context() as m:
        m.setattr(status_mod, "_quick", lambda wh, snap: None)
        slow = status_mod.status(wh)
    return AGO.sub("", quick), AGO.sub("", slow)


def run(site: Path, wh: Path) -> None:
    pipeline.run([site], wh, workers=1)


BAD = "---\ntitle: [unclosed\n---\nbody\n"

# what a step does to the site before the next run
OPS = ["nothing", "add", "edit", "delete", "duplicate", "reject", "fix"]


def apply(op: str, site: Path, k: int) -> None:
    files = sorted(site.rglob("*.md"))
    if op == "add":
        generate(site / f"more{k}", records=3, seed=100 + k, malformed=False)
    elif op == "edit" and files:
        f = files[k % len(files)]
        f.write_text(f.read_text().replace("\n---", f"\nnote_{k}: edited\n---", 1))  # a key more in its front matter
    elif op == "delete" and files:
        files[k % len(files)].unlink()
    elif op == "duplicate" and files:
        shutil.copy(files[k % len(files)], site / f"copy{k}.md")
    elif op == "reject":
        (site / f"bad{k}.md").write_text(BAD)
    elif op == "fix":
        for f in site.glob("bad*.md"):
            f.unlink()


@pytest.mark.slow  # a few dozen small runs
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.sampled_from(OPS), min_size=1, max_size=4))
def test_status_from_the_snapshot_is_what_duckdb_says(tmp_path_factory, monkeypatch, ops):
    base = tmp_path_factory.mktemp("status")
    site, wh = base / "site", base / "wh"
    generate(site, records=12, seed=7)
    run(site, wh)
    quick, slow = both(wh, monkeypatch)
    assert quick == slow
    for k, op in enumerate(ops):
        apply(op, site, k)
        run(site, wh)
        quick, slow = both(wh, monkeypatch)
        assert quick == slow, ops[:k + 1]


def test_a_killed_run_is_counted_from_the_snapshot_too(tmp_path, monkeypatch):
    """The failed run the next build records (its marker left behind) is in the figures."""
    site, wh = tmp_path / "site", tmp_path / "wh"
    generate(site, records=12, seed=8)
    run(site, wh)
    apply("add", site, 1)
    env = {**os.environ, "NEWSETL_FAULT": "parsed:kill"}
    code = "import sys; from newsetl import pipeline; pipeline.run([sys.argv[1]], sys.argv[2], workers=1)"
    p = subprocess.run([sys.executable, "-c", code, str(site), str(wh)], env=env, capture_output=True, timeout=300)
    assert p.returncode == -9, p.stderr
    quick, slow = both(wh, monkeypatch)
    assert quick == slow and "a run is in progress or died before publishing" in quick
    run(site, wh)
    quick, slow = both(wh, monkeypatch)
    assert quick == slow and "failed runs: 1 " in quick


def test_figures_come_from_the_snapshot_and_fall_back_to_duckdb(tmp_path, monkeypatch):
    """The quick path is the one taken on a warehouse as newsetl left it (no DuckDB imported, as
    test_startup checks); a snapshot without the figures, a catalog file changed, or a part
    file cut short sends status to DuckDB, which says what is wrong."""
    site, wh = tmp_path / "site", tmp_path / "wh"
    generate(site, records=12, seed=9)
    run(site, wh)
    snap = (wh / "current").resolve()
    assert status_mod._quick(status_mod.open_warehouse(wh), snap) is not None

    info = read_info(snap)
    write_info(snap, {k: v for k, v in info.items() if k != "summary"})  # an older newsetl's snapshot
    assert status_mod._quick(status_mod.open_warehouse(wh), snap) is None
    older = status_mod.status(wh)  # from DuckDB
    run(site, wh)  # nothing changed: the files by status are counted, not carried over from the older one
    quick, slow = both(wh, monkeypatch)
    assert quick == slow and AGO.sub("", older).split("\nfiles ")[1].split("\n")[0] in quick
    snap = (wh / "current").resolve()

    part = next((snap / "articles").glob("*.parquet"))
    data = part.read_bytes()
    part.unlink()  # a hard link to the staging copy may exist: write a new file, not through it
    part.write_bytes(data[: len(data) // 2])
    assert status_mod._quick(status_mod.open_warehouse(wh), snap) is None
    report = status_mod.status(wh)
    assert not report.healthy and "articles" in report
