"""The news-etl Prefect flow, end to end, against a real (temporary) Prefect server."""

from __future__ import annotations

import asyncio

import pytest

import newsetl

from .conftest import BAD_INPUT


@pytest.fixture(scope="module")
def harness():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def test_flow_loads_the_warehouse_and_leaves_a_summary(harness, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

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
            return await client.read_artifacts(
                artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["news-etl-summary"])))

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
