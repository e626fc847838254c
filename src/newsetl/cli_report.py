"""`newsetl report`: named reports over the warehouse, on the terminal or exported.

Wired into the main CLI by `cli_report.register(subparsers)`; `main(argv)` runs
the same parser and handler on its own (`python -m newsetl.cli_report ...`).
Filter values are passed to `newsetl.reports`, which validates and binds them as
query parameters; a bad value is a one-line error and exit code 2.
"""

from __future__ import annotations

import argparse
import sys

EXAMPLES = """examples:
  newsetl report --list                                   # the reports, their filters
  newsetl report top_providers                            # a table on the terminal
  newsetl report provider_stats --since 2021-01-01 --until 2021-03-31 --min-articles 5
  newsetl report quality_by_month --provider example.com --out quality.csv
  newsetl report top_articles --topic AI --limit 20 --format json
  newsetl report topic_stats --out topics.parquet
  newsetl report --all --out-dir out/reports              # every report as CSV + report.html
  newsetl report --html report.html --since 2021-01-01    # charts on one self-contained page
"""

FILTER_ARGS = (
    ("--since", "DATE", "articles published on or after DATE (ISO date or date-time; UTC unless an offset is given)"),
    ("--until", "DATE", "articles published on or before DATE (a date includes its whole day)"),
    ("--provider", "DOMAIN", "one provider domain (case-insensitive)"),
    ("--topic", "TOPIC", "articles with this topic (case-insensitive)"),
    ("--min-articles", "N", "rows with at least N articles (provider_stats, top_providers, topic_stats; "
                            "citing articles for provider_citations)"),
    ("--limit", "N", "at most N rows"),
)


def register(subparsers) -> None:
    """Add the `report` command to the main CLI's subparsers."""
    p = subparsers.add_parser(
        "report", help="run a named report (provider and quality analytics)",
        description="Run a named report over the warehouse's analytics views: a readable table on the "
                    "terminal, or CSV, JSON or Parquet with --out/--format. CSV opens safely in "
                    "spreadsheets (formula-like cells from titles and names are neutralised). "
                    "Filters apply where a report supports them (see --list).",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EXAMPLES,
    )
    p.add_argument("name", nargs="?", metavar="NAME", help="the report to run (see --list)")
    mode = p.add_argument_group("what to do (default: run NAME)")
    mode.add_argument("--list", action="store_true", help="describe every report and the filters it takes")
    mode.add_argument("--all", action="store_true", help="write every report (and report.html) to --out-dir")
    mode.add_argument("--html", metavar="FILE", default=None,
                      help="write one self-contained HTML page with charts and tables")
    out = p.add_argument_group("output")
    out.add_argument("--out", metavar="FILE", default=None, help="write to FILE (.csv, .json, .parquet; - for stdout)")
    out.add_argument("--out-dir", metavar="DIR", default=None, help="folder for --all")
    out.add_argument("--format", choices=("table", "csv", "json", "parquet"), default=None,
                     help="output format (default: from --out, else a table; csv for --all)")
    out.add_argument("--warehouse", default="warehouse", help="warehouse folder (default: ./warehouse)")
    flt = p.add_argument_group("filters (validated, then bound as query parameters)")
    for name, metavar, text in FILTER_ARGS:
        flt.add_argument(name, metavar=metavar, default=None, help=text)  # strings: checked by newsetl.reports
    p.set_defaults(func=cmd_report)


def _filters(a) -> dict:
    return {k: getattr(a, k) for k in ("since", "until", "provider", "topic", "min_articles", "limit")}


def _list(stream=None) -> None:
    from .reports import REPORTS, flag

    stream = stream or sys.stdout
    width = max(len(n) for n in REPORTS)
    for r in REPORTS.values():
        takes = " ".join(flag(f) for f in r.filters) or "(no filters)"
        default = f"; default --limit {r.default_limit}" if r.default_limit else ""
        stream.write(f"{r.name:<{width}}  {r.description}\n{'':<{width}}  filters: {takes}{default}\n")


def cmd_report(a) -> int:
    from . import export, reports
    from .cli import EXIT_USAGE, CliError

    def usage(msg: str) -> CliError:
        return CliError(msg, EXIT_USAGE)

    filters = _filters(a)
    given = {k: v for k, v in filters.items() if v is not None}
    modes = [m for m, on in (("NAME", a.name), ("--list", a.list), ("--all", a.all), ("--html", a.html)) if on]
    if len(modes) > 1:
        raise usage(f"use one of NAME, --list, --all, --html (got {' and '.join(modes)})")
    if not modes:
        raise usage("name a report, or use --list, --all or --html (newsetl report --list shows the reports)")
    if a.out_dir and not a.all:
        raise usage("--out-dir goes with --all")
    if a.out and (a.all or a.list or a.html):
        raise usage("--out goes with a report NAME; use --out-dir with --all")
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

            path = html_report.write(a.warehouse, a.html, **filters)
            print(f"wrote {path}", file=sys.stderr)
            return 0
        if a.all:
            if not a.out_dir:
                raise usage("--all needs --out-dir DIR")
            fmt = a.format or "csv"
            if fmt == "table":
                raise usage("--all writes files: --format csv, json or parquet")
            for name in reports.REPORTS:
                skipped = reports.ignored_filters(name, given)
                if skipped:
                    print(f"note: {name} does not take {', '.join(reports.flag(k) for k in skipped)}; "
                          "written without", file=sys.stderr)
            written = reports.export_all(a.warehouse, a.out_dir, fmt, **filters)
            rows = sum(w["rows"] or 0 for w in written.values())
            print(f"wrote {len(written)} files ({rows:,} rows) to {a.out_dir}", file=sys.stderr)
            return 0
        table = reports.run(a.warehouse, a.name, **filters)
        fmt = export.write(table, a.out, a.format)
        if a.out and a.out != "-":
            print(f"wrote {table.num_rows:,} rows to {a.out} ({fmt})", file=sys.stderr)
        return 0
    except reports.ReportError as e:
        raise usage(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    """A parser with only the `report` command, as the main CLI wires it."""
    p = argparse.ArgumentParser(prog="newsetl")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    register(sub)
    return p


def main(argv=None) -> int:
    """`newsetl report ARGS` on its own: argv is what follows `report`."""
    from .cli import CliError, EXIT_ERROR, EXIT_USAGE
    from .store import WarehouseError

    parser = build_parser()
    a = parser.parse_args(["report", *(sys.argv[1:] if argv is None else argv)])
    try:
        return a.func(a) or 0
    except CliError as e:
        print(f"newsetl report: error: {e}", file=sys.stderr)
        return e.code
    except WarehouseError as e:
        print(f"newsetl report: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except (ValueError, FileNotFoundError) as e:
        print(f"newsetl report: error: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
