"""Reads of an S3 warehouse from this machine's cache (newsetl.readcache), against a real S3
API server (moto, started by conftest): the pointer is asked for on every read and nothing else
when the warehouse is unchanged; another machine's commit is seen at once; a damaged or partly
written cache file is never read; the cache keeps only what readers may still need."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import newsetl
from newsetl import pipeline, readcache

from .helpers.cli import NEWSETL, newsetl_here

pytestmark = pytest.mark.timeout(600)


def write_records(folder: Path, first: int, last: int) -> None:
    """Records first..last-1, one article each (a URL of its own): the count is known here."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(first, last):
        (folder / f"{i:03d}.md").write_text(f"---\ntitle: Story {i}\nwebUrl: https://site.example/{i}\n---\nText {i}.\n")


def run_as(machine: Path, folder: Path, url: str, monkeypatch):
    monkeypatch.setenv("NEWSETL_CACHE_DIR", str(machine))
    return pipeline.run([folder], url, workers=1)


def articles(url: str, machine: Path, monkeypatch) -> int:
    monkeypatch.setenv("NEWSETL_CACHE_DIR", str(machine))
    con = newsetl.connect(url)
    try:
        return con.execute("SELECT count(*) FROM articles").fetchall()[0][0]
    finally:
        con.close()


def snapshot_gets(seen, bucket: str) -> list[str]:
    return [p for m, p in seen if m == "GET" and p.startswith(f"/{bucket}/wh/snapshots/")]


def test_a_second_read_of_an_unchanged_warehouse_asks_for_the_pointer_only(s3_server, bucket, tmp_path, monkeypatch):
    write_records(tmp_path / "site", 0, 7)
    url = f"s3://{bucket}/wh"
    run_as(tmp_path / "writer", tmp_path / "site", url, monkeypatch)
    reader = tmp_path / "reader"  # another machine: nothing cached, no mirror
    with s3_server.recording() as seen:
        assert articles(url, reader, monkeypatch) == 7
    assert snapshot_gets(seen, bucket)  # the cold read downloaded the snapshot's files
    assert not [p for m, p in seen if m == "GET" and "list-type" in p]  # named by the pointer: no listing
    with s3_server.recording() as seen:
        assert articles(url, reader, monkeypatch) == 7
    assert seen == [("GET", f"/{bucket}/wh/_current.json")]
    # the CLI's readers too, in processes of their own: the pointer, and status's look for runs in progress
    env = {"NEWSETL_CACHE_DIR": str(reader)}
    with s3_server.recording() as seen:
        r = newsetl_here("sql", "SELECT count(*) AS n FROM articles", "--warehouse", url, "--format", "csv", env=env)
    assert r.returncode == 0 and r.stdout.split() == ["n", "7"], r.stderr
    assert seen == [("GET", f"/{bucket}/wh/_current.json")]
    with s3_server.recording() as seen:
        r = subprocess.run([str(NEWSETL), "status", "--warehouse", url], capture_output=True, text=True,
                           env={**os.environ, **env}, timeout=300)
    assert r.returncode == 0 and "articles 7," in r.stdout, r.stderr
    assert sorted(seen) == [("GET", f"/{bucket}"), ("GET", f"/{bucket}/wh/_current.json")]  # + ListObjectsV2 _running/
    # the machine that committed has the snapshot in its mirror: linked, nothing downloaded
    with s3_server.recording() as seen:
        assert articles(url, tmp_path / "writer", monkeypatch) == 7
    assert seen == [("GET", f"/{bucket}/wh/_current.json")]


def test_a_read_sees_another_machines_commit_at_once(s3_server, bucket, tmp_path, monkeypatch):
    site, url = tmp_path / "site", f"s3://{bucket}/wh"
    a, b = tmp_path / "machine-a", tmp_path / "machine-b"
    write_records(site, 0, 5)
    run_as(a, site, url, monkeypatch)
    assert articles(url, a, monkeypatch) == 5
    write_records(site, 5, 9)
    run_as(b, site, url, monkeypatch)  # another machine commits: a's cached pointer is stale now
    with s3_server.recording() as seen:
        assert articles(url, a, monkeypatch) == 9
    assert snapshot_gets(seen, bucket)  # the new snapshot's files
    write_records(site, 9, 12)
    run_as(a, site, url, monkeypatch)  # and back: a's mirror holds an older snapshot than the pointer's
    assert articles(url, b, monkeypatch) == 12
    assert articles(url, a, monkeypatch) == 12
    r = newsetl_here("sql", "SELECT count(*) AS n FROM articles", "--warehouse", url, "--format", "csv",
                     env={"NEWSETL_CACHE_DIR": str(b)})
    assert r.stdout.split() == ["n", "12"], r.stderr


def cached(machine: Path, bucket: str) -> Path:
    (root,) = (machine / "reads").glob(f"{bucket}_wh-*")
    return root


def test_a_damaged_or_partly_written_cache_file_is_never_read(s3_server, bucket, tmp_path, monkeypatch):
    write_records(tmp_path / "site", 0, 6)
    url = f"s3://{bucket}/wh"
    run_as(tmp_path / "writer", tmp_path / "site", url, monkeypatch)
    reader = tmp_path / "reader"
    assert articles(url, reader, monkeypatch) == 6
    root = cached(reader, bucket)
    (part,) = (root / "objects" / "snapshots").glob("*/articles/*.parquet")
    whole = part.read_bytes()
    part.write_bytes(whole[: len(whole) // 2])  # truncated, as by a full disk or a hand
    with s3_server.recording() as seen:
        assert articles(url, reader, monkeypatch) == 6
    rel = part.relative_to(root / "objects").as_posix()
    assert snapshot_gets(seen, bucket) == [f"/{bucket}/wh/{rel}"]  # that file fetched again, only it
    assert part.read_bytes() == whole
    # a reader killed mid-download leaves a temporary file and no size for the object: never read
    part.unlink()
    (part.parent / f".{part.name}.999-deadbeef.tmp").write_bytes(whole[:100])
    for m in (root / "snapshots").glob("*.json"):
        m.unlink()
    assert articles(url, reader, monkeypatch) == 6
    assert part.read_bytes() == whole
    # a pointer copy that is not JSON: asked for again, whole
    (root / "pointer.json").write_text("{not json")
    assert articles(url, reader, monkeypatch) == 6
    # no cache can be written (a file where its folder would be): the store is read itself
    (tmp_path / "not-a-folder").write_text("")
    assert articles(url, tmp_path / "not-a-folder" / "cache", monkeypatch) == 6


def test_concurrent_cold_readers_each_read_the_whole_snapshot(s3_server, bucket, tmp_path, monkeypatch):
    write_records(tmp_path / "site", 0, 4)
    url = f"s3://{bucket}/wh"
    run_as(tmp_path / "writer", tmp_path / "site", url, monkeypatch)
    env = {**os.environ, "NEWSETL_CACHE_DIR": str(tmp_path / "reader")}
    procs = [subprocess.Popen([str(NEWSETL), "sql", "SELECT count(*) AS n FROM articles", "--warehouse", url,
                               "--format", "csv"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(3)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0 and out.split() == ["n", "4"], err


def test_the_cache_keeps_the_snapshots_the_pointer_lists(s3_server, bucket, tmp_path, monkeypatch):
    monkeypatch.setattr(readcache, "READ_GRACE", 0.0)  # read lately: not a reason to keep here
    site, url, reader = tmp_path / "site", f"s3://{bucket}/wh", tmp_path / "reader"
    for n in range(1, 6):
        write_records(site, n - 1, n)
        run_as(tmp_path / "writer", site, url, monkeypatch)
        assert articles(url, reader, monkeypatch) == n
    doc = newsetl.remote.RemoteWarehouse(url).require_current()
    root = cached(reader, bucket)
    assert sorted(m.stem for m in (root / "snapshots").glob("*.json")) == sorted(doc["history"])
    assert len(doc["history"]) == 3
    named = {k for m in (root / "snapshots").glob("*.json") for k in readcache._read_sizes(m)}
    held = {f.relative_to(root / "objects").as_posix() for f in (root / "objects").rglob("*") if f.is_file()}
    assert held == named
    # a snapshot no longer listed, and its file that no kept snapshot reads: gone after the next download
    old = root / "snapshots" / "20000101T000000.000000Z-aaaaaa.json"
    stray = root / "objects" / "snapshots" / "20000101T000000.000000Z-aaaaaa" / "articles" / "part-0.parquet"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"PAR1")
    old.write_text('{"sizes": {"snapshots/20000101T000000.000000Z-aaaaaa/articles/part-0.parquet": 4}}')
    write_records(site, 5, 6)
    run_as(tmp_path / "writer", site, url, monkeypatch)
    assert articles(url, reader, monkeypatch) == 6
    assert not old.exists() and not stray.parent.parent.exists()  # no empty folders left either
