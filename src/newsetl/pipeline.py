"""A run, composed once: plan -> parse -> build -> check -> publish.

`run()` is the only place where the order of the stages is written, and where
the crash tests' fault points are. Each stage is a module of its own name
(plan, parse, build, checks, publish) whose functions take and return small explicit
values, so each can be called and tested alone. How the parse batches are
mapped is the `runner` (newsetl.runners: this process or a local pool; the
Prefect flow passes one that maps a Prefect task); `log` hears one line per
phase and `progress` (done, total) after each batch.

A run that finds nothing to read and nothing gone (`Plan.idle`) starts no
workers and parses nothing: it publishes the last snapshot's tables again with
this run's row. What only a parse needs (the parser, worker pools) is imported
when there is something to parse.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from . import publish
from .build import build, check_build_memory
from .checks import Config, Outcome, check_snapshot, load_config
from .catalog import ensure_catalog
from .mapping import SAMPLE
from .mapping import check_args as check_mapping_args
from .mapping import describe as describe_mapping
from .mapping import resolve as resolve_mapping
from .plan import BATCH_BYTES, BATCH_FILES, begin, check_as_of, check_deletes, make_batches, plan
from .remote import open_warehouse
from .store import LOCK_TIMEOUT, Warehouse, WarehouseError, write_failure, write_failures_in_one_line
from .words import plural, run_summary

if TYPE_CHECKING:
    from .parse import BatchResult
    from .runners import Runner

__all__ = ["ParseFailed", "RunResult", "fault_point", "run"]


def fault_point(name: str) -> None:
    """Crash tests set NEWSETL_FAULT=<point>:kill (or <point>:sleep=<s>) to stop a real run here.

    Points: parsing (each parsed batch), parsed, built, committed, cataloged.
    Unset, this costs one dict lookup.
    """
    spec = os.environ.get("NEWSETL_FAULT")
    if not spec or not spec.startswith(name + ":"):
        return
    action = spec.split(":", 1)[1]
    if action == "kill":
        os.kill(os.getpid(), 9)
    elif action.startswith("sleep="):
        time.sleep(float(action[6:]))


class ParseFailed(WarehouseError):
    """A parse batch failed on every try (a worker's error, not a file's): nothing was published."""


def parse_failed(e: Exception, wh: Warehouse) -> Exception:
    """What a failed parse raises: the warehouse's own one-line error (a full disk), one that
    is already one line, or a ParseFailed naming the worker's error."""
    # (in object storage the local writes are the mirror's)
    if isinstance(e, WarehouseError) or write_failure(e, wh.local.root if wh.remote else wh.root) is not None:
        return e
    text = " ".join(str(e).split())[:300]
    return ParseFailed(f"a parse batch failed on every try ({type(e).__name__}{': ' + text if text else ''}): "
                       f"nothing was published to {wh.root}, the last complete snapshot is current; "
                       "fix the cause and run again")


@dataclass
class RunResult:
    run_id: str
    warehouse: str
    snapshot: str
    counts: dict
    run: dict
    checks: Outcome | None = None  # None: the checks could not run (the snapshot is published all the same)
    keys: str = ""  # which mapping of the records' keys the run used, and why (newsetl.mapping.describe)
    mapping: object = None  # that mapping.Mapping

    def summary(self) -> str:
        return run_summary(self.run_id, self.run, self.counts)  # the line `newsetl run` prints


def _check(built, wh: Warehouse, as_of: dt.datetime, config: Config, say, con) -> Outcome | None:
    """The checks stage: its tables join the snapshot before the commit. A check that fails is an
    `error` row; should the stage itself fail (not the disk), the run publishes without it."""
    try:
        return check_snapshot(Path(built.snapshot), built.run_id, as_of, config, con=con)
    except Exception as e:  # noqa: BLE001 - the data is published either way
        if isinstance(e, WarehouseError) or write_failure(e, wh.local.root if wh.remote else wh.root) is not None:
            raise
        say(f"checks could not run ({type(e).__name__}: {' '.join(str(e).split())[:200]}); "
            "the snapshot is published without this run's check results")
        return None


SAMPLE_BYTES = 1 << 20


def _sample(p) -> list[tuple[str, dict]]:
    """The first records the run reads (local files only), for detecting the preset by their keys."""
    if not p.to_read:  # nothing to parse: the parser is not even imported
        return []
    from .frontmatter import extract_all
    from .sources import read_file

    # a file the listing found unreadable (a FIFO, a dangling link) or a big one is not worth it here
    files = [f for f, _sha in p.to_read[:4 * SAMPLE]  # a folder of files that are no records is not read through
             if f.version is None and f.problem is None and f.size <= SAMPLE_BYTES]
    out: list[tuple[str, dict]] = []
    for i in range(0, len(files), SAMPLE):
        if len(out) >= SAMPLE:
            break
        items = []
        for f in files[i:i + SAMPLE]:
            try:
                items.append((f, read_file(f)))
            except Exception:  # noqa: BLE001 - gone, unreadable or no longer a file: the parse says why
                continue
        # a batch, as the parse reads them: one subset test for all (fastyaml.precheck), and the
        # record-by-record regex compiled only for one that fails it (0.15 s of a run's start)
        out += [(ex.file.rel_path, ex.record) for ex in extract_all(items) if ex.record is not None]
    return out[:SAMPLE]


def _local(workers: int | None) -> Runner:
    from .runners import Local  # multiprocessing and the parser: only for a run that parses

    return Local(workers)


def _parse(runner: Runner, batches: list, wh: Warehouse, progress) -> list[BatchResult]:
    """Map the parse over `batches`; each finished batch is made durable here."""
    results = []
    done, total = 0, sum(len(b.files) for b in batches)
    try:
        for spec, result in runner.map(batches):
            # workers do not wait for the disk: this process, idle meanwhile, makes each batch durable
            # (or, for a warehouse in object storage, fetches it for the build)
            wh.batch_done(spec.batch_id)
            results.append(result)
            fault_point("parsing")
            done += len(spec.files)
            if progress:
                progress(done, total)
    except Exception as e:
        failed = parse_failed(e, wh)
        if failed is e:
            raise
        raise failed from e
    return results


@write_failures_in_one_line
def run(inputs, warehouse="warehouse", *, workers: int | None = None, lock_timeout: float = LOCK_TIMEOUT,
        progress=None, log=None, runner: Runner | None = None, run_id: str | None = None,
        flow_run_id: str | None = None, as_of: dt.datetime | None = None, batch_files: int = BATCH_FILES,
        batch_bytes: int = BATCH_BYTES, parser: str = "fast", config: Config | str | None = None,
        allow_deletes: bool = False, preset: str | None = None, keys: dict | None = None,
        base_url: str | None = None) -> RunResult:
    """Run the ETL on `inputs` (folders or URLs) into `warehouse` (a folder or a URL).

    `runner` maps the parse batches (default: `runners.Local(workers)`, this
    machine's cores). `parser="pyyaml"` parses every file with PyYAML's meaning
    alone: slower, and the reference the fast parser's tables are tested against. `config` is
    the checks' settings (newsetl.checks.config: a Config, a newsetl.toml path, or None for
    $NEWSETL_CONFIG, else ./newsetl.toml, else the defaults). A run that would delete more than
    `config.max_delete_share` of the warehouse's files raises plan.TooManyDeletes before it writes
    anything, unless `allow_deletes`. `preset` (news, hugo, jekyll, eleventy, astro), `keys`
    (column -> generator keys) and `base_url` say how the records' keys map to the columns
    (newsetl.mapping); each not given comes from the configuration's [site] and [keys], and the
    preset else is detected from the site's files or the first records' keys."""
    if parser not in ("fast", "pyyaml"):
        raise ValueError(f"unknown parser {parser!r}: fast or pyyaml")
    if not isinstance(config, Config):
        config = load_config(config)  # a wrong file stops the run before it starts (ConfigError)
    if as_of is not None:
        as_of = check_as_of(as_of)  # before the warehouse folder is made
    check_mapping_args(preset, keys, base_url)  # and so is a wrong preset, [keys] or base URL
    check_build_memory()  # before a parse that would be lost
    say = log or (lambda text: None)
    wh = open_warehouse(warehouse)
    wh.prepare()
    with wh.lock(lock_timeout):
        batches: list = []
        batches_made = 0
        results: list[BatchResult] = []
        try:
            if wh.current() is None:
                runner = runner or _local(workers)
                runner.start()  # a first run parses every file: workers warm up while this process lists
            ensure_catalog(wh)
            p = plan(inputs, warehouse, run_id, as_of)
            check_deletes(p, config.max_delete_share, allow_deletes)  # before anything is written
            keymap, why = resolve_mapping(inputs, preset, keys, base_url, config, lambda: _sample(p))
            say("keys: " + describe_mapping(keymap, why))
            begin(wh, p)
            say(f"run {p.run_id}: {plural(p.files_seen, 'file')} seen, {len(p.to_read):,} to read ({p.files_new:,} new), "
                f"{len(p.unchanged):,} unchanged, {len(p.deleted):,} deleted")
            if not p.idle:  # else nothing to parse: no workers, no batches
                runner = runner or _local(workers)
                batches = make_batches(p, wh.parse_staging, batch_files, batch_bytes, runner.workers, parser,
                                       keys=keymap)
                results = _parse(runner, batches, wh, progress)
                batches_made = len(batches)
                batches = []
                p.parsed()
        finally:
            if runner is not None:
                runner.close()  # the workers' memory is freed before the build
        results.sort(key=lambda r: r.batch_id)
        say(f"parsed {plural(sum(r.parsed for r in results), 'file')}, {sum(r.rejected for r in results):,} rejected, "
            f"{sum(len(r.same) for r in results):,} touched but unchanged, in {plural(batches_made, 'batch')}")
        fault_point("parsed")
        built = build(p, results, flow_run_id, fetch=wh.fetch_batches)
        fault_point("built")
        with duckdb.connect() as con:  # the checks' and the catalog's: one new database, not two (25 ms each)
            outcome = _check(built, wh, p.as_of, config, say, con)
            final = publish.commit(built, wh)
            fault_point("committed")
            publish.catalog(wh, final, con)
            fault_point("cataloged")
        wh.collect()
    say(f"published snapshot {final.name}: " + ", ".join(f"{k} {v:,}" for k, v in built.counts.items()))
    if outcome is not None:
        say(outcome.summary())
    return RunResult(p.run_id, str(wh.root), wh.where(final), built.counts, built.run_row, outcome,
                     describe_mapping(keymap, why), keymap)
