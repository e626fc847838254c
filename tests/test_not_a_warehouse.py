"""A warehouse is recognised before anything is written or removed.

`--warehouse` at a folder of other things (a user's own news.duckdb, snapshots/notes.txt, a
real `current/` folder), or at a file, is refused in one line that says what was found and
that nothing was changed; every file there is byte for byte as it was. Read commands say it is
not a warehouse. Garbage collection removes newsetl's own names only. Real CLI, real files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from newsetl import demo, pipeline
from newsetl.store import KEEP_SNAPSHOTS, NotAWarehouse, Warehouse

from .helpers import examples
from .helpers.cli import newsetl_cli, newsetl_here

READS = [["sql", "SELECT 1"], ["status"], ["runs"], ["tables"], ["describe", "articles"],
         ["report", "top_providers"]]


def tree(root: Path) -> dict[str, bytes | str]:
    """Every entry under `root` (itself included) with its bytes, a link's target, or "<dir>"."""
    if not os.path.lexists(root):
        return {}
    if not root.is_dir() or root.is_symlink():
        return {".": os.readlink(root) if root.is_symlink() else root.read_bytes()}
    out = {".": "<dir>"}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath, name)
            rel = str(p.relative_to(root))
            out[rel] = os.readlink(p) if p.is_symlink() else "<dir>" if p.is_dir() else p.read_bytes()
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    s = tmp_path_factory.mktemp("site") / "site"
    demo.generate(s, records=20, seed=4)
    return s


def users_database(path: Path) -> None:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE my_notes AS SELECT 'do not lose me' AS note")
    con.close()


def refused_run(site: Path, wh: Path) -> str:
    before = tree(wh)
    r = newsetl_cli("run", str(site), "--warehouse", str(wh), "--no-prefect", "-q")
    assert r.returncode == 1, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("newsetl run: error: "), r.stderr
    assert tree(wh) == before
    return lines[0]


def test_the_issues_folder_a_users_database_and_notes_is_refused_and_left_intact(tmp_path, site):
    wh = tmp_path / "mine"
    wh.mkdir()
    users_database(wh / "news.duckdb")
    (wh / "snapshots").mkdir()
    (wh / "snapshots" / "notes.txt").write_text("my notes\n")
    line = refused_run(site, wh)
    assert "is not a newsetl warehouse" in line and "nothing was changed" in line
    assert "news.duckdb" in line and "my_notes" in line and "snapshots/notes.txt" in line
    con = duckdb.connect(str(wh / "news.duckdb"), read_only=True)
    assert con.sql("SELECT note FROM my_notes").fetchall() == [("do not lose me",)]
    con.close()


def test_a_real_current_folder_is_named_not_invalid_argument(tmp_path, site):
    wh = tmp_path / "mine"
    (wh / "current").mkdir(parents=True)
    (wh / "current" / "data.csv").write_text("a\n1\n")
    line = refused_run(site, wh)
    assert "current (a folder, not newsetl's link to a snapshot)" in line and "Invalid argument" not in line
    for cmd in READS:
        r = newsetl_here(*cmd, "--warehouse", wh)
        assert r.returncode == 1 and "is not a newsetl warehouse" in r.stderr, (cmd, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1
    assert (wh / "current" / "data.csv").read_text() == "a\n1\n"


@pytest.mark.slow
def test_a_warehouse_path_that_is_a_file_says_so(tmp_path, site):
    f = tmp_path / "wh"
    f.write_text("just a file\n")
    line = refused_run(site, f)
    assert f"warehouse {f} is a file, not a folder" in line and "File exists" not in line
    r = newsetl_here("sql", "SELECT 1", "--warehouse", f)
    assert r.returncode == 1 and "is a file, not a folder" in r.stderr
    line = refused_run(site, f / "below")
    assert f"{f} is a file, not a folder" in line


@pytest.mark.parametrize("cmd", READS, ids=[c[0] for c in READS])
def test_read_commands_on_a_folder_of_other_things_say_it_is_not_a_warehouse(tmp_path, cmd):
    wh = tmp_path / "docs"
    wh.mkdir()
    (wh / "report.docx").write_bytes(b"PK\x03\x04")
    before = tree(wh)
    r = newsetl_here(*cmd, "--warehouse", wh)
    assert r.returncode == 1
    (line,) = r.stderr.strip().splitlines()
    assert "is not a newsetl warehouse: it holds report.docx" in line
    assert tree(wh) == before


@pytest.mark.slow
def test_serve_refuses_before_it_needs_a_server(tmp_path, site):
    wh = tmp_path / "mine"
    wh.mkdir()
    users_database(wh / "news.duckdb")
    before = tree(wh)
    r = subprocess.run([sys.executable, "-m", "newsetl.cli", "serve", str(site), "--warehouse", str(wh),
                        "--interval", "60"], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"})
    assert r.returncode == 1, r.stderr
    assert "is not a newsetl warehouse" in r.stderr and "my_notes" in r.stderr
    assert tree(wh) == before


@pytest.mark.slow
def test_missing_empty_and_existing_warehouses_are_used(tmp_path, site):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # a file browser's: not a user's file
    for wh in (tmp_path / "new" / "deep", empty):
        r = newsetl_cli("run", str(site), "--warehouse", str(wh), "--no-prefect", "-q")
        assert r.returncode == 0, r.stderr
        r = newsetl_cli("run", str(site), "--warehouse", str(wh), "--no-prefect", "-q")  # its own, now
        assert r.returncode == 0, r.stderr
    assert (empty / ".DS_Store").read_bytes() == b"\0\0\0\1Bud1"


@pytest.mark.slow
def test_a_warehouse_of_an_older_newsetl_is_recognised(tmp_path, site):
    """Its marker held the snapshot's name alone, without the file's inode and stamp."""
    wh = tmp_path / "wh"
    pipeline.run([site], wh, workers=1)
    (wh / ".catalog-snapshot").write_text(os.readlink(wh / "current").split("/")[-1] + "\n")
    Warehouse(wh).recognise()
    r = newsetl_cli("run", str(site), "--warehouse", str(wh), "--no-prefect", "-q")
    assert r.returncode == 0, r.stderr


@pytest.mark.slow
def test_a_stray_file_beside_a_warehouse_stops_runs_not_reads(tmp_path, site):
    wh = tmp_path / "wh"
    pipeline.run([site], wh, workers=1)
    (wh / "notes.txt").write_text("mine\n")
    line = refused_run(site, wh)
    assert "it holds notes.txt" in line
    r = newsetl_here("sql", "SELECT count(*) FROM source_files", "--warehouse", wh, "--format", "csv")
    assert r.returncode == 0, r.stderr


@pytest.mark.slow
def test_collection_removes_newsetls_own_files_only(tmp_path):
    """Old snapshots and staging batches go; a file someone put in one stays, byte for byte."""
    site = tmp_path / "site"
    demo.generate(site, records=10, seed=1)
    wh = tmp_path / "wh"
    pipeline.run([site], wh, workers=1)
    first = (wh / os.readlink(wh / "current")).resolve()
    batch = sorted((wh / "staging").iterdir())[0]
    mine = [first / "articles" / "mine.parquet", first / "articles" / "part-0 (conflicted copy).parquet",
            first / "_state" / "notes.txt", batch / "notes.txt"]
    for i, p in enumerate(mine):
        p.write_bytes(f"user data {i}".encode())
    for i in range(KEEP_SNAPSHOTS + 1):  # every file changes: the first snapshot and batch fall out
        for f in site.glob("*.md"):
            f.write_text(f.read_text() + f"\nedit {i}\n")
        pipeline.run([site], wh, workers=1)
    assert not (first / "articles" / "part-0.parquet").exists()
    assert not (first / "_state" / "snapshot.json").exists()
    assert not (batch / "articles.parquet").exists()
    for i, p in enumerate(mine):
        assert p.read_bytes() == f"user data {i}".encode()
    pipeline.run([site], wh, workers=1)  # and the leftovers stop nothing


# -- any foreign entry is refused, newsetl's own are not -------------------------------------------

NAMES = st.text(st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=16).filter(
    lambda s: s not in (".", ".."))
PLACES = st.sampled_from(["", "snapshots", "staging"])


@settings(max_examples=examples(25), suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(entries=st.lists(st.tuples(PLACES, NAMES, st.booleans()), min_size=1, max_size=4))
def test_any_entry_that_is_not_newsetls_is_refused_and_nothing_changes(entries, tmp_path_factory):
    from newsetl.store import OS_FILES, ROOT_FILES, ROOT_TEMP, SNAPSHOT_NAME, STAGING_NAME

    def ours(place, name, is_dir):
        if name in OS_FILES:
            return True
        if place == "":
            return (name in ROOT_FILES and not is_dir) or bool(ROOT_TEMP.fullmatch(name)) or name in (
                "snapshots", "staging") and is_dir
        pattern = SNAPSHOT_NAME if place == "snapshots" else STAGING_NAME
        return is_dir and bool(pattern.fullmatch(name))

    assume(not all(ours(*e) for e in entries))
    root = tmp_path_factory.mktemp("foreign") / "wh"
    (root / "snapshots").mkdir(parents=True)
    (root / "staging").mkdir()
    for place, name, is_dir in entries:
        p = root / place / name
        if os.path.lexists(p):
            continue
        p.mkdir() if is_dir else p.write_bytes(b"user's")
    before = tree(root)
    with pytest.raises(NotAWarehouse, match="nothing was changed"):
        Warehouse(root).prepare()
    with pytest.raises(NotAWarehouse):
        Warehouse(root).require_current()
    assert tree(root) == before


def test_an_s3_prefix_holding_other_objects_is_refused_and_left_intact(s3_server, bucket, site):
    client = s3_server.client()
    client.put_object(Bucket=bucket, Key="data/notes.txt", Body=b"mine")
    client.put_object(Bucket=bucket, Key="data/exports/2026.csv", Body=b"a\n1\n")
    url = f"s3://{bucket}/data"
    r = newsetl_cli("run", str(site), "--warehouse", url, "--no-prefect", "-q")
    assert r.returncode == 1, r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert f"{url} is not a newsetl warehouse: it holds exports, notes.txt" in line and "nothing was changed" in line
    r = newsetl_here("sql", "SELECT 1", "--warehouse", url)
    assert r.returncode == 1 and "is not a newsetl warehouse" in r.stderr
    objects = {o["Key"]: client.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
               for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert objects == {"data/notes.txt": b"mine", "data/exports/2026.csv": b"a\n1\n"}
    # the same prefix's neighbour, new, is used
    r = newsetl_cli("run", str(site), "--warehouse", f"s3://{bucket}/data2", "--no-prefect", "-q")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("content", ["empty-database", "text", "views-of-its-own"])
def test_a_news_duckdb_newsetl_did_not_write_is_never_replaced(tmp_path, site, content):
    wh = tmp_path / "mine"
    wh.mkdir()
    path = wh / "news.duckdb"
    if content == "text":
        path.write_text("my notes, named oddly\n")
    else:
        con = duckdb.connect(str(path))
        if content == "views-of-its-own":
            con.execute("CREATE VIEW my_view AS SELECT 42 AS answer")
        con.close()
    line = refused_run(site, wh)
    assert "news.duckdb" in line and "nothing was changed" in line


def test_the_repositorys_default_warehouse_with_its_layout_note_is_used(tmp_path, site):
    """`make run` loads ./warehouse, where the repository keeps its layout note (README.md)."""
    note = Path(__file__).resolve().parents[1] / "warehouse" / "README.md"
    wh = tmp_path / "warehouse"
    wh.mkdir()
    (wh / "README.md").write_bytes(note.read_bytes())
    Warehouse(wh).recognise()
    (wh / "README.md").write_text("# my warehouse notes\n")
    with pytest.raises(NotAWarehouse, match="README.md"):
        Warehouse(wh).recognise()
