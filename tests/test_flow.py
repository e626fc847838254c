"""The news-etl Prefect flow, end to end, against a real Prefect server (the session's)."""

from __future__ import annotations

import asyncio
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

import newsetl

from .conftest import BAD_INPUT


@pytest.fixture(scope="module")
def harness(prefect_server):
    """Flows called in this process report to the session's Prefect server."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url, _home = prefect_server
    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield


def test_flow_loads_the_warehouse_and_leaves_a_summary(harness, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    from newsetl.flows import news_etl

    wh = tmp_path / "wh"
    out = news_etl(inputs=[str(BAD_INPUT)], warehouse=str(wh))
    # figures counted by hand from tests/fixtures/bad_input (see test_pipeline.py)
    assert out["counts"]["articles"] == 11
    assert out["run"]["files_seen"] == 21 and out["run"]["files_rejected"] == 9
    con = newsetl.connect(wh)
    runs = con.sql("SELECT run_id, flow_run_id, status FROM runs").fetchall()
    assert runs == [(out["run_id"], out["run"]["flow_run_id"], "completed")]
    assert con.sql("SELECT count(*) FROM articles").fetchall() == [(11,)]

    async def artifacts():
        async with get_client() as client:
            return await client.read_artifacts(  # this run's: the server is shared
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["news-etl-summary"]),
                                               flow_run_id=ArtifactFilterFlowRunId(any_=[out["run"]["flow_run_id"]])))

    (artifact,) = asyncio.run(artifacts())
    rows = {r["what"]: r["count"] for r in artifact.data} if isinstance(artifact.data, list) else None
    if rows is None:  # the API returns table artifacts as JSON text
        import json

        rows = {r["what"]: r["count"] for r in json.loads(artifact.data)}
    assert rows["files seen"] == 21 and rows["files rejected"] == 9 and rows["rows in articles"] == 11
    assert str(artifact.flow_run_id) == out["run"]["flow_run_id"]


def test_flow_runs_incrementally(harness, tmp_path, corpus):
    from newsetl.flows import news_etl

    wh = tmp_path / "wh"
    first = news_etl(inputs=[str(corpus / "seed")], warehouse=str(wh))
    second = news_etl(inputs=[str(corpus / "seed")], warehouse=str(wh))
    assert first["run"]["files_new"] == 1
    assert (second["run"]["files_unchanged"], second["run"]["files_parsed"]) == (1, 0)
    con = newsetl.connect(wh)
    assert con.sql("SELECT image_count, related_count FROM articles").fetchall() == [(1, 3)]


def test_flow_hands_runs_of_batches_to_its_task_runs(harness, tmp_path, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from newsetl import demo, flows, pipeline

    from .helpers.tables import assert_same_tables

    site = tmp_path / "site"
    demo.generate(site, records=300, seed=12, malformed=True)
    pipeline.run([site], tmp_path / "in-process", workers=1)
    monkeypatch.setattr(flows, "TASK_RUNS_PER_WORKER", 1)  # as a run with many batches would
    wh = tmp_path / "flow"
    out = flows.news_etl(inputs=[str(site)], warehouse=str(wh))
    assert_same_tables(tmp_path / "in-process", wh)

    async def task_runs():
        async with get_client() as client:
            return await client.read_task_runs(flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[out["run"]["flow_run_id"]])))

    ranges = []  # each task run's batches, from its name: RUN-00003 or RUN-00000..00002
    for t in asyncio.run(task_runs()):
        assert t.name.startswith("parse-batches-"), t.name
        first, _, last = t.name.rsplit("-", 1)[1].partition("..")
        ranges.append((int(first), int(last or first)))
    ranges.sort()
    # consecutive runs of batches, every batch once, as many task runs as parse processes
    assert ranges[0][0] == 0 and all(b[0] == a[1] + 1 for a, b in zip(ranges, ranges[1:])), ranges
    batches, workers = ranges[-1][1] + 1, os.cpu_count() or 1
    assert batches > workers and len(ranges) == workers, ranges


@given(st.integers(0, 300), st.integers(-2, 40))
def test_runs_of_batches_tile_the_batches_evenly(batches, n):
    from newsetl.flows import _groups

    specs = list(range(batches))  # _groups only cuts the list
    groups = _groups(specs, n)
    assert [s for g in groups for s in g] == specs
    assert len(groups) == (min(max(n, 1), batches))
    assert all(groups) and (not groups or max(map(len, groups)) - min(map(len, groups)) <= 1)


def test_flow_sends_an_event_per_alert_and_a_checks_artifact(harness, tmp_path):
    """A run that loses most of the warehouse's articles: the snapshot_shrink check fails (it
    needs one run before it, no more), the flow sends `newsetl.check.fail` to the server with
    the values in its payload, and leaves a table artifact of its checks; the next run, back to
    normal, sends `newsetl.check.resolved`."""
    import datetime as dt
    import json
    import shutil
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey
    from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter

    from newsetl.flows import news_etl

    site, stash, wh = tmp_path / "site", tmp_path / "stash", tmp_path / "wh"
    site.mkdir()
    stash.mkdir()
    for i in range(30):
        (site / f"a{i:02d}.md").write_text(f"---\ntitle: t{i}\nwebUrl: https://shrink.example/{i}\n"
                                           f"provider:\n  domain: shrink.example\n---\n")
    since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    news_etl(inputs=[str(site)], warehouse=str(wh))
    for i in range(20):  # 20 of 30 articles gone: two thirds, past the fail share (a half)
        shutil.move(site / f"a{i:02d}.md", stash / f"a{i:02d}.md")
    out = news_etl(inputs=[str(site)], warehouse=str(wh), allow_deletes=True)  # more than max_delete_share
    for f in stash.iterdir():
        shutil.move(f, site / f.name)
    back = news_etl(inputs=[str(site)], warehouse=str(wh))

    async def events():
        async with get_client() as client:
            page = await client.read_events(EventFilter(
                event=EventNameFilter(name=["newsetl.check.fail", "newsetl.check.resolved"]),
                occurred=EventOccurredFilter(since=since)), limit=50)
            return [e for e in page.events if e.resource.get("newsetl.check") == "snapshot_shrink"
                    and e.payload.get("run_id") in (out["run_id"], back["run_id"])]

    deadline = time.monotonic() + 30
    got = asyncio.run(events())
    while len(got) < 2 and time.monotonic() < deadline:  # the client sends events in the background
        time.sleep(0.5)
        got = asyncio.run(events())
    by_name = {e.event: e for e in got}
    assert set(by_name) == {"newsetl.check.fail", "newsetl.check.resolved"}, got
    fail = by_name["newsetl.check.fail"]
    assert fail.resource.id == "newsetl.check.snapshot_shrink.run" and fail.payload["run_id"] == out["run_id"]
    assert (fail.payload["observed"], fail.payload["expected"]) == (10, 30)  # articles now, and before
    assert "shrink.example 20" in fail.payload["message"]
    assert by_name["newsetl.check.resolved"].payload["run_id"] == back["run_id"]

    async def artifact():
        async with get_client() as client:
            return await client.read_artifacts(artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["news-etl-checks"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[out["run"]["flow_run_id"]])))

    (art,) = asyncio.run(artifact())
    rows = art.data if isinstance(art.data, list) else json.loads(art.data)
    assert rows[0]["status"] == "fail" and rows[0]["check"] == "snapshot_shrink"
