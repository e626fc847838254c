"""One self-contained HTML page: the provider leaderboard, the quality distribution
and quality by month as charts, each followed by the table behind it, then the
best articles and the state of the input.

Charts are inline SVG drawn here (no JavaScript, no fonts, images or styles from
the network: the page opens offline). Every value is HTML-escaped, because titles
and names come from the open web; the page also carries a Content-Security-Policy
that forbids scripts and any fetch, so it stays inert even if a value slipped
through.

    >>> from newsetl import html_report
    >>> html_report.write("warehouse", "report.html", since="2021-01-01")
"""

from __future__ import annotations

import datetime as dt
import math
from html import escape
from importlib import resources
from pathlib import Path
from string import Template

import pyarrow as pa

from . import __version__, export, reports

LEADERBOARD_LIMIT = 15
TOP_ARTICLES = 10
LEADERBOARD_COLUMNS = ["provider_domain", "provider_name", "articles", "articles_share_pct", "avg_quality",
                       "median_quality", "p90_quality", "avg_heat_rated", "published_pct", "with_image_pct",
                       "citations_received"]
_BAR_W = 1100  # drawing width of every chart (SVG user units; scales down with the page)


def _e(v) -> str:
    return escape(str(v), quote=True)


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _num(v, digits: int = 2) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        text = f"{v:,.{digits}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(v)


def _when(v) -> str:
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(dt.timezone.utc)
        return v.strftime("%Y-%m-%d %H:%M UTC")
    return v.isoformat()


# -- tables ------------------------------------------------------------------------------

def _cell(name: str, v) -> str:
    if v is None:
        return '<td class="null">—</td>'
    if isinstance(v, (bool, int, float)):
        if name == "heat" and v == -1:
            return '<td class="num null" title="heat -1: not rated">not rated</td>'
        return f'<td class="num">{_e(_num(v))}</td>'
    if isinstance(v, (dt.datetime, dt.date)):
        return f'<td class="num">{_e(_when(v))}</td>'
    if isinstance(v, list):
        return f"<td>{_e('; '.join('' if x is None else str(x) for x in v))}</td>"
    return f"<td>{_e(v)}</td>"


def _table(table: pa.Table, columns: list[str] | None = None, *, link: tuple[str, str] | None = None) -> str:
    """An HTML table of `columns` (default: all); `link=(text column, url column)` makes that
    column a link when the URL is http(s)."""
    columns = columns or table.column_names
    # <wbr> after each underscore: long snake_case names may wrap, and copy as written
    head = "".join(f"<th>{_e(c).replace('_', '_<wbr>')}</th>" for c in columns)
    rows = []
    for row in table.select(columns + ([link[1]] if link and link[1] not in columns else [])).to_pylist():
        cells = []
        for c in columns:
            v = row[c]
            if link and c == link[0] and v is not None:
                url = row.get(link[1])
                text = _e(v)
                if isinstance(url, str) and url.lower().startswith(("https://", "http://")):
                    text = f'<a href="{_e(url)}" rel="noopener noreferrer nofollow">{text}</a>'
                cells.append(f'<td class="title">{text}</td>')
            else:
                cells.append(_cell(c, v))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    if not rows:
        rows.append(f'<tr><td class="null" colspan="{len(columns)}">no rows</td></tr>')
    return (f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


# -- charts --------------------------------------------------------------------------------

def _ticks(vmax: float, n: int = 5, *, counts: bool = False) -> list[float]:
    """Round axis ticks from 0 to at least vmax (whole steps for counts)."""
    if not vmax or vmax <= 0:
        return [0, 1]
    raw = vmax / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    if counts and step < 1:
        step = 1
    if step >= 1 and step == int(step):
        step = int(step)
    elif step >= 1:  # 2.5, 25, ...: keep whole numbers on the axis
        step = math.ceil(step)
    top = math.ceil(vmax / step - 1e-9) * step
    return [i * step for i in range(int(round(top / step)) + 1)]


def _svg(width: int, height: int, label: str, body: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-label="{_e(label)}"><title>{_e(label)}</title>{body}</svg>')


def hbar_chart(rows: list[tuple[str, float, str, str]], label: str) -> str:
    """Horizontal bars: (label, value, note shown after the bar, tooltip) per row."""
    left, right, top, bar_h, gap = 250, 230, 26, 20, 8
    plot_w = _BAR_W - left - right
    height = top + len(rows) * (bar_h + gap) + 6
    ticks = _ticks(max((r[1] for r in rows), default=0), counts=True)
    scale = plot_w / ticks[-1]
    parts = ['<g class="grid">']
    for t in ticks:
        x = left + t * scale
        parts.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 4}"/>')
    parts.append('</g><g class="axis">')
    for t in ticks:
        parts.append(f'<text x="{left + t * scale:.1f}" y="{top - 10}" text-anchor="middle">{_e(_num(t))}</text>')
    parts.append("</g>")
    for i, (name, value, note, tip) in enumerate(rows):
        y = top + i * (bar_h + gap)
        w = max(value * scale, 1.5 if value else 0)
        parts.append(
            f'<g class="row"><text x="{left - 8}" y="{y + bar_h * 0.72:.1f}" text-anchor="end">{_e(_short(name, 34))}</text>'
            f'<rect class="bar" x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" rx="2"><title>{_e(tip)}</title></rect>'
            f'<text class="axis" x="{left + w + 6:.1f}" y="{y + bar_h * 0.72:.1f}">{_e(note)}</text></g>')
    return _svg(_BAR_W, height, label, "".join(parts))


def vbar_chart(bars: list[tuple[str, float, str, str]], label: str, x_title: str, y_title: str,
               height: int = 300, max_labels: int = 24) -> str:
    """Vertical bars: (x label, value, tooltip, extra css class) per bar."""
    left, right, top, bottom = 64, 16, 14, 52
    plot_w, plot_h = _BAR_W - left - right, height - top - bottom
    ticks = _ticks(max((b[1] for b in bars), default=0), counts=True)
    scale = plot_h / ticks[-1]
    n = max(len(bars), 1)
    slot = plot_w / n
    every = max(1, math.ceil(n / max_labels))
    parts = ['<g class="grid">']
    for t in ticks:
        y = top + plot_h - t * scale
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}"/>')
    parts.append('</g><g class="axis">')
    for t in ticks:
        y = top + plot_h - t * scale
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_e(_num(t))}</text>')
    for i, (xl, _v, _t, _c) in enumerate(bars):
        if i % every == 0:
            x = left + (i + 0.5) * slot
            parts.append(f'<text x="{x:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{_e(xl)}</text>')
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 8}" text-anchor="middle">{_e(x_title)}</text>')
    parts.append(f'<text x="14" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
                 f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">{_e(y_title)}</text></g>')
    pad = min(slot * 0.15, 6)
    for i, (_xl, value, tip, cls) in enumerate(bars):
        h = value * scale
        x = left + i * slot + pad
        parts.append(f'<rect class="bar {cls}" x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{max(slot - 2 * pad, 1):.1f}" '
                     f'height="{h:.1f}"><title>{_e(tip)}</title></rect>')
    return _svg(_BAR_W, height, label, "".join(parts))


_SERIES_STYLE = {  # name: (colour, dash)
    "avg_quality": ("#3b6fb6", ""),
    "median_quality": ("#d9822b", "6 4"),
    "p90_quality": ("#6b7280", "2 4"),
}


def line_chart(x_labels: list[str], series: dict[str, list[float | None]], label: str, y_title: str,
               height: int = 300, max_labels: int = 18) -> str:
    """Lines over shared x labels; a None value breaks its line."""
    left, right, top, bottom = 64, 16, 30, 44
    plot_w, plot_h = _BAR_W - left - right, height - top - bottom
    values = [v for s in series.values() for v in s if v is not None]
    ticks = _ticks(max(values, default=0))
    scale = plot_h / ticks[-1]
    n = max(len(x_labels), 1)
    step = plot_w / n
    every = max(1, math.ceil(n / max_labels))

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + (i + 0.5) * step, top + plot_h - v * scale

    parts = ['<g class="grid">']
    for t in ticks:
        y = top + plot_h - t * scale
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}"/>')
    parts.append('</g><g class="axis">')
    for t in ticks:
        y = top + plot_h - t * scale
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_e(_num(t))}</text>')
    for i, xl in enumerate(x_labels):
        if i % every == 0:
            parts.append(f'<text x="{left + (i + 0.5) * step:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{_e(xl)}</text>')
    parts.append(f'<text x="14" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
                 f'transform="rotate(-90 14 {top + plot_h / 2:.1f})">{_e(y_title)}</text></g>')
    legend_x = left
    parts.append('<g class="legend">')
    for name in series:
        colour, dash = _SERIES_STYLE.get(name, ("#333", ""))
        d = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(f'<line x1="{legend_x}" y1="12" x2="{legend_x + 26}" y2="12" stroke="{colour}" stroke-width="2.2"{d}/>'
                     f'<text x="{legend_x + 32}" y="16">{_e(name)}</text>')
        legend_x += 40 + 8 * len(name) + 20
    parts.append("</g>")
    for name, vals in series.items():
        colour, dash = _SERIES_STYLE.get(name, ("#333", ""))
        d = f' stroke-dasharray="{dash}"' if dash else ""
        segment: list[str] = []
        segments = []
        for i, v in enumerate(vals):
            if v is None:
                if segment:
                    segments.append(segment)
                segment = []
            else:
                x, y = xy(i, v)
                segment.append(f"{x:.1f},{y:.1f}")
        if segment:
            segments.append(segment)
        for seg in segments:
            if len(seg) == 1:  # a lone point: draw a dot
                x, y = seg[0].split(",")
                parts.append(f'<circle cx="{x}" cy="{y}" r="3" fill="{colour}"/>')
            else:
                parts.append(f'<polyline class="series" points="{" ".join(seg)}" stroke="{colour}"{d}/>')
        if n <= 40:
            for i, v in enumerate(vals):
                if v is not None:
                    x, y = xy(i, v)
                    parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.6" fill="{colour}">'
                                 f'<title>{_e(f"{x_labels[i]}: {name} {_num(v)}")}</title></circle>')
    return _svg(_BAR_W, height, label, "".join(parts))


# -- the page --------------------------------------------------------------------------------

def _scope_text(filters: dict) -> str:
    given = {k: v for k, v in filters.items() if v is not None}
    if not given:
        return "all articles"
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in given.items())


def _summary(con, scope: dict) -> dict:
    params = {k: scope.get(k) for k in reports.SCOPE}
    (articles, providers, avg_q, rated_pct), = con.sql(
        """SELECT count(*), count(DISTINCT provider_domain), round(avg(quality), 1),
                  round(100.0 * count(*) FILTER (WHERE heat <> -1) / nullif(count(*), 0), 1)
           FROM articles_in(since := $since, until := $until, provider := $provider, topic := $topic)""",
        params=params).fetchall()
    (files, rejected), = con.sql(
        "SELECT count(*), count(*) FILTER (WHERE status = 'rejected') FROM source_files").fetchall()
    run = con.sql("SELECT run_id, finished_at FROM runs ORDER BY finished_at DESC, run_id DESC LIMIT 1").fetchall()
    return {"articles": articles, "providers": providers, "avg_quality": avg_q, "heat_rated_pct": rated_pct,
            "files": files, "rejected": rejected, "run_id": run[0][0] if run else None,
            "run_finished_at": run[0][1] if run else None}


def build(source, *, title: str = "newsetl: providers and quality", generated_at: dt.datetime | None = None,
          **filters) -> str:
    """The page as text. Filters: since, until, provider, topic (every section but the input's),
    min_articles and limit (the leaderboard: providers shown, default 15)."""
    typed = reports.check_filters(filters)
    scope = {k: typed[k] for k in reports.SCOPE if k in typed}
    con, own = reports.open_connection(source)
    try:
        s = _summary(con, scope)
        leaders = reports.run(con, "provider_stats", strict=False, **scope,
                              min_articles=typed.get("min_articles"),
                              limit=typed.get("limit", LEADERBOARD_LIMIT))
        dist = reports.run(con, "quality_distribution", strict=False, **scope)
        months = reports.run(con, "quality_by_month", strict=False, **scope)
        best = reports.run(con, "top_articles", strict=False, **scope, limit=TOP_ARTICLES)
        files = reports.run(con, "data_quality")
    finally:
        if own:
            con.close()

    generated_at = generated_at or dt.datetime.now(dt.timezone.utc)
    shown = {k: filters.get(k) for k in reports.FILTER_NAMES if filters.get(k) is not None}
    body = [
        "<header>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">Generated {_e(_when(generated_at))} · warehouse run <code>{_e(s["run_id"] or "none")}</code>'
        + (f' (finished {_e(_when(s["run_finished_at"]))})' if s["run_finished_at"] else "")
        + f" · scope: {_e(_scope_text(shown))}</p>",
        "</header>",
        '<div class="cards">',
        _card("articles in scope", _num(s["articles"])),
        _card("providers", _num(s["providers"])),
        _card("average quality (0 to about 190)", "—" if s["avg_quality"] is None else _num(s["avg_quality"], 1)),
        _card("articles with rated heat", "—" if s["heat_rated_pct"] is None else f'{_num(s["heat_rated_pct"], 1)} %'),
        _card("input files (rejected)", f'{_num(s["files"])} ({_num(s["rejected"])})'),
        "</div>",
    ]

    # leaderboard
    rows = leaders.to_pylist()
    bars = [((r["provider_name"] or r["provider_domain"] or "(no provider)"), r["articles"],
             f'{_num(r["articles"])} · avg quality {"—" if r["avg_quality"] is None else _num(r["avg_quality"], 1)}',
             f'{r["provider_domain"] or "(no provider)"}: {_num(r["articles"])} articles, '
             f'avg quality {"—" if r["avg_quality"] is None else _num(r["avg_quality"])}')
            for r in rows]
    body += [
        '<section id="providers"><h2>Top providers</h2>',
        f'<p class="note">The {len(rows)} providers with the most articles in scope; the label after each bar '
        "is its article count and average quality (NULL qualities ignored).</p>",
        f"<figure>{hbar_chart(bars, 'Top providers by articles')}"
        "<figcaption>Bars: articles per provider (name as most often written; domain in the table).</figcaption></figure>",
        _table(leaders, LEADERBOARD_COLUMNS),
        '<p class="note">Every column of every provider: <code>newsetl report provider_stats</code>.</p>',
        "</section>",
    ]

    # distribution
    drows = dist.to_pylist()
    hbars = [(("n/a" if r["bucket_start"] is None else str(r["bucket_start"])), r["articles"],
              f'{r["bucket"]}: {_num(r["articles"])} articles ({_num(r["articles_pct"] or 0.0, 1)} %)',
              "null" if r["bucket_start"] is None else "")
             for r in drows]
    body += [
        '<section id="quality-distribution"><h2>Quality distribution</h2>',
        '<p class="note">Articles per 10-point quality bucket [start, start + 10); the grey bar at the end '
        "counts the articles without a quality.</p>",
        f"<figure>{vbar_chart(hbars, 'Quality distribution', 'quality (bucket start)', 'articles')}</figure>",
        _table(dist),
        "</section>",
    ]

    # by month
    mrows = months.to_pylist()
    labels = [r["month"].strftime("%Y-%m") for r in mrows]
    series = {k: [r[k] for r in mrows] for k in ("avg_quality", "median_quality", "p90_quality")}
    mbars = [(labels[i], r["articles"], f'{labels[i]}: {_num(r["articles"])} articles', "light")
             for i, r in enumerate(mrows)]
    body += [
        '<section id="quality-by-month"><h2>Quality by month</h2>',
        '<p class="note">Average, median and 90th percentile quality per calendar month (UTC), and the '
        "number of articles behind each month. Articles without a publication date are not placed.</p>",
        f"<figure>{line_chart(labels, series, 'Quality by month', 'quality')}</figure>",
        f"<figure>{vbar_chart(mbars, 'Articles by month', 'month', 'articles', height=200, max_labels=18)}</figure>",
        _table(months),
        "</section>",
    ]

    body += [
        '<section id="top-articles"><h2>Top articles</h2>',
        f'<p class="note">The {TOP_ARTICLES} best articles in scope: by quality, then rated heat '
        "(heat -1 means not rated and ranks below rated heat).</p>",
        _table(best, ["rank", "title", "provider_domain", "provider_name", "published_at", "quality", "heat", "topics"],
               link=("title", "url")),
        "</section>",
        '<section id="input"><h2>Input</h2>',
        '<p class="note">Files by status, rejected files by reason and fields that could not be typed '
        "(whole warehouse).</p>",
        _table(files),
        "</section>",
        f'<footer>newsetl {_e(__version__)} · this page is self-contained: no scripts, nothing fetched. '
        "Figures: see the data dictionary of the analytics views.</footer>",
    ]
    template = Template((resources.files("newsetl") / "templates" / "report.html").read_text(encoding="utf-8"))
    return template.substitute(title=_e(title), version=_e(__version__), body="\n".join(body))


def _card(k: str, v: str) -> str:
    return f'<div class="card"><div class="v">{_e(v)}</div><div class="k">{_e(k)}</div></div>'


def write(source, path, **filters) -> Path:
    """Write the page to `path` (UTF-8, replaced atomically); returns the path."""
    path = Path(path)
    page = build(source, **filters)
    export.write_atomically(lambda tmp: tmp.write_text(page, encoding="utf-8"), path)
    return path
