"""The `newsetl` command: a thin layer over the library.

Every command has --help with examples. Errors are one line on stderr and a
non-zero exit code; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import __version__

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_LOCKED = 3


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_ERROR):
        super().__init__(message)
        self.code = code


def _fmt(prog_examples: str) -> dict:
    return dict(formatter_class=argparse.RawDescriptionHelpFormatter, epilog="examples:\n" + prog_examples)


# -- progress -------------------------------------------------------------------

class Progress:
    """A one-line progress bar on a terminal; a line every 10% otherwise."""

    def __init__(self, label: str, stream=sys.stderr):
        self.label, self.stream = label, stream
        self.tty = stream.isatty()
        self.t0 = time.monotonic()
        self.last_decile = -1

    def __call__(self, done: int, total: int) -> None:
        if total <= 0:
            return
        frac = done / total
        rate = done / max(time.monotonic() - self.t0, 1e-9)
        if self.tty:
            bar = "#" * int(frac * 30)
            self.stream.write(f"\r{self.label} [{bar:<30}] {done:,}/{total:,} files  {rate:,.0f}/s ")
            if done >= total:
                self.stream.write("\n")
            self.stream.flush()
        elif int(frac * 10) > self.last_decile:
            self.last_decile = int(frac * 10)
            self.stream.write(f"{self.label}: {done:,}/{total:,} files ({frac:.0%})\n")
            self.stream.flush()


# -- commands -------------------------------------------------------------------

def cmd_run(a) -> int:
    from . import watchdog

    watchdog.start()  # first: every process this run starts carries its token, and dies with it
    from .extract import InputError, discover
    from .store import Warehouse, write_failure

    try:
        discover(a.inputs)  # fail fast on a missing folder, before Prefect starts
    except InputError as e:
        raise CliError(str(e), EXIT_USAGE) from None
    Warehouse(a.warehouse).prepare()  # and on an unusable warehouse
    if a.no_prefect:
        from . import pipeline

        result = pipeline.run(a.inputs, a.warehouse, workers=a.workers, lock_timeout=a.lock_timeout,
                              progress=None if a.quiet else Progress("parsing"), as_of=a.as_of)
        summary = result.summary()
        run = result.run
    else:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING" if a.quiet else "INFO")
        # a full disk or a locked warehouse is logged without a traceback, here and in the task workers
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_CLASS", "newsetl.prefect_console.ConsoleHandler")
        from flows.etl import news_etl

        try:
            out = news_etl(inputs=[str(i) for i in a.inputs], warehouse=str(a.warehouse),
                           lock_timeout=a.lock_timeout, reports_dir=str(a.reports) if a.reports else None,
                           as_of=a.as_of)
        except Exception as e:
            err = write_failure(e, Warehouse(a.warehouse).root)  # a full disk: one line, as without Prefect
            if err is None:
                raise
            raise err from None
        run = out["run"]
        summary = (f"run {out['run_id']}: {run['files_seen']} files ({run['files_new']} new, "
                   f"{run['files_changed']} changed, {run['files_unchanged']} unchanged, "
                   f"{run['files_deleted']} deleted, {run['files_rejected']} rejected); "
                   + ", ".join(f"{k} {v:,}" for k, v in out["counts"].items()))
    print(summary)
    if run["files_rejected"]:
        print(f"{run['files_rejected']} files rejected: newsetl sql \"SELECT source_path, error FROM "
              f"source_files WHERE status = 'rejected'\" --warehouse {a.warehouse}", file=sys.stderr)
    if a.reports and a.no_prefect:
        from .reports import export_all

        export_all(a.warehouse, a.reports)
        print(f"wrote reports to {a.reports}", file=sys.stderr)
    if a.top:
        from . import reports
        from .export import show

        print(f"\nTop {a.top} providers by articles, with their average quality "
              f"(more: newsetl report top_providers --warehouse {a.warehouse}):")
        top = reports.top_providers(a.warehouse, a.top)
        show(top.select(["provider_domain", "provider_name", "articles", "avg_quality", "median_quality"]),
             max_rows=a.top)
    return 0


def cmd_demo(a) -> int:
    from .demo import generate

    progress = None if a.quiet else Progress("writing")
    s = generate(a.directory, records=a.records, seed=a.seed, profile=a.profile,
                 malformed=not a.no_malformed, progress=lambda d, t: progress(d, t) if progress else None)
    print(f"wrote {s.files:,} files ({s.records:,} records, {s.malformed} malformed on purpose, "
          f"{s.bytes / 1e6:,.1f} MB) to {s.directory}")
    return 0


def cmd_sql(a) -> int:
    from . import export
    from .catalog import connect

    query = a.query
    if query == "-":
        query = sys.stdin.read()
    con = connect(a.warehouse)
    try:
        table = con.sql(query)
        if table is None:  # a statement without a result
            return 0
        data = table.to_arrow_table()
    except Exception as e:  # duckdb errors: show DuckDB's own message, one line
        raise CliError(f"SQL error: {str(e).splitlines()[0]}") from None
    finally:
        pass
    fmt = export.write(data, a.out, a.format)
    if a.out and a.out != "-":
        print(f"wrote {data.num_rows:,} rows to {a.out} ({fmt})", file=sys.stderr)
    return 0


def _timestamp(text: str):
    """--as-of: ISO 8601 (UTC without an offset), checked as pipeline.run checks it."""
    import datetime as dt

    from .pipeline import check_as_of

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
    from . import export
    from .catalog import connect

    con = connect(a.warehouse)
    table = con.sql(
        "SELECT run_id, status, started_at, round(duration_s, 2) AS duration_s, files_seen, files_new, "
        "files_changed, files_unchanged, files_deleted, files_rejected, articles_rows, data_issues_rows "
        "FROM runs ORDER BY started_at DESC LIMIT $n", params={"n": a.limit}).to_arrow_table()
    export.write(table, a.out, a.format)
    return 0


def cmd_status(a) -> int:
    from .status import status

    print(status(a.warehouse))
    return 0


# -- parser -----------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="newsetl",
        description="Turn folders of Markdown news records (YAML front matter) into Parquet tables "
                    "and a DuckDB catalog for provider and quality analytics.",
        **_fmt(
            "  newsetl demo data/demo --records 2000        # generate demo records\n"
            "  newsetl run data/demo                         # run the ETL flow into ./warehouse\n"
            "  newsetl sql \"SELECT * FROM providers LIMIT 5\"\n"
            "  newsetl report --list                         # named reports; --out FILE.csv exports\n"
            "  newsetl serve data/demo --cron \"*/30 * * * *\"  # run on a schedule (needs a Prefect server)\n"
            "  newsetl COMMAND --help                        # details and examples per command\n"
        ),
    )
    p.add_argument("--version", action="version", version=f"newsetl {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser(
        "run", help="run the ETL flow on input folders",
        description="Run the news-etl Prefect flow: read every .md/.markdown file under the input folders, "
                    "load the records into Parquet tables under the warehouse and (re)write its DuckDB "
                    "catalog. Runs are incremental: unchanged files are not parsed again. Without a Prefect "
                    "server (PREFECT_API_URL unset) Prefect runs in ephemeral mode.",
        **_fmt(
            "  newsetl run data/demo\n"
            "  newsetl run site-a/_posts site-b/_posts --warehouse /data/news\n"
            "  newsetl run data/demo --top 20               # then print the top 20 providers\n"
            "  newsetl run data/demo --reports out/reports  # and export every report as CSV\n"
            "  newsetl run data/demo --no-prefect           # same stages, in-process, no Prefect\n"
        ),
    )
    r.add_argument("inputs", nargs="+", metavar="INPUT", help="folder(s) of Markdown records")
    r.add_argument("--warehouse", default="warehouse", help="warehouse folder (default: ./warehouse)")
    r.add_argument("--lock-timeout", type=float, default=600.0, metavar="SECONDS",
                   help="how long to wait for another run on the same warehouse (default: 600)")
    r.add_argument("--workers", type=int, default=None, help="parse processes (default: one per core)")
    r.add_argument("--top", type=int, default=0, metavar="N", help="print the top N providers after the run")
    r.add_argument("--reports", type=Path, default=None, metavar="DIR", help="export every report to DIR after loading")
    r.add_argument("--as-of", action=_AsOf, default=None, metavar="TIME",
                   help="when the files were observed (ISO 8601, UTC if no offset; default: now; "
                        "at most 5 minutes ahead of this machine's clock, for clock skew); "
                        "sets valid_from in article_versions, for backfills and replays")
    r.add_argument("--no-prefect", action="store_true", help="run the stages in-process without Prefect")
    r.add_argument("-q", "--quiet", action="store_true", help="no progress output")
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
    d.add_argument("--records", type=int, default=2000, help="well-formed records to write (default: 2000)")
    d.add_argument("--seed", type=int, default=42, help="random seed; same seed, same files (default: 42)")
    d.add_argument("--profile", choices=("demo", "azure", "bench"), default="demo",
                   help="demo: a varied mix; azure: shaped like a real site (~17 KB, ~20 related links); bench: ~20 KB, ~30 related links, ~20 related images (benchmarks)")
    d.add_argument("--no-malformed", action="store_true", help="write no deliberately broken files")
    d.add_argument("-q", "--quiet", action="store_true", help="no progress output")
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
        ),
    )
    s.add_argument("query", help="SQL text, or - to read it from stdin")
    s.add_argument("--warehouse", default="warehouse", help="warehouse folder (default: ./warehouse)")
    s.add_argument("--out", default=None, metavar="FILE", help="write to FILE (.csv, .json, .parquet)")
    s.add_argument("--format", choices=("table", "csv", "json", "parquet"), default=None,
                   help="output format (default: from --out, else table)")
    s.set_defaults(func=cmd_sql)

    ru = sub.add_parser(
        "runs", help="list recent runs with their counts and duration",
        description="The runs table, newest first: what each run found and loaded, and how long it took. "
                    "A run killed before publishing shows as failed.",
        **_fmt("  newsetl runs\n  newsetl runs --limit 100 --out runs.csv\n"),
    )
    ru.add_argument("--warehouse", default="warehouse", help="warehouse folder (default: ./warehouse)")
    ru.add_argument("--limit", type=int, default=20, help="how many runs (default: 20)")
    ru.add_argument("--out", default=None, metavar="FILE", help="write to FILE (.csv, .json, .parquet)")
    ru.add_argument("--format", choices=("table", "csv", "json", "parquet"), default=None, help="output format")
    ru.set_defaults(func=cmd_runs)

    st = sub.add_parser(
        "status", help="what the warehouse holds and when it last changed",
        description="Rows per table, files by status, the last run and the last run that changed data, "
                    "and whether a run is in progress or died before publishing.",
        **_fmt("  newsetl status\n  newsetl status --warehouse /data/news\n"),
    )
    st.add_argument("--warehouse", default="warehouse", help="warehouse folder (default: ./warehouse)")
    st.set_defaults(func=cmd_status)

    from . import cli_report, serve

    cli_report.register(sub)
    serve.register_parser(sub)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    a = parser.parse_args(argv)
    if not getattr(a, "func", None):
        parser.print_help()
        return EXIT_USAGE
    from .extract import InputError
    from .store import WarehouseError

    if a.command in ("sql", "report", "runs", "status") and not getattr(a, "list", False):
        from .catalog import heal_catalog

        heal_catalog(a.warehouse)  # a run killed after publishing left news.duckdb behind: rewrite it if we can
    try:
        return a.func(a) or 0
    except CliError as e:
        print(f"newsetl {a.command}: error: {e}", file=sys.stderr)
        return e.code
    except (InputError, FileNotFoundError) as e:
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
