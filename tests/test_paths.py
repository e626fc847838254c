"""Paths that DuckDB would take for patterns: a warehouse or input folder whose name holds
`[ ] ? * ' "`, spaces or non-ASCII characters works in every command, and never reads
the files of a look-alike folder beside it (a decoy that a glob would match)."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import newsetl
from newsetl import build, demo, pipeline, schema
from newsetl.duck import read_list

from .helpers.cli import newsetl_here
from .helpers.tables import HISTORY_TABLES, tables_rows

SHELL = Path(sys.executable).parent / "duckdb"
# a name with every character DuckDB's glob reads, and one a glob of it matches
COMBO = ("wh [1]?*'\"ü", "wh 1_'\"ü")
NAMES = [("wh[1]", "wh1"), ("wh?x", "whax"), ("wh*y", "whzzy"), COMBO]


def newsetl_cli(*args, timeout=600, env=None):
    return subprocess.run([sys.executable, "-m", "newsetl.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env)


def md_count(folder: Path) -> int:
    return sum(1 for _d, _s, files in os.walk(folder) for f in files if f.endswith((".md", ".markdown")))


def make_decoy(wh: Path, decoy: Path) -> None:
    """A copy of the warehouse beside it with every Parquet file's rows doubled: reading
    any of its files shows up in the figures."""
    shutil.rmtree(decoy, ignore_errors=True)
    shutil.copytree(wh, decoy, symlinks=True)
    for dirpath, _dirs, files in os.walk(decoy):
        for f in files:
            if f.endswith(".parquet"):
                p = Path(dirpath, f)
                t = pq.read_table(p)
                pq.write_table(pa.concat_tables([t, t]), p)


def counts(wh: Path) -> dict:
    con = newsetl.connect(wh)
    try:
        return {t.name: con.sql(f"SELECT count(*) FROM {t.name}").fetchall()[0][0] for t in schema.WAREHOUSE_TABLES}
    finally:
        con.close()


def assert_same_tables(wh: Path, reference: Path) -> None:
    names = [t.name for t in schema.WAREHOUSE_TABLES if t.name not in HISTORY_TABLES]
    got, want = tables_rows(wh, names), tables_rows(reference, names)
    for name in names:
        assert got[name] == want[name], name


def shell_count(catalog: Path, table: str) -> int:
    r = subprocess.run([str(SHELL), "-readonly", "-csv", "-noheader", str(catalog), "-c",
                        f"SELECT count(*) FROM {table}"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.strip())


# -- the helper, on DuckDB itself ------------------------------------------------------------

@pytest.mark.parametrize("name", ["a[1]", "a[1", "a]1", "a?b", "a*b", "a**b", "a{b,c}", "q'uote", 'd"q',
                                  "sp ace", "ünï", "[*?]"])
def test_read_list_reads_each_file_as_itself_beside_decoys(tmp_path, name):
    decoys = ["a1", "axb", "aZZb", "ab", "b", "c", "a]1x", "*", "?", "x"]
    for n in [name, *decoys]:
        if n != name:
            (tmp_path / n).mkdir(exist_ok=True)
            pq.write_table(pa.table({"who": [f"decoy {n}"]}), tmp_path / n / "p.parquet")
    (tmp_path / name).mkdir()
    pq.write_table(pa.table({"who": [name]}), tmp_path / name / "p.parquet")
    con = duckdb.connect()
    rows = con.sql(f"SELECT who FROM read_parquet({read_list([tmp_path / name / 'p.parquet'])})").fetchall()
    assert rows == [(name,)]


def test_a_backslash_with_a_glob_character_is_refused_not_misread(tmp_path):
    with pytest.raises(ValueError, match="backslash"):
        read_list([tmp_path / "a\\b[1]" / "p.parquet"])


def test_a_warehouse_path_with_a_backslash_is_one_line_and_creates_nothing(tmp_path):
    site = tmp_path / "site"
    demo.generate(site, records=5, seed=1)
    wh = tmp_path / "a\\b"
    r = newsetl_cli("run", site, "--warehouse", wh, "--no-prefect", "-q")
    assert r.returncode == 1
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith(f"newsetl run: error: warehouse {wh}: DuckDB reads a backslash")
    assert not wh.exists()


# -- every command, on real warehouses ------------------------------------------------------

@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    """A site and the same site edited and grown, each in a folder with a glob-like name."""
    base = tmp_path_factory.mktemp("paths")
    first = base / "in [1]?*'\"ü" / "posts"
    demo.generate(first, records=120, seed=21)
    second = base / "in2 [1]?*'\"ü" / "posts"
    shutil.copytree(first, second)
    demo.edit(second, 0.2, seed=4)
    more = base / "more"
    demo.generate(more, records=30, seed=99, malformed=False)
    for f in more.glob("*.md"):
        f.rename(second / ("new-" + f.name))
    return first, second


@pytest.fixture(scope="module")
def reference(sites, tmp_path_factory):
    """The same two runs into a plainly named warehouse: the figures every other must show."""
    base = tmp_path_factory.mktemp("ref")
    out = []
    for i, site in enumerate(sites):
        # the same input folder name as the tested runs, so source_path is the same
        wh = base / f"after-{i}"
        pipeline.run([site], base / "wh", workers=1)
        shutil.copytree(base / "wh", wh, symlinks=True)
        out.append(wh)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name,decoy", NAMES, ids=["brackets", "question", "star", "combo"])
def test_runs_and_reads_never_touch_a_decoy(tmp_path, sites, reference, name, decoy):
    wh, fake = tmp_path / name, tmp_path / decoy
    for site, ref in zip(sites, reference):
        r = newsetl_cli("run", site, "--warehouse", wh, "--no-prefect")
        assert r.returncode == 0, r.stderr
        assert f"{md_count(site)} files" in r.stdout
        make_decoy(wh, fake)  # the next run's build and every read below would see it, if globbed
        assert counts(wh)["source_files"] == md_count(site)
        assert_same_tables(wh, ref)
        q = newsetl_here("sql", "SELECT count(*) AS n, sum(image_count) AS images FROM articles", "--warehouse", wh,
                        "--format", "csv")
        assert q.returncode == 0, q.stderr
        con = newsetl.connect(ref)
        n, images = con.sql("SELECT count(*), sum(image_count) FROM articles").fetchall()[0]
        con.close()
        assert q.stdout.split() == ["n,images", f"{n},{images}"]
        if SHELL.exists():
            for table in ("articles", "related_links", "source_files"):
                assert shell_count(wh / "news.duckdb", table) == counts(ref)[table]


@pytest.mark.slow
def test_every_command_on_a_glob_like_warehouse(tmp_path, sites, reference):
    name, decoy = COMBO
    base = tmp_path
    wh, fake = base / name, base / decoy
    site, ref = sites[0], reference[0]
    assert newsetl_cli("run", site, "--warehouse", wh, "--no-prefect", "-q").returncode == 0
    make_decoy(wh, fake)
    want = counts(ref)

    status = newsetl_here("status", "--warehouse", wh)
    assert status.returncode == 0, status.stderr
    assert f"articles {want['articles']:,}, images {want['images']:,}" in status.stdout
    assert f"catalog   {wh / 'news.duckdb'}" in status.stdout and "STALE" not in status.stdout

    runs = newsetl_here("runs", "--warehouse", wh, "--format", "csv")
    assert runs.returncode == 0, runs.stderr
    (row,) = list(csv.DictReader(io.StringIO(runs.stdout)))
    assert (row["status"], int(row["seen"]), int(row["articles"])) == (
        "completed", md_count(site), want["articles"])

    mine = newsetl_here("report", "top_providers", "--warehouse", wh, "--format", "csv")
    theirs = newsetl_here("report", "top_providers", "--warehouse", ref, "--format", "csv")
    assert mine.returncode == 0, mine.stderr
    assert mine.stdout == theirs.stdout and len(mine.stdout.splitlines()) > 5

    out_dir = base / "out [1]?*'\"ü"
    r = newsetl_here("report", "--all", "--out-dir", out_dir, "--warehouse", wh)
    assert r.returncode == 0, r.stderr
    ref_dir = tmp_path / "ref-reports"
    assert newsetl_here("report", "--all", "--out-dir", ref_dir, "--warehouse", ref).returncode == 0
    csvs = sorted(p.name for p in ref_dir.glob("*.csv"))
    assert csvs and sorted(p.name for p in out_dir.glob("*.csv")) == csvs
    for f in csvs:
        assert (out_dir / f).read_bytes() == (ref_dir / f).read_bytes(), f
    assert (out_dir / "report.html").stat().st_size > 1000

    page = base / "page [1]?*'\"ü.html"
    r = newsetl_here("report", "--html", page, "--warehouse", wh)
    assert r.returncode == 0, r.stderr
    assert f"{want['articles']:,}" in page.read_text(encoding="utf-8")

    if SHELL.exists():
        assert shell_count(wh / "news.duckdb", "related_images") == want["related_images"]


@pytest.mark.slow
def test_compaction_and_incremental_builds_read_no_decoy(tmp_path, monkeypatch):
    """Staging lists, previous articles and versions and compaction, on a glob-like path."""
    monkeypatch.setattr(build, "MAX_SMALL_BATCHES", 2)  # compact after three small batches, not seventeen
    name, decoy = COMBO
    site = tmp_path / "site"
    demo.generate(site, records=60, seed=3)
    wh, fake, plain = tmp_path / name, tmp_path / decoy, tmp_path / "plain"
    for i in range(5):
        if i:
            demo.edit(site, 0.1, seed=i)
        pipeline.run([site], wh, workers=1)
        pipeline.run([site], plain, workers=1)
        make_decoy(wh, fake)
    assert any(b.name.endswith("-compact") for b in (wh / "staging").iterdir())
    assert_same_tables(wh, plain)
    assert counts(wh)["source_files"] == md_count(site)
    assert counts(wh)["article_versions"] == counts(plain)["article_versions"]


@pytest.mark.integration
def test_the_prefect_path_on_a_glob_like_warehouse(tmp_path, sites, reference, prefect_server):
    name, decoy = COMBO
    wh = tmp_path / name
    site = sites[0]
    # a decoy from the start: a glob in the build or the catalog would read it
    assert newsetl_cli("run", site, "--warehouse", tmp_path / decoy, "--no-prefect", "-q").returncode == 0
    url, _home = prefect_server  # a configured API: the run is a flow run there
    r = newsetl_cli("run", site, "--warehouse", wh, "-q", env={**os.environ, "PREFECT_API_URL": url})
    assert r.returncode == 0, r.stderr
    (flow_run,), = newsetl.connect(wh).sql("SELECT flow_run_id FROM runs").fetchall()
    assert flow_run  # it took the Prefect path
    assert_same_tables(wh, reference[0])
    if SHELL.exists():
        assert shell_count(wh / "news.duckdb", "articles") == counts(reference[0])["articles"]
