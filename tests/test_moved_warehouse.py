"""A warehouse copied or moved (`cp -a`, `mv`, `rsync -a`): its catalog still answers, in the
DuckDB shell from any folder, and in every newsetl read command; `status` checks each view.

Counts are computed independently of newsetl: from the Parquet files the snapshot names, with
pyarrow, applying the delete rule of docs/warehouse-contract.md."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsetl import build, pipeline
from newsetl.catalog import connect
from newsetl.demo import generate

from .helpers.cli import newsetl_here
from .helpers.waiting import lock_held_as_by_a_run

SHELL = Path(sys.executable).with_name("duckdb")
KEYS = {"articles": "article_id", "related_links": "article_id", "images": "article_id",
        "source_files": "source_path"}  # the tables counted, and the key their delete files name

pytestmark = pytest.mark.skipif(not SHELL.exists(), reason="no .venv/bin/duckdb (make install provides it)")


def live_rows(wh: Path, table: str) -> int:
    """The rows of `table` in the current snapshot, read with pyarrow: a part's row counts
    unless a delete file listed after that part names its key."""
    snap = wh / "current"
    names = json.loads((snap / "_state" / "snapshot.json").read_text())["files"][table]
    n = 0
    for i, name in enumerate(names):
        if name.startswith("_deletes/"):
            continue
        deleted = set()
        for later in names[i + 1:]:
            if later.startswith("_deletes/"):
                deleted.update(pq.read_table(snap / table / later).column("key").to_pylist())
        n += sum(k not in deleted for k in pq.read_table(snap / table / name).column(KEYS[table]).to_pylist())
    return n


def expected_counts(wh: Path) -> list[int]:
    return [live_rows(wh, t) for t in KEYS]


COUNTS_SQL = "SELECT " + ", ".join(f"(SELECT count(*) FROM {t})" for t in KEYS)


def shell_counts(catalog: str, cwd: Path, sql: str = COUNTS_SQL) -> list[int]:
    """What the DuckDB shell answers, opening the catalog by `catalog` (a path as typed) from `cwd`."""
    r = subprocess.run([str(SHELL), "-csv", "-noheader", catalog, "-c", sql], capture_output=True, text=True,
                       cwd=cwd, timeout=120)
    assert r.returncode == 0, r.stderr
    return [int(v) for v in r.stdout.strip().split(",")]


def attached_counts(catalog: Path) -> subprocess.CompletedProcess:
    """The DuckDB shell, in memory, ATTACHing the catalog (its views cannot know its folder then)."""
    sql = f"ATTACH '{str(catalog).replace(chr(39), chr(39) * 2)}' AS w (READ_ONLY); SELECT count(*) FROM w.articles"
    return subprocess.run([str(SHELL), "-csv", "-noheader", "-c", sql], capture_output=True, text=True, timeout=120,
                          cwd="/")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A warehouse of two runs (the second changed 2 records of 40 and deleted 1, too few to
    compact: tables have delete files), whose catalog was written where it now is."""
    base = tmp_path_factory.mktemp("moved")
    site = base / "site"
    generate(site, records=40, seed=5, malformed=False)
    wh = base / "wh"
    pipeline.run([site], wh)
    files = sorted(site.glob("*.md"))
    for f in files[:2]:
        f.write_text(f.read_text(encoding="utf-8").replace("title: ", "title: Updated ", 1), encoding="utf-8")
    for f in files[-1:]:
        f.unlink()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(build, "SMALL_PART_ROWS", 0)  # as in a large warehouse: parts and delete files
        pipeline.run([site], wh)
    assert any("/_deletes/" in str(p) for p in wh.glob("current/articles/_deletes/*.parquet"))
    return wh


def placed(built: Path, dest: Path) -> Path:
    """A copy of the built warehouse at `dest`, with a catalog newsetl wrote there."""
    shutil.copytree(built, dest, symlinks=True)
    r = newsetl_here("status", "--warehouse", dest)
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads((dest / ".catalog-snapshot").read_text())["root"] == os.path.realpath(dest)
    return dest


def test_copied_then_moved_the_shell_reads_the_copy_from_any_folder(built, tmp_path):
    """The issue's steps: cp -a wh2 wh3; mv wh2 wh2.bak; then the DuckDB shell on wh3 answers,
    with no newsetl command in between, from any working folder and by any path."""
    wh2 = placed(built, tmp_path / "wh2")
    want = expected_counts(wh2)
    subprocess.run(["cp", "-a", str(wh2), str(tmp_path / "wh3")], check=True)
    subprocess.run(["mv", str(wh2), str(tmp_path / "wh2.bak")], check=True)
    wh3 = tmp_path / "wh3"
    catalog = (wh3 / "news.duckdb").read_bytes()
    assert shell_counts(str(wh3 / "news.duckdb"), cwd=Path("/")) == want
    assert shell_counts("wh3/news.duckdb", cwd=tmp_path) == want
    assert shell_counts("../news.duckdb", cwd=wh3 / "snapshots") == want
    assert shell_counts("news.duckdb", cwd=wh3) == want
    shutil.rmtree(tmp_path / "wh2.bak")  # nothing was read from there
    assert shell_counts(str(wh3 / "news.duckdb"), cwd=Path("/")) == want
    assert (wh3 / "news.duckdb").read_bytes() == catalog  # no repair was needed


def test_rsync_to_another_path(built, tmp_path):
    rsync = shutil.which("rsync")
    if rsync is None:
        pytest.skip("rsync is not installed (`make test` installs it with apt-get)")
    src = placed(built, tmp_path / "src")
    want = expected_counts(src)
    (tmp_path / "elsewhere").mkdir()
    subprocess.run([rsync, "-a", f"{src}/", str(tmp_path / "elsewhere" / "wh")], check=True)
    shutil.rmtree(src)
    assert shell_counts(str(tmp_path / "elsewhere" / "wh" / "news.duckdb"), cwd=Path("/")) == want


def test_every_newsetl_read_works_after_a_move_and_the_first_repairs_the_catalog(built, tmp_path):
    wh2 = placed(built, tmp_path / "wh2")
    want = expected_counts(wh2)
    report = newsetl_here("report", "top_providers", "--warehouse", wh2, "--format", "csv")
    assert report.returncode == 0, report.stderr
    wh3 = tmp_path / "moved" / "wh3"
    wh3.parent.mkdir()
    subprocess.run(["mv", str(wh2), str(wh3)], check=True)
    assert attached_counts(wh3 / "news.duckdb").returncode != 0  # ATTACHed, the views fall back to wh2
    # the first command rewrites the catalog for here, and says so once
    r = newsetl_here("sql", COUNTS_SQL, "--warehouse", wh3, "--format", "csv", cwd="/")
    assert r.returncode == 0, r.stderr
    assert r.stderr == (f"newsetl sql: note: the warehouse was at {os.path.realpath(wh2)} when news.duckdb was "
                        f"written; rewritten for {wh3}\n")
    assert [int(v) for v in r.stdout.splitlines()[1].split(",")] == want
    assert json.loads((wh3 / ".catalog-snapshot").read_text())["root"] == os.path.realpath(wh3)
    again = newsetl_here("report", "top_providers", "--warehouse", wh3, "--format", "csv")
    assert again.returncode == 0 and again.stderr == "" and again.stdout == report.stdout
    con = connect(wh3)
    try:
        assert list(con.execute(COUNTS_SQL).fetchone()) == want
    finally:
        con.close()
    assert newsetl_here("tables", "--warehouse", wh3).returncode == 0
    status = newsetl_here("status", "--warehouse", wh3)
    assert status.returncode == 0 and "articles " + f"{want[0]:,}" in status.stdout
    assert "BROKEN" not in status.stdout and "MOVED" not in status.stdout
    attached = attached_counts(wh3 / "news.duckdb")
    assert attached.returncode == 0 and int(attached.stdout) == want[0]


def test_status_after_a_move_says_so_and_rewrites(built, tmp_path):
    wh2 = placed(built, tmp_path / "wh2")
    (tmp_path / "wh2").rename(tmp_path / "renamed")  # mv: the same file, the same inode
    r = newsetl_here("status", "--warehouse", tmp_path / "renamed")
    assert r.returncode == 0, r.stdout
    assert (f"          note: the warehouse was at {os.path.realpath(wh2)} when news.duckdb was written; "
            f"rewritten for {tmp_path / 'renamed'}") in r.stdout.splitlines()
    assert "note:" not in newsetl_here("status", "--warehouse", tmp_path / "renamed").stdout


def test_a_moved_catalog_that_cannot_be_rewritten_yet_still_reads_in_the_shell(built, tmp_path):
    wh2 = placed(built, tmp_path / "wh2")
    want = expected_counts(wh2)
    wh3 = tmp_path / "wh3"
    subprocess.run(["mv", str(wh2), str(wh3)], check=True)
    with lock_held_as_by_a_run(wh3):
        r = newsetl_here("status", "--warehouse", wh3)
        assert r.returncode == 0, r.stdout  # every view resolves for the shell, which opens it by its path
        assert (f"MOVED: news.duckdb was written at {os.path.realpath(wh2)}, and newsetl could not rewrite it for "
                f"{wh3}") in r.stdout
        assert "to fix: the run that holds the lock (pid 4242" in r.stdout
        assert shell_counts(str(wh3 / "news.duckdb"), cwd=Path("/")) == want
        assert "No files found" in attached_counts(wh3 / "news.duckdb").stderr
    assert newsetl_here("tables", "--warehouse", wh3).returncode == 0
    assert attached_counts(wh3 / "news.duckdb").returncode == 0


def test_status_names_the_views_that_do_not_resolve_and_the_fix(built, tmp_path):
    """A copy cut short (a part file missing): status says which views, why, what to do, exit 1."""
    wh = placed(built, tmp_path / "wh")
    part = sorted((wh / "current" / "related_links").glob("*.parquet"))[0]
    part.unlink()
    r = newsetl_here("status", "--warehouse", wh)
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    broken = next(line for line in lines if "BROKEN:" in line)
    assert "do not resolve in the DuckDB shell:" in broken and "related_links" in broken.split(":", 2)[2]
    assert any(line.strip().startswith("related_links: IO Error: No files found") and part.name in line
               for line in lines)
    assert any("to fix:" in line and "lacks 1 of its files" in line and "copy the whole folder again" in line
               for line in lines)


def test_a_catalog_of_an_older_newsetl_is_rewritten_once_to_move(built, tmp_path):
    """news.duckdb as newsetl wrote it before: every file by its absolute path, no root in the
    marker. The first read command rewrites it (and says so); then it moves."""
    from newsetl.catalog import _stamp, create_views
    from newsetl.store import Warehouse, read_marker

    wh = placed(built, tmp_path / "wh")
    con = duckdb.connect(str(wh / "news.duckdb"))
    try:
        create_views(con, (wh / "current").resolve(), analytics=False)  # absolute paths
        con.execute("DROP MACRO newsetl_root")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    marker = {k: v for k, v in read_marker(Warehouse(wh)).items() if k != "root"}
    (wh / ".catalog-snapshot").write_text(json.dumps({**marker, **_stamp(wh / "news.duckdb")}))
    r = newsetl_here("sql", "SELECT 1", "--warehouse", wh)
    assert r.returncode == 0
    assert "news.duckdb named its files by absolute paths (an older newsetl wrote it); rewritten" in r.stderr
    subprocess.run(["mv", str(wh), str(tmp_path / "later")], check=True)
    assert shell_counts(str(tmp_path / "later" / "news.duckdb"), cwd=Path("/")) == expected_counts(tmp_path / "later")


# -- any destination: spaces, quotes, glob characters, unicode, deep nesting ---------------------

@pytest.fixture(scope="module")
def unplaced(built, tmp_path_factory) -> tuple[Path, list[int]]:
    """A copy whose catalog's fallback folder is gone: a view that fell back would fail."""
    base = tmp_path_factory.mktemp("unplaced")
    wh = placed(built, base / "first")
    shutil.copytree(wh, base / "copy", symlinks=True)
    shutil.rmtree(wh)
    return base / "copy", expected_counts(base / "copy")


SPECIAL = " '\"[]*?$%;,&()!#~=+@{}`^é漢字🦆\u0301-."
segment = st.text(alphabet=st.one_of(st.sampled_from(SPECIAL), st.characters(
    blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\\x00")), min_size=1, max_size=12).filter(
    lambda s: s not in (".", "..") and len(s.encode()) < 200)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(segment, min_size=1, max_size=8))
def test_property_a_copy_anywhere_answers_the_same_counts(unplaced, parts):
    src, want = unplaced
    top = Path(tempfile.mkdtemp(prefix="moved-", dir=src.parent))
    try:
        dest = top.joinpath(*parts)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, dest, symlinks=True)  # what cp -a does
        assert shell_counts(str(dest / "news.duckdb"), cwd=Path("/")) == want
        assert shell_counts(f"./{dest.name}/news.duckdb", cwd=dest.parent) == want
    finally:
        shutil.rmtree(top)


@pytest.mark.parametrize("command", [("sql", "SELECT count(*) FROM images"), ("tables",), ("report", "top_providers")])
def test_a_read_of_a_snapshot_cut_short_is_one_line_naming_the_file(built, tmp_path, command):
    """The read commands meet the missing part as status does: exit 1 with one line naming the
    file and pointing at status, never a traceback."""
    wh = placed(built, tmp_path / "wh")
    part = sorted((wh / "current" / "images").glob("*.parquet"))[0]
    part.unlink()
    r = newsetl_here(*command, "--warehouse", wh)
    assert r.returncode == 1, r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in r.stderr, r.stderr
    assert part.name in err[0] and "images" in err[0] and "newsetl status" in err[0]
