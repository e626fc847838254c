"""The parse stage on a real Dask cluster (`dask scheduler` and two `dask worker` processes
started here), through `newsetl run --dask`, with records and warehouse in a real S3 API
server (moto): the result equals a local run, a worker SIGKILLed mid-batch changes nothing,
a worker that keeps failing fails the run before anything is published, and a cluster that
cannot do the work is one line, in seconds."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

import newsetl
from newsetl import pipeline

from .helpers.cli import newsetl_cli, newsetl_here
from .helpers.servers import DaskCluster, free_port, keys
from .helpers.tables import assert_same_tables

# one cluster, whose workers the tests kill and count: like every module's, these tests run one
# after another on one xdist worker (`--dist loadfile`, conftest.py)
pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]


@pytest.fixture(scope="module")
def prefect_api(prefect_server):
    """Where the runs and the workers report: the session's Prefect server."""
    url, home = prefect_server
    return SimpleNamespace(env={"PREFECT_API_URL": url, "PREFECT_HOME": str(home)})


@pytest.fixture(scope="module")
def faults(tmp_path_factory):
    """The folder the workers look in for injected faults (newsetl.parse._worker_fault)."""
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def cluster(s3_server, prefect_api, faults, tmp_path_factory):
    env = {**s3_server.env, **prefect_api.env, "NEWSETL_WORKER_FAULTS": str(faults)}
    try:
        c = DaskCluster(tmp_path_factory.mktemp("dask"), n=2, worker_env=env)
    except RuntimeError as e:
        pytest.skip(f"could not start a Dask cluster (dask scheduler / dask worker): {e}")
    yield c
    c.stop()


def executed(cluster) -> int:
    """Tasks the cluster's workers have run so far, as the workers count them."""
    from distributed import Client

    with Client(cluster.address, timeout=20) as c:
        return sum(c.run(lambda dask_worker: dask_worker.state.executed_count).values())


def run_on(cluster, prefect_api, *args, **env):
    return newsetl_cli("run", *args, "--dask", cluster.address, "-q", env={**prefect_api.env, **env})


def staged_batches(client, bucket: str, prefix: str) -> set[str]:
    return {k[len(prefix):].split("/", 1)[0] for k in keys(client, bucket, prefix)}


def test_s3_into_s3_on_two_workers_equals_the_local_run(cluster, prefect_api, records_bucket, bucket,
                                                        local_warehouse, s3_server, tmp_path):
    before = executed(cluster)
    url = f"s3://{bucket}/news"
    r = run_on(cluster, prefect_api, *records_bucket[1], "--warehouse", url,
               NEWSETL_CACHE_DIR=str(tmp_path / "cache"))
    assert r.returncode == 0, r.stderr
    assert_same_tables(local_warehouse, url)
    # the workers ran the parse: one task per batch, each of which wrote its staging to the store
    batches = staged_batches(s3_server.client(), bucket, "news/staging/")
    assert len(batches) >= 2
    assert executed(cluster) - before == len(batches)
    r = newsetl_here("sql", "SELECT count(*) AS n FROM articles", "--warehouse", url, "--format", "json")
    want = newsetl.connect(local_warehouse).sql("SELECT count(*) FROM articles").fetchall()[0][0]
    assert json.loads(r.stdout) == [{"n": want}]


def test_a_worker_killed_mid_batch_changes_nothing(cluster, prefect_api, records_bucket, bucket, local_warehouse,
                                                   faults, tmp_path):
    pids = cluster.worker_pids()
    (faults / "kill-once").write_text("")
    url = f"s3://{bucket}/news"
    try:
        r = run_on(cluster, prefect_api, *records_bucket[1], "--warehouse", url,
                   NEWSETL_CACHE_DIR=str(tmp_path / "cache"))
    finally:
        (faults / "kill-once").unlink(missing_ok=True)
    killed = [int(p.name.split("-")[1]) for p in faults.glob("killed-*")]
    assert len(killed) == 1 and killed[0] in pids  # a worker process took a batch and died by SIGKILL
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)
    assert r.returncode == 0, r.stderr
    assert_same_tables(local_warehouse, url)  # Dask ran its batch elsewhere: the same tables
    for p in faults.glob("killed-*"):
        p.unlink()
    cluster.wait_workers(2)  # the nanny restarts the worker


def test_a_worker_that_keeps_failing_fails_the_run_and_publishes_nothing(cluster, prefect_api, records_bucket,
                                                                         bucket, faults, s3_server, tmp_path):
    (faults / "raise").write_text("")
    since = dt.datetime.now(dt.timezone.utc)  # the server is the session's: this run's task runs are the newer
    try:
        r = run_on(cluster, prefect_api, records_bucket[1][1], "--warehouse", f"s3://{bucket}/news",
                   NEWSETL_CACHE_DIR=str(tmp_path / "cache"))
    finally:
        (faults / "raise").unlink()
    assert r.returncode == 1
    (line,) = [ln for ln in r.stderr.splitlines() if ln.startswith("newsetl run: error:")]
    assert "a parse batch failed on every try (OSError: injected fault" in line and "nothing was published" in line
    assert keys(s3_server.client(), bucket, "news/_current.json") == []  # nothing published
    # each failed batch was tried three times (two retries), as the Prefect server recorded it;
    # the server is shared with other tests: this run's flow run is the one into this bucket
    api = prefect_api.env["PREFECT_API_URL"]
    (flow_run,) = [f["id"] for f in api_post(api, "/flow_runs/filter", {"limit": 200, "sort": "START_TIME_DESC"})
                   if f["parameters"].get("warehouse") == f"s3://{bucket}/news"
                   and dt.datetime.fromisoformat(f["created"]) >= since]
    runs = [t for t in api_post(api, "/task_runs/filter", {"flow_runs": {"id": {"any_": [flow_run]}}, "limit": 200})
            if t["name"].startswith("parse-batches-") and t["state_type"] == "FAILED"]
    assert runs and all(t["run_count"] == 3 for t in runs)


def api_post(api: str, path: str, body: dict) -> list:
    req = urllib.request.Request(f"{api}{path}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def test_no_scheduler_at_the_address_is_one_line_in_seconds(tmp_path, prefect_api):
    address = f"tcp://127.0.0.1:{free_port()}"
    r = newsetl_cli("run", str(tmp_path), "--warehouse", str(tmp_path / "wh"), "--dask", address,
                    env=prefect_api.env, timeout=120)  # a hang fails here
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and f"no Dask scheduler answers at {address} (connection refused)" in lines[0], r.stderr


def test_only_a_refused_connection_is_taken_as_no_scheduler_at_once():
    """cluster._refused answers for tcp:// addresses the machine refuses; anything else (a port
    that listens, another scheme, a name that does not resolve) is left to Dask's client."""
    import socket

    from newsetl import cluster

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert cluster._refused(f"tcp://127.0.0.1:{port}") is None
    assert cluster._refused(f"tcp://127.0.0.1:{port}") == "connection refused"  # closed now
    assert cluster._refused(f"tls://127.0.0.1:{port}") is None
    assert cluster._refused("tcp://nosuchhost.invalid:8786") is None
    assert cluster._refused("tcp://127.0.0.1") is None  # no port: Dask's default, Dask's to say


def test_workers_that_cannot_see_a_local_folder_say_so(s3_server, prefect_api, tmp_path):
    """A worker in its own mount namespace, with an empty tmpfs over the test's folder: it runs on
    this machine but cannot see the input, as a worker on another machine would not."""
    hidden = tmp_path / "site"
    (hidden / "_posts").mkdir(parents=True)
    (hidden / "_posts" / "a.md").write_text("---\ntitle: A\n---\n")
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                            f'mount -t tmpfs none "{hidden}" && test ! -e "{hidden}/_posts"'], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot hide a folder from a worker here (unshare --mount: {probe.stderr.decode().strip()})")
    c = DaskCluster(tmp_path, n=0)
    try:
        c.workers.append(c.add_worker(prefix=["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                              f'mount -t tmpfs none "{hidden}" && exec "$@"', "sh"]))
        c.wait_workers(1)
        r = newsetl_cli("run", str(hidden / "_posts"), "--warehouse", str(tmp_path / "wh"), "--dask", c.address,
                        env=prefect_api.env, timeout=120)
    finally:
        c.stop()
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert f"the Dask workers cannot see {hidden / '_posts'}" in lines[0] and "s3://" in lines[0]
    assert not (tmp_path / "wh" / "current").exists()


def test_local_cluster_of_two_processes_equals_the_local_run(prefect_api, s3_records, local_warehouse, tmp_path):
    wh = tmp_path / "wh"
    r = newsetl_cli("run", *map(str, s3_records), "--warehouse", str(wh), "--dask", "local:2", "-q",
                    env=prefect_api.env)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")  # -q: errors only, on this path too
    assert_same_tables(local_warehouse, wh)


def test_local_cluster_without_an_api_says_why_it_starts_a_server(tmp_path, prefect_server):
    """`--dask local:N` maps the parse as Prefect tasks, and Prefect 3 runs a flow run only against
    an API: with none, it says so and what it costs, and its phase line names what really runs.
    (In a home where Prefect has run before: test_run_modes tests a first start.)"""
    from newsetl.demo import generate

    from .helpers.servers import prefect_home_like_a_users
    from .test_run_modes import flow_run_ids, no_prefect_env

    generate(tmp_path / "site", records=30, seed=2)
    env = no_prefect_env(tmp_path)
    prefect_home_like_a_users(prefect_server[1], Path(env["PREFECT_HOME"]))
    r = newsetl_cli("run", str(tmp_path / "site"), "--warehouse", str(tmp_path / "wh"), "--dask", "local:2",
                    env=env)
    assert r.returncode == 0, r.stderr
    (announced,) = [line for line in r.stderr.splitlines() if "temporary Prefect server" in line]
    assert "--dask maps the parse as Prefect tasks" in announced and "set PREFECT_API_URL" in announced
    assert "parsing on a local Dask cluster of 2 worker processes, one thread each" in r.stderr
    assert "worker threads" not in r.stderr
    (flow_run,) = flow_run_ids(tmp_path / "wh")
    assert flow_run


def test_named_local_folders_on_the_cluster_equal_the_local_run(cluster, prefect_api, s3_records, local_warehouse,
                                                                 tmp_path):
    """NAME=PATH inputs: the workers are asked about PATH (they share this machine's folders)."""
    wh = tmp_path / "wh"
    named = [f"{f.name}={f}" for f in s3_records]  # the names the folders get anyway: the same source paths
    r = newsetl_cli("run", *named, "--warehouse", str(wh), "--dask", cluster.address, "-q", env=prefect_api.env)
    assert r.returncode == 0, r.stderr
    assert_same_tables(local_warehouse, wh)


def test_the_readme_object_storage_example_runs_as_written(cluster, prefect_api, s3_server, s3_records, tmp_path):
    """README "Beyond one machine", line by line, against this S3 server: two sites' _news
    prefixes into s3://analytics/news on the Dask cluster (its address for tcp://scheduler:8786)."""
    from .helpers.readme import commands

    lines = commands(storage=True)
    assert len(lines) == 3 and "tcp://scheduler:8786" in lines[0]
    client = s3_server.client()
    for name in ("news-sites", "analytics"):
        try:
            client.create_bucket(Bucket=name)
        except client.exceptions.BucketAlreadyOwnedByYou:  # records_bucket made news-sites
            pass
    demo = s3_records[0]
    files = sorted(p for p in demo.rglob("*") if p.is_file())
    for site, part in (("azure", files[::2]), ("ai", files[1::2])):
        for p in part:
            client.put_object(Bucket="news-sites", Key=f"{site}/_news/{p.relative_to(demo).as_posix()}",
                              Body=p.read_bytes())
    records = [p for p in files if p.suffix in (".md", ".markdown")]
    env = {**os.environ, **s3_server.env, **prefect_api.env, "NEWSETL_CACHE_DIR": str(tmp_path / "cache"),
           "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("NEWSETL_WAREHOUSE", None)
    out = []
    for command in lines:
        command = command.replace("tcp://scheduler:8786", cluster.address)
        res = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, f"{command}\n{res.stderr[-2000:]}"
        assert "Traceback" not in res.stderr
        out.append(res.stdout)
    assert f"{len(records):,} files" in out[0]  # every record of both sites, read on the workers
    assert "provider_domain" in out[1] and len(out[1].splitlines()) >= 5
    local = tmp_path / "local-wh"  # the same records, loaded here: the count the last line must print
    pipeline.run([demo], local, workers=1)
    want = newsetl.connect(local).sql("SELECT count(*) FROM articles").fetchall()[0][0]
    assert str(want) in re.findall(r"\d+", out[2]), out[2]
