"""Checks: at the end of every run, compare it with the runs before it, and say what went wrong.

The stage sits between the build and the commit (newsetl.pipeline), so its tables are part of
the atomic snapshot:

- `check_results`: a row per check, segment (a provider's domain, NULL for the whole run) and
  detail (a field or key) per run, with the value measured, the baseline and the verdict. It is
  also the history the next run's baselines are read from: nothing is measured twice. One part
  per run, merged two by two like a binary counter, so a run writes O(log runs) parts at most;
- `check_alerts`: a row per alert, open from the run where a check first warned or failed for
  that segment to the run where it passed again (a fault lasting 5 runs opens once and resolves
  once).

Measuring is DuckDB SQL over the snapshot's own tables (sql/checks/<check>.sql), filtered to
what the run touched, so a run's checks cost what it changed (freshness reads the last 150
days of publish times); judging is newsetl.checks.judge, and the settings newsetl.checks.config.
A check whose SQL fails gives an `error` row; the run is published all the same.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .config import CHECKS, Config, ConfigError, load_config
from .judge import RULES, Context, Result
from ..words import plural

__all__ = ["CHECKS", "Config", "ConfigError", "Outcome", "Result", "check_snapshot", "evaluate", "load_config"]

@dataclass
class Outcome:
    """What a run's checks found: every result, and the alerts that opened or resolved."""

    run_id: str
    as_of: dt.datetime
    results: list[Result]
    opened: list[dict] = field(default_factory=list)
    resolved: list[dict] = field(default_factory=list)
    open_alerts: list[dict] = field(default_factory=list)
    explain: list[dict] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)

    def worst(self) -> str:
        s = {r.status for r in self.results}
        return "fail" if "fail" in s else "warn" if "warn" in s else "error" if "error" in s else "pass"

    def exit_code(self, fail_on: str) -> int:
        """0: passed, or only warnings; 1: a check failed (or could not run); 2: warnings, with
        fail_on warn. fail_on never: always 0."""
        if fail_on == "never":
            return 0
        s = {r.status for r in self.results}
        if "fail" in s or "error" in s:
            return 1
        if fail_on == "warn" and "warn" in s:
            return 2
        return 0

    def summary(self) -> str:
        parts = [f"{self.count(s):,} {s}" for s in ("fail", "warn", "error", "muted", "pass") if self.count(s)]
        waiting = self.count("insufficient_history")
        if waiting:
            parts.append(f"{plural(waiting, 'result')} waiting for history")
        return f"checks: {', '.join(parts) or 'none'}" + \
            (f"; {plural(len(self.open_alerts), 'alert')} open" if self.open_alerts else "")


@functools.cache
def _sql(check: str) -> str:
    return (resources.files("newsetl") / "sql" / "checks" / f"{check}.sql").read_text(encoding="utf-8")


def _params(check: str, sql: str, ctx: Context) -> dict:
    p = {"run_id": ctx.run_id, "as_of": ctx.as_of}
    if "$future_hours" in sql:
        p["future_hours"] = ctx.s(check, "future_hours")
    if "$runs" in sql:
        n = int(ctx.s(check, "runs"))
        p["runs"] = [r for r, _ in ctx.runs[-n:]][::-1] or [ctx.run_id]  # this run and the ones before
    return {k: v for k, v in p.items() if f"${k}" in sql}


def _rows(con, sql: str, params: dict) -> list[dict]:
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def load_history(con, run_id: str, config: Config) -> tuple[dict, dict, list]:
    """The earlier results baselines read, and the runs. Values that warned or failed are left
    out, but front-matter drift's: a key that changed is flagged in the run it changes (the
    fields it leaves empty go on failing in completeness)."""
    runs = con.execute("SELECT run_id, as_of FROM runs WHERE status = 'completed' AND run_id <= $r "
                       "ORDER BY run_id", {"r": run_id}).fetchall()
    hours, prev = {}, None
    for r, t in runs:
        hours[r] = (t - prev).total_seconds() / 3600 if prev is not None and t > prev else None
        prev = t
    window = [r for r, _ in runs if r != run_id][-3 * config.training_runs:]
    history: dict = {}
    if window:
        rows = con.execute(
            "SELECT check_name, segment, detail, run_id, observed, sample_size FROM check_results "
            "WHERE run_id >= $first AND run_id <> $r AND verdict <> 'error' "
            "AND (verdict NOT IN ('warn', 'fail') OR check_name = 'frontmatter_drift') "
            "ORDER BY run_id", {"first": window[0], "r": run_id}).fetchall()
        keep = set(window)
        for c, seg, d, r, v, n in rows:
            if r in keep:
                history.setdefault((c, seg, d), []).append((r, v, n))
    return history, hours, [(r, t) for r, t in runs]


def _threads(snapshot: Path) -> int:
    """Two threads for the checks' queries (a bound on their memory), one over a small warehouse
    (duck.threads_for)."""
    from ..duck import threads_for
    from ..store import read_info

    try:
        files = read_info(snapshot).get("counts", {}).get("source_files")
    except Exception:  # noqa: BLE001 - only a tuning: unreadable (the checks will say so), the default
        files = None
    return 2 if files is None else threads_for(files, 2)


def evaluate(con, run_id: str, as_of: dt.datetime, config: Config, explain: bool = False) -> Outcome:
    """Every enabled check of run `run_id` over the views of `con` (a snapshot's tables)."""
    history, hours, runs = load_history(con, run_id, config)
    ctx = Context(config, run_id, as_of, history, hours, runs)
    results: list[Result] = []
    notes = []
    for check in CHECKS:
        if not config.enabled_for(check):
            continue
        sql = _sql(check)
        params = _params(check, sql, ctx)
        try:
            rows = _rows(con, sql, params)
            if check == "rejection_rate":
                _provider_hints(con, rows, run_id)
            got = RULES[check](ctx, rows)
        except Exception as e:  # noqa: BLE001 - one check's failure is its row, never the run's
            text = " ".join(str(e).split())[:300]
            got = [Result(check, None, None, "error", message=f"the check could not run: {type(e).__name__}: {text}")]
            rows = []
        got = [r for r in got if config.enabled_for(check, r.segment)]
        for r in got:
            _settle(r, config, as_of)
        results += got
        if explain:
            notes.append({"check": check, "sql": sql.strip(), "params": {k: str(v) for k, v in params.items()},
                          "rows": len(rows), "results": got})
    return Outcome(run_id, as_of, results, explain=notes)


def _settle(r: Result, config: Config, as_of: dt.datetime) -> None:
    """The status: the verdict, at the check's (or provider's) level, unless muted."""
    level = config.setting(r.check_name, "level", r.segment)
    v = r.verdict
    if v in ("warn", "fail") and level != "auto":
        v = level
    r.verdict = v
    mute = config.mute_for(r.check_name, r.segment, r.detail, as_of) if v in ("warn", "fail") else None
    if mute is not None:
        r.status = "muted"
        r.message += f" [muted until {mute.until:%Y-%m-%d}{': ' + mute.reason if mute.reason else ''}]"
    else:
        r.status = v


def _provider_hints(con, rows: list[dict], run_id: str) -> None:
    """Which providers the rejected files were from, where the files say it in a line the
    rejection did not hide (sources keep no text of a rejected file: read the first 64 KB of up
    to 200 of them again, from the inputs the run named)."""
    if not rows or not rows[0].get("rejected"):
        return
    import re

    try:
        info = con.execute("SELECT inputs FROM runs WHERE run_id = $r", {"r": run_id}).fetchall()
        inputs = json.loads(info[0][0]) if info and info[0][0] else []
    except Exception:  # noqa: BLE001
        return
    from ..sources import os_name, resolve_inputs

    try:
        roots = {name: root for name, root in resolve_inputs(inputs).items() if isinstance(root, Path)}
    except Exception:  # noqa: BLE001 - an input gone since: no hints
        return
    if not roots:
        return
    # rejected for what they hold (their bytes were read: a hash), not a FIFO, a device or a folder
    paths = [p for (p,) in con.execute("SELECT source_path FROM source_files WHERE run_id = $r AND status = "
                                       "'rejected' AND sha256 IS NOT NULL ORDER BY source_path LIMIT 200",
                                       {"r": run_id}).fetchall()]
    domain = re.compile(rb"^[ \t]+domain:[ \t]*[\"']?([^\"'\s#]+)", re.MULTILINE)
    counts: dict[str, int] = {}
    for sp in paths:
        name = next((n for n in roots if sp.startswith(n + "/")), None)
        if name is None:
            continue
        head = _head(os.path.join(roots[name], os_name(sp[len(name) + 1:])))
        if head is None:
            continue
        m = domain.search(head)
        if m:
            d = m.group(1).decode("utf-8", "replace").lower().rstrip(".")
            counts[d] = counts.get(d, 0) + 1
    if counts:
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
        rows[0]["providers"] = ", ".join(f"{d} ({n})" for d, n in top) + (
            f" in the first {len(paths)}" if len(paths) == 200 else "")


def _head(path: str, size: int = 65536) -> bytes | None:
    """The first bytes of a regular file, or None: never blocks (a FIFO put there since the run
    read it opens at once with O_NONBLOCK, and is not read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, size)
    except OSError:
        return None
    finally:
        os.close(fd)


# -- alerts ---------------------------------------------------------------------------------------

def lifecycle(previous: list[dict], results: list[Result], run_id: str, as_of: dt.datetime) -> tuple[list[dict], list[dict], list[dict]]:
    """(every alert after this run, the ones opened, the ones resolved). An alert is a check,
    segment and detail that warns or fails; it stays open while it does, and resolves on the first
    run where the same check passes for it. A muted result, or one not measured (no articles of
    that provider this run), leaves it as it is."""
    alerts = [dict(a) for a in previous]
    open_ = {(a["check_name"], a["segment"], a["detail"]): a for a in alerts if a["state"] == "open"}
    opened, resolved = [], []
    for r in results:
        key = (r.check_name, r.segment, r.detail)
        a = open_.get(key)
        if r.status in ("warn", "fail"):
            if a is None:
                a = {"alert_id": hashlib.sha256(f"{run_id}\0{key}".encode()).hexdigest()[:16],
                     "check_name": r.check_name, "segment": r.segment, "detail": r.detail, "state": "open",
                     "level": r.status, "opened_run_id": run_id, "opened_at": as_of, "runs": 0,
                     "resolved_run_id": None, "resolved_at": None}
                alerts.append(a)
                open_[key] = a
                opened.append(a)
            elif r.status == "fail":
                a["level"] = "fail"
            again = a.get("last_run_id") == run_id  # the same run evaluated again (`newsetl check`)
            a.update(last_run_id=run_id, last_at=as_of, runs=(a["runs"] or 0) + (not again), observed=r.observed,
                     expected=r.expected, message=r.message)
        elif r.status == "pass" and a is not None:
            a.update(state="resolved", resolved_run_id=run_id, resolved_at=as_of)
            a["resolved_message"] = r.message
            resolved.append(a)
            del open_[key]
    return alerts, opened, resolved


# -- the stage ------------------------------------------------------------------------------------

def check_snapshot(snapshot: Path, run_id: str, as_of: dt.datetime, config: Config | None = None, *,
                   write: bool = True, explain: bool = False, con=None) -> Outcome:
    """Run the checks of `run_id` over `snapshot` (a partial one, before its commit, or the current
    one) and, with `write`, add its results and alerts to the snapshot's check tables. `con`: an
    in-memory DuckDB connection to use (its main schema gets the snapshot's views), else a new one."""
    import duckdb

    from ..catalog import create_views

    config = config or load_config()
    own = con is None
    con = duckdb.connect() if own else con
    try:
        con.execute(f"SET threads TO {_threads(snapshot)}")
        create_views(con, snapshot, analytics=False)
        # a run evaluated again (`newsetl check`): its earlier rows are not its own history
        outcome = evaluate(con, run_id, as_of, config, explain)
        previous = _rows(con, "SELECT * FROM check_alerts ORDER BY opened_run_id, alert_id", {})
        alerts, outcome.opened, outcome.resolved = lifecycle(previous, outcome.results, run_id, as_of)
        outcome.open_alerts = [a for a in alerts if a["state"] == "open"]
        if write:
            _write(con, snapshot, run_id, as_of, outcome.results, alerts)
    finally:
        if own:
            con.close()
    return outcome


def _write(con, snapshot: Path, run_id: str, as_of: dt.datetime, results: list[Result], alerts: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..schema import CHECK_ALERTS, CHECK_RESULTS
    from ..store import read_info, write_info

    info = read_info(snapshot)
    files = info.setdefault("files", {})
    counts = info.setdefault("counts", {})
    # columns, not a dict a row: a first run of 5,000 records has 7,000 results
    n = len(results)
    cols = {"run_id": [run_id] * n, "as_of": [as_of] * n}
    for name in CHECK_RESULTS.names[2:]:
        values = [getattr(r, name) for r in results]
        cols[name] = [_f(v) for v in values] if name in _FLOATS else values
    folder = snapshot / CHECK_RESULTS.name
    folder.mkdir(exist_ok=True)
    # a run's results are its own part; earlier runs' parts are the hard links the build made
    names = [n for n in files.get(CHECK_RESULTS.name, []) if not n.startswith(run_id)]
    for n in files.get(CHECK_RESULTS.name, []):
        if n.startswith(run_id):
            (folder / n).unlink(missing_ok=True)
    part = f"{run_id}.parquet"
    pq.write_table(pa.Table.from_pydict(cols, schema=CHECK_RESULTS.schema), folder / part, compression="zstd")
    names, sizes = _merge(folder, [*names, part], run_id)
    files[CHECK_RESULTS.name] = names
    counts[CHECK_RESULTS.name] = sum(sizes)
    afolder = snapshot / CHECK_ALERTS.name
    afolder.mkdir(exist_ok=True)
    target = afolder / "part-0.parquet"
    target.unlink(missing_ok=True)  # a hard link to the last snapshot's: never written through
    cols = CHECK_ALERTS.names
    pq.write_table(pa.Table.from_pylist([{c: a.get(c) for c in cols} for a in alerts], schema=CHECK_ALERTS.schema),
                   target, compression="zstd")
    files[CHECK_ALERTS.name] = ["part-0.parquet"]
    counts[CHECK_ALERTS.name] = len(alerts)
    try:
        info["view_counts"] = _check_view_counts(con, snapshot, files)
    except Exception:  # noqa: BLE001 - a shortcut for `tables`, never the run's failure: it counts them itself
        info.pop("view_counts", None)
    write_info(snapshot, info)


def _check_view_counts(con, snapshot: Path, files: dict) -> dict:
    """The rows of the analytics views that read the checks' tables and nothing else but `runs`
    (open_alerts, check_history), counted over the files just written: `newsetl tables` after a run shows
    them without starting DuckDB (catalog.tables). Keyed by the views' SQL and DuckDB's version:
    another newsetl, or another DuckDB, counts again."""
    from ..catalog import sql_words, view_sql_files, views_digest
    from ..duck import engine_version
    from ..parts import view_sql
    from ..schema import CHECK_TABLES, RUNS, WAREHOUSE_TABLES

    own = {t.name for t in CHECK_TABLES}
    # every run writes these anew (a view that names one is counted again after each run); a
    # word is enough to name it (open_alerts' column `runs` does): counting more is harmless
    others = {t.name for t in WAREHOUSE_TABLES} - own - {RUNS.name}
    for t in CHECK_TABLES:  # the views of con still show the files before this run's results
        paths = [snapshot / t.name / n for n in files.get(t.name, [])]
        con.execute(f"CREATE OR REPLACE VIEW {t.name} AS {view_sql(t.name, paths)}")
    counts = {}
    views = view_sql_files()
    for name, sql in views:
        words = sql_words(sql)
        if words & own and not words & others and not words & ({n for n, _ in views} - {name}):
            con.execute(sql)
            counts[name] = con.execute(f'SELECT count(*) FROM "{name}"').fetchall()[0][0]
    return {"views": views_digest(), "engine": engine_version(), "counts": counts}


_FLOATS = ("observed", "expected", "lower", "upper")  # numbers of any kind in a Result, floats in the table


def _f(x) -> float | None:
    return None if x is None else float(x)


def _merge(folder: Path, names: list[str], run_id: str) -> tuple[list[str], list[int]]:
    """Merge the two newest parts while the older is not bigger than the newer (a binary counter):
    there are O(log runs) parts, and a row is rewritten O(log runs) times in all. The parts, and
    their rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..schema import CHECK_RESULTS

    sizes = [pq.read_metadata(folder / n).num_rows for n in names]
    step = 0
    while len(names) >= 2 and sizes[-2] <= sizes[-1]:
        step += 1
        merged = f"{run_id}.{step}.parquet"
        both = [pq.ParquetFile(folder / n).read().cast(CHECK_RESULTS.schema) for n in names[-2:]]
        pq.write_table(pa.concat_tables(both), folder / merged, compression="zstd")
        for n in names[-2:]:  # this snapshot's links (or this run's own step): older snapshots keep theirs
            (folder / n).unlink(missing_ok=True)
        names = [*names[:-2], merged]
        sizes = [*sizes[:-2], sizes[-2] + sizes[-1]]
    return names, sizes
