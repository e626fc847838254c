"""The reports bundle: every report written to a folder, and the HTML page beside them.

`export_all` is the one composition of a bundle; how its jobs run is a
parameter: in turn on one connection by default, or as Prefect tasks by the
`news-reports` flow (newsetl.flows), which passes its own `mapper`.

    >>> from newsetl import bundle
    >>> bundle.export_all("warehouse", "out/reports", since="2021-01-01")
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from . import html_report, reports

PAGE = "report.html"


class Job(NamedTuple):
    """One file of the bundle: a report (`name`), or the page (name `report.html`)."""

    name: str
    path: str


def jobs(out_dir, fmt: str, html: bool = True) -> list[Job]:
    out = Path(out_dir)
    listed = [Job(name, str(out / f"{name}.{fmt}")) for name in reports.REPORTS]
    return listed + ([Job(PAGE, str(out / PAGE))] if html else [])


def export_job(source, fmt: str, filters: dict, job: Job) -> int | None:
    """Write one file of the bundle from `source` (a warehouse or an open connection):
    its row count, or None for the page. Filters a report does not take are left out."""
    if job.name == PAGE:
        html_report.write(source, job.path, **filters)
        return None
    return reports.export_report(source, job.name, job.path, fmt, strict=False, **filters)


def _in_turn(fn, common: tuple, todo: list[Job]) -> list:
    return [fn(*common, job) for job in todo]


def export_all(warehouse, out_dir, fmt: str = "csv", *, html: bool = True, mapper=None, **filters) -> dict:
    """Write every report to `out_dir` as NAME.FMT, plus the HTML page report.html.

    Filters apply to the reports that take them and are left out of the others.
    `mapper(fn, common, jobs)` runs `fn(*common, job)` for every job and returns the
    results in order (default: in turn, all on one connection).
    Returns {name: {"path": ..., "rows": ...}} (the page under "report.html", rows None).
    """
    if fmt not in reports.EXPORT_FORMATS:
        raise reports.ReportError(f"unknown format {fmt!r}: choose one of {', '.join(reports.EXPORT_FORMATS)}")
    reports.check_filters(filters)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    todo = jobs(out_dir, fmt, html)
    # the page last: it links the report files it finds written beside it
    files, page = [j for j in todo if j.name != PAGE], [j for j in todo if j.name == PAGE]
    if mapper is None:
        con, own = reports.open_connection(warehouse)
        try:
            rows = _in_turn(export_job, (con, fmt, filters), files) + _in_turn(export_job, (con, fmt, filters), page)
        finally:
            if own:
                con.close()
    else:
        common = (str(warehouse), fmt, filters)
        rows = mapper(export_job, common, files) + (mapper(export_job, common, page) if page else [])
    return {job.name: {"path": job.path, "rows": n} for job, n in zip(files + page, rows)}
