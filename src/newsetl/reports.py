"""Reports: named, parameterised queries over the warehouse's analytics views.

A report is a SELECT in `sql/reports/NAME.sql` over the catalog's views and their
table macros (`provider_stats_for(since := ..., ...)`, see `sql/views/`), so the
metric definitions live in one place. Filters are DuckDB named parameters
(`$since`, `$until`, `$provider`, `$topic`, `$min_articles`, `$limit`): values are
validated here, then bound, never pasted into SQL text. A filter that is not
given binds NULL, which the SQL reads as "no filter".

    >>> from newsetl import reports
    >>> reports.run("warehouse", "provider_stats", since="2021-01-01", min_articles=5)
    >>> bundle.export_all("warehouse", "out/reports")       # every report + report.html (newsetl.bundle)
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa

from . import export
from .catalog import connect
from .clean import normalize_domain

from .filters import FILTER_NAMES, FILTERS, Filter, ReportError  # noqa: F401 - defined apart, so the CLI builds its parser without DuckDB
SCOPE = ("since", "until", "provider", "topic")  # the filters that choose the articles in scope
_DATES = ("since", "until")
EXPORT_FORMATS = ("csv", "json", "parquet")


@dataclass(frozen=True)
class Report:
    name: str
    description: str
    filters: tuple[str, ...]
    default_limit: int | None = None

    @property
    def sql(self) -> str:
        return (resources.files("newsetl") / "sql" / "reports" / f"{self.name}.sql").read_text(encoding="utf-8")

    @property
    def parameters(self) -> tuple[str, ...]:
        """The $names the SQL binds (every one of them gets a value, NULL when not given)."""
        return tuple(dict.fromkeys(re.findall(r"\$([a-z_]+)", _strip_comments(self.sql))))


def _strip_comments(sql: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


REPORTS: dict[str, Report] = {r.name: r for r in (
    Report("top_providers",
           "The providers with the most articles, with average/median quality, rated heat and published share "
           "(leaderboard; articles without a provider are left out).",
           ("since", "until", "topic", "min_articles", "limit"), default_limit=10),
    Report("top_authors",
           "The authors with the most articles (records' author or authors key), with average/median quality, "
           "rated heat, published share and first/last published_at (articles naming nobody are left out).",
           SCOPE + ("min_articles", "limit"), default_limit=10),
    Report("provider_stats",
           "Every provider domain: articles and share, quality (avg/median/p90), rated heat, published and "
           "with-image shares, citations received through related links, first/last published_at.",
           SCOPE + ("min_articles", "limit")),
    Report("quality_distribution",
           "Articles per 10-point quality bucket (0 to about 190), with percentages, plus the articles "
           "without a quality.",
           SCOPE),
    Report("quality_by_month",
           "Per UTC calendar month: articles, quality (avg/median/p90), rated heat and published share.",
           SCOPE),
    Report("topic_stats",
           "Per topic: articles, providers, average quality, first/last published_at, and growth: the last 90 "
           "days against the 90 before, up to the newest article in scope.",
           SCOPE + ("min_articles", "limit")),
    Report("provider_citations",
           "Which providers' articles cite which providers through related links: links, citing articles, "
           "cited URLs (--provider matches either side; --min-articles: citing articles).",
           SCOPE + ("min_articles", "limit")),
    Report("top_articles",
           "The best articles: by quality, then rated heat (heat -1 = not rated ranks below), newest first.",
           SCOPE + ("limit",), default_limit=50),
    Report("duplicate_urls",
           "URLs carried by more than one input file: how many files, which one won, the others.",
           SCOPE + ("limit",)),
    Report("data_quality",
           "What in the input was broken: files by status, rejected files by reason, field issues by field.",
           ()),
    Report("rejected_files",
           "Every rejected input file with the reason and the full error.",
           ("limit",)),
    Report("data_issues",
           "Every field that could not be typed (loaded as NULL), file by file.",
           ("provider", "limit")),
)}


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def get(name: str) -> Report:
    try:
        return REPORTS[name]
    except KeyError:
        from .words import close_match

        raise ReportError(f"unknown report {name!r}{close_match(name, REPORTS)}; the reports are: "
                          f"{', '.join(REPORTS)}") from None


# -- filter values --------------------------------------------------------------------------

_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?")


def parse_when(value, *, end: bool = False, name: str = "since") -> dt.datetime:
    """An ISO date or date-time as a naive UTC datetime, the form the view macros compare with.

    A date is its whole UTC day: its first microsecond, or with `end` its last (so
    `--until 2021-03-31` includes that day). A date-time without an offset is UTC.
    """
    if isinstance(value, dt.datetime):
        when = value
    elif isinstance(value, dt.date):
        when = dt.datetime.combine(value, dt.time())
        return when + dt.timedelta(days=1, microseconds=-1) if end else when
    elif isinstance(value, str):
        text = value.strip()
        try:
            if _DATE_RE.fullmatch(text):
                day = dt.datetime.combine(dt.date.fromisoformat(text), dt.time())
                return day + dt.timedelta(days=1, microseconds=-1) if end else day
            if not _DATETIME_RE.fullmatch(text):
                raise ValueError
            when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except (ValueError, OverflowError):
            raise ReportError(
                f"{flag(name)} {value!r} is not a date: use an ISO date (2021-03-01) "
                f"or date-time (2021-03-01T12:00:00Z)") from None
    else:
        raise ReportError(f"{flag(name)} must be a date, not {type(value).__name__}")
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return when


def _count(value, name: str, minimum: int) -> int:
    n = None
    if isinstance(value, int) and not isinstance(value, bool):
        n = value
    elif isinstance(value, str) and re.fullmatch(r"\s*[0-9]{1,18}\s*", value):
        n = int(value)
    if n is None or n < minimum or n > 10**18:
        raise ReportError(f"{flag(name)} {value!r} is not a whole number of at least {minimum}")
    return n


def _text(value, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ReportError(f"{flag(name)} needs a non-empty value")
    if len(value) > 1000:
        raise ReportError(f"{flag(name)} is too long ({len(value):,} characters)")
    return value.strip()


def check_filters(filters: dict) -> dict:
    """Validate filter values (None = not given); returns them typed for binding."""
    out = {}
    for key, value in filters.items():
        if key not in FILTER_NAMES:
            raise ReportError(f"unknown filter {key!r}; the filters are: {', '.join(FILTER_NAMES)}")
        if value is None:
            continue
        if key in _DATES:
            out[key] = parse_when(value, end=key == "until", name=key)
        elif key == "provider":
            # the form domains are stored in (case, punycode, a trailing dot: see normalize_domain)
            out[key] = normalize_domain(_text(value, key))
            if out[key] is None:
                raise ReportError(f"{flag(key)} {value!r} is not a domain")
        elif key == "topic":
            out[key] = _text(value, key)
        elif key == "min_articles":
            out[key] = _count(value, key, 0)
        elif key == "limit":
            out[key] = _count(value, key, 1)
    if "since" in out and "until" in out and out["since"] > out["until"]:
        raise ReportError(f"{flag('since')} {filters['since']} is after {flag('until')} {filters['until']}")
    return out


def params_for(report: Report, filters: dict, *, strict: bool = True) -> dict:
    """The parameters to bind for `report`: every $name of its SQL, NULL when not given.

    With `strict`, a filter the report does not take is an error; otherwise it is left out
    (what `export_all` does with filters meant for some reports only).
    """
    given = check_filters(filters)
    unsupported = [k for k in given if k not in report.filters]
    if unsupported and strict:
        takes = ", ".join(flag(f) for f in report.filters) or "no filters"
        raise ReportError(f"report {report.name} does not take {', '.join(flag(k) for k in unsupported)} "
                          f"(it takes {takes})")
    if "limit" not in given and report.default_limit is not None:
        given["limit"] = report.default_limit
    return {p: given.get(p) for p in report.parameters}


# -- running --------------------------------------------------------------------------------

def open_connection(source, snapshot: str | None = None) -> tuple[duckdb.DuckDBPyConnection, bool]:
    """(a connection, whether the caller owns it): `source` is a warehouse (its current snapshot, or
    the kept one named `snapshot`), or an open connection."""
    if isinstance(source, duckdb.DuckDBPyConnection):
        return source, False
    con = connect(source, snapshot=snapshot)
    con.execute("SET TimeZone = 'UTC'")  # terminal output shows UTC whatever the machine's zone
    return con, True


def run(source, name: str, *, strict: bool = True, snapshot: str | None = None, **filters) -> pa.Table:
    """Run report `name` over `source` (a warehouse folder or an open connection; `snapshot`: a kept
    snapshot's id); an Arrow table."""
    report = get(name)
    params = params_for(report, filters, strict=strict)
    con, own = open_connection(source, snapshot)
    try:
        return con.sql(report.sql, params=params).to_arrow_table()
    finally:
        if own:
            con.close()


def top_providers(warehouse, limit: int = 10) -> pa.Table:
    """The top `limit` providers by articles (what `newsetl run --top` prints)."""
    return run(warehouse, "top_providers", limit=limit)


def ignored_filters(name: str, filters: dict) -> list[str]:
    """The given filters that report `name` does not take."""
    return [k for k, v in filters.items() if v is not None and k not in get(name).filters]


def export_report(source, name: str, path, fmt: str | None = None, *, strict: bool = True, **filters) -> int:
    """Write report `name` to `path` (format from `fmt` or the extension); returns the row count."""
    path = Path(path)
    fmt = export.format_for(str(path), fmt)
    if fmt == "table":
        raise ReportError("a report file needs a format: csv, json or parquet")
    table = run(source, name, strict=strict, **filters)
    export.write_atomically(lambda p: export.write(table, str(p), fmt), path)
    return table.num_rows
