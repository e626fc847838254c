"""The `news-etl` Prefect flow: the stages of `newsetl.pipeline` as tasks.

Tasks are thin wrappers; the logic lives in plain functions that run (and are
tested) without Prefect. Parsing is mapped over batches of files and runs on a
`ProcessPoolTaskRunner`: YAML parsing is CPU-bound Python, so threads would
share one core; processes use them all. Discovery, build and publish are
called directly, so they run in the flow's own process, the one holding the
warehouse lock: a worker process that outlived a killed flow could otherwise
publish without it. A parse worker only writes staging files no snapshot
refers to yet, so it is harmless if it outlives its flow.

    prefect deploy --all            # with prefect.yaml, or:
    newsetl run data/demo --warehouse warehouse
"""

from __future__ import annotations

import datetime as dt
import os

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import get_run_context
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.task_runners import ProcessPoolTaskRunner

from newsetl import pipeline
from newsetl.catalog import ensure_catalog
from newsetl.pipeline import BatchResult, BatchSpec, Built, Plan
from newsetl.store import Warehouse

# Inputs are file lists and Arrow tables: never hash them for caching, a run
# must always look at the files again.
_TASK = dict(cache_policy=NO_CACHE, persist_result=False)


@task(name="discover", **_TASK)
def discover(inputs: list[str], warehouse: str, run_id: str, as_of: dt.datetime | None) -> Plan:
    return pipeline.plan(inputs, warehouse, run_id, as_of)


# transient I/O errors (an NFS hiccup, a file locked by an editor) are retried
@task(name="parse-batch", retries=2, retry_delay_seconds=[1, 10], retry_jitter_factor=0.5,
      task_run_name="parse-batch-{spec.batch_id}", **_TASK)
def parse_batch(spec: BatchSpec) -> BatchResult:
    return pipeline.parse_batch(spec)


@task(name="build-tables", retries=1, retry_delay_seconds=5, **_TASK)
def build_tables(plan: Plan, results: list[BatchResult], flow_run_id: str | None) -> Built:
    return pipeline.build(plan, results, flow_run_id)


@task(name="publish", retries=2, retry_delay_seconds=[1, 5], **_TASK)
def publish(built: Built, warehouse: str) -> str:
    return str(pipeline.publish(built, warehouse))


def _summary_table(row: dict, counts: dict) -> list[dict]:
    files = [{"what": f"files {k[6:]}", "count": row[k]} for k in
             ("files_seen", "files_new", "files_changed", "files_unchanged", "files_deleted", "files_rejected")]
    rows = [{"what": f"rows in {name}", "count": n} for name, n in counts.items()]
    return files + rows


@flow(name="news-etl", task_runner=ProcessPoolTaskRunner(max_workers=os.cpu_count()),
      description="Front-matter records -> Parquet tables -> DuckDB catalog")
def news_etl(inputs: list[str], warehouse: str = "warehouse", lock_timeout: float = pipeline.LOCK_TIMEOUT,
             reports_dir: str | None = None, as_of: dt.datetime | None = None) -> dict:
    """Run the ETL over `inputs` (folders of Markdown records) into `warehouse`."""
    if as_of is not None:
        as_of = pipeline.check_as_of(as_of)  # before anything is written
    log = get_run_logger()
    wh = Warehouse(warehouse)
    wh.prepare()
    ctx = get_run_context()
    flow_run_id = str(ctx.flow_run.id)
    # Without PREFECT_API_URL, Prefect runs a temporary server for this flow; the
    # task processes would each start their own unless told where this one is.
    api = PREFECT_API_URL.value() or str(ctx.client.api_url)
    with wh.lock(lock_timeout), temporary_settings(updates={PREFECT_API_URL: api}):
        ensure_catalog(wh)
        run_id = pipeline.new_run_id()
        # called, not submitted: these run here, in the process that holds the lock
        plan = discover(inputs, str(wh.root), run_id, as_of)
        pipeline.begin(wh, plan)
        log.info("run %s: %d files seen, %d to read (%d new), %d unchanged, %d deleted",
                 run_id, plan.files_seen, len(plan.to_read), plan.files_new, len(plan.unchanged), len(plan.deleted))
        batches = pipeline.make_batches(plan, wh.staging)
        results = []
        for fut in parse_batch.map(batches):
            r = fut.result()
            results.append(r)
            log.info("batch %s: %d parsed, %d rejected, %d unchanged (%d/%d batches)",
                     r.batch_id, r.parsed, r.rejected, len(r.same), len(results), len(batches))
        results.sort(key=lambda r: r.batch_id)
        pipeline.fault_point("parsed")
        built = build_tables(plan, results, flow_run_id)
        pipeline.fault_point("built")
        snapshot = publish(built, str(wh.root))
    row = built.run_row
    log.info("published %s: %s", snapshot, ", ".join(f"{k} {v:,}" for k, v in built.counts.items()))
    if row["files_rejected"]:
        log.warning("%d files rejected: see source_files (status = 'rejected') for each error",
                    row["files_rejected"])
    create_table_artifact(
        key="news-etl-summary",
        table=_summary_table(row, built.counts),
        description=f"newsetl run {run_id} at {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC}",
    )
    if reports_dir:
        from flows.reports import news_reports

        news_reports(warehouse=str(wh.root), out_dir=reports_dir)
    return {"run_id": run_id, "snapshot": snapshot, "counts": built.counts, "run": row}


if __name__ == "__main__":
    import sys

    news_etl(sys.argv[1:] or ["data/demo"])
