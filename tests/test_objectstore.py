"""Records and warehouse in object storage, against a real S3 API server (moto, started by
conftest on 127.0.0.1): full runs equal local runs, incremental runs by ETag, a run killed
before its commit, two writers racing, and the store's faults."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import newsetl
from newsetl import pipeline
from newsetl.runners import Local, Runner

from .helpers import examples
from .helpers.cli import NEWSETL, newsetl_cli, newsetl_here
from .helpers.servers import keys, upload_folder
from .helpers.tables import assert_same_as_rebuild, assert_same_tables

pytestmark = pytest.mark.timeout(900)


def record_files(folder: Path) -> list[Path]:
    """The files a run reads, by the listing rules (counted here, not by newsetl)."""
    out = []
    for p in folder.rglob("*"):
        rel = p.relative_to(folder).parts
        if p.is_file() and p.name.lower().endswith((".md", ".markdown")) and not any(s.startswith(".") for s in rel):
            out.append(p)
    return out


def pointer(client, bucket: str, prefix: str) -> dict | None:
    try:
        return json.loads(client.get_object(Bucket=bucket, Key=f"{prefix}/_current.json")["Body"].read())
    except client.exceptions.NoSuchKey:
        return None


def one_line_error(stderr: str) -> str:
    # (the fast YAML parser's library prints its own note on a malformed record: not newsetl's error)
    lines = [ln for ln in stderr.splitlines() if ln.startswith("newsetl")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture(scope="module")
def s3_warehouse(records_bucket, s3_server, tmp_path_factory):
    """The records bucket run into a warehouse in its own bucket, once, by a local pool of two
    worker processes reading the store; (URL, run result). Not s3://analytics/news: the
    README's example (tests/test_dask.py) writes there on the same server."""
    s3_server.client().create_bucket(Bucket="module-wh")
    os.environ["NEWSETL_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    try:
        result = pipeline.run(records_bucket[1], "s3://module-wh/news", workers=2)
    finally:
        del os.environ["NEWSETL_CACHE_DIR"]
    return "s3://module-wh/news", result


def test_full_run_from_s3_into_s3_equals_the_local_run(s3_warehouse, local_warehouse, s3_records, records_bucket,
                                                       s3_server):
    url, result = s3_warehouse
    files = sum(len(record_files(f)) for f in s3_records)
    assert records_bucket[2] >= files  # every record file is in the bucket (with anything else the folders hold)
    assert result.run["files_seen"] == files
    assert result.snapshot == f"{url}/snapshots/{result.run_id}"
    assert_same_tables(local_warehouse, url)
    # the pointer names the snapshot and every file of it, and each is in the store
    doc = pointer(s3_server.client(), "module-wh", "news")
    assert doc["snapshot"] == result.run_id
    stored = set(keys(s3_server.client(), "module-wh", f"news/snapshots/{result.run_id}/"))
    named = {f"news/snapshots/{result.run_id}/{t}/{n}" for t, names in doc["files"].items() for n in names}
    assert named and named <= stored


def test_readers_sql_report_status_runs_and_connect(s3_warehouse, local_warehouse):
    url, result = s3_warehouse
    local = newsetl.connect(local_warehouse).sql("SELECT count(*), sum(quality) FROM articles").fetchall()
    assert newsetl.connect(url).sql("SELECT count(*), sum(quality) FROM articles").fetchall() == local
    r = newsetl_here("sql", "SELECT count(*) AS n FROM articles", "--warehouse", url, "--format", "csv")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["n", str(local[0][0])]
    r = newsetl_here("report", "top_providers", "--warehouse", url, "--format", "json", "--limit", "3")
    assert r.returncode == 0, r.stderr
    want = newsetl.connect(local_warehouse).sql(
        "SELECT provider_domain FROM provider_stats WHERE provider_domain IS NOT NULL "
        "ORDER BY articles DESC, provider_domain LIMIT 3").fetchall()
    assert [row["provider_domain"] for row in json.loads(r.stdout)] == [w[0] for w in want]
    r = newsetl_here("status", "--warehouse", url)
    assert r.returncode == 0, r.stderr
    assert f"warehouse {url}" in r.stdout and result.run_id in r.stdout
    r = newsetl_here("runs", "--warehouse", url, "--format", "csv")
    assert r.returncode == 0 and result.run_id in r.stdout, r.stderr


def test_a_local_catalog_for_the_duckdb_shell_reads_the_urls(s3_warehouse, records_bucket, local_warehouse,
                                                             tmp_path, s3_server):
    import duckdb
    import s3fs

    url, _ = s3_warehouse
    cat = tmp_path / "news.duckdb"
    r = newsetl_cli("run", *records_bucket[1], "--warehouse", url, "--no-prefect", "--catalog", str(cat),
                    env={"NEWSETL_CACHE_DIR": str(tmp_path / "cache")})
    assert r.returncode == 0, r.stderr
    con = duckdb.connect(str(cat), read_only=True)
    (sql,), = con.sql("SELECT sql FROM duckdb_views() WHERE view_name = 'articles'").fetchall()
    assert "s3://module-wh/news/snapshots/" in sql
    # what the shell does with httpfs, done here through fsspec: the views read the store
    con.register_filesystem(s3fs.S3FileSystem(endpoint_url=s3_server.endpoint, key="testing", secret="testing"))
    want = newsetl.connect(local_warehouse).sql("SELECT count(*) FROM provider_stats").fetchall()
    assert con.sql("SELECT count(*) FROM provider_stats").fetchall() == want


def test_file_urls_are_local_paths(tmp_path, local_warehouse, s3_records):
    pipeline.run([f"file://{f}" for f in s3_records], f"file://{tmp_path / 'wh'}", workers=1)
    assert (tmp_path / "wh" / "current").is_symlink()
    assert_same_tables(local_warehouse, tmp_path / "wh")


def _edit(path: Path, n: int) -> None:
    text = path.read_text(encoding="utf-8")
    head, sep, rest = text.partition("\ntitle:")
    assert sep, path
    path.write_text(f"{head}\ntitle: Edited {n} -{rest}", encoding="utf-8")


@pytest.mark.usefixtures("delta_layout")
def test_incremental_runs_read_only_new_and_changed_objects(s3_server, s3_records, bucket, tmp_path, monkeypatch):
    client = s3_server.client()
    src = tmp_path / "in" / "demo"
    shutil.copytree(s3_records[0], src)
    upload_folder(client, src, bucket, "in/demo")
    url = f"s3://{bucket}/wh"
    first = pipeline.run([f"s3://{bucket}/in/demo"], url, workers=2)
    files = sorted(p for p in record_files(src) if p.name.endswith(".md") and "title:" in p.read_text("utf-8"))
    edited, deleted, touched = files[:3], files[3:5], files[5]
    for i, p in enumerate(edited):
        _edit(p, i)
    for p in deleted:
        p.unlink()
    added = [src / "new-1.md", src / "new-2.md"]
    for i, p in enumerate(added):
        shutil.copyfile(files[10 + i], p)
        _edit(p, 100 + i)

    def key(p: Path) -> str:
        return f"in/demo/{p.relative_to(src).as_posix()}"

    for p in [*edited, *added]:
        client.put_object(Bucket=bucket, Key=key(p), Body=p.read_bytes())
    for p in deleted:
        client.delete_object(Bucket=bucket, Key=key(p))
    client.put_object(Bucket=bucket, Key=key(touched), Body=touched.read_bytes())  # rewritten as it was: same ETag
    with s3_server.recording() as seen:
        second = pipeline.run([f"s3://{bucket}/in/demo"], url, workers=2)
    got = sorted(path for method, path in seen if method == "GET" and path.startswith(f"/{bucket}/in/"))
    assert got == sorted(f"/{bucket}/{key(p)}" for p in [*edited, *added])  # nothing unchanged was downloaded
    # this machine's mirror already holds the snapshot and the old staging: the build downloads
    # only the batches this run's workers wrote
    tables = [p for m, p in seen if m == "GET" and p.startswith(f"/{bucket}/wh/") and p.endswith(".parquet")]
    assert tables and all(p.startswith(f"/{bucket}/wh/staging/{second.run_id}-") for p in tables)
    # uploads follow the change: the files the run kept stay where the first run put them, named
    # there by the pointer, never copied into the new snapshot's prefix
    doc = pointer(client, bucket, "wh")
    assert f"snapshots/{first.run_id}/articles/part-0.parquet" in doc["objects"]["articles"]
    own = keys(client, bucket, f"wh/snapshots/{second.run_id}/")
    # runs, providers and check_alerts are small tables every run rewrites whole
    rewritten = ("/runs/", "/providers/", "/check_alerts/")
    reused = [k for k in own if k.endswith("/part-0.parquet") and not any(r in k for r in rewritten)]
    assert not reused, reused
    assert any("/articles/_deletes/" in k for k in own)  # what changed: delete files and new parts
    run = second.run
    assert (run["files_new"], run["files_changed"], run["files_deleted"]) == (2, 3, 2)
    assert run["files_unchanged"] == first.run["files_seen"] - 5
    assert_same_as_rebuild([src], url, tmp_path)  # history aside, equal to a full rebuild
    # a third run on another machine (an empty mirror) converges on the same tables
    monkeypatch.setenv("NEWSETL_CACHE_DIR", str(tmp_path / "other-machine"))
    third = pipeline.run([f"s3://{bucket}/in/demo"], url, workers=1)
    assert third.run["files_unchanged"] == third.run["files_seen"]
    assert_same_as_rebuild([src], url, tmp_path)


def test_a_run_killed_between_staging_and_commit_leaves_the_old_snapshot(s3_server, s3_records, bucket, tmp_path):
    client = s3_server.client()
    src = tmp_path / "in" / "reports"
    shutil.copytree(s3_records[1], src)
    upload_folder(client, src, bucket, "in/reports")
    url, inp = f"s3://{bucket}/wh", f"s3://{bucket}/in/reports"
    before = tmp_path / "before"
    pipeline.run([src], before, workers=1)
    r = newsetl_cli("run", inp, "--warehouse", url, "--no-prefect", "-q")
    assert r.returncode == 0, r.stderr
    committed = pointer(client, bucket, "wh")["snapshot"]
    target = next(p for p in sorted(record_files(src)) if "title:" in p.read_text("utf-8"))
    _edit(target, 7)
    client.put_object(Bucket=bucket, Key=f"in/reports/{target.relative_to(src).as_posix()}", Body=target.read_bytes())
    r = newsetl_cli("run", inp, "--warehouse", url, "--no-prefect", "-q", env={"NEWSETL_FAULT": "built:kill"})
    assert r.returncode == -9, r.stderr
    (marker,) = keys(client, bucket, "wh/_running/")
    dead = marker.rsplit("/", 1)[1][:-5]
    assert keys(client, bucket, f"wh/staging/{dead}-")  # it had staged its batch ...
    assert pointer(client, bucket, "wh")["snapshot"] == committed  # ... and not committed
    assert_same_tables(before, url)  # readers see the old snapshot, whole
    r = newsetl_cli("run", inp, "--warehouse", url, "--no-prefect", "-q")
    assert r.returncode == 0, r.stderr
    assert_same_as_rebuild([src], url, tmp_path)
    runs = newsetl.connect(url).sql("SELECT run_id, status FROM runs ORDER BY started_at").fetchall()
    assert [s for _, s in runs] == ["completed", "failed", "completed"]
    assert runs[1][0] == dead
    assert keys(client, bucket, "wh/_running/") == []


def test_two_writers_at_once_one_wins_the_other_names_the_conflict(s3_server, s3_records, bucket, tmp_path):
    client = s3_server.client()
    upload_folder(client, s3_records[1], bucket, "in/reports")
    url, inp = f"s3://{bucket}/wh", f"s3://{bucket}/in/reports"
    # two machines (two mirrors); the first waits after building, so the second commits meanwhile
    slow = subprocess.Popen([str(NEWSETL), "run", inp, "--warehouse", url, "--no-prefect", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NEWSETL_CACHE_DIR": str(tmp_path / "a"),
                                 "NEWSETL_FAULT": "built:sleep=15"})
    try:
        deadline = time.monotonic() + 120
        while not keys(client, bucket, "wh/_running/"):  # it has read the pointer and begun
            assert slow.poll() is None and time.monotonic() < deadline, slow.communicate()
            time.sleep(0.2)
        fast = newsetl_cli("run", inp, "--warehouse", url, "--no-prefect",
                           env={"NEWSETL_CACHE_DIR": str(tmp_path / "b")})
        out, err = slow.communicate(timeout=300)
    finally:
        if slow.poll() is None:
            slow.kill()
    assert fast.returncode == 0, fast.stderr
    assert slow.returncode == 3, err
    line = one_line_error(err)
    winner = fast.stdout.split()[1].rstrip(":")
    assert "another run committed snapshot" in line and winner in line and url in line
    assert pointer(client, bucket, "wh")["snapshot"] == winner
    local = tmp_path / "local"
    pipeline.run([s3_records[1]], local, workers=1)
    assert_same_tables(local, url)  # the winner's snapshot is whole; nothing of the loser's shows
    # the loser's run is recorded as failed by the next run that commits (here the winner, which saw it begin)
    statuses = dict(newsetl.connect(url).sql("SELECT run_id, status FROM runs").fetchall())
    assert statuses[winner] == "completed" and sorted(statuses.values()) == ["completed", "failed"]


def test_a_missing_bucket_is_named(s3_server, tmp_path, records_bucket):
    r = newsetl_cli("run", "s3://no-such-bucket-qx/sites/demo", "--warehouse", str(tmp_path / "wh"), "--no-prefect")
    assert r.returncode == 2
    assert "bucket 'no-such-bucket-qx' does not exist" in one_line_error(r.stderr)
    r = newsetl_cli("run", records_bucket[1][1], "--warehouse", "s3://no-such-bucket-qy/wh", "--no-prefect")
    assert r.returncode == 1
    assert "bucket 'no-such-bucket-qy' does not exist" in one_line_error(r.stderr)
    r = newsetl_here("sql", "SELECT 1", "--warehouse", "s3://no-such-bucket-qz/wh")
    assert r.returncode == 1
    assert "bucket 'no-such-bucket-qz' does not exist" in one_line_error(r.stderr)


def test_a_missing_prefix_is_not_an_empty_input(records_bucket, tmp_path):
    r = newsetl_cli("run", "s3://news-sites/sites/no-such-site", "--warehouse", str(tmp_path / "wh"), "--no-prefect")
    assert r.returncode == 2
    assert "no object under s3://news-sites/sites/no-such-site" in one_line_error(r.stderr)


def test_missing_credentials_say_which_variables_are_read(records_bucket, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=os.environ["AWS_ENDPOINT_URL"], AWS_EC2_METADATA_DISABLED="true",
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_CONFIG_FILE=str(tmp_path / "none"))
    for args, code in (([records_bucket[1][0], "--warehouse", str(tmp_path / "wh"), "--no-prefect"], 2),
                       ([str(tmp_path), "--warehouse", "s3://analytics/news", "--no-prefect"], 1)):
        r = subprocess.run([str(NEWSETL), "run", *args], capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == code, r.stderr
        line = one_line_error(r.stderr)
        assert "no credentials" in line and "AWS_ACCESS_KEY_ID" in line and "AWS_SECRET_ACCESS_KEY" in line


class DeleteBeforeParsing(Runner):
    """The local pool, after deleting one object: as if it went between the listing and the read."""

    def __init__(self, client, bucket: str, key: str):
        self.inner, self.client, self.bucket, self.key = Local(2), client, bucket, key
        self.workers = self.inner.workers

    def map(self, specs):
        self.client.delete_object(Bucket=self.bucket, Key=self.key)
        yield from self.inner.map(specs)

    def close(self):
        self.inner.close()


def test_an_object_deleted_between_listing_and_reading_is_rejected(s3_server, s3_records, bucket, tmp_path):
    client = s3_server.client()
    n = upload_folder(client, s3_records[0], bucket, "in/demo")
    victim = sorted(k for k in keys(client, bucket, "in/demo/") if k.endswith(".md"))[0]
    result = pipeline.run([f"s3://{bucket}/in/demo"], f"s3://{bucket}/wh",
                          runner=DeleteBeforeParsing(client, bucket, victim))
    con = newsetl.connect(f"s3://{bucket}/wh")
    source_path = "demo/" + victim[len("in/demo/"):]
    (status, error), = con.execute("SELECT status, error FROM source_files WHERE source_path = ?",
                                   [source_path]).fetchall()
    assert status == "rejected" and "gone" in error
    assert result.run["files_seen"] == len(record_files(s3_records[0])) <= n
    # the run went on: every other file is in source_files
    (count,), = con.sql("SELECT count(*) FROM source_files").fetchall()
    assert count == result.run["files_seen"]


@pytest.mark.parametrize("module, args, extra", [
    ("s3fs", ["run", "s3://news-sites/sites/demo", "--no-prefect"], "newsetl[s3]"),
    ("prefect_dask", ["run", "INPUT", "--dask", "local:1"], "newsetl[dask]"),
])
def test_a_missing_extra_says_what_to_install(module, args, extra, tmp_path, records_bucket):
    args = [str(tmp_path) if a == "INPUT" else a for a in args] + ["--warehouse", str(tmp_path / "wh")]
    code = (f"import sys; sys.modules[{module!r}] = None; from newsetl.cli import main; "
            f"sys.exit(main({args!r}))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2
    line = one_line_error(r.stderr)
    assert f"pip install '{extra}'" in line


def test_listing_follows_the_folder_rules_at_any_depth(s3_server, bucket):
    from newsetl import sources

    client = s3_server.client()
    layout = {"top.md": True, "a/b.md": True, "a/c/d.markdown": True, "e/f/g/h.MD": True,
              "a/.git/x.md": False, ".hidden/i.md": False, "a/notes.txt": False, "a/c/.swp.md": False}
    for k in layout:
        client.put_object(Bucket=bucket, Key=f"site/{k}", Body=b"---\ntitle: x\n---\n")
    client.put_object(Bucket=bucket, Key="sitemap/other.md", Body=b"---\n---\n")  # a longer prefix, not the input
    files = sources.list_records(f"s3://{bucket}/site", "site")
    assert sorted(f.source_path for f in files) == sorted(f"site/{k}" for k, read in layout.items() if read)
    assert all(f.path == f"s3://{bucket}/site/{f.rel_path}" and f.size == 17 and f.version for f in files)


def test_memory_urls_work_in_one_process(s3_records, local_warehouse, tmp_path, monkeypatch):
    """fsspec's memory:// (no server): the same tables, and a second run that reads nothing."""
    import fsspec

    monkeypatch.setenv("NEWSETL_CACHE_DIR", str(tmp_path / "cache"))
    fs = fsspec.filesystem("memory")
    urls = []
    for folder in s3_records:
        for p in record_files(folder):
            fs.pipe(f"memory://mem-in/{folder.name}/{p.relative_to(folder).as_posix()}", p.read_bytes())
        urls.append(f"memory://mem-in/{folder.name}")
    fs.mkdir("memory://mem-wh")
    pipeline.run(urls, "memory://mem-wh/news", workers=1)
    assert_same_tables(local_warehouse, "memory://mem-wh/news")
    again = pipeline.run(urls, "memory://mem-wh/news", workers=1)
    assert again.run["files_unchanged"] == again.run["files_seen"]


def test_a_store_failure_while_reading_fails_the_batch_instead_of_rejecting_its_files(s3_server, bucket):
    """A bucket gone (or credentials missing on a worker) must not turn every file into a
    rejected one, which would delete their articles at the commit: the batch raises."""
    from newsetl import sources
    from newsetl.sources import InputError

    client = s3_server.client()
    client.put_object(Bucket=bucket, Key="site/a.md", Body=b"---\ntitle: a\n---\n")
    client.put_object(Bucket=bucket, Key="site/b.md", Body=b"---\ntitle: b\n---\n")
    files = sources.list_records(f"s3://{bucket}/site", "site")
    client.delete_object(Bucket=bucket, Key="site/a.md")
    got = sources.fetch_objects(files)
    assert isinstance(got[f"s3://{bucket}/site/a.md"], sources.RejectedFile)
    assert got[f"s3://{bucket}/site/b.md"] == b"---\ntitle: b\n---\n"
    client.delete_object(Bucket=bucket, Key="site/b.md")
    client.delete_bucket(Bucket=bucket)
    with pytest.raises(InputError, match=f"bucket '{bucket}' does not exist"):
        sources.fetch_objects(files)


def test_a_deployment_keeps_urls_as_urls(records_bucket, tmp_path):
    from newsetl.serve import deployment_parameters

    url = records_bucket[1][0]
    p = deployment_parameters([str(tmp_path), url + "/"], "s3://analytics/news/")
    # in the order given, one spelling, each with the name its files' source_path starts with
    assert p["inputs"] == [f"{tmp_path.name}={tmp_path}", f"{url.rsplit('/', 1)[1]}={url}"]
    assert p["warehouse"] == "s3://analytics/news"


def test_url_inputs_are_named_like_folders_and_told_apart_when_they_collide():
    from newsetl.sources import input_names

    assert input_names(["s3://b/sites/demo", "s3://b/other/reports"]) == {
        "s3://b/sites/demo": "demo", "s3://b/other/reports": "reports"}
    # the issue's own example: two sites' _news folders
    assert input_names(["s3://news-sites/azure/_news", "s3://news-sites/ai/_news"]) == {
        "s3://news-sites/azure/_news": "azure/_news", "s3://news-sites/ai/_news": "ai/_news"}
    assert input_names(["s3://a/x/site/_news", "s3://a/y/site/_news", "s3://a/z/_news"]) == {
        "s3://a/x/site/_news": "x/site/_news", "s3://a/y/site/_news": "y/site/_news", "s3://a/z/_news": "z/_news"}
    # a folder and a prefix of the same name, told apart the same way
    assert input_names([Path("/data/a/_posts"), "s3://b/_posts"]) == {
        Path("/data/a/_posts"): "a/_posts", "s3://b/_posts": "b/_posts"}


def test_keys_and_prefixes_with_glob_characters_are_read_as_written(s3_server, bucket, monkeypatch):
    """fsspec takes `[`, `]`, `*` and `?` in the paths of cat and rm for patterns: `site/[abc].md`
    was rejected as "the object is gone" (issue 20). Every key is literal: the records load, a
    second run reads nothing, and look-alike keys a glob would match are neither read nor removed."""
    from newsetl import remote

    client = s3_server.client()
    names = ["[abc].md", "*.md", "?.md", "a.md", "x[1]/y*?.md"]  # a.md: what the glob `[abc].md` matches
    for i, n in enumerate(names):
        client.put_object(Bucket=bucket, Key=f"in[x]*?/site/{n}",
                          Body=f"---\ntitle: t{i}\nwebUrl: https://site.example/{i}\n---\n".encode())
    # decoys a glob of the input or warehouse prefix would match
    client.put_object(Bucket=bucket, Key="inxab/site/decoy.md", Body=b"---\ntitle: decoy\n---\n")
    decoys = ["wh1ab/_running/x.json", "wh1ab/snapshots/20000101T000000.000000Z-aaaaaa/x",
              "wh1ab/staging/20000101T000000.000000Z-aaaaaa-00000/x"]
    for k in decoys:
        client.put_object(Bucket=bucket, Key=k, Body=b"{}")
    monkeypatch.setattr(remote, "GRACE", remote.dt.timedelta(0))  # collect removes what it may at once
    inp, url = f"s3://{bucket}/in[x]*?/site", f"s3://{bucket}/wh[1]*?"
    first = pipeline.run([inp], url, workers=1)
    con = newsetl.connect(url)
    got = con.execute("SELECT source_path, status, error FROM source_files ORDER BY 1").fetchall()
    assert got == sorted((f"site/{n}", "loaded", None) for n in names)
    assert sorted(r[0] for r in con.execute("SELECT title FROM articles").fetchall()) == [f"t{i}" for i in range(5)]
    assert first.run["files_rejected"] == 0
    with s3_server.recording() as seen:
        second = pipeline.run([inp], url, workers=1)
    assert (second.run["files_unchanged"], second.run["files_parsed"]) == (5, 0)
    assert not [p for m, p in seen if m == "GET" and "/site/" in p]  # nothing read again
    client.put_object(Bucket=bucket, Key="in[x]*?/site/[abc].md",
                      Body=b"---\ntitle: edited\nwebUrl: https://site.example/0\n---\n")
    with s3_server.recording() as seen:
        third = pipeline.run([inp], url, workers=1)
    assert (third.run["files_changed"], third.run["files_unchanged"]) == (1, 4)
    assert [p for m, p in seen if m == "GET" and "/site/" in p] == [f"/{bucket}/in[x]*?/site/[abc].md"]
    assert not [p for m, p in seen if m == "HEAD" and "/site/" in p]  # one GET, no HEAD first
    assert newsetl.connect(url).execute("SELECT title FROM articles WHERE source_path = 'site/[abc].md'"
                                        ).fetchall() == [("edited",)]
    # the runs' markers are gone, by their own keys; the look-alikes are all still there
    assert keys(client, bucket, "wh[1]*?/_running/") == []
    assert all(keys(client, bucket, k) == [k] for k in decoys)


_KEY_PART = st.text(st.sampled_from("ab[]*?!-_ ."), min_size=1, max_size=6).filter(lambda t: not t.startswith("."))


@settings(max_examples=examples(10), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.lists(_KEY_PART, min_size=1, max_size=3).map("/".join), min_size=1, max_size=6, unique=True),
       prefix=_KEY_PART)
def test_any_key_is_listed_and_read_as_written(s3_server, bucket, names, prefix):
    """Keys of any glob characters under a prefix of any: each listed once and read as its own
    bytes (a glob would read another key's, or none)."""
    from newsetl import sources

    client = s3_server.client()
    base = f"p{abs(hash((tuple(names), prefix)))}/{prefix}"
    for n in names:
        client.put_object(Bucket=bucket, Key=f"{base}/{n}.md", Body=n.encode())
    files = sources.list_records(f"s3://{bucket}/{base}", "in")
    assert sorted(f.source_path for f in files) == sorted(f"in/{n}.md" for n in names)
    got = sources.fetch_objects(files)
    assert {f.rel_path: got[f.path] for f in files} == {f"{n}.md": n.encode() for n in names}
