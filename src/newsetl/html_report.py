"""One self-contained HTML page an editor reads: providers, topics, trends, citations,
changes and the state of the input, for the whole warehouse or a slice of it.

Every figure comes from the analytics views (their `_for` macros) or from the small
queries in `sql/page/`, which call those macros; this module only chooses, orders and
formats. Charts are inline SVG drawn here, each twice: a wide drawing for screens and
print, a narrow one that a phone shows instead (a CSS media query picks; no script).
Nothing is fetched and nothing runs: every value is HTML-escaped (titles and names come
from the open web) and the page carries a Content-Security-Policy that forbids scripts
and fetches. Nor can a value reorder the text around it: a right-to-left override
(U+202E) in a topic would otherwise turn the rest of its sentence around. Every value
from the records is a bidirectional isolate: a `<bdi>` element in the page's text
(`_v`; a path's own span, dir=auto), and between FSI and PDI (U+2068, U+2069) where no
element can be, in SVG labels and tooltips (`_iso`); its own isolates are balanced and
its paragraph separators made spaces first (`_balanced`), so that it cannot close the
isolate around it.

    >>> from newsetl import html_report
    >>> html_report.write("warehouse", "report.html", since="2021-01-01")
    >>> print(html_report.summary_markdown("warehouse", topic="AI"))
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from html import escape
from importlib import resources
from pathlib import Path
from string import Template

from . import _package_version, export, reports

_open = reports.open_connection
_write_atomically = export.write_atomically
_SCOPE = reports.SCOPE  # the filters that scope every figure
FILTER_ORDER = reports.FILTER_NAMES

# -- choices the page states -----------------------------------------------------------------
LEADERBOARD_LIMIT = 15        # providers shown (--limit)
MIN_ARTICLES_FOR_QUALITY = 5  # a provider needs this many scored articles to be ranked by quality (--min-articles)
MIN_MONTH_ARTICLES = 10       # a month with fewer articles is marked: its averages rest on too few
TOP_TOPICS = 12
TOPIC_MOVERS = 8
CITATION_PAIRS = 10
TOP_ARTICLES = 10
CHANGED_ARTICLES = 10
QUALITY_SCALE = "0-190"       # quality runs from 0 to about 190 in real records, not 0-100

# drawing widths of the two versions of every chart (SVG units): the wide one is printed on A4
# at about 0.85 of its size, the narrow one shown on a 390 px phone at about 0.9
WIDE, NARROW = 860, 400
_EPS = dt.timedelta(microseconds=1)


# -- formatting ----------------------------------------------------------------------------------

def _e(v) -> str:
    return escape(str(v), quote=True)


# -- values from the records: bidirectional isolates ------------------------------------------------
FSI, PDI = "\u2068", "\u2069"
_OPENS = "\u2066\u2067\u2068"  # LRI, RLI, FSI: each is closed by a PDI
# bidi class B (paragraph separators): a new paragraph would end every isolate around the value
_PARAGRAPH = re.compile("[\n\r\x1c-\x1e\x85\u2029]")


def _balanced(text) -> str:
    """`text` unable to reach outside an isolate around it (Unicode's bidi algorithm, UAX #9):
    a PDI that closes nothing inside it gets an FSI before the text, an isolate it leaves open
    gets a PDI after it, and a paragraph separator becomes a space. Embeddings and overrides
    (U+202A-U+202E) end with the isolate around them (rule X6a): they need nothing."""
    text = _PARAGRAPH.sub(" ", str(text))
    if not any("\u2066" <= ch <= PDI for ch in text):
        return text
    depth = unopened = 0
    for ch in text:
        if ch in _OPENS:
            depth += 1
        elif ch == PDI:
            if depth:
                depth -= 1
            else:
                unopened += 1
    return FSI * unopened + text + PDI * depth


def _v(text) -> str:
    """A value from the records in the page's text: escaped, in its own isolate (<bdi>)."""
    return f"<bdi>{_e(_balanced(text))}</bdi>"


def _iso(text) -> str:
    """A value from the records where no element can hold it (SVG labels, tooltips, other
    attributes): between FSI and PDI, as plain text (escape it where it goes)."""
    return FSI + _balanced(text) + PDI


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _middle(text: str, n: int) -> str:
    """Shorten in the middle, keeping the start (the input folder) and the end (the file name)."""
    if len(text) <= n:
        return text
    tail = max(n * 3 // 5, 1)
    return text[: n - tail - 1] + "…" + text[-tail:]


def _num(v, digits: int = 0) -> str:
    """A number for reading: thousands separated, `digits` decimals; None is a dash."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int) and digits == 0:
        return f"{v:,}"
    return f"{v:,.{digits}f}"


def _q(v) -> str:  # quality and heat averages: one decimal is all a reader uses
    return _num(v, 1)


def _pct(v, digits: int = 1) -> str:
    return "—" if v is None else f"{_num(v, digits)}%"


def _n(n: int, noun: str) -> str:
    """"1 file", "3 files"."""
    return f"{_num(n)} {noun}" + ("" if n == 1 else "s")


def _share(part, whole) -> float | None:
    return None if not whole else 100.0 * part / whole


def _signed(v, digits: int = 0) -> str:
    if v is None:
        return "—"
    if round(v, digits) == 0:
        return "±0"
    return ("+" if v > 0 else "−") + _num(abs(v), digits)


def _date(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:
            v = v.astimezone(dt.timezone.utc)
        v = v.date()
    return f"{v.day} {v:%b %Y}"


def _when(v: dt.datetime) -> str:
    if v.tzinfo is not None:
        v = v.astimezone(dt.timezone.utc)
    return f"{_date(v)} {v:%H:%M} UTC"


def _month(v: dt.date) -> str:
    return f"{v:%b %Y}"


def _naive_utc(v: dt.datetime | None) -> dt.datetime | None:
    """The form the view macros compare with (UTC wall clock, no zone)."""
    if v is None or v.tzinfo is None:
        return v
    return v.astimezone(dt.timezone.utc).replace(tzinfo=None)


def _provider(domain: str | None, name: str | None, *, html: bool = True, value=_iso) -> str:
    """Domain first (what identifies a provider), then the name its records give it; as text
    (html=False) each passed through `value` (isolated, for a chart's label)."""
    if domain is None:
        return '<span class="null">no provider</span>' if html else "(no provider)"
    same = name is None or name.strip().lower() in (domain, domain.split(".")[0])
    if not html:
        return value(domain) if same else f"{value(domain)} · {value(name)}"
    # a long domain may break after its dots, never inside a label (print narrows the tables)
    dom = _v(domain).replace(".", ".<wbr>")
    return f'<span class="dom">{dom}</span>' + ("" if same else f' <span class="pname">{_v(name)}</span>')


# -- periods ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    """Inclusive bounds on published_at, UTC wall clock (None: open)."""
    since: dt.datetime | None
    until: dt.datetime | None

    def text(self) -> str:
        if self.since is None and self.until is None:
            return "all dates"
        short = self.since and self.until and self.until - self.since < dt.timedelta(days=2)
        show = _when if short else _date
        a = show(self.since) if self.since else "the first article"
        b = show(self.until) if self.until else "the last article"
        return a if a == b else f"{a} – {b}"


@dataclass(frozen=True)
class Periods:
    period: Window           # what the page covers
    previous: Window | None  # the two periods compared (None: no dated articles)
    current: Window | None
    halves: bool             # True: no --since, the period is split in two halves
    whole: bool              # True: no --since/--until: the whole warehouse

    @property
    def names(self) -> tuple[str, str]:
        return ("earlier half", "later half") if self.halves else ("previous period", "this period")


def periods(first: dt.datetime | None, last: dt.datetime | None,
            since: dt.datetime | None, until: dt.datetime | None) -> Periods:
    """The page's period and the two periods it compares (all naive UTC).

    The period is --since/--until, open ends filled with the warehouse's first and last
    publication dates. With --since, the previous period is the same length just before
    it. Without --since there is nothing before the period, so its two halves are compared,
    split at the midnight (UTC) nearest the middle.
    """
    first, last = _naive_utc(first), _naive_utc(last)
    start, end = since or first, until or last
    whole = since is None and until is None
    if start is None or end is None or end < start:
        return Periods(Window(since, until), None, None, since is None, whole)
    period = Window(start, end)
    if since is not None:
        length = end - since + _EPS
        return Periods(period, Window(since - length, since - _EPS), period, False, whole)
    mid = start + (end - start) / 2
    midnight = dt.datetime.combine((mid + dt.timedelta(hours=12)).date(), dt.time())
    if start < midnight <= end:
        mid = midnight
    return Periods(period, Window(start, mid - _EPS), Window(mid, end), True, whole)


# -- queries -------------------------------------------------------------------------------------

def _sql(name: str) -> str:
    return (resources.files("newsetl") / "sql" / "page" / f"{name}.sql").read_text(encoding="utf-8")


def _query(con, name: str, **params) -> list[dict]:
    """Run sql/page/NAME.sql with its $parameters bound (missing ones bind NULL)."""
    sql = _sql(name)
    names = set(re.findall(r"\$([a-z_]+)", "\n".join(line.split("--", 1)[0] for line in sql.splitlines())))
    return con.sql(sql, params={k: params.get(k) for k in names}).to_arrow_table().to_pylist()


def _scope_params(scope: dict, window: Window | None = None) -> dict:
    p = {k: scope.get(k) for k in _SCOPE}
    if window is not None:
        p["since"], p["until"] = window.since, window.until
    return p


def _heat_width(lo: int | None, hi: int | None) -> int:
    """A round bucket width giving at most 20 buckets of rated heat."""
    if lo is None or hi is None:
        return 10
    span = max(hi - lo, 1)
    for m in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000):
        if span / m <= 20:
            return m
    return 10 ** math.ceil(math.log10(span / 20))


def _summary(con, scope: dict) -> dict:
    """The headline figures of the articles in `scope` (keys: articles, providers, ...)."""
    return _query(con, "scope", **_scope_params(scope))[0]


@dataclass
class Facts:
    """Everything the page and its Markdown summary show, gathered in one pass."""
    scope: dict
    filters: dict
    wh: dict
    periods: Periods
    summary: dict
    before: dict | None
    after: dict | None
    providers: list[dict]
    min_articles: int
    quality_leaders: list[dict]
    compared: list[dict]
    months: list[dict]
    distribution: list[dict]
    heat: list[dict]
    heat_width: int
    topics: list[dict]
    movers: list[dict]
    citations: dict
    pairs: list[dict]
    best: list[dict]
    changes_at: dt.datetime | None
    changes_basis: str
    changes: list[dict]
    health: list[dict]
    duplicates: list[dict]
    links: dict = field(default_factory=dict)
    alerts: list[dict] = field(default_factory=list)  # the checks' alerts: open first, then resolved


def gather(con, filters: dict, *, changes_since=None) -> Facts:
    typed = reports.check_filters(filters)
    scope = {k: typed[k] for k in _SCOPE if k in typed}
    sp = _scope_params(scope)
    wh = _query(con, "warehouse")[0]
    per = periods(wh["first_published_at"], wh["last_published_at"], scope.get("since"), scope.get("until"))
    before = after = None
    compared: list[dict] = []
    limit = typed.get("limit", LEADERBOARD_LIMIT)
    if per.previous is not None:
        before = _query(con, "scope", **_scope_params(scope, per.previous))[0]
        after = _query(con, "scope", **_scope_params(scope, per.current))[0]
        compared = _query(con, "providers_compared", **_scope_params(scope, per.current),
                          prev_since=per.previous.since, prev_until=per.previous.until, limit=limit)
    min_articles = typed.get("min_articles", MIN_ARTICLES_FOR_QUALITY)
    s = _query(con, "scope", **sp)[0]  # the headline figures
    width = _heat_width(s["min_heat_rated"], s["max_heat_rated"])
    providers = _query(con, "providers", **sp, min_articles=min_articles)
    topics = reports.run(con, "topic_stats", strict=False, **scope).to_pylist()
    s["topics"] = len(topics)

    # changes: against the state the previous run saw, or at a chosen time
    if changes_since is not None:
        at = reports.parse_when(changes_since, name="changes_since").replace(tzinfo=dt.timezone.utc)
        basis = f"since {_when(at)}"
    else:
        at = wh["previous_run_as_of"]
        basis = "since the previous run" + (f" ({_when(at)})" if at else "")
    changes = _query(con, "changes", **sp, at=at) if at is not None else []

    return Facts(
        scope=scope, filters={k: filters.get(k) for k in FILTER_ORDER if filters.get(k) is not None},
        wh=wh, periods=per, summary=s, before=before, after=after,
        providers=providers[:limit],
        min_articles=min_articles,
        quality_leaders=sorted((r for r in providers if r["quality_rank"] is not None),
                               key=lambda r: (r["quality_rank"], -r["articles_with_quality"], r["provider_domain"]))[:limit],
        compared=compared,
        months=reports.run(con, "quality_by_month", strict=False, **scope).to_pylist(),
        distribution=reports.run(con, "quality_distribution", strict=False, **scope).to_pylist(),
        heat=_query(con, "heat_distribution", **sp, width=width), heat_width=width,
        topics=topics[:TOP_TOPICS],
        movers=_query(con, "topic_movers", **sp),
        citations=_query(con, "citations", **sp)[0],
        pairs=_query(con, "citation_pairs", **sp, limit=CITATION_PAIRS),
        best=reports.run(con, "top_articles", strict=False, **scope, limit=TOP_ARTICLES).to_pylist(),
        changes_at=at, changes_basis=basis, changes=changes,
        health=reports.run(con, "data_quality").to_pylist(),
        duplicates=reports.run(con, "duplicate_urls", limit=5).to_pylist(),
        alerts=_query(con, "alerts", limit=ALERTS_SHOWN),
    )


# -- tables --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Col:
    """A table column: a human label (with its unit) and how to show a row's value."""
    label: str
    show: object            # a row -> HTML (already escaped)
    num: bool = False       # right-aligned figures
    cls: str = ""


def _c(key: str, label: str, fmt=_num, **kw) -> Col:
    return Col(label, lambda r, k=key, f=fmt: _e(f(r[k])), num=True, **kw)


def _label(text: str) -> str:
    """A column label; its unit in brackets is kept on one line ("(0-190)" never breaks at the dash)."""
    return re.sub(r"\(([^()]*)\)", lambda m: f'<span class="unit">({m.group(1)})</span>', _e(text))


def _table(rows: list[dict], cols: list[Col], *, id: str, key=None, row_class=None, empty="no rows") -> str:
    head = "".join(f'<th{" class=num" if c.num else ""} scope="col">{_label(c.label)}</th>' for c in cols)
    body = []
    for r in rows:
        attrs = f' data-key="{_e(key(r))}"' if key else ""
        rc = row_class(r) if row_class else ""
        attrs += f' class="{rc}"' if rc else ""
        cells = "".join(f'<td class="{" ".join(x for x in ("num" if c.num else "", c.cls) if x)}">{c.show(r)}</td>'
                        .replace(' class=""', "") for c in cols)
        body.append(f"<tr{attrs}>{cells}</tr>")
    if not body:
        body.append(f'<tr><td class="null" colspan="{len(cols)}">{_e(empty)}</td></tr>')
    return (f'<div class="table-wrap"><table id="{_e(id)}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _title_link(title, url) -> str:
    text = _v(title) if title is not None else "(no title)"
    if isinstance(url, str) and url.lower().startswith(("https://", "http://")):
        return f'<a href="{_e(url)}" rel="noopener noreferrer nofollow">{text}</a>'
    return text


def _path(p: str | None) -> str:
    """A file path on one line: shortened in the middle, the whole path in the tooltip. The span
    is the isolate itself (dir=auto): a <bdi> inside would stick out of the box that clips it."""
    if p is None:
        return '<span class="null">—</span>'
    return f'<span class="path" dir="auto" title="{_e(_iso(p))}">{_e(_balanced(_middle(p, 48)))}</span>'


def _move(before, after, digits: int = 0, *, rank: bool = False) -> str:
    """before → after (change); for ranks a smaller number is a move up."""
    if after is None and before is None:
        return "—"
    if before is None:
        return f"{_e(_num(after, digits))} (new)" if not rank else f"{_e(_num(after))} (new)"
    if after is None:
        return f"{_e(_num(before, digits))} → —"
    if rank:
        d = before - after
        mark = "=" if d == 0 else (f"▲ {d}" if d > 0 else f"▼ {-d}")
        return f"{before} → {after} ({mark})"
    return f"{_e(_num(before, digits))} → {_e(_num(after, digits))} ({_e(_signed(after - before, digits))})"


# -- charts ---------------------------------------------------------------------------------------

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


def _ticks_between(lo: float, hi: float, n: int = 5, *, counts: bool = False) -> list[float]:
    """Ticks for an axis that may go below 0 (heat ratings can be negative)."""
    if lo >= 0:
        return _ticks(hi, n, counts=counts)
    up = _ticks(max(hi, 1e-9), n, counts=counts)
    step = up[1] - up[0]
    down = [-(i * step) for i in range(1, math.ceil(-lo / step - 1e-9) + 1)]
    return sorted(down) + up


def _fit(text: str, units: float, size: float = 12) -> str:
    """Cut a label to what fits in `units` of width (about 0.58 em per character; isolate marks
    take none)."""
    marks = sum(1 for ch in text if "\u2066" <= ch <= PDI)
    return _short(text, max(int(units / (size * 0.58)), 4) + marks)


def _svg(width: int, height: float, title: str, body: str) -> str:
    # the narrow drawing is shown about 0.9 times its size on a phone: its text is drawn larger
    cls = ' class="n"' if width < WIDE else ""
    return (f'<svg xmlns="http://www.w3.org/2000/svg"{cls} viewBox="0 0 {width} {height:.0f}" width="{width}" '
            f'height="{height:.0f}" role="img" aria-label="{_e(title)}"><title>{_e(title)}</title>{body}</svg>')


def _y_title(text: str, x: float, y: float) -> str:
    return (f'<text class="axis-title y-title" x="{x:.1f}" y="{y:.1f}" text-anchor="middle" '
            f'transform="rotate(-90 {x:.1f} {y:.1f})">{_e(text)}</text>')


def _x_title(text: str, x: float, y: float, anchor: str = "middle") -> str:
    return f'<text class="axis-title x-title" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}">{_e(text)}</text>'


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    note: str = ""     # shown beside the bar (hbar) or above it (vbar, when there is room)
    tip: str = ""
    cls: str = ""


def hbar_chart(bars: list[Bar], *, width: int, narrow: bool, title: str, x_title: str, y_title: str,
               counts: bool = True) -> str:
    """Horizontal bars, one per category. Wide: labels left of the bars; narrow: above them."""
    ticks = _ticks(max((b.value for b in bars), default=0), 4 if narrow else 5, counts=counts)
    note_w = max((len(b.note) for b in bars), default=0) * (7.2 if narrow else 6.6) + 12
    if narrow:
        left, top, row, bar_h = 4, 24, 40, 14
    else:
        left, top, row, bar_h = min(width * 0.36, 330), 24, 26, 17
    right = max(note_w, 16)
    plot_w = width - left - right
    plot_h = len(bars) * row
    height = top + plot_h + 44
    scale = plot_w / ticks[-1]
    out = ['<g class="grid">']
    for t in ticks:
        x = left + t * scale
        out.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{top + plot_h:.1f}"/>')
    out.append('</g><g class="axis">')
    for t in ticks:
        out.append(f'<text x="{left + t * scale:.1f}" y="{top + plot_h + 16:.1f}" text-anchor="middle">{_e(_num(t, 0 if t == int(t) else 1))}</text>')
    out.append("</g>")
    out.append(_x_title(x_title, left + plot_w / 2, top + plot_h + 36))
    out.append(_x_title(y_title, 4 if narrow else left - 8, 14, "start" if narrow else "end").replace("x-title", "y-title"))
    for i, b in enumerate(bars):
        y = top + i * row
        w = max(b.value * scale, 2 if b.value else 0)
        if narrow:
            label = f'<text class="label" x="{left}" y="{y + 12:.1f}">{_e(_balanced(_fit(b.label, width - 8, 13)))}</text>'
            by = y + 17
        else:
            label = (f'<text class="label" x="{left - 8:.1f}" y="{y + bar_h * 0.75:.1f}" text-anchor="end">'
                     f'{_e(_balanced(_fit(b.label, left - 12)))}</text>')
            by = y
        out.append(f'<g class="row">{label}<rect class="bar {b.cls}" x="{left}" y="{by:.1f}" width="{w:.1f}" '
                   f'height="{bar_h}"><title>{_e(b.tip or b.label)}</title></rect>'
                   f'<text class="value" x="{left + w + 5:.1f}" y="{by + bar_h * 0.78:.1f}">{_e(b.note)}</text></g>')
    return _svg(width, height, title, "".join(out))


def vbar_chart(bars: list[Bar], *, width: int, narrow: bool, title: str, x_title: str, y_title: str,
               height: int = 260, counts: bool = True) -> str:
    """Vertical bars over ordered categories (buckets, months); bar notes shown when they fit."""
    lo = min((b.value for b in bars), default=0)
    ticks = _ticks_between(min(lo, 0), max((b.value for b in bars), default=0), 4, counts=counts)
    left, right, top, bottom = 50, 10, 22, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(bars), 1)
    slot = plot_w / n
    max_labels = max(int(plot_w // 62), 2)
    every = max(1, math.ceil(n / max_labels))
    span = ticks[-1] - ticks[0]
    scale = plot_h / span
    zero = top + plot_h - (0 - ticks[0]) * scale
    out = ['<g class="grid">']
    for t in ticks:
        y = top + plot_h - (t - ticks[0]) * scale
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}"/>')
    out.append('</g><g class="axis">')
    for t in ticks:
        y = top + plot_h - (t - ticks[0]) * scale
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_e(_num(t))}</text>')
    for i, b in enumerate(bars):
        if i % every == 0:
            out.append(f'<text x="{left + (i + 0.5) * slot:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{_e(b.label)}</text>')
    out.append("</g>")
    out.append(_x_title(x_title, left + plot_w / 2, height - 8))
    out.append(_y_title(y_title, 13, top + plot_h / 2))
    pad = max(min(slot * 0.14, 5), (slot - 64) / 2)
    show_notes = slot >= 26
    for i, b in enumerate(bars):
        h = abs(b.value) * scale
        if b.value:
            h = max(h, 2)  # a month with one article must still show
        y = zero - h if b.value >= 0 else zero
        x = left + i * slot + pad
        out.append(f'<rect class="bar {b.cls}" x="{x:.1f}" y="{y:.1f}" width="{max(slot - 2 * pad, 1):.1f}" '
                   f'height="{h:.1f}"><title>{_e(b.tip)}</title></rect>')
        if show_notes and b.note:
            out.append(f'<text class="value" x="{left + (i + 0.5) * slot:.1f}" y="{y - 4:.1f}" '
                       f'text-anchor="middle">{_e(b.note)}</text>')
    return _svg(width, height, title, "".join(out))


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    values: list


_SERIES_STYLE = {  # key: (colour, dash)
    "avg_quality": ("#2f62a7", ""),
    "median_quality": ("#c56a12", "7 4"),
    "p90_quality": ("#596273", "2 4"),
}


def line_chart(x_labels: list[str], series: list[Series], *, width: int, narrow: bool, title: str,
               x_title: str, y_title: str, thin: set[int] = frozenset(), thin_label: str = "",
               height: int = 280) -> str:
    """Lines over shared x labels. A None value, or a point in `thin` (too few articles to
    mean much), breaks its line; thin points are drawn hollow."""
    legend = [(s.key, s.label) for s in series] + ([("thin", thin_label)] if thin and thin_label else [])
    # legend rows: as many items per row as fit
    rows_: list[list[tuple[str, str, float]]] = [[]]
    x = 0.0
    for key, label in legend:
        w = 34 + len(label) * (7.6 if narrow else 7.0) + 18
        if x + w > width - 10 and rows_[-1]:
            rows_.append([])
            x = 0
        rows_[-1].append((key, label, x))
        x += w
    top = 16 + 18 * len(rows_)
    left, right, bottom = 50, 12, 48
    plot_w, plot_h = width - left - right, height - top - bottom
    values = [v for s in series for v in s.values if v is not None]
    ticks = _ticks(max(values, default=0))
    scale = plot_h / ticks[-1]
    n = max(len(x_labels), 1)
    step = plot_w / n
    every = max(1, math.ceil(n / max(int(plot_w // 62), 2)))

    def xy(i: int, v: float) -> tuple[float, float]:
        return left + (i + 0.5) * step, top + plot_h - v * scale

    out = ['<g class="grid">']
    for t in ticks:
        y = top + plot_h - t * scale
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}"/>')
    out.append('</g><g class="axis">')
    for t in ticks:
        y = top + plot_h - t * scale
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_e(_num(t))}</text>')
    for i, xl in enumerate(x_labels):
        if i % every == 0:
            out.append(f'<text x="{left + (i + 0.5) * step:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{_e(xl)}</text>')
    out.append("</g>")
    out.append(_x_title(x_title, left + plot_w / 2, height - 8))
    out.append(_y_title(y_title, 13, top + plot_h / 2))
    out.append('<g class="legend">')
    for r, items in enumerate(rows_):
        y = 12 + 18 * r
        for key, label, lx in items:
            if key == "thin":
                out.append(f'<circle cx="{lx + 13:.1f}" cy="{y:.1f}" r="3.5" class="hollow" stroke="#596273"/>')
            else:
                colour, dash = _SERIES_STYLE.get(key, ("#333", ""))
                d = f' stroke-dasharray="{dash}"' if dash else ""
                out.append(f'<line x1="{lx:.1f}" y1="{y}" x2="{lx + 26:.1f}" y2="{y}" stroke="{colour}" stroke-width="2.4"{d}/>')
            out.append(f'<text x="{lx + 32:.1f}" y="{y + 4}">{_e(label)}</text>')
    out.append("</g>")
    for s in series:
        colour, dash = _SERIES_STYLE.get(s.key, ("#333", ""))
        d = f' stroke-dasharray="{dash}"' if dash else ""
        segments, seg = [], []
        for i, v in enumerate(s.values):
            if v is None or i in thin:
                if seg:
                    segments.append(seg)
                seg = []
            else:
                seg.append(xy(i, v))
        if seg:
            segments.append(seg)
        for sg in segments:
            if len(sg) > 1:
                pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in sg)
                out.append(f'<polyline class="series" points="{pts}" stroke="{colour}"{d}/>')
        for i, v in enumerate(s.values):
            if v is None:
                continue
            cx, cy = xy(i, v)
            cls = ' class="hollow"' if i in thin else f' fill="{colour}"'
            out.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{3.5 if i in thin else 2.8}"{cls} stroke="{colour}">'
                       f'<title>{_e(f"{x_labels[i]}: {s.label} {_q(v)}")}</title></circle>')
    return _svg(width, height, title, "".join(out))


def _figure(id: str, title: str, draw, note: str = "") -> str:
    """A chart with its title, drawn wide (screens, print) and narrow (phones)."""
    return (f'<figure class="chart" id="{_e(id)}"><figcaption>{_e(title)}</figcaption>'
            f'<div class="wide">{draw(WIDE, False)}</div><div class="narrow">{draw(NARROW, True)}</div>'
            + (f'<p class="note">{note}</p>' if note else "") + "</figure>")


# -- the page --------------------------------------------------------------------------------------

def _card(value: str, label: str, sub: str = "") -> str:
    return (f'<div class="card"><div class="v">{_e(value)}</div><div class="k">{_e(label)}</div>'
            + (f'<div class="s">{sub}</div>' if sub else "") + "</div>")


def _filters_text(f: Facts, value=_iso) -> str:
    parts = []
    for k in ("provider", "topic"):  # as matched: the provider's domain in its stored form
        if k in f.scope:
            parts.append(f"{k} {value(f.scope[k])}")
    if "min_articles" in f.filters:
        parts.append(f"quality ranking from {f.min_articles} scored articles")
    if "limit" in f.filters:
        parts.append(f"{f.filters['limit']} providers listed")
    return ", ".join(parts)


def _published(f: Facts) -> str:
    w = f.periods.period
    return "no article has a publication date" if w.since is None and w.until is None else f"published {w.text()}"


def _period_text(f: Facts) -> str:
    p = f.periods
    if p.whole:
        undated = p.period.since is None and p.period.until is None
        return "whole warehouse: " + (_published(f) if undated else f"articles {_published(f)}")
    flags = " ".join(f"{reports.flag(k)} {f.filters[k]}" for k in ("since", "until") if k in f.filters)
    return f"articles published {p.period.text()} ({flags})"


def _comparison_text(f: Facts) -> str:
    p = f.periods
    if p.previous is None:
        return "no comparison: no article has a publication date"
    if p.halves:
        return (f"no --since given, so the period's two halves are compared: {p.previous.text()} "
                f"(earlier half) against {p.current.text()} (later half)")
    return (f"the previous period is the same length just before --since: {p.previous.text()}, "
            f"against this period {p.current.text()}")


def _topic_windows(f: Facts) -> tuple[dt.datetime | None, str, str, str]:
    """(as_of, the text of both windows, coverage, a caveat): coverage is "full", "partial"
    (the earlier window starts before the first article) or "none" (it ends before it)."""
    as_of = next((m["as_of"] for m in f.movers), None)
    if as_of is None:
        return None, "", "none", ""
    end = _naive_utc(as_of)
    last = Window(end - dt.timedelta(days=90) + _EPS, end)
    prev = Window(end - dt.timedelta(days=180) + _EPS, end - dt.timedelta(days=90))
    text = f"the 90 days {last.text()} against the 90 days before, {prev.text()}"
    first = _naive_utc(f.wh["first_published_at"])
    if first is not None and first > prev.until:
        return as_of, text, "none", (
            f"The warehouse's first article is from {_date(first)}: the earlier 90 days hold no articles, "
            "so every topic counts as new and none can be said to grow or shrink yet.")
    if first is not None and first > prev.since:
        return as_of, text, "partial", (
            f"The warehouse's first article is from {_date(first)}: the earlier 90 days are only partly "
            "covered, so growth is overstated.")
    return as_of, text, "full", ""


def _glance(f: Facts) -> list[str]:
    """The headline sentences (HTML), the same ones the Markdown summary gives."""
    return [_md_to_html(line) for line in _headlines(f)]


def _headlines(f: Facts) -> list[str]:
    """Headline sentences in a tiny markup: **bold**, `code`; web values passed through _m()."""
    s, out = f.summary, []
    extra = []
    if s["articles"] - s["dated_articles"]:
        extra.append(f"{_num(s['articles'] - s['dated_articles'])} without a publication date")
    if s["articles_without_provider"]:
        extra.append(f"{_num(s['articles_without_provider'])} without a provider")
    out.append(f"**{_n(s['articles'], 'article')}** from **{_n(s['providers'], 'provider')}**, "
               f"{_published(f)}" + (f" ({'; '.join(extra)})" if extra else "") +
               f"; average quality **{_q(s['avg_quality'])}** on a {QUALITY_SCALE} scale.")
    if f.providers:
        p = f.providers[0]
        line = (f"Most articles: **{_provider(p['provider_domain'], p['provider_name'], html=False, value=_m)}**, "
                f"{_num(p['articles'])} ({_pct(p['articles_share_pct'])}).")
        if f.quality_leaders:
            q = f.quality_leaders[0]
            line += (f" Highest average quality (at least {f.min_articles} scored articles): "
                     f"**{_provider(q['provider_domain'], q['provider_name'], html=False, value=_m)}**, {_q(q['avg_quality'])}.")
        out.append(line)
    if f.topics:
        top = ", ".join(f"**{_m(t['topic'])}** ({_num(t['articles'])})" for t in f.topics[:3])
        line = f"Top topics: {top}."
        _, _, coverage, _ = _topic_windows(f)
        rising = [m for m in f.movers if m["change"] > 0]
        if rising and coverage != "none":
            r = rising[0]
            line += f" Rising fastest: **{_m(r['topic'])}** ({_num(r['articles_prev_90d'])} → {_num(r['articles_last_90d'])} articles in 90 days)."
        out.append(line)
    if f.pairs:
        p = f.pairs[0]
        c = f.citations
        out.append(f"Strongest link between providers: **{_m(p['citing_provider_domain'])} → "
                   f"{_m(p['cited_provider_domain'])}**, {_n(p['links'], 'related link')} from "
                   f"{_n(p['citing_articles'], 'article')}; {_pct(_share(c['links_in_warehouse'], c['links']))} "
                   "of all related links lead to an article in this warehouse.")
    else:
        out.append("No related link joins two different providers." if f.citations["links"]
                   else "The articles carry no related links.")
    if f.changes_at is not None and f.wh["versions"] > f.wh["articles"]:
        moved_q = sum(1 for r in f.changes if r["quality_delta"])
        moved_h = sum(1 for r in f.changes if r["heat_before"] != r["heat_after"])
        out.append(f"Changes {f.changes_basis}: quality moved for {_n(moved_q, 'article')}, heat for {_n(moved_h, 'article')}.")
    if f.before is not None and f.after is not None:
        a, b = f.before, f.after
        n1, n2 = f.periods.names
        out.append(f"Against the {n1} ({f.periods.previous.text()}): articles {_num(a['articles'])} → "
                   f"{_num(b['articles'])}, average quality {_q(a['avg_quality'])} → {_q(b['avg_quality'])}.")
    w = f.wh
    out.append(f"Data health: {_num(w['rejected_files'])} of {_num(w['files'])} input files rejected, "
               f"{_n(w['duplicate_urls'], 'URL')} in more than one file, {_n(w['issues'], 'value')} that "
               "could not be read.")
    return out


def _m(text) -> str:
    """A value from the open web inside a headline: every character Markdown could read as
    markup is escaped (the HTML rendering undoes the escapes, then HTML-escapes), and the
    value is isolated between FSI and PDI (the HTML rendering makes them a <bdi>)."""
    text = _balanced(" ".join(str(text).split()))
    return FSI + "".join("\\" + ch if ch in "\\`*_[]<>|#!~" else ch for ch in text) + PDI


def _md_to_html(line: str) -> str:
    parts = re.split(r"(\\.|\*\*|`|[\u2066-\u2069])", line)
    html, bold, code = [], False, False
    depth = 0  # of isolates: a value's own (balanced) ones stay characters inside its <bdi>
    for p in parts:
        if p and p in _OPENS:
            html.append("<bdi>" if depth == 0 and p == FSI else p)
            depth += 1
        elif p == PDI:
            depth = max(depth - 1, 0)
            html.append("</bdi>" if depth == 0 else p)
        elif p == "**":
            html.append("</b>" if bold else "<b>")
            bold = not bold
        elif p == "`":
            html.append("</code>" if code else "<code>")
            code = not code
        elif p.startswith("\\") and len(p) == 2:
            html.append(_e(p[1]))
        else:
            html.append(_e(p))
    return "".join(html)


def _provider_col(label: str = "Provider (domain · name)") -> Col:
    return Col(label, lambda r: _provider(r["provider_domain"], r["provider_name"]), cls="prov")


def _section_providers(f: Facts) -> list[str]:
    s = f.summary
    rows = f.providers
    bars = [Bar(_provider(r["provider_domain"], r["provider_name"], html=False), r["articles"],
                f'{_num(r["articles"])} · {_pct(r["articles_share_pct"])}',
                f'{_iso(r["provider_domain"])}: {_num(r["articles"])} articles, avg quality {_q(r["avg_quality"])}')
            for r in rows]
    k = s["articles_without_provider"]
    unranked = f" {_n(k, 'article')} without a provider {'is' if k == 1 else 'are'} not ranked." if k else ""
    out = ['<section id="providers"><h2>Providers</h2>',
           f'<p class="note">Providers are told apart by domain; the name is the one their records use most. '
           f'Ranked by articles in the period; equal counts share a rank.{_e(unranked)}</p>']
    if rows:
        out.append(_figure("chart-providers", f"Providers with the most articles (top {len(rows)})",
                           lambda w, nr: hbar_chart(bars, width=w, narrow=nr,
                                                    title=f"Providers with the most articles (top {len(rows)})",
                                                    x_title="Articles", y_title="Provider (domain · name)")))
    out.append(_table(rows, [
        _c("rank", "Rank"), _provider_col(), _c("articles", "Articles"),
        _c("articles_share_pct", "Share of articles", _pct),
        _c("avg_quality", f"Avg quality ({QUALITY_SCALE})", _q),
        _c("p90_quality", "90th percentile quality", _q),
        _c("avg_heat_rated", "Avg heat (rated only)", _q),
        _c("published_pct", "Published", _pct),
        _c("citations_received", "Times cited (related links)"),
    ], id="providers-by-articles", key=lambda r: r["provider_domain"], empty="no provider in this period"))
    out.append('<p class="note">Every provider and every column: <code>newsetl report provider_stats</code>.</p>')

    q = f.quality_leaders
    qbars = [Bar(_provider(r["provider_domain"], r["provider_name"], html=False), r["avg_quality"],
                 f'{_q(r["avg_quality"])} · {_num(r["articles_with_quality"])} art.',
                 f'{_iso(r["provider_domain"])}: avg quality {_q(r["avg_quality"])} over {r["articles_with_quality"]} articles')
             for r in q]
    out.append(f'<h3 id="quality-ranking">Highest average quality</h3><p class="note">Providers with at least '
               f'{f.min_articles} articles that have a quality score, so that one lucky article cannot top the '
               f'list; quality runs from 0 to about 190.</p>')
    if q:
        t = f"Highest average quality (providers with at least {f.min_articles} scored articles)"
        out.append(_figure("chart-quality-ranking", t,
                           lambda w, nr: hbar_chart(qbars, width=w, narrow=nr, title=t, counts=False,
                                                    x_title=f"Average quality ({QUALITY_SCALE})",
                                                    y_title="Provider (domain · name)")))
    out.append(_table(q, [
        _c("quality_rank", "Rank"), _provider_col(),
        _c("avg_quality", f"Avg quality ({QUALITY_SCALE})", _q),
        _c("median_quality", f"Median quality ({QUALITY_SCALE})", _q),
        _c("p90_quality", "90th percentile quality", _q),
        _c("articles_with_quality", "Articles with a score"),
    ], id="providers-by-quality", key=lambda r: r["provider_domain"],
        empty=f"no provider has {f.min_articles} or more scored articles in this period"))
    out.append("</section>")
    return out


def _section_comparison(f: Facts) -> list[str]:
    p = f.periods
    out = ['<section id="comparison"><h2>Against the previous period</h2>',
           f'<p class="note">{_e(_comparison_text(f)[0].upper() + _comparison_text(f)[1:])}.</p>']
    if p.previous is None:
        return out + ["</section>"]
    n1, n2 = p.names
    a, b = f.before, f.after
    first = _naive_utc(f.wh["first_published_at"])
    if not p.halves and first is not None and p.previous.until < first:
        out.append(f'<p class="warn">The warehouse has no article before {_e(_date(first))}: the previous period is empty.</p>')
    elif not p.halves and first is not None and p.previous.since < first:
        out.append(f'<p class="warn">The warehouse starts on {_e(_date(first))}, inside the previous period: '
                   "its figures cover only part of it.</p>")
    measures = [
        ("Articles", "articles", 0), ("Providers", "providers", 0),
        (f"Avg quality ({QUALITY_SCALE})", "avg_quality", 1), (f"Median quality ({QUALITY_SCALE})", "median_quality", 1),
        ("Articles with a heat rating", "articles_heat_rated", 0), ("Avg heat (rated only)", "avg_heat_rated", 1),
        ("Articles marked published (isPublished)", "articles_published", 0),
    ]
    rows = [{"m": m, "a": a[k], "b": b[k], "d": digits} for m, k, digits in measures]
    out.append(_table(rows, [
        Col("Measure", lambda r: _label(r["m"])),
        Col(n1.capitalize(), lambda r: _e(_num(r["a"], r["d"])), num=True),
        Col(n2.capitalize(), lambda r: _e(_num(r["b"], r["d"])), num=True),
        Col("Change", lambda r: _e(_signed(None if r["a"] is None or r["b"] is None else r["b"] - r["a"], r["d"])), num=True),
    ], id="period-comparison", key=lambda r: r["m"]))
    out.append(f'<h3>Providers: {_e(n1)} → {_e(n2)}</h3>'
               f'<p class="note">The top providers of the {_e(n2)}; rank by articles among all providers of each '
               "period (▲ moved up). “new”: no article in the earlier period.</p>")
    out.append(_table(f.compared, [
        _provider_col(),
        Col("Articles", lambda r: _move(None if r["rank_before"] is None else r["articles_before"], r["articles_now"]),
            num=True),
        Col(f"Avg quality ({QUALITY_SCALE})", lambda r: _move(r["avg_quality_before"], r["avg_quality_now"], 1), num=True),
        Col("Rank by articles", lambda r: _move(r["rank_before"], r["rank_now"], rank=True), num=True),
    ], id="providers-compared", key=lambda r: r["provider_domain"], empty="no provider in the period"))
    out.append("</section>")
    return out


def _section_topics(f: Facts) -> list[str]:
    s = f.summary
    out = ['<section id="topics"><h2>Topics</h2>',
           f'<p class="note">{_num(s["topics"])} topics in the period; an article may have several, so shares add up to '
           "more than 100%.</p>"]
    rows = [dict(t, share=_share(t["articles"], s["articles"])) for t in f.topics]
    if rows:
        bars = [Bar(_iso(t["topic"]), t["articles"], f'{_num(t["articles"])} · {_pct(t["share"])}',
                    f'{_iso(t["topic"])}: {t["articles"]} articles') for t in rows]
        title = f"Topics with the most articles (top {len(rows)})"
        out.append(_figure("chart-topics", title, lambda w, nr: hbar_chart(
            bars, width=w, narrow=nr, title=title, x_title="Articles", y_title="Topic")))
    out.append(_table(rows, [
        Col("Topic", lambda r: _v(r["topic"])), _c("articles", "Articles"),
        _c("share", "Share of articles", _pct), _c("provider_count", "Providers"),
        _c("avg_quality", f"Avg quality ({QUALITY_SCALE})", _q),
        _c("last_published_at", "Latest article", _date),
    ], id="top-topics", key=lambda r: r["topic"], empty="no topics in this period"))

    as_of, windows, coverage, caveat = _topic_windows(f)
    out.append('<h3 id="topic-growth">Growing and shrinking topics</h3>')
    if as_of is None:
        out.append('<p class="note">No dated article in scope: no growth to show.</p></section>')
        return out
    until = " (not cut by --since)" if "since" in f.filters else ""
    out.append(f'<p class="note">Articles per topic in {_e(windows)}{_e(until)}; ranked by the change in '
               "articles, so a topic going from 1 to 2 does not outrank one going from 40 to 60. "
               "“new”: no article in the earlier 90 days.</p>")
    if caveat:
        out.append(f'<p class="warn">{_e(caveat)}</p>')
    if coverage == "none":
        return out + ["</section>"]
    cols = [Col("Topic", lambda r: _v(r["topic"])),
            _c("articles_prev_90d", "Earlier 90 days"), _c("articles_last_90d", "Last 90 days"),
            Col("Change (articles)", lambda r: _e(_signed(r["change"])), num=True),
            Col("Change (%)", lambda r: "new" if r["articles_prev_90d"] == 0 else _e(_signed(r["growth_pct"], 1) + "%"),
                num=True)]
    rising = [m for m in f.movers if m["change"] > 0][:TOPIC_MOVERS]
    falling = sorted([m for m in f.movers if m["change"] < 0], key=lambda m: (m["change"], -m["articles_prev_90d"], m["topic"]))[:TOPIC_MOVERS]
    out.append('<div class="pair"><div><h4>Growing fastest</h4>')
    out.append(_table(rising, cols, id="topics-rising", key=lambda r: r["topic"], empty="no topic grew"))
    out.append('</div><div><h4>Shrinking fastest</h4>')
    out.append(_table(falling, cols, id="topics-falling", key=lambda r: r["topic"], empty="no topic shrank"))
    out.append("</div></div></section>")
    return out


def _section_months(f: Facts) -> list[str]:
    rows = f.months
    out = ['<section id="months"><h2>Month by month</h2>',
           f'<p class="note">Articles and quality per calendar month (UTC). Months with fewer than '
           f'{MIN_MONTH_ARTICLES} articles are marked <span class="thin-mark">few articles</span>: their averages '
           "rest on too few articles to compare. Articles without a publication date are not placed.</p>"]
    if not rows:
        return out + ['<p class="note">No dated article in scope.</p></section>']
    labels = [_month(r["month"]) for r in rows]
    thin = {i for i, r in enumerate(rows) if r["articles"] < MIN_MONTH_ARTICLES}
    vol = [Bar(labels[i], r["articles"], _num(r["articles"]),
               f'{labels[i]}: {_num(r["articles"])} articles' + (" (few articles)" if i in thin else ""),
               "thin" if i in thin else "") for i, r in enumerate(rows)]
    t1 = "Articles per month"
    out.append(_figure("chart-month-articles", t1, lambda w, nr: vbar_chart(
        vol, width=w, narrow=nr, title=t1, x_title="Month (UTC)", y_title="Articles", height=230),
        note=f"Light bars: fewer than {MIN_MONTH_ARTICLES} articles."))
    series = [Series("avg_quality", "Average", [r["avg_quality"] for r in rows]),
              Series("median_quality", "Median", [r["median_quality"] for r in rows]),
              Series("p90_quality", "90th percentile", [r["p90_quality"] for r in rows])]
    t2 = f"Quality per month ({QUALITY_SCALE})"
    out.append(_figure("chart-month-quality", t2, lambda w, nr: line_chart(
        labels, series, width=w, narrow=nr, title=t2, x_title="Month (UTC)", y_title=f"Quality ({QUALITY_SCALE})",
        thin=thin, thin_label=f"fewer than {MIN_MONTH_ARTICLES} articles (not joined)")))
    out.append(_table(rows, [
        Col("Month", lambda r: _e(_month(r["month"])), cls="nw"), _c("articles", "Articles"),
        _c("articles_with_quality", "With a quality score"),
        _c("avg_quality", f"Avg quality ({QUALITY_SCALE})", _q),
        _c("median_quality", f"Median quality ({QUALITY_SCALE})", _q),
        _c("p90_quality", "90th percentile quality", _q),
        _c("articles_heat_rated", "With a heat rating"),
        _c("avg_heat_rated", "Avg heat (rated only)", _q),
        Col("Note", lambda r: "" if r["articles"] >= MIN_MONTH_ARTICLES else
            '<span class="thin-mark">no articles</span>' if not r["articles"] else
            '<span class="thin-mark">few articles</span>'),
    ], id="months-table", key=lambda r: r["month"].isoformat(),
        row_class=lambda r: "thin" if r["articles"] < MIN_MONTH_ARTICLES else ""))
    out.append("</section>")
    return out


def _section_distributions(f: Facts) -> list[str]:
    s = f.summary
    d = f.distribution
    out = ['<section id="distributions"><h2>Quality and heat</h2>']
    qbars = [Bar("none" if r["bucket_start"] is None else str(r["bucket_start"]), r["articles"], "",
                 f'{r["bucket"]}: {_num(r["articles"])} articles ({_pct(r["articles_pct"])})',
                 "null" if r["bucket_start"] is None else "") for r in d]
    t = f"Articles by quality score ({QUALITY_SCALE})"
    no_q = next((r["articles"] for r in d if r["bucket_start"] is None), 0)
    out.append(_figure("chart-quality-distribution", t, lambda w, nr: vbar_chart(
        qbars, width=w, narrow=nr, title=t, x_title="Quality score (start of each 10-point band)",
        y_title="Articles"),
        note=f"Bands of 10 points, [start, start + 10). Grey bar “none”: {_e(_num(no_q))} articles without a quality score. "
             f"Median {_e(_q(s['median_quality']))}, 90th percentile {_e(_q(s['p90_quality']))}."))

    h = f.heat
    rated, not_rated = s["articles_heat_rated"], s["articles_heat_not_rated"]
    no_heat = s["articles"] - rated - not_rated
    hbars = [Bar(_num(r["bucket_start"]), r["articles"], "",
                 f'heat {r["bucket_start"]} to {r["bucket_end"] - 1}: {_num(r["articles"])} articles') for r in h]
    t = "Articles by heat (rated articles only)"
    note = (f"Bands of {f.heat_width}. {_num(rated)} of {_num(s['articles'])} articles have a heat rating "
            f"({_pct(_share(rated, s['articles']))}); {_num(not_rated)} are not rated (heat −1)"
            + (f" and {_num(no_heat)} have no heat" if no_heat else "") + f". Average rated heat {_q(s['avg_heat_rated'])}.")
    if h:
        out.append(_figure("chart-heat-distribution", t, lambda w, nr: vbar_chart(
            hbars, width=w, narrow=nr, title=t, x_title=f"Heat (start of each {f.heat_width}-point band)",
            y_title="Articles"), note=_e(note)))
    else:
        out.append(f'<h3>Heat</h3><p class="note">{_e(note)}</p>')
    out.append("</section>")
    return out


def _section_citations(f: Facts) -> list[str]:
    c = f.citations
    out = ['<section id="citations"><h2>Who cites whom</h2>']
    if not c["links"]:
        return out + ['<p class="note">The articles in scope carry no related links.</p></section>']
    out.append('<div class="cards">'
               + _card(_pct(_share(c["links_in_warehouse"], c["links"])), "of related links lead to an article in this warehouse",
                       f'{_e(_num(c["links_in_warehouse"]))} of {_e(_num(c["links"]))} links')
               + _card(_pct(_share(c["self_links"], c["links"])), "of related links cite the article's own provider",
                       f'{_e(_num(c["self_links"]))} links (self-citation, left out below)')
               + _card(_num(c["links"]), "related links", f'from {_e(_num(c["citing_articles"]))} articles')
               + "</div>")
    out.append('<p class="note">The strongest links between two different providers: related links from the '
               "citing provider's articles to pages of the cited provider. Self-citation and links without a "
               "provider are left out. Every pair: <code>newsetl report provider_citations</code>.</p>")
    out.append(_table(f.pairs, [
        Col("Citing provider", lambda r: _provider(r["citing_provider_domain"], r["citing_provider_name"]), cls="prov"),
        Col("Cited provider", lambda r: _provider(r["cited_provider_domain"], r["cited_provider_name"]), cls="prov"),
        _c("links", "Links"), _c("citing_articles", "Citing articles"), _c("cited_urls", "Pages cited"),
        _c("cited_articles_in_warehouse", "Of which in this warehouse"),
    ], id="citation-pairs", key=lambda r: f'{r["citing_provider_domain"]} -> {r["cited_provider_domain"]}',
        empty="no related link joins two different providers"))
    out.append("</section>")
    return out


def _section_top_articles(f: Facts) -> list[str]:
    return ['<section id="top-articles"><h2>Top articles</h2>',
            f'<p class="note">The {TOP_ARTICLES} best articles of the period by quality, then rated heat, then the newest. '
            "Heat −1 means not rated.</p>",
            _table(f.best, [
                _c("rank", "Rank"), Col("Title", lambda r: _title_link(r["title"], r["url"]), cls="title"),
                _provider_col("Provider"), _c("published_at", "Published", _date),
                _c("quality", f"Quality ({QUALITY_SCALE})"),
                Col("Heat", lambda r: '<span class="null">not rated</span>' if r["heat"] == -1 else _e(_num(r["heat"])), num=True),
                Col("Topics", lambda r: ", ".join(_v(t) for t in (r["topics"] or []) if t)),
            ], id="top-articles-table", key=lambda r: r["article_id"], empty="no article in this period"),
            "</section>"]


def _section_changes(f: Facts) -> list[str]:
    w = f.wh
    out = ['<section id="changes"><h2>Changes in quality and heat</h2>']
    history = w["versions"] > w["articles"]
    if not history or f.changes_at is None:
        out.append('<p class="note">No history yet: every article has one recorded state. Once a later run sees an '
                   "article's quality or heat change, the biggest moves show here.</p></section>")
        return out
    ch = f.changes
    moved_q = [r for r in ch if r["quality_delta"]]
    moved_h = [r for r in ch if r["heat_before"] != r["heat_after"]]
    out.append(f'<p class="note">Articles of the period whose quality or heat moved {_e(f.changes_basis)}: '
               f"{_num(len(moved_q))} moved in quality, {_num(len(moved_h))} in heat. The warehouse has recorded "
               f"{_num(w['quality_moves'])} moves since {_e(_date(w['first_change_at']))}: "
               "<code>newsetl sql \"SELECT * FROM quality_changes ORDER BY changed_at DESC\"</code>.</p>")
    title = Col("Article", lambda r: _title_link(r["title"], r["url"]), cls="title")
    when = _c("changed_at", "Changed", _date)
    by_q = sorted(moved_q, key=lambda r: (-abs(r["quality_delta"]), r["article_id"]))[:CHANGED_ARTICLES]
    out.append("<h3>Quality moved most</h3>")
    out.append(_table(by_q, [
        title, _provider_col("Provider"),
        Col(f"Quality ({QUALITY_SCALE})", lambda r: _move(r["quality_before"], r["quality_after"]), num=True), when,
    ], id="quality-moves", key=lambda r: r["article_id"], empty="no quality moved"))

    def heat(v):
        return "not rated" if v == -1 else _num(v)

    by_h = sorted(moved_h, key=lambda r: (r["heat_delta"] is None, -abs(r["heat_delta"] or 0), r["article_id"]))[:CHANGED_ARTICLES]
    out.append("<h3>Heat moved most</h3>")
    out.append(_table(by_h, [
        title, _provider_col("Provider"),
        Col("Heat", lambda r: _e(f'{heat(r["heat_before"])} → {heat(r["heat_after"])}'
                                 + (f' ({_signed(r["heat_delta"])})' if r["heat_delta"] is not None else "")), num=True),
        when,
    ], id="heat-moves", key=lambda r: r["article_id"], empty="no heat moved"))
    out.append("</section>")
    return out


_LISTINGS = {  # what lists the items behind a health figure: report name (its file) and command
    "rejected_files": "newsetl report rejected_files",
    "duplicate_urls": "newsetl report duplicate_urls",
    "data_issues": "newsetl report data_issues",
    "data_quality": "newsetl report data_quality",
}


def _listing(f: Facts, name: str) -> str:
    cmd = f"<code>{_e(_LISTINGS[name])}</code>"
    file = f.links.get(name)
    return (f'<a href="{_e(file)}">{_e(file)}</a> · {cmd}') if file else cmd


def _section_health(f: Facts) -> list[str]:
    w = f.wh
    rej = [r for r in f.health if r["kind"] == "rejection"]
    issues = [r for r in f.health if r["kind"] == "field_issue"]
    rows = [
        {"what": "Input files read", "n": w["files"], "detail": f'{_num(w["loaded_files"])} loaded', "list": _listing(f, "data_quality")},
        {"what": "Rejected files (not a readable record)", "n": w["rejected_files"],
         "detail": f'{_pct(_share(w["rejected_files"], w["files"]))} of files', "list": _listing(f, "rejected_files")},
        {"what": "URLs carried by more than one file", "n": w["duplicate_urls"],
         "detail": f'{_n(w["duplicate_files"], "extra file")}; the newest record of each URL is kept',
         "list": _listing(f, "duplicate_urls")},
        {"what": "Values that could not be read (loaded empty)", "n": w["issues"],
         "detail": f'in {_n(w["files_with_issues"], "file")}', "list": _listing(f, "data_issues")},
    ]
    out = ['<section id="health"><h2>Data health</h2>',
           '<p class="note">The whole warehouse, whatever the filters.</p>',
           _table(rows, [Col("What", lambda r: _e(r["what"])), _c("n", "Count"),
                         Col("Detail", lambda r: _e(r["detail"])), Col("Listed by", lambda r: r["list"])],
                  id="health-summary", key=lambda r: r["what"])]
    if rej:
        out.append("<h3>Rejected files by reason</h3>")
        out.append(_table(rej, [
            Col("Reason", lambda r: _v(r["item"])), _c("files", "Files"),
            Col("Example file", lambda r: _path(r["example_source_path"]), cls="pathcell"),
            Col("Its error", lambda r: _v(_short(r["example_value"] or "", 160)), cls="err"),
        ], id="health-rejections", key=lambda r: r["item"]))
    if issues:
        out.append("<h3>Values that could not be read, by field</h3>")
        out.append(_table(issues, [
            Col("Field", lambda r: f'<code>{_v(r["item"])}</code>'), Col("Problem", lambda r: _v(r["problem"])),
            _c("files", "Files"), _c("issues", "Values"),
            Col("Example value", lambda r: f'<code>{_v(_short(r["example_value"] or "", 60))}</code>', cls="err"),
            Col("Example file", lambda r: _path(r["example_source_path"]), cls="pathcell"),
        ], id="health-issues", key=lambda r: f'{r["item"]}: {r["problem"]}'))
    if f.duplicates:
        shown = "" if len(f.duplicates) == w["duplicate_urls"] else \
            f'<p class="note">The first {len(f.duplicates)} of {_num(w["duplicate_urls"])}.</p>'
        out.append(f"<h3>URLs in more than one file</h3>{shown}")
        out.append(_table(f.duplicates, [
            Col("Article", lambda r: _title_link(r["title"], r["url"]), cls="title"), _c("file_count", "Files"),
            Col("Kept file", lambda r: _path(r["winning_source_path"]), cls="pathcell"),
        ], id="health-duplicates", key=lambda r: r["article_id"]))
    out.append("</section>")
    return out


ALERTS_SHOWN = 40  # alerts listed: every open one first, then the latest resolved


def _section_checks(f: Facts) -> list[str]:
    out = ['<section id="checks"><h2>Checks</h2>',
           '<p class="note">What the checks at the end of each run flagged: a feed that stopped, a field that '
           "emptied, files that could not be read, keys that changed, quality that shifted. The whole warehouse, "
           "whatever the filters: <code>newsetl check</code>, "
           "<code>newsetl sql \"SELECT * FROM open_alerts\"</code>.</p>"]
    open_ = [a for a in f.alerts if a["state"] == "open"]
    done = [a for a in f.alerts if a["state"] != "open"]
    what = Col("Check", lambda a: _e(a["check_name"].replace("_", " ")))
    who = Col("Provider", lambda a: _v(a["segment"]) if a["segment"] else '<span class="null">whole run</span>')
    field_ = Col("Field or key", lambda a: f'<code>{_v(a["detail"])}</code>' if a["detail"] else "")
    msg = Col("What was seen", lambda a: _v(_short(a["message"] or "", 220)), cls="err")
    out.append(f"<h3>Open alerts ({_num(len(open_))})</h3>")
    if open_:
        out.append(_table(open_, [
            Col("Level", lambda a: f'<b class="lvl-{_e(a["level"])}">{_e(a["level"])}</b>'), what, who, field_, msg,
            _c("runs", "Runs"), _c("opened_at", "Since", _date)],
            id="alerts-open", key=lambda a: f'{a["check_name"]} {a["segment"] or ""} {a["detail"] or ""}'))
    else:
        out.append('<p class="note">No alert is open: every check passed on the last run (or has too little '
                   "history to judge yet).</p>")
    out.append("<h3>Resolved</h3>")
    out.append(_table(done, [
        Col("Level", lambda a: _e(a["level"])), what, who, field_, msg, _c("runs", "Runs"),
        _c("opened_at", "Opened", _date), _c("resolved_at", "Resolved", _date)],
        id="alerts-resolved", key=lambda a: f'{a["check_name"]} {a["segment"] or ""} {a["opened_at"]}',
        empty="no alert has resolved yet"))
    out.append("</section>")
    return out


def _render(f: Facts, title: str, generated_at: dt.datetime) -> str:
    s, w = f.summary, f.wh
    filt = _filters_text(f)
    sections = [("providers", "Providers"), ("comparison", "Against the previous period"), ("topics", "Topics"),
                ("months", "Month by month"), ("distributions", "Quality and heat"), ("citations", "Who cites whom"),
                ("top-articles", "Top articles"), ("changes", "Changes"), ("health", "Data health"),
                ("checks", "Checks")]
    cmd = "newsetl report --html FILE" + "".join(f" {reports.flag(k)} {v}" for k, v in f.filters.items())
    body = [
        "<header>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="scope"><b>Period:</b> {_e(_period_text(f))}.</p>',
        f'<p class="scope"><b>Filters:</b> {_e(filt) if filt else "none (every provider and topic)"}.</p>',
        f'<p class="scope"><b>Compared with:</b> {_e(_comparison_text(f))}.</p>',
        f'<p class="meta">Generated {_e(_when(generated_at))} from warehouse run <code>{_e(w["run_id"] or "none")}</code>'
        + (f' (finished {_e(_when(w["run_finished_at"]))})' if w["run_finished_at"] else "") + ".</p>",
        '<nav aria-label="Sections">' + " ".join(f'<a href="#{a}">{_e(t)}</a>' for a, t in sections) + "</nav>",
        "</header>",
        '<section id="glance"><h2>At a glance</h2><ul class="glance">'
        + "".join(f"<li>{li}</li>" for li in _glance(f)) + "</ul></section>",
        '<div class="cards" id="kpis">',
        _card(_num(s["articles"]), "articles in this report",
              _e(f'{_num(s["dated_articles"])} with a publication date') if s["articles"] != s["dated_articles"] else ""),
        _card(_num(s["providers"]), "providers (distinct domains) with at least one article"),
        _card(_q(s["avg_quality"]), f"average quality, on a scale of {QUALITY_SCALE}",
              _e(f'median {_q(s["median_quality"])}, over {_num(s["articles_with_quality"])} scored articles')),
        _card(_pct(_share(s["articles_heat_rated"], s["articles"])), "of articles have a heat rating",
              _e(f'{_num(s["articles_heat_rated"])} of {_num(s["articles"])}')),
        _card(_num(s["topics"]), "topics"),
        _card(f'{_num(w["rejected_files"])} of {_num(w["files"])}', "input files rejected (whole warehouse)",
              '<a href="#health">see Data health</a>'),
        _card(_num(sum(a["state"] == "open" for a in f.alerts)), "check alerts open (whole warehouse)",
              '<a href="#checks">see Checks</a>'),
        "</div>",
    ]
    for part in (_section_providers, _section_comparison, _section_topics, _section_months, _section_distributions,
                 _section_citations, _section_top_articles, _section_changes, _section_health, _section_checks):
        body += part(f)
    body.append(
        "<footer><p>How to read this page: quality is the records' own score, from 0 to about 190; heat −1 means "
        "“not rated” and is left out of every heat figure; averages and percentiles ignore articles without a "
        "score; months and dates are UTC. The figures are the warehouse's analytics views "
        "(<code>newsetl sql</code>, see the data dictionary).</p>"
        f"<p>Made by newsetl {_e(_package_version())} with <code>{_v(cmd)}</code>. This page is self-contained: "
        "nothing is fetched and no script runs.</p></footer>")
    template = Template((resources.files("newsetl") / "templates" / "report.html").read_text(encoding="utf-8"))
    return template.substitute(title=_e(title), version=_e(_package_version()), body="\n".join(body))


def _split(filters: dict) -> tuple[dict, dict]:
    """The report filters, and the page's own options (changes_since)."""
    own = {k: filters.pop(k) for k in ("changes_since",) if k in filters}
    return filters, own


def build(source, *, title: str = "News report: providers, topics and quality",
          generated_at: dt.datetime | None = None, links: dict | None = None, **filters) -> str:
    """The page as text. Filters: since, until, provider, topic (every section but data health),
    min_articles (the quality ranking's minimum, default 5), limit (providers listed, default 15);
    changes_since: the date the Changes section compares with (default: the previous run).
    `links`: {report name: file name} of report files beside the page, linked from Data health."""
    filters, own = _split(dict(filters))
    con, owned = _open(source)
    try:
        facts = gather(con, filters, **own)
    finally:
        if owned:
            con.close()
    facts.links = dict(links or {})
    return _render(facts, title, generated_at or dt.datetime.now(dt.timezone.utc))


def _report_files(path: Path, con) -> dict:
    """Report files that `report --all` wrote beside the page, newer than the warehouse's last
    run (so an old export in the same folder is never linked as if current)."""
    (finished,), = con.execute("SELECT max(finished_at) FROM runs WHERE status = 'completed'").fetchall()
    newest = finished.timestamp() if finished else 0
    found = {}
    for name in _LISTINGS:
        for ext in reports.EXPORT_FORMATS:
            p = path.parent / f"{name}.{ext}"
            if p.is_file() and p.stat().st_mtime >= newest:
                found[name] = p.name
                break
    return found


def page(source, **filters) -> str:
    """The page as text, for standard output (`report --html -`): no report file is beside it
    to link to."""
    filters.setdefault("links", {})
    con, owned = _open(source)
    try:
        return build(con, **filters)
    finally:
        if owned:
            con.close()


def write(source, path, **filters) -> Path:
    """Write the page to `path` (UTF-8, replaced atomically); returns the path. Report files
    written beside it by `report --all` (rejected_files.csv, ...) after the warehouse's last run
    are linked from Data health; `links={"rejected_files": "rejected_files.csv", ...}` names
    them instead, for a caller that writes them at the same time as the page."""
    path = Path(path)
    con, owned = _open(source)
    try:
        if filters.get("links") is None:
            filters["links"] = _report_files(path, con)
        page = build(con, **filters)
    finally:
        if owned:
            con.close()
    _write_atomically(lambda tmp: tmp.write_text(page, encoding="utf-8"), path)
    return path


# -- the Markdown summary (a Prefect artifact) ------------------------------------------------

def _md_cell(v) -> str:
    if v is None:
        return "—"
    text = export.inert(" ".join(str(v).split()))  # no control character reaches the artifact
    for ch in "\\`*_[]<>|#!~":
        text = text.replace(ch, "\\" + ch)
    return text


def summary_markdown(source, **filters) -> str:
    """The page in a few lines of Markdown: headline figures, top providers, top topics, the
    strongest citation pair and data health (for the news-reports flow's artifact)."""
    filters, own = _split(dict(filters))
    filters.pop("generated_at", None)
    filters.pop("title", None)
    con, owned = _open(source)
    try:
        f = gather(con, filters, **own)
    finally:
        if owned:
            con.close()
    filt = _filters_text(f, value=str)  # its cells show controls as escapes instead (_md_cell)
    lines = ["# News report", "",
             f"Period: {_md_cell(_period_text(f))}. Filters: {_md_cell(filt) if filt else 'none'}.", ""]
    lines += [f"- {line}" for line in _headlines(f)]
    lines += ["", "## Top providers", ""]
    if f.providers:
        lines += [f"| # | Provider | Name | Articles | Avg quality ({QUALITY_SCALE}) |", "|---:|---|---|---:|---:|"]
    else:
        lines.append("No article with a provider.")
    for r in f.providers[:5]:
        lines.append(f"| {r['rank']} | {_md_cell(r['provider_domain'])} | {_md_cell(r['provider_name'])} | "
                     f"{_num(r['articles'])} | {_q(r['avg_quality'])} |")
    lines += ["", "## Top topics", ""]
    lines += ["| Topic | Articles | Share of articles |", "|---|---:|---:|"] if f.topics else ["No article with a topic."]
    for t in f.topics[:5]:
        lines.append(f"| {_md_cell(t['topic'])} | {_num(t['articles'])} | "
                     f"{_pct(_share(t['articles'], f.summary['articles']))} |")
    lines += ["", "## Strongest citation pair", ""]
    if f.pairs:
        p = f.pairs[0]
        lines.append(f"{_md_cell(p['citing_provider_domain'])} → {_md_cell(p['cited_provider_domain'])}: "
                     f"{_n(p['links'], 'related link')} from {_n(p['citing_articles'], 'article')}.")
    else:
        lines.append("No related link joins two different providers." if f.citations["links"]
                     else "The articles carry no related links.")
    w = f.wh
    lines += ["", "## Data health", "",
              f"- Rejected files: {_num(w['rejected_files'])} of {_num(w['files'])} (`newsetl report rejected_files`)",
              f"- URLs in more than one file: {_num(w['duplicate_urls'])} (`newsetl report duplicate_urls`)",
              f"- Values that could not be read: {_num(w['issues'])} in {_n(w['files_with_issues'], 'file')} "
              "(`newsetl report data_issues`)"]
    return "\n".join(lines) + "\n"
