"""`newsetl rollback` and `--snapshot` (issue 24): a kept snapshot is made current again
atomically, under the run lock, on disk and in object storage (moto's S3 server); the run after
a rollback compares with the rolled-back snapshot, so its tables equal a rebuild from scratch;
every read command, and newsetl.connect/query/table/report, reads a kept snapshot by its id, and
a snapshot that is not kept is one line listing the kept ones."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import newsetl
from newsetl import pipeline
from newsetl.publish import rollback
from newsetl.store import NoSuchSnapshot, Warehouse

from .helpers import examples
from .helpers.cli import newsetl_cli, newsetl_here
from .helpers.records import record
from .helpers.servers import upload_folder
from .helpers.tables import assert_same_as_rebuild

EXIT_USAGE = 2


def write(folder: Path, names: dict[str, int]) -> Path:
    """The folder holds exactly these records (name -> quality), nothing else."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, quality in names.items():
        (folder / f"{name}.md").write_text(record(name, f"quality: {quality}"))
    return folder


def count(wh, sql: str = "SELECT count(*) FROM articles", snapshot=None):
    con = newsetl.connect(wh, snapshot=snapshot)
    try:
        return con.sql(sql).fetchall()[0][0]
    finally:
        con.close()


def current(wh: Path) -> str:
    return Path(os.readlink(wh / "current")).name


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture
def three_runs(tmp_path):
    """A warehouse of three runs: 5 records, then 3 of them with another quality and one more, then 2 gone.
    (the folder, the warehouse, each run's snapshot id, and the records each run saw)"""
    states = [{f"r{i}": i for i in range(5)},
              {**{f"r{i}": i + 100 for i in range(3)}, "r3": 3, "r4": 4, "r5": 5},
              {"r0": 100, "r1": 101, "r2": 102, "r5": 5}]
    site, wh = tmp_path / "site", tmp_path / "wh"
    ids = []
    for state in states:
        write(site, state)
        ids.append(pipeline.run([site], wh, workers=1).run_id)
    return site, wh, ids, states


def test_rollback_goes_back_one_then_to_any_kept_snapshot(three_runs):
    site, wh, ids, states = three_runs
    assert current(wh) == ids[2]
    r = newsetl_cli("rollback", "--warehouse", str(wh))
    assert r.returncode == 0, r.stderr
    assert current(wh) == ids[1]
    assert f"snapshot {ids[1]} is current again (it was {ids[2]}" in r.stdout
    assert count(wh) == len(states[1])
    assert count(wh, "SELECT sum(quality) FROM articles") == sum(states[1].values())
    # the catalog file for the DuckDB shell shows it too
    import duckdb

    con = duckdb.connect(str(wh / "news.duckdb"), read_only=True)
    try:
        assert con.sql("SELECT sum(quality) FROM articles").fetchall()[0][0] == sum(states[1].values())
    finally:
        con.close()
    r = newsetl_cli("rollback", ids[0], "--warehouse", str(wh))
    assert r.returncode == 0, r.stderr
    assert current(wh) == ids[0] and count(wh) == len(states[0])
    # nothing was deleted: forward again by name
    assert sorted(p.name for p in (wh / "snapshots").iterdir()) == sorted(ids)
    assert newsetl_cli("rollback", ids[2], "--warehouse", str(wh)).returncode == 0
    assert count(wh, "SELECT sum(quality) FROM articles") == sum(states[2].values())
    r = newsetl_cli("rollback", ids[2], "--warehouse", str(wh))
    assert r.returncode == 0 and "already current" in r.stderr


def test_rollback_list_and_refusals(three_runs, tmp_path):
    site, wh, ids, states = three_runs
    r = newsetl_cli("rollback", "--list", "--warehouse", str(wh), "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [
        {"snapshot": i, "current": i == ids[2], "made_by": "run", "articles": len(s), "files": len(s)}
        for i, s in reversed(list(zip(ids, states)))]
    r = newsetl_cli("rollback", "20200101T000000.000000Z-abcdef", "--warehouse", str(wh))
    assert r.returncode == EXIT_USAGE
    assert one_line(r.stderr) == (f"newsetl rollback: error: snapshot '20200101T000000.000000Z-abcdef' is not kept in "
                                  f"{wh}: the kept snapshots are {', '.join(ids)} (newsetl rollback --list describes them)")
    assert current(wh) == ids[2]
    rollback(wh, ids[0])
    with pytest.raises(NoSuchSnapshot, match=f"snapshot {ids[0]} of {wh} is its first: nothing to go back to"):
        rollback(wh)
    r = newsetl_cli("rollback", "--warehouse", str(tmp_path / "none"))
    assert r.returncode == 1 and "no warehouse at" in one_line(r.stderr)
    assert not (tmp_path / "none").exists()


def test_rollback_waits_for_the_run_lock(three_runs):
    site, wh, ids, _ = three_runs
    with Warehouse(wh).lock(5):  # as a run holds it
        r = newsetl_cli("rollback", "--warehouse", str(wh), "--lock-timeout", "0.5")
    assert r.returncode == 3 and "another run is writing" in one_line(r.stderr)
    assert current(wh) == ids[2]


def test_a_run_after_a_rollback_equals_a_rebuild(three_runs, tmp_path):
    """The next run compares the files with the rolled-back snapshot's manifest: what changed since
    *that* snapshot is read again, and the tables equal a rebuild from scratch."""
    site, wh, ids, states = three_runs
    rollback(wh, ids[0])
    now = {"r0": 7, "r1": 1, "r6": 6, "r5": 50}  # against ids[0]: r0 changed, r1 same, r2-r4 gone, r5 and r6 new
    write(site, now)  # every file written again: r1 is read, and found the same by its hash
    out = pipeline.run([site], wh, workers=1, allow_deletes=True)
    run = out.run
    assert (run["files_new"], run["files_deleted"]) == (2, 3)
    assert_same_as_rebuild([site], wh, tmp_path)
    assert count(wh, "SELECT sum(quality) FROM articles") == sum(now.values())
    # the runs table is the rolled-back snapshot's history and this run
    assert count(wh, "SELECT count(*) FROM runs") == 2
    # back one undoes that run: to the snapshot it was made from, kept although three are newer,
    # never to ids[2], which the rollback left behind
    assert sorted(p.name for p in (wh / "snapshots").iterdir()) == sorted([*ids, out.run_id])
    assert rollback(wh) == (out.run_id, ids[0])
    assert count(wh, "SELECT sum(quality) FROM articles") == sum(states[0].values())


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
          max_examples=examples(4), deadline=None)
@given(states=st.lists(st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 3), min_size=1),
                       min_size=2, max_size=3),
       back=st.integers(0, 2), last=st.dictionaries(st.sampled_from(["a", "b", "c", "e"]), st.integers(0, 3),
                                                    min_size=1))
def test_rollback_then_any_run_equals_a_rebuild(tmp_path_factory, states, back, last):
    base = tmp_path_factory.mktemp("rollback")
    site, wh = base / "site", base / "wh"
    ids = []
    for state in states:
        write(site, state)
        ids.append(pipeline.run([site], wh, workers=1, allow_deletes=True).run_id)
    target = ids[min(back, len(ids) - 1)]
    rollback(wh, target)
    assert current(wh) == target
    write(site, last)
    pipeline.run([site], wh, workers=1, allow_deletes=True)
    assert_same_as_rebuild([site], wh, base)


def test_every_read_command_reads_a_kept_snapshot(three_runs):
    site, wh, ids, states = three_runs
    old = states[0]
    r = newsetl_here("sql", "SELECT count(*) AS n, sum(quality)::BIGINT AS q FROM articles", "--warehouse", wh,
                     "--snapshot", ids[0], "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [{"n": len(old), "q": sum(old.values())}]
    r = newsetl_here("tables", "--warehouse", wh, "--snapshot", ids[0], "--format", "json")
    assert {t["name"]: t["rows"] for t in json.loads(r.stdout)}["articles"] == len(old)
    r = newsetl_here("describe", "articles", "--warehouse", wh, "--snapshot", ids[0], "--format", "json")
    assert r.returncode == 0 and any(c["column"] == "quality" for c in json.loads(r.stdout))
    r = newsetl_here("runs", "--warehouse", wh, "--snapshot", ids[1], "--format", "json")
    assert [x["run_id"] for x in json.loads(r.stdout)] == [ids[1], ids[0]]
    r = newsetl_here("report", "data_quality", "--warehouse", wh, "--snapshot", ids[0], "--format", "json")
    assert r.returncode == 0, r.stderr
    r = newsetl_here("status", "--warehouse", wh, "--snapshot", ids[0])
    assert r.returncode == 0, r.stderr
    assert f"snapshot  {ids[0]} (kept; the current one is {ids[2]})" in r.stdout
    assert f"articles {len(old):,}" in r.stdout
    r = newsetl_cli("check", "--dry-run", "--warehouse", str(wh), "--snapshot", ids[0], "--all", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert f"for run {ids[0]}" in r.stderr
    assert newsetl_cli("check", "--warehouse", str(wh), "--snapshot", ids[0]).returncode == EXIT_USAGE
    # the library
    assert newsetl.table("articles", wh, snapshot=ids[0]).shape[0] == len(old)
    assert newsetl.query("SELECT sum(quality) AS q FROM articles", wh, snapshot=ids[1]).q[0] == sum(states[1].values())
    assert newsetl.report("data_quality", wh, snapshot=ids[0]).shape[0] >= 1
    assert count(wh, snapshot=ids[2]) == count(wh) == len(states[2])
    # what is current did not move
    assert current(wh) == ids[2]
    for cmd in (("sql", "SELECT 1"), ("tables",), ("status",), ("runs",), ("describe", "articles"),
                ("report", "data_quality")):
        r = newsetl_here(*cmd, "--warehouse", wh, "--snapshot", "nope")
        assert r.returncode == EXIT_USAGE, (cmd, r.stderr)
        assert one_line(r.stderr).endswith(f"snapshot 'nope' is not kept in {wh}: the kept snapshots are "
                                           f"{', '.join(ids)} (newsetl rollback --list describes them)")


def test_help_has_examples():
    r = newsetl_cli("rollback", "--help")
    assert r.returncode == 0 and "examples:" in r.stdout and "newsetl rollback --list" in r.stdout


def test_rollback_in_object_storage(s3_server, bucket, tmp_path, monkeypatch):
    client = s3_server.client()
    site = tmp_path / "in" / "site"
    url, src = f"s3://{bucket}/wh", f"s3://{bucket}/in/site"
    states = [{"a": 1, "b": 2, "c": 3}, {"a": 10, "b": 2, "c": 3, "d": 4}]
    ids = []
    for state in states:
        write(site, state)
        for k in [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="in/").get("Contents", [])]:
            client.delete_object(Bucket=bucket, Key=k)
        upload_folder(client, site, bucket, "in/site")
        ids.append(pipeline.run([src], url, workers=1).run_id)

    def pointer() -> dict:
        return json.loads(client.get_object(Bucket=bucket, Key="wh/_current.json")["Body"].read())

    r = newsetl_here("sql", "SELECT sum(quality)::BIGINT AS q FROM articles", "--warehouse", url, "--snapshot", ids[0],
                     "--format", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == [{"q": 6}]
    r = newsetl_cli("rollback", "--list", "--warehouse", url, "--format", "json")
    assert [x["snapshot"] for x in json.loads(r.stdout)] == ids[::-1]
    r = newsetl_cli("rollback", "--warehouse", url)
    assert r.returncode == 0, r.stderr
    doc = pointer()
    assert doc["snapshot"] == ids[0] and doc["history"][:2] == [ids[0], ids[1]]
    assert count(url, "SELECT sum(quality) FROM articles") == 6
    # another machine (an empty mirror) reads and runs on top of it, incrementally, as a rebuild
    monkeypatch.setenv("NEWSETL_CACHE_DIR", str(tmp_path / "other-machine"))
    out = pipeline.run([src], url, workers=1)
    assert (out.run["files_new"], out.run["files_changed"], out.run["files_unchanged"]) == (1, 1, 2)
    assert_same_as_rebuild([site], url, tmp_path)
    assert pointer()["snapshot"] == out.run_id
