"""The `newsetl` command: a thin layer over the library.

Every command has --help with examples. Errors are one line on stderr and a
non-zero exit code; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import atexit
import gc
import math
import os
import sys
import time
from pathlib import Path

from . import WAREHOUSE_ENV, _warehouse
from .words import close_match, plural, run_summary

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_LOCKED = 3
EXIT_CONFIG = 3  # `newsetl check`: the configuration is wrong (its other codes: checks.Outcome.exit_code)


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_ERROR):
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    """argparse's parser, saying the close match of a mistyped choice (a command, a --format):
    Python 3.11's has no suggest_on_error."""

    def _check_value(self, action, value):
        if action.choices is not None and value not in action.choices:
            choices = ", ".join(map(repr, action.choices))
            raise argparse.ArgumentError(action, f"invalid choice: {value!r}{close_match(value, action.choices)} "
                                                 f"(choose from {choices})")


def _fmt(prog_examples: str) -> dict:
    return dict(formatter_class=argparse.RawDescriptionHelpFormatter, epilog="examples:\n" + prog_examples)


# -- options shared by several commands, each declared (and its default defined) once ---------

def _number(kind: type, low: float, what: str, *, above: bool = False):
    """An argparse action for a numeric option: a whole number (`kind` int) or a finite one
    (float), at least `low` (above it with `above`); anything else stops the command line with
    argparse's one line (`newsetl run: error: argument --workers: ...`), without the usage."""

    class Number(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            try:
                v = kind(values)
                ok = (kind is int or math.isfinite(v)) and (v > low if above else v >= low)
            except ValueError:
                ok = False
            if not ok:
                bound = "" if low == -math.inf else f" {'greater than' if above else 'of at least'} {low:g}"
                parser.exit(EXIT_USAGE, f"{parser.prog}: error: argument {option_string}: {values!r} is not "
                                        f"{what}{bound}\n")
            setattr(namespace, self.dest, v)

    return Number


def _warehouse_option(p) -> None:
    p.add_argument("--warehouse", default=_warehouse(None),
                   help=f"warehouse folder, or URL such as s3://bucket/prefix (default: ${WAREHOUSE_ENV}, "
                        "else ./warehouse)")


def _lock_timeout_option(p) -> None:
    from .defaults import LOCK_TIMEOUT

    p.add_argument("--lock-timeout", action=_number(float, 0, "a number of seconds"), default=LOCK_TIMEOUT,
                   metavar="SECONDS",
                   help=f"how long a run waits for another run on the same warehouse (default: {LOCK_TIMEOUT:g})")


def _output_options(p, format_default: str = "") -> None:
    from .defaults import FORMATS

    p.add_argument("--out", default=None, metavar="FILE",
                   help="write to FILE (.csv, .json, .ndjson, .md, .parquet); - writes CSV to standard output")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help=f"output format; line: one field a line, as DuckDB's .mode line (default: from --out, "
                        f"else a table{format_default})")
    p.add_argument("--max-width", action=_number(int, 1, "a whole number"), default=None, metavar="N",
                   help="width of a table on the terminal (default: the terminal's); columns that do not fit "
                        "are named below it")


class _Version(argparse.Action):
    """--version, read only when asked (importlib.metadata is 60 ms of every start)."""

    def __call__(self, parser, namespace, values, option_string=None):
        from . import _package_version

        parser.exit(0, f"newsetl {_package_version()}\n")


def _config_option(p) -> None:
    p.add_argument("--config", default=None, metavar="FILE",
                   help="the checks' settings (default: $NEWSETL_CONFIG, else ./newsetl.toml if there is one, "
                        "else the built-in defaults; docs/checks.md)")


def _base_url(text: str) -> str:
    from .mapping import check_base_url

    def bad(_name, problem):
        return argparse.ArgumentTypeError(problem)

    return check_base_url(text, "--base-url", bad)


def _keys_options(p) -> None:
    from .defaults import PRESETS

    p.add_argument("--preset", choices=PRESETS, default=None,
                   help="whose front-matter keys the records use: news (publishedDateTime, webUrl, ...) or a "
                        "generator's (date, tags, url, image, ...). Default: [site] preset in newsetl.toml, else "
                        "news when the first records hold publishedDateTime or webUrl, else detected from the site's files (hugo.toml, _config.yml or _posts, eleventy.config.*, "
                        "astro.config.* or src/content, in the input folder or up to 3 above it), else from "
                        "the first records' keys (docs/data-dictionary.md, \"Generator front matter\")")
    p.add_argument("--base-url", default=None, metavar="URL", type=_base_url,
                   help="the site's URL (https://example.com), joined to records' paths (url: /posts/a/) "
                        "and, for records with no URL key, to the path built from the file's path and slug "
                        "(default: [site] base_url in newsetl.toml)")


def _fail_on_option(p, default: str) -> None:
    p.add_argument("--fail-on", choices=("fail", "warn", "never"), default=None,
                   help=f"exit 1 when a check fails, and 2 on warnings too with `warn` (default: {default})")


def _load_config(a):
    from .checks import ConfigError, load_config

    try:
        return load_config(a.config)
    except ConfigError as e:
        raise CliError(str(e), EXIT_CONFIG) from None


def _alert_lines(outcome, stream=None) -> None:
    """One line per alert that opened or resolved in this run."""
    stream = stream or sys.stdout
    for al in outcome.opened:
        print(f"alert {al['level']}: {al['check_name']} {al['segment'] or '(whole run)'}"
              f"{' ' + al['detail'] if al['detail'] else ''}: {al['message']}", file=stream)
    for al in outcome.resolved:
        print(f"resolved: {al['check_name']} {al['segment'] or '(whole run)'}"
              f"{' ' + al['detail'] if al['detail'] else ''}, open {plural(al['runs'], 'run')}: "
              f"{al['resolved_message']}", file=stream)


def _snapshot_option(p) -> None:
    p.add_argument("--snapshot", default=None, metavar="ID",
                   help="read the kept snapshot ID instead of the current one (newsetl rollback --list shows them)")


def _quiet_option(p) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="errors only: no progress, no summary")


def _outside_warehouse(a, flag: str, path) -> None:
    """A result is not the warehouse's data: a file or folder of results is never written in it
    (a run would then refuse the folder, which holds something newsetl did not write)."""
    if not path:
        return
    from .remote import open_warehouse

    wh = open_warehouse(a.warehouse)
    if not wh.remote and wh.holds(path):
        raise CliError(f"{flag} {path} is inside the warehouse {wh.root}: write results elsewhere", EXIT_USAGE)


def _write(table, a, wrap: tuple = ()) -> None:
    """A command's result table, as its output options say; on the terminal, the columns in
    `wrap` are wrapped over several lines instead of cut short."""
    from . import export

    if a.out != "-":
        _outside_warehouse(a, "--out", a.out)
    fmt = export.write(table, a.out, a.format, max_width=a.max_width, wrap=wrap)
    if a.out and a.out != "-":
        print(f"wrote {plural(table.num_rows, 'row')} to {a.out} ({fmt})", file=sys.stderr)


# -- progress -------------------------------------------------------------------

class Progress:
    """A one-line progress bar, drawn only when the stream is a terminal: a log or a pipe
    (`make run > log`) gets the run's summary, not a line per tenth of the files."""

    def __init__(self, label: str, stream=None):
        self.label, self.stream = label, stream or sys.stderr  # the one in place now, not at import
        self.tty = self.stream.isatty()
        self.t0 = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if total <= 0 or not self.tty:
            return
        frac = done / total
        rate = done / max(time.monotonic() - self.t0, 1e-9)
        if self.tty:
            bar = "#" * int(frac * 30)
            self.stream.write(f"\r{self.label} [{bar:<30}] {done:,}/{total:,} files  {rate:,.0f}/s ")
            if done >= total:
                self.stream.write("\n")
            self.stream.flush()


# -- commands -------------------------------------------------------------------

def prefect_api() -> str | None:
    """The Prefect API this user has configured (PREFECT_API_URL, or in the active
    profile), or None: read from the environment and the profiles file, without
    importing Prefect (a second of imports a local run does not need)."""
    return _prefect_setting("PREFECT_API_URL")


def prefect_ui() -> str | None:
    """The Prefect UI to link a flow run to: PREFECT_UI_URL (environment or active profile), else
    the API's URL without its `/api` (a self-hosted server's UI, `prefect server start`), else None."""
    ui = _prefect_setting("PREFECT_UI_URL")
    if ui:
        return ui.rstrip("/")
    api = prefect_api()
    if api and api.rstrip("/").endswith("/api"):
        return api.rstrip("/")[: -len("/api")]
    return None


def _prefect_setting(name: str) -> str | None:
    """A Prefect setting from the environment, else the active profile; None when unset or empty."""
    url = os.environ.get(name)
    if url is not None:
        return url or None
    import tomllib

    home = Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser()
    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml").expanduser()
    try:
        profiles = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    profile = os.environ.get("PREFECT_PROFILE") or profiles.get("active") or "ephemeral"
    return (profiles.get("profiles", {}).get(profile, {}).get(name)) or None


def _pyarrow_without_pandas() -> None:
    """Have pyarrow take this process as one without pandas: a run hands pyarrow no DataFrame,
    and pyarrow imports pandas (about 0.3 s, more than a run that finds no change costs)
    the first time it infers a type from a Python value or imports pyarrow.dataset. It
    looks for pandas once per process, so `import pandas` fails while it looks here. Only
    for this process (`newsetl run`), never the library's callers: they may hand pyarrow
    DataFrames. Table.to_pandas still works, importing pandas then."""
    if "pandas" in sys.modules:
        return
    import pyarrow as pa

    class NoPandas:
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name == "pandas":
                raise ImportError("not for a newsetl run")

    sys.meta_path.insert(0, NoPandas)
    try:
        pa.lib._pandas_api.have_pandas  # the Python side's look ...
        pa.scalar(0)  # ... and the C++ side's (type inference)
    finally:
        sys.meta_path.remove(NoPandas)


def cmd_run(a) -> int:
    from . import watchdog

    watchdog.start()  # first: every process this run starts carries its token, and dies with it
    # Registered first, so it runs last at exit, after Prefect has sent its logs: the collector's
    # final walk over Prefect's objects would take a second (measured, bench/README.md); the
    # warehouse is committed and every file closed by then, and the OS frees the memory.
    atexit.register(gc.freeze)
    from .sources import InputError, resolve_inputs
    from .remote import open_warehouse

    try:
        resolve_inputs(a.inputs)  # fail fast on a missing folder (or bucket) or a name given twice
    except InputError as e:
        raise CliError(str(e), EXIT_USAGE) from None
    _outside_warehouse(a, "--reports", a.reports)
    if a.catalog == "-":
        raise CliError("--catalog - : the catalog is a DuckDB database file, which standard output cannot hold; "
                       "name a file", EXIT_USAGE)
    config = _load_config(a)  # and on a wrong configuration, before anything is written
    open_warehouse(a.warehouse).prepare()  # and on an unusable warehouse
    if a.catalog and not open_warehouse(a.warehouse).remote:
        raise CliError(f"--catalog is for a warehouse in object storage; {a.warehouse} has its own news.duckdb",
                       EXIT_USAGE)
    if a.dask:  # and on a Dask cluster that cannot run the parse (no scheduler: within seconds)
        if a.no_prefect:
            raise CliError("--dask runs the parse as Prefect tasks on the cluster: drop --no-prefect", EXIT_USAGE)
        from .cluster import check

        check(a.dask, a.inputs, a.warehouse)
    progress = None if a.quiet or not sys.stderr.isatty() else Progress("parsing")
    api = prefect_api()
    if a.prefect or a.dask or (api and not a.no_prefect):
        out = _run_flow(a, progress)
    else:
        _pyarrow_without_pandas()
        from . import pipeline

        result = pipeline.run(a.inputs, a.warehouse, workers=a.workers, lock_timeout=a.lock_timeout,
                              progress=progress, as_of=a.as_of, config=config, allow_deletes=a.allow_deletes,
                              preset=a.preset, base_url=a.base_url)
        out = {"run_id": result.run_id, "counts": result.counts, "run": result.run, "checks": result.checks,
               "keys": result.keys}
        if a.reports:
            from .bundle import export_all

            export_all(a.warehouse, a.reports)
        if not (a.quiet or a.no_prefect):
            _prefect_note(a.warehouse)
    run = out["run"]
    if not a.quiet:
        print(run_summary(out["run_id"], run, out["counts"]))
        if out.get("keys"):
            print(f"keys: {out['keys']}", file=sys.stderr)
        if run["files_rejected"]:
            print(f"{plural(run['files_rejected'], 'file')} rejected: newsetl sql \"SELECT source_path, error FROM "
                  f"source_files WHERE status = 'rejected'\" --warehouse {a.warehouse}", file=sys.stderr)
        if a.reports:
            print(f"wrote every report and report.html to {a.reports}", file=sys.stderr)
    outcome = out.get("checks")
    if outcome is not None and not a.quiet:
        print(outcome.summary(), file=sys.stderr)
        _alert_lines(outcome)
        if outcome.open_alerts:
            print(f"{plural(len(outcome.open_alerts), 'alert')} open: newsetl check --warehouse {a.warehouse}",
                  file=sys.stderr)
    if a.catalog:
        from .catalog import write_url_catalog

        path = write_url_catalog(a.warehouse, a.catalog)
        if not a.quiet:
            print(f"wrote {path}: views over {a.warehouse} for the DuckDB shell "
                  "(which reads them with its httpfs extension: docs/scaling.md)", file=sys.stderr)
    if a.top:
        from . import reports
        from .export import show

        print(f"\nTop {a.top} providers by articles, with their average quality "
              f"(more: newsetl report top_providers --warehouse {a.warehouse}):")
        top = reports.top_providers(a.warehouse, a.top)
        show(top.select(["provider_domain", "provider_name", "articles", "avg_quality", "median_quality"]),
             max_rows=a.top)
    fail_on = a.fail_on or config.fail_on
    return outcome.exit_code(fail_on) if outcome is not None else 0


NOTE_ENV = "NEWSETL_PREFECT_NOTE"  # `off`: never print the note below


def _prefect_note(warehouse) -> None:
    """The note that a local run is not tracked in Prefect: once per warehouse (store.note_once),
    never with NEWSETL_PREFECT_NOTE=off."""
    if os.environ.get(NOTE_ENV, "").strip().lower() in ("off", "0", "no", "false"):
        return
    from .remote import open_warehouse
    from .store import note_once

    wh = open_warehouse(warehouse)
    if note_once(wh.local.root if wh.remote else wh.root, "prefect"):
        print("note: this run is not tracked in Prefect (no PREFECT_API_URL): set it, or use --prefect, to see "
              f"runs in the Prefect UI (said once per warehouse; {NOTE_ENV}=off never says it)", file=sys.stderr)


def _no_prefect_telemetry() -> None:
    """Prefect's usage statistics off unless the user said otherwise: a temporary server's
    (PREFECT_SERVER_ANALYTICS_ENABLED; sending them failed with an error line) and this
    process's (DO_NOT_TRACK; on a terminal, the first flow run printed Prefect's notice
    about them among the run's lines)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")


def _prefect_console(quiet: bool) -> None:
    """What Prefect prints on the console, for `run` and `serve`: one line per run phase, warnings,
    and a full disk or a locked warehouse without a traceback (prefect_console.ConsoleHandler);
    with `quiet`, errors only. Environment variables: Prefect reads its settings when it is
    imported, and every process it starts (a served flow run, a task worker) inherits them."""
    _no_prefect_telemetry()
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING" if quiet else "INFO")
    if quiet:  # errors only, in this process and in every worker it starts (prefect_console.QUIET)
        import warnings

        os.environ["NEWSETL_QUIET"] = "1"
        os.environ["PYTHONWARNINGS"] = "ignore"
        warnings.simplefilter("ignore")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_CLASS", "newsetl.prefect_console.ConsoleHandler")


def _run_flow(a, progress) -> dict:
    """The run as a flow run of news-etl, on the configured Prefect API or a temporary server."""
    _prefect_console(a.quiet)
    if not a.dask:
        from .runners import fork_early

        fork_early()  # while Prefect is imported, and before its threads start (runners.fork_early)
    from . import flows
    from .remote import open_warehouse
    from .store import write_failure

    if not prefect_api():
        if not a.quiet:  # its cost, said before it is paid
            why = ("--dask maps the parse as Prefect tasks (prefect-dask's task runner), which need a Prefect API: "
                   if a.dask else "")
            print(f"newsetl run: {why}starting a temporary Prefect server (about {TEMPORARY_SERVER_COST} s; set "
                  "PREFECT_API_URL to use a running one)", file=sys.stderr)
        _temporary_server()  # Prefect stops it at exit, after its logs are sent
    flows._progress = progress
    try:
        return flows.news_etl(inputs=[str(i) for i in a.inputs], warehouse=str(a.warehouse),
                              lock_timeout=a.lock_timeout, reports_dir=str(a.reports) if a.reports else None,
                              as_of=a.as_of, dask_address=a.dask, config=a.config, return_checks=True,
                              allow_deletes=a.allow_deletes, preset=a.preset, base_url=a.base_url)
    except Exception as e:
        err = write_failure(e, open_warehouse(a.warehouse).root)  # a full disk: one line, as without Prefect
        if err is None:
            raise
        raise err from None
    finally:
        flows._progress = None


TEMPORARY_SERVER_TIMEOUT = 120  # seconds
TEMPORARY_SERVER_COST = "20-40"  # seconds a run with one takes longer (its start, the flow's API calls, its stop): 23 s
# for the demo data on an idle 2-core machine, 40 s measured on a busy one (issue 24)


def _temporary_server() -> None:
    """Start Prefect's temporary server (its own singleton, which the flow run then uses) with
    its stderr in a log file under PREFECT_HOME: it would inherit ours, and on stopping it can
    print asyncio tracebacks after a run's last line."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_HOME

    home = Path(PREFECT_HOME.value()).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    server = SubprocessASGIServer()
    log_path = home / "newsetl-temporary-server.log"
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(log_path, "ab") as log:
            os.dup2(log.fileno(), 2)
            # a first start creates its database: give it longer than Prefect's 20 s on a busy machine
            server.start(timeout=TEMPORARY_SERVER_TIMEOUT)
    except Exception as e:  # noqa: BLE001 - Prefect raises RuntimeError, or httpx's errors
        raise CliError(f"Prefect's temporary server did not start ({' '.join(str(e).split())[:200]}); its log: "
                       f"{log_path}. Run without --prefect, or start a server (`prefect server start`) and "
                       "set PREFECT_API_URL", EXIT_ERROR) from None
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def cmd_demo(a) -> int:
    from .demo import generate

    progress = None if a.quiet or not sys.stderr.isatty() else Progress("writing")
    s = generate(a.directory, records=a.records, seed=a.seed, profile=a.profile,
                 malformed=not a.no_malformed, progress=lambda d, t: progress(d, t) if progress else None)
    if not a.quiet:
        print(f"wrote {plural(s.files, 'file')} ({plural(s.records, 'record')}, {s.malformed:,} malformed on "
              f"purpose, {s.bytes / 1e6:,.1f} MB) to {s.directory}")
    return 0


def cmd_sql(a) -> int:
    import duckdb

    from .catalog import ReadOnlySQL, check_read_only, connect, sql_error_lines

    query = a.query
    if query == "-":
        query = sys.stdin.read()
    params = {}
    for name, value in a.param:
        name = name.removeprefix("$")
        if not name.isidentifier():
            raise CliError(f"-p {name!r}: a parameter's name is a word of letters, digits and _ ($NAME in the query)",
                           EXIT_USAGE)
        if name in params:
            raise CliError(f"-p {name}: given twice", EXIT_USAGE)
        params[name] = value
    # in UTC, reading the snapshot's files only: ad-hoc SQL cannot change the warehouse or its catalog
    con = connect(a.warehouse, snapshot=a.snapshot, sealed=True, for_sql=query)
    try:
        check_read_only(con, query)
        table = con.sql(query, params=params) if params else con.sql(query)
        if table is None:  # a statement without a result
            return 0
        data = _fetch(table, a)
    except ReadOnlySQL as e:
        raise CliError(str(e), EXIT_USAGE) from None
    except duckdb.PermissionException as e:  # a file that is not the snapshot's
        raise CliError(f"{str(e).splitlines()[0]}: newsetl sql reads the warehouse's tables only and writes no file "
                       "(save a result with --out FILE; query your own files in the DuckDB shell, which can open "
                       "news.duckdb, or with newsetl.connect() in Python)", EXIT_USAGE) from None
    except Exception as e:  # duckdb errors: DuckDB's whole message, its hint and the caret under the place
        from .export import inert  # it can quote a value from the records: no control character gets through

        lines = sql_error_lines(con, query, e) if isinstance(e, duckdb.Error) else [str(e)]
        raise CliError("SQL error: " + "\n".join(inert(line) for line in lines)) from None
    finally:
        con.close()
    _write(data, a)
    return 0


def _fetch(result, a):
    """A query's result as the output options want it: for the terminal table its first rows as
    DuckDB gives them (export.Rows: no pyarrow to import), else an Arrow table."""
    from . import export

    try:
        table = export.format_for(a.out, a.format) == "table"
    except ValueError:  # said by export.write
        table = False
    return export.Rows.of(result, export.MAX_ROWS) if table else result.to_arrow_table()


def _timestamp(text: str):
    """--as-of: ISO 8601 (UTC without an offset), checked as pipeline.run checks it."""
    import datetime as dt

    from .plan import check_as_of

    try:
        t = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--as-of {text!r} is not an ISO 8601 date or time") from None
    return check_as_of(t)


class _AsOf(argparse.Action):
    """Checks --as-of while the command line is read, so a bad one stops the run before
    anything is written, in one line (argparse's own errors print the usage first)."""

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            setattr(namespace, self.dest, _timestamp(values))
        except ValueError as e:
            parser.exit(EXIT_USAGE, f"{parser.prog}: error: {e}\n")


def cmd_runs(a) -> int:
    from .catalog import connect

    ui = prefect_ui()  # where each flow run is in the Prefect UI, when there is one
    con = connect(a.warehouse, snapshot=a.snapshot, for_sql="")  # the runs table only: no analytics view
    try:
        con.execute("SET TimeZone = 'UTC'")
        # what people look for first; the rest of the row after it
        table = con.sql(
            "SELECT run_id, status, round(duration_s, 1) AS duration_s, files_new AS new, files_changed AS changed, "
            "files_deleted AS deleted, files_rejected AS rejected, files_seen AS seen, articles_rows AS articles, "
            "flow_run_id, " + ("$ui || '/runs/flow-run/' || flow_run_id AS flow_run_url, " if ui else "") +
            "started_at, finished_at, files_unchanged AS unchanged, data_issues_rows AS data_issues, "
            "newsetl_version FROM runs ORDER BY started_at DESC LIMIT $n",
            params={"n": a.limit, **({"ui": ui} if ui else {})})
        table = _fetch(table, a)
    finally:
        con.close()
    _write(table, a)
    return 0


def cmd_tables(a) -> int:
    from .catalog import tables

    _write(tables(a.warehouse, a.snapshot), a, wrap=("about",))  # what a row is, whole
    return 0


def cmd_describe(a) -> int:
    from .catalog import describe

    _write(describe(a.warehouse, a.name, a.snapshot), a, wrap=("meaning",))  # the whole meaning, over lines
    return 0


def cmd_check(a) -> int:
    if a.snapshot and not a.dry_run:
        raise CliError("--snapshot goes with --dry-run: a check records its results in a new snapshot made "
                       "from the current one", EXIT_USAGE)
    config = _load_config(a)
    from .checks.recheck import recheck

    outcome = recheck(a.warehouse, config, as_of=a.as_of, dry_run=a.dry_run, explain=a.explain,
                      lock_timeout=a.lock_timeout, snapshot=a.snapshot)
    if a.explain:
        for note in outcome.explain:
            print(f"-- {note['check']}: {plural(note['rows'], 'row')} measured; parameters "
                  + ", ".join(f"${k} = {v}" for k, v in note["params"].items()))
            print(note["sql"])
            for r in note["results"]:
                print(f"   {r.status:<20} {r.segment or '(whole run)'}{' ' + r.detail if r.detail else ''}: "
                      f"observed {_n(r.observed)}, expected {_n(r.expected)}, history {r.history_size or 0} "
                      f"-> {r.message}")
            print()
    shown = [r for r in outcome.results if a.all or r.status not in ("pass", "insufficient_history")]
    order = {"fail": 0, "error": 1, "warn": 2, "muted": 3, "insufficient_history": 4, "pass": 5}
    shown.sort(key=lambda r: (order.get(r.status, 9), r.check_name, r.segment or "", r.detail or ""))
    import pyarrow as pa

    cols = ["status", "check_name", "segment", "detail", "observed", "expected", "unit", "message"]
    table = pa.table({c: [getattr(r, c) for r in shown] for c in cols},
                     schema=pa.schema([(c, pa.float64() if c in ("observed", "expected") else pa.string())
                                       for c in cols]))
    if shown or a.out or a.format:
        _write(table, a)
    if not a.quiet:
        _alert_lines(outcome, sys.stderr)
        what = "evaluated (dry run: nothing written)" if a.dry_run else "recorded"
        print(f"{outcome.summary()}; {what} for run {outcome.run_id} as of {outcome.as_of:%Y-%m-%d %H:%M UTC}",
              file=sys.stderr)
    if not a.dry_run:
        _emit_if_api(outcome, a.warehouse)
    return outcome.exit_code(a.fail_on or "fail")


def _n(x) -> str:
    return "-" if x is None else f"{x:,.4g}"


def _emit_if_api(outcome, warehouse) -> None:
    """Prefect events for the alerts that opened or resolved, where an API is configured:
    without one, emit_event would wait for a server that is not there."""
    if (outcome.opened or outcome.resolved) and prefect_api():
        _no_prefect_telemetry()
        from .checks.events import emit_check_events

        emit_check_events(outcome, str(warehouse))


def cmd_status(a) -> int:
    from .status import status

    report = status(a.warehouse, a.snapshot)
    print(report)
    return 0 if report.healthy else EXIT_ERROR  # a view the DuckDB shell cannot read: said above


def cmd_rollback(a) -> int:
    from .publish import kept_snapshots, rollback

    if a.list:
        if a.snapshot:
            raise CliError("--list takes no SNAPSHOT", EXIT_USAGE)
        _write(kept_snapshots(a.warehouse), a)
        return 0
    if a.out or a.format or a.max_width:
        raise CliError("--out, --format and --max-width go with --list", EXIT_USAGE)
    before, now = rollback(a.warehouse, a.snapshot, lock_timeout=a.lock_timeout)
    if not a.quiet:
        if before == now:
            print(f"snapshot {now} is already current in {a.warehouse}: nothing changed", file=sys.stderr)
        else:
            print(f"rolled back {a.warehouse}: snapshot {now} is current again (it was {before}, which stays kept: "
                  f"`newsetl rollback {before}` undoes this); the next run loads on top of {now}")
    return 0


def _list(stream=None) -> None:
    from .reports import REPORTS, flag

    stream = stream or sys.stdout
    width = max(len(n) for n in REPORTS)
    for r in REPORTS.values():
        takes = " ".join(flag(f) for f in r.filters) or "(no filters)"
        default = f"; default --limit {r.default_limit}" if r.default_limit else ""
        stream.write(f"{r.name:<{width}}  {r.description}\n{'':<{width}}  filters: {takes}{default}\n")


def cmd_report(a) -> int:
    from . import bundle, reports

    def usage(msg: str) -> CliError:
        return CliError(msg, EXIT_USAGE)

    filters = {f.name: getattr(a, f.name) for f in reports.FILTERS}
    given = {k: v for k, v in filters.items() if v is not None}
    modes = [m for m, on in (("NAME", a.name), ("--list", a.list), ("--all", a.all), ("--html", a.html)) if on]
    if len(modes) > 1:
        raise usage(f"use one of NAME, --list, --all, --html (got {' and '.join(modes)})")
    if not modes:
        raise usage("name a report, or use --list, --all or --html (newsetl report --list shows the reports)")
    if a.out_dir and not a.all:
        raise usage("--out-dir goes with --all")
    if a.changes_since and not a.html:
        raise usage("--changes-since goes with --html")
    if a.out and (a.all or a.list or a.html):
        raise usage("--out goes with a report NAME; use --out-dir with --all")
    _outside_warehouse(a, "--out-dir", a.out_dir)
    if a.html != "-":
        _outside_warehouse(a, "--html", a.html)
    source = a.warehouse
    if a.snapshot and not a.list:  # a kept snapshot: one connection to it serves every mode
        source = reports.open_connection(a.warehouse, a.snapshot)[0]
    try:
        if a.list:
            if given or a.out or a.format:
                raise usage("--list takes no filters or output options")
            _list()
            return 0
        if a.html:
            if a.format:
                raise usage("--html writes HTML; --format does not apply")
            from . import html_report

            extra = {"changes_since": a.changes_since} if a.changes_since else {}
            if a.html == "-":  # standard output, as everywhere a file is taken
                sys.stdout.write(html_report.page(source, **filters, **extra))
                return 0
            path = html_report.write(source, a.html, **filters, **extra)
            print(f"wrote {path}", file=sys.stderr)
            return 0
        if a.all:
            if not a.out_dir:
                raise usage("--all needs --out-dir DIR")
            fmt = a.format or "csv"
            if fmt in ("table", "line"):
                raise usage("--all writes files: --format csv, json, ndjson, markdown or parquet")
            for name in reports.REPORTS:
                skipped = reports.ignored_filters(name, given)
                if skipped:
                    print(f"note: {name} does not take {', '.join(reports.flag(k) for k in skipped)}; "
                          "written without", file=sys.stderr)
            written = bundle.export_all(source, a.out_dir, fmt, **filters)
            rows = sum(w["rows"] or 0 for w in written.values())
            print(f"wrote {plural(len(written), 'file')} ({plural(rows, 'row')}) to {a.out_dir}", file=sys.stderr)
            return 0
        _write(reports.run(source, a.name, **filters), a)
        return 0
    except reports.ReportError as e:
        raise usage(str(e)) from None
    finally:
        if source is not a.warehouse:
            source.close()


def cmd_serve(a) -> int:
    from .serve import serve

    _prefect_console(a.quiet)  # each flow run: a line per phase, as `newsetl run` prints them
    from .remote import open_warehouse

    open_warehouse(a.warehouse).recognise()  # its runs would write there: a folder of other things is refused now
    serve(a.inputs, a.warehouse, cron=a.cron, interval=a.interval, name=a.name,
          lock_timeout=a.lock_timeout, reports_dir=str(a.reports) if a.reports else None, quiet=a.quiet,
          allow_deletes=a.allow_deletes, preset=a.preset, base_url=a.base_url, config=a.config)
    return 0


REPORT_EXAMPLES = """examples:
  newsetl report --list                                   # the reports, their filters
  newsetl report top_providers                            # a table on the terminal
  newsetl report provider_stats --since 2021-01-01 --until 2021-03-31 --min-articles 5
  newsetl report quality_by_month --provider example.com --out quality.csv
  newsetl report top_articles --topic AI --limit 20 --format json
  newsetl report topic_stats --out topics.parquet
  newsetl report --all --out-dir out/reports              # every report as CSV + report.html
  newsetl report --html report.html --since 2021-01-01    # charts on one self-contained page
  newsetl report --html report.html --changes-since 2021-01-15   # quality and heat moves since then
  newsetl report top_providers --snapshot ID              # as a kept snapshot had it (newsetl rollback --list)
"""

SERVE_EXAMPLES = """examples:
  newsetl serve data/demo --cron "*/30 * * * *"              # every 30 minutes (UTC)
  newsetl serve /srv/site/_posts --interval 900 --warehouse /data/news
  newsetl serve data/demo --cron "0 6 * * *" --name daily --reports out/reports
  newsetl serve site-b/_posts --cron "0 * * * *" --allow-deletes   # its runs may delete most files

  # a Prefect server is needed (the schedule lives there); in another terminal:
  prefect server start
  PREFECT_API_URL=http://127.0.0.1:4200/api newsetl serve data/demo --cron "*/30 * * * *"

  # trigger a run now, besides the schedule:
  prefect deployment run news-etl/scheduled
"""


# -- parser -----------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="newsetl",
        description="Turn folders of Markdown news records (YAML front matter) into Parquet tables "
                    "and a DuckDB catalog for provider and quality analytics. Every command takes its "
                    "warehouse from --warehouse, else $NEWSETL_WAREHOUSE, else ./warehouse.",
        **_fmt(
            "  newsetl demo data/demo --records 2000        # generate demo records\n"
            "  newsetl run data/demo                         # load them into ./warehouse\n"
            "  newsetl tables                                # what the warehouse holds\n"
            "  newsetl sql \"SELECT * FROM providers LIMIT 5\"\n"
            "  newsetl report --list                         # named reports; --out FILE.csv exports\n"
            "  newsetl serve data/demo --cron \"*/30 * * * *\"  # run on a schedule (needs a Prefect server)\n"
            "  newsetl COMMAND --help                        # details and examples per command\n"
        ),
    )
    p.add_argument("--version", action=_Version, nargs=0, help="show newsetl's version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser(
        "run", help="load input folders into the warehouse",
        description="Read every .md/.markdown file under the input folders, load the records into Parquet "
                    "tables under the warehouse and (re)write its DuckDB catalog. Runs are incremental: "
                    "unchanged files are not parsed again. When a Prefect API is configured (PREFECT_API_URL, "
                    "or the active Prefect profile) the run is a flow run of news-etl there, shown in its UI; "
                    "otherwise it runs the same stages in this process, with a progress bar on a terminal.",
        **_fmt(
            "  newsetl run data/demo\n"
            "  newsetl run site-a/_posts site-b/_posts --warehouse /data/news   # source_path site-a/_posts/...\n"
            "  newsetl run blog=site-a/_posts news=site-b/_posts               # names of your own: blog/...\n"
            "  newsetl run data/demo --top 20               # then print the top 20 providers\n"
            "  newsetl run data/demo --reports out/reports  # and export every report as CSV\n"
            "  newsetl run data/demo --prefect              # a Prefect flow run, on a temporary server if none\n"
            "  newsetl run data/demo --fail-on fail         # exit 1 when a data check fails (newsetl check)\n"
            "  newsetl run site-b/_posts --allow-deletes    # the files of other inputs may go (exit 2 otherwise)\n"
        ),
    )
    r.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="folder(s) or URL(s) (s3://...) of Markdown records, each PATH or NAME=PATH "
                        "(NAME starts its source_path)")
    _warehouse_option(r)
    _lock_timeout_option(r)
    r.add_argument("--workers", action=_number(int, 1, "a whole number"), default=None, metavar="N",
                   help="parse processes (default: one per core)")
    r.add_argument("--top", action=_number(int, 1, "a whole number"), default=0, metavar="N",
                   help="print the top N providers after the run")
    r.add_argument("--reports", type=Path, default=None, metavar="DIR", help="export every report to DIR after loading")
    r.add_argument("--as-of", action=_AsOf, default=None, metavar="TIME",
                   help="when the files were observed (ISO 8601, UTC if no offset; default: now; "
                        "at most 5 minutes ahead of this machine's clock, for clock skew); "
                        "sets valid_from in article_versions, for backfills and replays")
    r.add_argument("--allow-deletes", action="store_true",
                   help="let the run delete more than max_delete_share of the warehouse's files (default 0.5, "
                        "[run] in newsetl.toml); without it such a run stops with exit code 2, writing nothing")
    where = r.add_mutually_exclusive_group()
    where.add_argument("--prefect", action="store_true",
                       help="run as a Prefect flow run even without a configured API (then on a temporary "
                            f"server, about {TEMPORARY_SERVER_COST} s more)")
    where.add_argument("--no-prefect", action="store_true",
                       help="run the stages in this process even when a Prefect API is configured")
    r.add_argument("--dask", default=None, metavar="ADDRESS",
                   help="parse on the Dask cluster whose scheduler is at ADDRESS (tcp://host:8786), "
                        "or on local:N, N worker processes started for this run; a Prefect flow run "
                        "(docs/scaling.md)")
    r.add_argument("--catalog", default=None, metavar="PATH",
                   help="with an s3:// warehouse: also write a local DuckDB file whose views read its URLs")
    _keys_options(r)
    _config_option(r)
    _fail_on_option(r, "never, or fail_on in the configuration: the data is published either way")
    _quiet_option(r)
    r.set_defaults(func=cmd_run)

    d = sub.add_parser(
        "demo", help="generate a demo corpus of records",
        description="Write realistic, deterministic front-matter records (same format as real sites): "
                    "Zipf-skewed providers, quality 0-190, heat -1 for about two thirds, images, related "
                    "links that mostly point to other generated articles, and a handful of malformed files.",
        **_fmt(
            "  newsetl demo data/demo\n"
            "  newsetl demo data/big --records 100000 --profile azure --seed 7\n"
            "  newsetl demo data/clean --records 500 --no-malformed\n"
        ),
    )
    d.add_argument("directory", type=Path, help="folder to write into (created)")
    d.add_argument("--records", action=_number(int, 0, "a whole number"), default=2000, metavar="N",
                   help="well-formed records to write (default: 2000)")
    d.add_argument("--seed", action=_number(int, -math.inf, "a whole number"), default=42, metavar="N",
                   help="random seed; same seed, same files (default: 42)")
    d.add_argument("--profile", choices=("demo", "azure", "bench"), default="demo",
                   help="demo: a varied mix; azure: shaped like a real site (~17 KB, ~20 related links); bench: ~20 KB, ~30 related links, ~20 related images (benchmarks)")
    d.add_argument("--no-malformed", action="store_true", help="write no deliberately broken files")
    _quiet_option(d)
    d.set_defaults(func=cmd_demo)

    s = sub.add_parser(
        "sql", help="run SQL on the warehouse",
        description="Run a query on the warehouse's tables and views; print a table, or write CSV, "
                    "JSON or Parquet. CSV cells that a spreadsheet would run as formulas are neutralised.",
        **_fmt(
            "  newsetl sql \"SELECT provider_domain, count(*) FROM articles GROUP BY 1 ORDER BY 2 DESC\"\n"
            "  newsetl sql \"SELECT * FROM articles WHERE quality > 150\" --out best.csv\n"
            "  newsetl sql \"SELECT * FROM data_issues\" --format json\n"
            "  echo \"SELECT count(*) FROM images\" | newsetl sql -\n"
            "  newsetl sql 'SELECT title, quality FROM articles WHERE provider_domain = $p AND quality > $q' "
            "-p p example.com -p q 150   # single quotes: the shell leaves $p alone\n"
            "  newsetl sql \"SELECT * FROM articles LIMIT 3\" --format line   # one field a line\n"
            "  newsetl sql \"SELECT count(*) FROM articles\" --snapshot 20261207T101500.123456Z-a1b2c3  # a kept one\n"
        ),
    )
    s.add_argument("query", help="SQL text, or - to read it from stdin")
    s.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="bind $NAME in the query to VALUE (repeatable); the value is bound, never pasted into "
                        "the SQL, as text that DuckDB casts where the query compares or computes it with a typed "
                        "value (quality > $q: a number); CAST($NAME AS TYPE) says the type where nothing else does")
    _warehouse_option(s)
    _snapshot_option(s)
    _output_options(s)
    s.set_defaults(func=cmd_sql)

    ru = sub.add_parser(
        "runs", help="list recent runs with their counts and duration",
        description="The runs table, newest first: what each run found and loaded, how long it took, and "
                    "the Prefect flow run it was (flow_run_id; flow_run_url, its page in the Prefect UI, when "
                    "PREFECT_UI_URL or PREFECT_API_URL is set). A run killed before publishing shows as failed.",
        **_fmt("  newsetl runs\n  newsetl runs --limit 100 --out runs.csv\n  newsetl runs --limit 1 --format line\n"
               "  newsetl runs --snapshot ID        # the runs as a kept snapshot recorded them\n"),
    )
    _warehouse_option(ru)
    _snapshot_option(ru)
    ru.add_argument("--limit", action=_number(int, 1, "a whole number"), default=20, metavar="N",
                    help="how many runs (default: 20)")
    _output_options(ru)
    ru.set_defaults(func=cmd_runs)

    st = sub.add_parser(
        "status", help="what the warehouse holds and when it last changed",
        description="Rows per table, files by status, the last run and the last run that changed data, "
                    "and whether a run is in progress or died before publishing.",
        **_fmt("  newsetl status\n  newsetl status --warehouse /data/news\n"
               "  newsetl status --snapshot ID      # a kept snapshot (newsetl rollback --list)\n"),
    )
    _warehouse_option(st)
    _snapshot_option(st)
    st.set_defaults(func=cmd_status)

    t = sub.add_parser(
        "tables", help="every table and view, with its row count",
        description="List the warehouse's tables and analytics views: their kind, row count and what a row is.",
        **_fmt("  newsetl tables\n  newsetl tables --format markdown\n  NEWSETL_WAREHOUSE=/data/news newsetl tables\n"
               "  newsetl tables --snapshot ID      # row counts of a kept snapshot\n"),
    )
    _warehouse_option(t)
    _snapshot_option(t)
    _output_options(t)
    t.set_defaults(func=cmd_tables)

    de = sub.add_parser(
        "describe", help="the columns of a table or view, with their types and meaning",
        description="Show the columns of a table or analytics view: name, type and what it means "
                    "(the data dictionary, docs/data-dictionary.md).",
        **_fmt("  newsetl describe articles\n  newsetl describe provider_stats --format csv\n"
               "  newsetl describe articles --snapshot ID\n"),
    )
    de.add_argument("name", metavar="NAME", help="a table or view (newsetl tables lists them)")
    _warehouse_option(de)
    _snapshot_option(de)
    _output_options(de)
    de.set_defaults(func=cmd_describe)

    ch = sub.add_parser(
        "check", help="the data checks of the last run: exit 1 when one fails",
        description="Evaluate the checks of the warehouse's last run again (freshness, volume, rejections, "
                    "completeness, front-matter drift, duplicates, quality, version churn, future dates, "
                    "shrinking) with the configuration as it is now, print what warned or failed, and "
                    "record the results (check_results, check_alerts) in a new snapshot. Every run already "
                    "checks itself; this is for cron, for a changed configuration, and for --explain. "
                    "Exit codes: 0 passed (or only warnings), 1 a check failed, 2 warnings with "
                    "--fail-on warn, 3 the configuration is wrong.",
        **_fmt("  newsetl check\n"
               "  newsetl check --dry-run --explain            # each check's SQL, values, baseline, verdict\n"
               "  newsetl check --fail-on warn || notify-team   # for cron\n"
               "  newsetl check --all --format csv > checks.csv\n"
               "  newsetl check --as-of now                    # freshness judged at this moment\n"
               "  newsetl check --config ops/newsetl.toml\n"
               "  newsetl check --dry-run --snapshot ID         # the checks of a kept snapshot's last run\n"),
    )
    _warehouse_option(ch)
    _snapshot_option(ch)
    _config_option(ch)
    _fail_on_option(ch, "fail")
    ch.add_argument("--dry-run", action="store_true", help="evaluate and print; write nothing, emit no event")
    ch.add_argument("--explain", action="store_true",
                    help="also print each check's SQL, the values it measured, the baselines and the verdicts")
    ch.add_argument("--all", action="store_true", help="list every result, not only what warned, failed or is muted")
    ch.add_argument("--as-of", action=_CheckAsOf, default=None, metavar="TIME",
                    help="the time freshness is judged at: ISO 8601, or now (default: the last run's as_of)")
    _lock_timeout_option(ch)
    _output_options(ch)
    _quiet_option(ch)
    ch.set_defaults(func=cmd_check)

    rb = sub.add_parser(
        "rollback", help="make a kept snapshot current again",
        description="Make a kept snapshot current again, atomically and under the run lock (as a run "
                    "publishes: the `current` link, or in object storage the pointer). Without SNAPSHOT, "
                    "the snapshot the current one was made from: the last run is undone. Nothing is deleted: the snapshot "
                    "rolled back from stays kept, so a rollback is undone by naming it. The next run compares "
                    "the files with the rolled-back snapshot and loads on top of it. The newest three "
                    "snapshots are kept (in object storage, the last three made current).",
        **_fmt("  newsetl rollback --list                     # the kept snapshots, newest first\n"
               "  newsetl rollback                            # back one: undo the last run\n"
               "  newsetl rollback 20261207T101500.123456Z-a1b2c3 --warehouse /data/news\n"
               "  newsetl sql \"SELECT count(*) FROM articles\" --snapshot ID   # look before rolling back\n"),
    )
    rb.add_argument("snapshot", nargs="?", default=None, metavar="SNAPSHOT",
                    help="the kept snapshot to make current (default: the one the current snapshot was made from)")
    rb.add_argument("--list", action="store_true", help="list the kept snapshots instead")
    _warehouse_option(rb)
    _lock_timeout_option(rb)
    _output_options(rb)
    _quiet_option(rb)
    rb.set_defaults(func=cmd_rollback)

    _add_report(sub)
    _add_serve(sub)
    return p


class _CheckAsOf(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        import datetime as dt

        if values.strip().lower() == "now":
            setattr(namespace, self.dest, dt.datetime.now(dt.timezone.utc))
            return
        try:
            setattr(namespace, self.dest, _timestamp(values))
        except ValueError as e:
            parser.exit(EXIT_USAGE, f"{parser.prog}: error: {e}\n")


def _add_report(sub) -> None:
    p = sub.add_parser(
        "report", help="run a named report (provider and quality analytics)",
        description="Run a named report over the warehouse's analytics views: a readable table on the "
                    "terminal, or CSV, JSON or Parquet with --out/--format. CSV opens safely in "
                    "spreadsheets (formula-like cells from titles and names are neutralised). "
                    "Filters apply where a report supports them (see --list).",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=REPORT_EXAMPLES,
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="the report to run (see --list)")
    mode = p.add_argument_group("what to do (default: run NAME)")
    mode.add_argument("--list", action="store_true", help="describe every report and the filters it takes")
    mode.add_argument("--all", action="store_true", help="write every report (and report.html) to --out-dir")
    mode.add_argument("--html", metavar="FILE", default=None,
                      help="write one self-contained HTML page with charts and tables (- : to standard output)")
    mode.add_argument("--changes-since", metavar="DATE", default=None,
                      help="with --html: the date its Changes section compares with (default: the previous run)")
    out = p.add_argument_group("output")
    _output_options(out, "; csv for --all")
    out.add_argument("--out-dir", metavar="DIR", default=None, help="folder for --all")
    _warehouse_option(out)
    _snapshot_option(out)
    flt = p.add_argument_group("filters (validated, then bound as query parameters)")
    from .filters import FILTERS

    for f in FILTERS:
        flt.add_argument(f.flag, metavar=f.metavar, default=None, help=f.help)  # strings: checked by newsetl.reports
    p.set_defaults(func=cmd_report)


def _add_serve(sub) -> None:
    from .defaults import DEPLOYMENT_NAME as DEFAULT_NAME

    p = sub.add_parser(
        "serve", help="run the ETL flow on a schedule (a Prefect deployment)",
        description="Serve the news-etl flow as the Prefect deployment news-etl/NAME with a cron or "
                    "interval schedule, and run its flow runs in this process until stopped (Ctrl+C "
                    "pauses the schedule). Needs a Prefect server: PREFECT_API_URL must point at one "
                    "(`prefect server start` starts a local one). Input and warehouse paths are stored "
                    "as absolute paths. A run that starts while another still writes the warehouse waits "
                    "for it up to --lock-timeout seconds, then fails.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=SERVE_EXAMPLES,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="folder(s) of Markdown records")
    _warehouse_option(p)
    when = p.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", default=None, metavar="EXPR",
                      help='cron schedule in UTC, 5 fields, e.g. "*/30 * * * *"')
    when.add_argument("--interval", action=_number(float, 0, "a number of seconds", above=True), default=None,
                      metavar="SECONDS",
                      help="run every SECONDS seconds, e.g. 900")
    p.add_argument("--name", default=DEFAULT_NAME,
                   help=f"deployment name: the deployment is news-etl/NAME (default: {DEFAULT_NAME})")
    _lock_timeout_option(p)
    p.add_argument("--reports", type=Path, default=None, metavar="DIR",
                   help="export every report to DIR after each run")
    _quiet_option(p)
    p.add_argument("--allow-deletes", action="store_true",
                   help="store allow_deletes in the deployment: its runs may delete more than max_delete_share "
                        "of the warehouse's files (otherwise such a run fails, writing nothing)")
    _keys_options(p)
    p.add_argument("--config", default=None, metavar="FILE",
                   help="newsetl.toml whose [site] and [keys] the deployment stores (default: $NEWSETL_CONFIG, "
                        "else ./newsetl.toml if there is one)")
    p.set_defaults(func=cmd_serve)


EXIT_PIPE = 128 + 13  # what a shell reports for a tool killed by SIGPIPE (`seq 1e6 | head -1`)


def _stdout_gone() -> bool:
    """Standard output is a pipe or socket whose reader has gone (`| head -1` has exited)."""
    import select

    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poll.poll(0))
    except (OSError, ValueError, AttributeError):  # no file descriptor (a StringIO): not a pipe
        return False


def _quiet_exit_on_closed_pipe() -> int:
    """The reader of our output has gone: end quietly, as `cat` or `seq` do, with their exit code.
    Standard output now points at /dev/null, so that Python's final flush of what is still
    buffered does not print an error."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return EXIT_PIPE


def main(argv=None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    if not getattr(a, "func", None):
        parser.print_help()
        return EXIT_USAGE
    from .filters import ReportError
    from .sources import InputError
    from .store import WarehouseError

    if a.command in ("sql", "report", "runs", "tables", "describe") and not getattr(a, "list", False):
        from .catalog import heal_catalog

        # a run killed after publishing left news.duckdb behind, or it was changed by hand: rewrite it if
        # we can (status checks it itself, and says what it found)
        heal_catalog(a.warehouse, say=lambda line: print(f"newsetl {a.command}: note: {line}", file=sys.stderr))
    try:
        code = a.func(a) or 0
        sys.stdout.flush()  # here, so that a reader gone away is seen here and not at exit
        # a write the reader left half-way returns what it wrote instead of failing: look
        return _quiet_exit_on_closed_pipe() if _stdout_gone() else code
    except BrokenPipeError:
        if not _stdout_gone():
            raise
        return _quiet_exit_on_closed_pipe()
    except CliError as e:
        print(f"newsetl {a.command}: error: {e}", file=sys.stderr)
        return e.code
    except (InputError, ReportError, FileNotFoundError) as e:
        print(f"newsetl {a.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except WarehouseError as e:
        code = EXIT_LOCKED if "another run" in str(e) else EXIT_ERROR
        print(f"newsetl {a.command}: error: {e}", file=sys.stderr)
        return code
    except ValueError as e:
        print(f"newsetl {a.command}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"newsetl {a.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
