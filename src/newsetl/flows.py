"""The Prefect flows of newsetl: `news-etl` and `news-reports`.

Each flow calls the one composition of its work (`pipeline.run`, and
`bundle.export_all`) and passes the way its pieces are mapped: the parse
batches as `parse-batches` task runs, the report files as `export-report` task
runs. On this machine the parse tasks run in threads of the flow's process and
hand their batches to a pool of parse processes (runners.Local): YAML parsing
is CPU-bound Python, so threads alone would share one core, and processes
started by Prefect's own ProcessPoolTaskRunner would each import Prefect first
(seconds each), where ours are forked by `newsetl run` before it imports
Prefect (runners.fork_early), or else come from a forkserver that imported
only the parser. Plan, build and publish run in the flow's own process, the
one holding the warehouse lock, so a worker that outlived a killed flow can
never publish. Tasks are thin wrappers: the logic runs, and is tested,
without Prefect.

The deployment entry points are `flows/etl.py` and `flows/reports.py` at the
top of the repository (prefect.yaml); they import these.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from prefect import flow, get_run_logger, task, unmapped
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.context import get_run_context
from prefect.events import emit_event
from prefect.futures import as_completed, wait
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.task_runners import ThreadPoolTaskRunner

from . import bundle, html_report, pipeline, reports
from .checks import load_config
from .checks.events import check_events, checks_table
from .parse import BatchResult, parse_batch
from .plan import BatchSpec, check_as_of
from .prefect_console import PHASE  # marks a log record as one of a run's phase lines
from .runners import Local, Runner
from .remote import open_warehouse
from .store import LOCK_TIMEOUT, disk_full
from .words import plural

# Inputs are file lists and Arrow tables, and the warehouse changes under the
# same arguments: never hash them for caching, never persist results.
_TASK = dict(cache_policy=NO_CACHE, persist_result=False)
TOP = 10


def _transient(task, task_run, state) -> bool:
    """Retry a parse task on a passing I/O error, not when the warehouse itself cannot be
    written: a full disk stays full for the next ten seconds."""
    try:
        state.result()
    except Exception as e:  # noqa: BLE001 - the task's own failure, whatever it was
        return disk_full(e) is None and not isinstance(e, PermissionError)
    return True


# this process's parse processes, while a run of news-etl maps its batches here
_local: Local | None = None
# a progress callback (done, total) for a flow run started by `newsetl run` in this process
_progress = None


class Specs:
    """Batch specs as a task argument Prefect passes on without walking every file of every
    spec looking for futures (about 0.2 s of CPU per 1,000 files, in the flow and again in the
    task), and that pickles whole to a Dask worker (Prefect's `quote` reaches it as a tuple)."""

    __slots__ = ("specs",)

    def __init__(self, specs: list[BatchSpec]):
        self.specs = specs


# transient I/O errors (an NFS hiccup, a file locked by an editor) are retried
@task(name="parse-batches", retries=2, retry_delay_seconds=[1, 10], retry_jitter_factor=0.5,
      retry_condition_fn=_transient, task_run_name="parse-batches-{name}", **_TASK)
def parse_batches_task(name: str, specs: Specs) -> list[BatchResult]:
    # in a thread of the flow's process: to its parse processes; where there are none (on a
    # Dask worker), here
    specs = specs.specs
    return _local.parse(specs) if _local is not None else [parse_batch(s) for s in specs]


# At most this many parse task runs per parse process, each a run of consecutive batches:
# a task run costs a Prefect server about 65 ms of CPU (3 events, measured), and one per
# batch made the flow's cost grow with the records (bench/README.md). Batches stay small
# (plan.BATCH_BYTES: memory), and a small run keeps one task run per batch.
TASK_RUNS_PER_WORKER = 8


def _groups(specs: list[BatchSpec], n: int) -> list[list[BatchSpec]]:
    """`specs` cut into at most `n` runs of consecutive batches, of sizes differing by one at most."""
    n = min(max(n, 1), len(specs))
    if not n:
        return []
    size, extra = divmod(len(specs), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (i < extra)
        out.append(specs[start:end])
        start = end
    return out


def _group_name(group: list[BatchSpec]) -> str:
    first, last = group[0].batch_id, group[-1].batch_id
    return first if len(group) == 1 else f"{first}..{last.rsplit('-', 1)[1]}"


class PrefectRunner(Runner):
    """Maps the parse task over the batches: on the flow's task runner, whose threads hand
    runs of consecutive batches to this machine's pool of parse processes (runners.Local); or on
    `task_runner` (a prefect_dask.DaskTaskRunner: the parse on a Dask cluster), which it
    starts for the parse and stops in `close`, before the build (a local:N cluster's
    processes go with it)."""

    def __init__(self, workers: int, task_runner=None):
        self.workers = workers
        self.task_runner = task_runner
        self._started = False
        self._local = Local(workers) if task_runner is None else None
        self._futures = []

    def start(self) -> None:
        if self._local is not None:
            self._local.start()

    def map(self, specs: list[BatchSpec]):
        global _local
        if self.task_runner is not None:
            if not self._started:
                self.task_runner.__enter__()
                self._started = True
            # one batch a task: the cluster's scheduler balances them over its workers
            groups = [[s] for s in specs]
            futures = self.task_runner.map(parse_batches_task, {"name": [_group_name(g) for g in groups],
                                                                  "specs": [Specs(g) for g in groups]})
        else:
            if self._local.wants_pool(specs):
                self._local.start()
            _local = self._local
            groups = _groups(specs, TASK_RUNS_PER_WORKER * self.workers)
            futures = parse_batches_task.map([_group_name(g) for g in groups], [Specs(g) for g in groups])
        self._futures = futures
        group_of = {f.task_run_id: g for f, g in zip(futures, groups)}
        for fut in as_completed(futures):
            yield from zip(group_of[fut.task_run_id], fut.result())

    def close(self) -> None:
        global _local
        # after a failed batch the others still run: let them end (and log) before the flow does
        wait(self._futures)
        self._futures = []
        _local = None
        if self._local is not None:
            self._local.close()
        if self._started:
            self._started = False
            self.task_runner.__exit__(None, None, None)


def _summary_table(row: dict, counts: dict) -> list[dict]:
    files = [{"what": f"files {k[6:]}", "count": row[k]} for k in
             ("files_seen", "files_new", "files_changed", "files_unchanged", "files_deleted", "files_rejected")]
    rows = [{"what": f"rows in {name}", "count": n} for name, n in counts.items()]
    return files + rows


def parse_runner(dask_address: str | None, inputs, warehouse) -> PrefectRunner:
    """The runner of the parse tasks: this machine's parse processes, or a DaskTaskRunner
    on the cluster at `dask_address`, checked first (newsetl.cluster)."""
    if not dask_address:
        return PrefectRunner(os.cpu_count() or 1)
    from . import cluster

    found = cluster.check(dask_address, inputs, warehouse)
    get_run_logger().info("parsing on %s", found.describe(), extra={PHASE: True})
    return PrefectRunner(found.workers, found.task_runner())


@flow(name="news-etl", task_runner=ThreadPoolTaskRunner(max_workers=os.cpu_count()),
      description="Front-matter records -> Parquet tables -> DuckDB catalog")
def news_etl(inputs: list[str], warehouse: str = "warehouse", lock_timeout: float = LOCK_TIMEOUT,
             reports_dir: str | None = None, as_of: dt.datetime | None = None,
             dask_address: str | None = None, config: str | None = None, return_checks: bool = False,
             allow_deletes: bool = False, preset: str | None = None, keys: dict | None = None,
             base_url: str | None = None) -> dict:
    """Run the ETL over `inputs` (folders or URLs of Markdown records) into `warehouse` (a folder
    or a URL); with `dask_address` (tcp://scheduler:8786, or local:N) the parse runs on that Dask cluster.
    `config` is the checks' newsetl.toml (default: $NEWSETL_CONFIG, else ./newsetl.toml): each
    alert that opens or resolves is a Prefect event (newsetl.check.*), and the checks a table artifact.
    A run that would delete more than [run] max_delete_share of the warehouse's files fails before
    writing anything (plan.TooManyDeletes) unless `allow_deletes`. `preset`, `keys` and `base_url`:
    how the records' keys map to the columns (newsetl.mapping; a deployment stores them resolved)."""
    if as_of is not None:
        as_of = check_as_of(as_of)  # a bad parameter fails the flow run before anything is written
    settings = load_config(config)  # and so does a wrong configuration
    log = get_run_logger()
    ctx = get_run_context()
    # Without PREFECT_API_URL, Prefect runs a temporary server for this flow; the
    # task processes would each start their own unless told where this one is.
    api = PREFECT_API_URL.value() or str(ctx.client.api_url)
    with temporary_settings(updates={PREFECT_API_URL: api}):
        result = pipeline.run(inputs, warehouse, lock_timeout=lock_timeout, as_of=as_of,
                              log=lambda text: log.info(text, extra={PHASE: True}), progress=_progress,
                              runner=parse_runner(dask_address, inputs, warehouse), flow_run_id=str(ctx.flow_run.id),
                              config=settings, allow_deletes=allow_deletes, preset=preset, keys=keys,
                              base_url=base_url)
    row = result.run
    if row["files_rejected"]:
        log.warning("%s rejected: see source_files (status = 'rejected') for each error",
                    plural(row["files_rejected"], "file"))
    create_table_artifact(
        key="news-etl-summary",
        table=_summary_table(row, result.counts),
        description=f"newsetl run {result.run_id} at {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC}",
    )
    checks = result.checks
    if checks is not None:
        for e in check_events(checks, str(open_warehouse(warehouse).root)):
            emit_event(**e)
            log.warning("%s: %s", e["event"], e["payload"]["message"])
        create_table_artifact(key="news-etl-checks", table=checks_table(checks),
                              description=f"newsetl checks of run {result.run_id}: {checks.summary()}")
    if reports_dir:
        news_reports(warehouse=str(open_warehouse(warehouse).root), out_dir=reports_dir)
    out = {"run_id": result.run_id, "snapshot": result.snapshot, "counts": result.counts, "run": row,
           "keys": result.keys}
    if return_checks:  # `newsetl run` in this process: its alert lines and exit code (not a flow result)
        out["checks"] = checks
    return out


# -- news-reports ---------------------------------------------------------------------------

@task(name="export-report", task_run_name="export-{job.name}", retries=1, retry_delay_seconds=2, **_TASK)
def export_task(warehouse: str, fmt: str, filters: dict, job: bundle.Job) -> int | None:
    return bundle.export_job(warehouse, fmt, filters, job)


def _export_tasks(fn, common: tuple, jobs: list) -> list:
    """bundle.export_all's mapper: each file of the bundle an `export-report` task run."""
    return [f.result() for f in export_task.map(*(unmapped(c) for c in common), jobs)]


def _md_cell(v) -> str:
    """Markdown table cell: names come from the open web; keep them from breaking the table
    or being read as markup."""
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.2f}".rstrip("0").rstrip(".")
    if isinstance(v, int):
        return f"{v:,}"
    text = " ".join(str(v).split())
    for ch in "\\`*_[]<>|#!~":
        text = text.replace(ch, "\\" + ch)
    return text


def top_providers_markdown(rows: list[dict], written: dict, out_dir: str) -> str:
    cols = ["provider_domain", "provider_name", "articles", "avg_quality", "median_quality", "avg_heat_rated",
            "published_pct"]
    lines = [f"# Top {len(rows)} providers by articles", "",
             "| # | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for i, r in enumerate(rows, 1):
        lines.append(f"| {i} | " + " | ".join(_md_cell(r[c]) for c in cols) + " |")
    lines += ["", "avg_heat_rated leaves out heat -1 (not rated); quality runs 0 to about 190.", "",
              f"Reports written to `{out_dir}`: " + ", ".join(f"`{Path(w['path']).name}`" for w in written.values())]
    return "\n".join(lines)


@flow(name="news-reports", description="Every newsetl report exported to a folder, plus report.html")
def news_reports(warehouse: str = "warehouse", out_dir: str = "reports", fmt: str = "csv") -> dict:
    """Export every report of `warehouse` to `out_dir` as NAME.FMT, and report.html."""
    log = get_run_logger()
    written = bundle.export_all(warehouse, out_dir, fmt, mapper=_export_tasks)
    for name, w in written.items():
        if w["rows"] is not None:
            log.info("%s: %s -> %s", name, plural(w["rows"], "row"), w["path"])
    create_markdown_artifact(
        key="news-reports-top-providers",
        markdown=top_providers_markdown(reports.top_providers(warehouse, TOP).to_pylist(), written, out_dir),
        description=f"Top {TOP} providers of {warehouse}",
    )
    # The same headline figures the HTML page opens with, for people who only look at the Prefect UI.
    create_markdown_artifact(
        key="news-reports-summary",
        markdown=html_report.summary_markdown(warehouse),
        description=f"Summary of {warehouse} (report.html in {out_dir})",
    )
    return written
