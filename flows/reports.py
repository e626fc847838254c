"""The `news-reports` Prefect flow: every report exported to a folder, plus the HTML page.

Tasks are thin wrappers over `newsetl.reports` (which runs, and is tested,
without Prefect). The flow leaves a markdown artifact with the top providers.
`news-etl` runs it after loading when given `reports_dir` (`newsetl run --reports DIR`).

    python -m flows.reports warehouse out/reports
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from newsetl import reports

# the warehouse changes under the same arguments: never cache, never persist results
_TASK = dict(cache_policy=NO_CACHE, persist_result=False)
TOP = 10


@task(name="export-report", task_run_name="export-{name}", retries=1, retry_delay_seconds=2, **_TASK)
def export_report(warehouse: str, name: str, out_dir: str, fmt: str) -> dict:
    path = Path(out_dir) / f"{name}.{fmt}"
    rows = reports.export_report(warehouse, name, path, fmt)
    return {"path": str(path), "rows": rows}


@task(name="html-report", retries=1, retry_delay_seconds=2, **_TASK)
def html_page(warehouse: str, out_dir: str) -> dict:
    from newsetl import html_report

    path = html_report.write(warehouse, Path(out_dir) / "report.html")
    return {"path": str(path), "rows": None}


@task(name="top-providers", **_TASK)
def top_providers(warehouse: str, limit: int) -> list[dict]:
    return reports.top_providers(warehouse, limit).to_pylist()


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
    if fmt not in reports.EXPORT_FORMATS:
        raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(reports.EXPORT_FORMATS)}")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    futures = {name: export_report.submit(warehouse, name, out_dir, fmt) for name in reports.REPORTS}
    page = html_page.submit(warehouse, out_dir)
    top = top_providers.submit(warehouse, TOP)
    written = {name: f.result() for name, f in futures.items()}
    written["report.html"] = page.result()
    for name, w in written.items():
        if w["rows"] is not None:
            log.info("%s: %d rows -> %s", name, w["rows"], w["path"])
    create_markdown_artifact(
        key="news-reports-top-providers",
        markdown=top_providers_markdown(top.result(), written, out_dir),
        description=f"Top {TOP} providers of {warehouse}",
    )
    return written


if __name__ == "__main__":
    import sys

    news_reports(*sys.argv[1:3])
