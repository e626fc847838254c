"""Readers read exactly the files their snapshot names, and ad-hoc SQL changes nothing.

A Parquet file that appears in a table's folder (`COPY ... TO 'wh/current/articles/x.parquet'`
in a DuckDB shell, a sync tool's conflicted copy) is not data: `newsetl sql`, `status`, the
reports, `tables` and news.duckdb opened with DuckDB all count the records' rows once, before
and after the next runs (no change, a change, child-table parts reused). `newsetl sql` cannot
COPY, ATTACH, SET or read other files; a catalog file changed by hand is reported by `status`
(and rewritten). Figures are counted from the record files, not asked of newsetl."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import newsetl
from newsetl import demo, pipeline, schema
from newsetl.store import Warehouse

from .helpers import examples
from .helpers.cli import newsetl_cli, newsetl_here
from .helpers.tables import HISTORY_TABLES, tables_rows
from .helpers.waiting import lock_held_as_by_a_run

TABLES = [t.name for t in schema.WAREHOUSE_TABLES]


def md_count(folder: Path) -> int:
    return sum(1 for _d, _s, files in os.walk(folder) for f in files if f.endswith((".md", ".markdown")))


def run(site: Path, wh: Path) -> None:
    r = newsetl_cli("run", str(site), "--warehouse", str(wh), "--no-prefect", "-q")
    assert r.returncode == 0, r.stderr


def sql_counts(wh: Path) -> dict[str, int]:
    q = " UNION ALL ".join(f"SELECT '{t}' AS t, count(*) AS n FROM {t}" for t in TABLES)
    r = newsetl_here("sql", q, "--warehouse", wh, "--format", "json")
    assert r.returncode == 0, r.stderr
    return {row["t"]: row["n"] for row in json.loads(r.stdout)}


def catalog_counts(wh: Path) -> dict[str, int]:
    """What the DuckDB shell sees: news.duckdb opened by DuckDB itself, read-only."""
    con = duckdb.connect(str(wh / "news.duckdb"), read_only=True)
    try:
        return {t: con.sql(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in TABLES}
    finally:
        con.close()


def status_counts(wh: Path) -> tuple[dict[str, int], str]:
    r = newsetl_here("status", "--warehouse", wh)
    assert r.returncode == 0, r.stderr
    (rows,) = [ln for ln in r.stdout.splitlines() if ln.startswith("rows ")]
    pairs = [p.strip().rsplit(" ", 1) for p in rows[len("rows "):].split(",")]
    return {k.strip(): int(v.replace(",", "")) for k, v in pairs}, r.stdout


def tables_counts(wh: Path) -> dict[str, int]:
    r = newsetl_here("tables", "--warehouse", wh, "--format", "json")
    assert r.returncode == 0, r.stderr
    return {row["name"]: row["rows"] for row in json.loads(r.stdout) if row["kind"] == "table"}


def report_files(wh: Path) -> int:
    """Files by status in the data_quality report, summed: one row of source_files per file."""
    r = newsetl_here("report", "data_quality", "--warehouse", wh, "--format", "json")
    assert r.returncode == 0, r.stderr
    return sum(row["files"] for row in json.loads(r.stdout) if row["kind"] == "file_status")


def assert_counted_once(wh: Path, site: Path, reference: dict[str, int]) -> None:
    """Every reader agrees with `reference` (a warehouse nobody tampered with) and with the
    record files (one source_files row per file)."""
    assert reference["source_files"] == md_count(site)
    # runs and the checks' history grow with every run: the readers agree on them among themselves
    grows = ("runs", "check_results", "check_alerts")
    want = {t: n for t, n in reference.items() if t not in grows}
    seen = [sql_counts(wh), catalog_counts(wh), status_counts(wh)[0], tables_counts(wh)]
    for got in seen:
        assert {t: n for t, n in got.items() if t not in grows} == want
        assert {t: got[t] for t in grows} == {t: seen[0][t] for t in grows}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path, dict[str, int]]:
    """Records, their warehouse made by the real CLI, and its row counts before anyone touched
    it (source_files checked against the record files)."""
    base = tmp_path_factory.mktemp("built")
    demo.generate(base / "site", records=40, seed=11)
    run(base / "site", base / "wh")
    counts = sql_counts(base / "wh")
    assert counts["source_files"] == md_count(base / "site")
    return base / "site", base / "wh", counts


@pytest.fixture
def site(built, tmp_path) -> Path:
    shutil.copytree(built[0], tmp_path / "site")
    return tmp_path / "site"


@pytest.fixture
def reference(built) -> dict[str, int]:
    """Row counts of a warehouse of the same records that nobody touched."""
    return built[2]


def copy_of(built, tmp_path) -> Path:
    """A copy of the built warehouse, its catalog rewritten for the copy (a copied file is not
    the one the marker names: the first read command rewrites it)."""
    wh = tmp_path / "wh"
    shutil.copytree(built[1], wh, symlinks=True)
    assert newsetl_here("status", "--warehouse", wh).returncode == 0
    return wh


def current(wh: Path) -> Path:
    return (wh / os.readlink(wh / "current")).resolve()


# -- stray files in a snapshot's table folders -----------------------------------------------------

@pytest.mark.slow
def test_a_copy_to_into_current_is_not_counted_before_or_after_a_run(built, tmp_path, site, reference):
    """The issue's first case, the COPY done where it still can be (a DuckDB shell)."""
    wh = copy_of(built, tmp_path)
    stray = current(wh) / "articles" / "x.parquet"
    duckdb.execute(f"COPY (SELECT * FROM read_parquet('{current(wh) / 'articles' / 'part-0.parquet'}')) TO '{stray}'")
    other = current(wh) / "source_files" / "x.parquet"
    shutil.copyfile(current(wh) / "source_files" / "part-0.parquet", other)
    data = stray.read_bytes()
    assert_counted_once(wh, site, reference)
    assert report_files(wh) == md_count(site)
    run(site, wh)  # no change
    assert_counted_once(wh, site, reference)
    assert report_files(wh) == md_count(site)
    assert stray.read_bytes() == data  # not ours: left where it is


@pytest.mark.slow
def test_a_sync_tools_conflicted_copy_is_not_counted_through_incremental_runs(built, tmp_path, site, reference):
    """Conflicted copies of every table's files, the child tables' reused parts included: the
    counts stay those of a warehouse nobody touched, through a no-change run and a run that
    rebuilds the tables and reuses the child parts."""
    wh = copy_of(built, tmp_path)
    snap = current(wh)
    copies = []
    for t in TABLES:
        for f in sorted((snap / t).glob("*.parquet")):
            c = f.with_name(f"{f.stem} (conflicted copy 2026-01-01).parquet")
            shutil.copyfile(f, c)
            copies.append(c)
    assert_counted_once(wh, site, reference)
    run(site, wh)  # no change: the tables are linked from the last snapshot
    assert_counted_once(wh, site, reference)
    # a change to one record's heat: tables rebuilt, child parts of the other articles reused
    rec = sorted(site.glob("*.md"))[0]
    text = rec.read_text()
    rec.write_text(text.replace("heat: ", "heat: 1", 1) if "heat: " in text else text + "\n")
    run(site, wh)
    names = [t for t in TABLES if t not in HISTORY_TABLES]
    fresh = tmp_path / "fresh"
    pipeline.run([site], fresh, workers=1)
    assert tables_rows(wh, names) == tables_rows(fresh, names)
    assert catalog_counts(wh)["images"] == catalog_counts(fresh)["images"]
    assert all(c.exists() for c in copies)


@pytest.mark.slow
def test_a_snapshot_of_an_older_newsetl_without_a_file_list_reads_only_its_own_names(built, tmp_path, site,
                                                                                      reference):
    """A snapshot written before snapshot.json named its files: the folders are listed, but only
    newsetl's names are read (part-0, empty, a run's part)."""
    wh = copy_of(built, tmp_path)
    snap = current(wh)
    info = json.loads((snap / "_state" / "snapshot.json").read_text())
    del info["files"]
    (snap / "_state" / "snapshot.json").write_text(json.dumps(info))
    shutil.copyfile(snap / "articles" / "part-0.parquet", snap / "articles" / "part-0 (1).parquet")
    shutil.copyfile(snap / "articles" / "part-0.parquet", snap / "articles" / "mine.parquet")
    con = newsetl.connect(wh)
    try:
        assert con.sql("SELECT count(*) FROM articles").fetchall()[0][0] == reference["articles"]
    finally:
        con.close()
    pipeline.run([site], wh, workers=1)  # the next run builds on it, and names its files
    assert sql_counts(wh)["articles"] == reference["articles"]
    assert "files" in json.loads((current(wh) / "_state" / "snapshot.json").read_text())


PARQUET_NAMES = st.text(st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=20).map(
    lambda s: s + ".parquet").filter(lambda s: s not in ("..parquet",))


@pytest.mark.slow
@settings(max_examples=examples(8), suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(strays=st.lists(st.tuples(st.sampled_from(TABLES), PARQUET_NAMES), min_size=1, max_size=6))
def test_no_file_put_in_a_snapshot_is_ever_read(strays, tmp_path_factory):
    """Whatever Parquet files appear in the current snapshot's table folders (copies of its own
    parts, under any name), every table reads as many rows as before."""
    wh = _property_wh(tmp_path_factory)
    snap = current(wh)
    before = {t: sum(pq.read_metadata(f).num_rows for f in Warehouse(wh).current().joinpath(t).glob("*.parquet"))
              for t in TABLES}
    made = []
    try:
        for table, name in strays:
            target = snap / table / name
            if target.exists():
                continue
            source = next((snap / table).glob("*.parquet"))
            shutil.copyfile(source, target)
            made.append(target)
        con = newsetl.connect(wh)
        try:
            got = {t: con.sql(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in TABLES}
        finally:
            con.close()
        assert got == before
    finally:
        for p in made:
            p.unlink()


_PROPERTY_WH: dict[str, Path] = {}


def _property_wh(tmp_path_factory) -> Path:
    if "wh" not in _PROPERTY_WH:
        base = tmp_path_factory.mktemp("stray-property")
        demo.generate(base / "site", records=20, seed=5)
        pipeline.run([base / "site"], base / "wh", workers=1)
        _PROPERTY_WH["wh"] = base / "wh"
    return _PROPERTY_WH["wh"]


# -- ad-hoc SQL changes nothing -------------------------------------------------------------------

def tree(root: Path) -> dict[str, bytes | str]:
    """Every file under `root` with its bytes (links by their target): to compare before/after."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in files + [d for d in dirs if Path(dirpath, d).is_symlink()]:
            p = Path(dirpath, name)
            rel = str(p.relative_to(root))
            out[rel] = os.readlink(p) if p.is_symlink() else p.read_bytes()
    return out


@pytest.fixture(scope="module")
def sealed_wh(built) -> tuple[Path, Path]:
    return built[1], built[0]


def refused(wh: Path, query: str, cwd: Path | None = None) -> str:
    r = newsetl_here("sql", query, "--warehouse", wh, cwd=cwd)
    assert r.returncode != 0, r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("newsetl sql: error: "), r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


@pytest.mark.parametrize("query", [
    "COPY (SELECT * FROM articles) TO '{wh}/current/articles/x.parquet'",
    "COPY (SELECT * FROM articles) TO '{wh}/current/articles/part-0.parquet' (USE_TMP_FILE false)",
    "COPY articles TO '{out}/elsewhere.csv'",
    "ATTACH '{wh}/news.duckdb' AS c; DROP VIEW c.articles",
    "ATTACH '{wh}/news.duckdb' AS c (READ_ONLY)",
    "EXPORT DATABASE '{out}/dump'",
    "EXPLAIN ANALYZE COPY (SELECT 1) TO '{out}/explained.csv'",
    "SET enable_external_access = true",
    "SELECT 1; COPY (SELECT 1) TO '{out}/second.csv'",
    "CALL checkpoint()",
    "INSTALL httpfs",
], ids=["copy-into-current", "overwrite-a-part", "copy-elsewhere", "attach-drop-view", "attach-read-only",
        "export", "explain-analyze-copy", "set", "second-statement", "call", "install"])
def test_sql_that_could_write_is_refused_in_one_line_and_nothing_changes(sealed_wh, tmp_path, query):
    wh, site = sealed_wh
    before, outside = tree(wh), set(os.listdir(tmp_path))
    line = refused(wh, query.format(wh=wh, out=tmp_path))
    assert "newsetl sql runs queries only" in line or "reads the warehouse's tables only" in line, line
    assert tree(wh) == before
    assert set(os.listdir(tmp_path)) == outside
    assert catalog_counts(wh)["source_files"] == sql_counts(wh)["source_files"] == md_count(site)


def test_the_users_own_files_are_not_read_by_newsetl_sql(sealed_wh, tmp_path):
    """Decided: `newsetl sql` reads the warehouse only. DuckDB cannot allow reading a file without
    allowing writing it, so a folder opened for the user's files would be open for writes."""
    wh, _ = sealed_wh
    (tmp_path / "mine.csv").write_text("a\n1\n")
    line = refused(wh, "SELECT * FROM read_csv('mine.csv')", cwd=tmp_path)
    assert "mine.csv" in line and "newsetl.connect()" in line
    line = refused(wh, f"SELECT count(*) FROM read_parquet('{wh}/current/articles/*.parquet')")
    assert "reads the warehouse's tables only" in line


@pytest.mark.parametrize("query,rows", [
    ("SELECT count(*) FROM source_files", 1),
    ("DESCRIBE articles", len(schema.BY_NAME["articles"].columns)),
    ("SUMMARIZE providers", len(schema.BY_NAME["providers"].columns)),
    ("EXPLAIN SELECT * FROM articles", None),
    ("WITH a AS (SELECT * FROM articles) SELECT count(*) FROM a", 1),
    ("PIVOT (SELECT status FROM source_files) ON status USING count(*)", 1),
    ("SELECT * FROM provider_stats_for(since := TIMESTAMP '2000-01-01') LIMIT 3", 3),
])
def test_queries_still_run(sealed_wh, query, rows):
    wh, _ = sealed_wh
    r = newsetl_here("sql", query, "--warehouse", wh, "--format", "json")
    assert r.returncode == 0, r.stderr
    if rows is not None:
        assert len(json.loads(r.stdout)) == rows


def test_newsetl_query_in_python_is_read_only_too(sealed_wh, tmp_path):
    wh, site = sealed_wh
    before = tree(wh)
    with pytest.raises(ValueError, match="runs queries only"):
        newsetl.query(f"COPY articles TO '{wh}/current/articles/x.parquet'", wh)
    with pytest.raises(duckdb.PermissionException):
        newsetl.query(f"SELECT * FROM read_parquet('{wh}/current/articles/*.parquet')", wh)
    assert tree(wh) == before
    assert newsetl.query("SELECT count(*) AS n FROM source_files", wh, arrow=True).to_pylist() == [
        {"n": md_count(site)}]


# -- the catalog file changed by hand -----------------------------------------------------------

def tamper(wh: Path, *statements: str) -> None:
    con = duckdb.connect(str(wh / "news.duckdb"))
    try:
        for s in statements:
            con.execute(s)
    finally:
        con.close()


@pytest.fixture
def wh_site(built, tmp_path) -> tuple[Path, Path]:
    return copy_of(built, tmp_path), built[0]


@pytest.mark.slow
def test_a_dropped_view_is_reported_by_status_and_rewritten(wh_site):
    wh, site = wh_site
    tamper(wh, "DROP VIEW articles")
    r = newsetl_here("status", "--warehouse", wh)
    assert r.returncode == 0, r.stderr
    assert "REWRITTEN" in r.stdout and "view articles is missing" in r.stdout
    assert catalog_counts(wh)["source_files"] == md_count(site)
    again = newsetl_here("status", "--warehouse", wh)
    assert "REWRITTEN" not in again.stdout and "CHANGED" not in again.stdout


def test_a_view_reading_other_files_is_reported_even_with_the_files_time_put_back(wh_site):
    """A view redefined to read a part twice, the file's size and time restored: the marker's
    stamp cannot tell, `status` still does (it compares every view with the snapshot's)."""
    wh, site = wh_site
    cat = wh / "news.duckdb"
    st_before = cat.stat()
    part = current(wh) / "source_files" / "part-0.parquet"
    tamper(wh, f"CREATE OR REPLACE VIEW source_files AS SELECT * FROM read_parquet(['{part}', '{part}'])")
    os.utime(cat, ns=(st_before.st_atime_ns, st_before.st_mtime_ns))
    if cat.stat().st_size != st_before.st_size:
        pytest.skip("DuckDB grew the file: the size alone tells this one")
    assert catalog_counts(wh)["source_files"] == 2 * md_count(site)
    r = newsetl_here("status", "--warehouse", wh)
    assert "view source_files differs from the snapshot's" in r.stdout, r.stdout
    assert catalog_counts(wh)["source_files"] == md_count(site)


def test_a_changed_catalog_is_healed_by_the_next_read_command(wh_site):
    wh, site = wh_site
    part = current(wh) / "source_files" / "part-0.parquet"
    tamper(wh, f"CREATE OR REPLACE VIEW source_files AS SELECT * FROM read_parquet(['{part}', '{part}'])")
    assert catalog_counts(wh)["source_files"] == 2 * md_count(site)
    r = newsetl_here("sql", "SELECT 1", "--warehouse", wh)
    assert r.returncode == 0, r.stderr
    assert "had been changed outside newsetl (view source_files differs from the snapshot's)" in r.stderr
    assert catalog_counts(wh)["source_files"] == md_count(site)


@pytest.mark.slow
def test_a_changed_catalog_that_cannot_be_rewritten_now_is_reported_with_the_fix(wh_site):
    wh, _ = wh_site
    tamper(wh, "DROP VIEW providers")
    with lock_held_as_by_a_run(wh):
        r = newsetl_here("status", "--warehouse", wh)
        assert r.returncode == 1, r.stderr  # views over providers do not resolve in the shell
        assert "CHANGED: news.duckdb does not match snapshot" in r.stdout and "view providers is missing" in r.stdout
        assert "BROKEN: 2 views of news.duckdb do not resolve in the DuckDB shell: provider_citations, " \
               "provider_stats" in r.stdout
        assert "provider_citations: Catalog Error: Table with name providers does not exist!" in r.stdout
        assert r.stdout.count("to fix: the run that holds the lock (pid 4242") == 1
    r = newsetl_here("status", "--warehouse", wh)
    assert "REWRITTEN" in r.stdout


@pytest.mark.slow
def test_a_table_added_to_the_catalog_is_kept_and_reported(wh_site):
    """news.duckdb with an object of the user's: no command replaces it (the table would be
    lost); status says so and how to fix, and a run refuses in one line."""
    wh, site = wh_site
    tamper(wh, "CREATE TABLE notes AS SELECT 'keep me' AS note")
    data = (wh / "news.duckdb").read_bytes()
    r = newsetl_here("status", "--warehouse", wh)
    assert r.returncode == 0, r.stderr
    assert "NOT NEWSETL'S" in r.stdout and "table notes" in r.stdout
    assert newsetl_here("sql", "SELECT 1", "--warehouse", wh).returncode == 0
    r = newsetl_cli("run", str(site), "--warehouse", str(wh), "--no-prefect", "-q")
    assert r.returncode == 1
    (line,) = r.stderr.strip().splitlines()
    assert "table notes" in line and "nothing was changed" in line
    assert (wh / "news.duckdb").read_bytes() == data


# -- a warehouse in object storage ------------------------------------------------------------------

def test_s3_readers_read_the_pointers_files_and_sql_stays_read_only(s3_server, bucket, built, tmp_path):
    """DuckDB reads the store through a registered fsspec filesystem: sealed, it still reads the
    snapshot's objects (and only them: a stray object beside them is not data), and refuses
    writes in one line."""
    site, _, reference = built
    url = f"s3://{bucket}/wh"
    pipeline.run([site], url, workers=1)
    client = s3_server.client()
    doc = json.loads(client.get_object(Bucket=bucket, Key="wh/_current.json")["Body"].read())
    part = doc["files"]["articles"][0]
    body = client.get_object(Bucket=bucket, Key=f"wh/snapshots/{doc['snapshot']}/articles/{part}")["Body"].read()
    client.put_object(Bucket=bucket, Key=f"wh/snapshots/{doc['snapshot']}/articles/x.parquet", Body=body)
    r = newsetl_here("sql", "SELECT count(*) AS n FROM articles", "--warehouse", url, "--format", "csv")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["n", str(reference["articles"])]
    line = refused(url, f"COPY (SELECT * FROM articles) TO '{url}/snapshots/{doc['snapshot']}/articles/y.parquet'")
    assert "runs queries only" in line
    line = refused(url, f"SELECT count(*) FROM read_parquet('{url}/snapshots/{doc['snapshot']}/articles/x.parquet')")
    assert "reads the warehouse's tables only" in line


def test_a_result_is_never_written_into_the_warehouse(sealed_wh):
    wh, _ = sealed_wh
    before = tree(wh)
    for out in (wh / "current" / "articles" / "x.parquet", wh / "notes.csv"):
        r = newsetl_here("sql", "SELECT * FROM articles", "--warehouse", wh, "--out", out)
        assert r.returncode == 2 and "is inside the warehouse" in r.stderr, r.stderr
    r = newsetl_here("report", "top_providers", "--warehouse", wh, "--out", wh / "top.csv")
    assert r.returncode == 2 and "is inside the warehouse" in r.stderr, r.stderr
    assert tree(wh) == before
