"""The HTML page as an editor reads it.

Expected figures come from the fixture files themselves (`Corpus` of helpers/model.py, plain
Python over PyYAML), or for the real corpus from that corpus's files or from the views'
SQL, never from html_report's code. The page is read through its visible text (tables by
their column labels, tiles, headlines; tests/helpers/page.py), and laid out in a real
headless Chromium at 1280 px, at 390 px (a phone) and for print (tests/helpers/browser.py).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import struct
import subprocess
from collections import Counter, defaultdict
from pathlib import Path

import pytest

import newsetl
from newsetl import bundle, html_report, pipeline

from .helpers.browser import CHROMIUM, MEASURE, Browser
from .helpers.cli import newsetl_cli
from .helpers.page import Page, move, num, squash
from .helpers.model import FIXTURE, UTC, Corpus, expected_provider_stats, mean, pct, quantile_cont, sha16

GENERATED = dt.datetime(2021, 7, 1, 9, 30, tzinfo=UTC)
US = dt.timedelta(microseconds=1)


@pytest.fixture(scope="module")
def wh(reports_wh):
    return reports_wh


@pytest.fixture(scope="module")
def page(wh, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("html") / "report.html"
    html_report.write(wh, path, generated_at=GENERATED)
    return path


@pytest.fixture(scope="module")
def pg(page) -> Page:
    return Page(page.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def model() -> Corpus:
    """The fixture records, modelled in plain Python (conftest's `corpus` is the real one)."""
    return Corpus()


# -- an independent model of what the page should say ---------------------------------------------

def day(d: dt.datetime) -> str:
    d = d.astimezone(UTC) if d.tzinfo else d
    return f"{d.day} {d:%b %Y}"


def span(a: dt.datetime, b: dt.datetime) -> str:
    return f"{day(a)} – {day(b)}"


def halves(model: Corpus) -> tuple[tuple, tuple]:
    """The page's rule without --since: the two halves of the data's span, split at the
    midnight (UTC) nearest the middle."""
    dates = [a.published for a in model.articles if a.published]
    first, last = min(dates), max(dates)
    mid = first + (last - first) / 2
    mid = dt.datetime.combine((mid + dt.timedelta(hours=12)).date(), dt.time(), UTC)
    return (first, mid - US), (mid, last)


def ranks(scope) -> dict:
    """Competition rank by articles among the providers of `scope` (no provider: not ranked)."""
    counts = Counter(a.domain for a in scope if a.domain)
    return {d: 1 + sum(n > c for n in counts.values()) for d, c in counts.items()}


def close1(shown: str, want) -> bool:
    """A figure shown with one decimal (the view rounds to two first)."""
    got = num(shown)
    if want is None or got is None:
        return got is None and want is None
    return abs(got - want) <= 0.0551


def leaderboard(scope) -> list[str]:
    stats = expected_provider_stats(scope)
    doms = [d for d in stats if d]
    return sorted(doms, key=lambda d: (-stats[d]["articles"], -(stats[d]["avg_quality"] or -1e9), d))


def topic_counts(scope):
    by = defaultdict(list)
    for a in scope:
        for t in dict.fromkeys(a.topics):
            if t and t.strip():
                by[t].append(a)
    return by


def growth(scope):
    as_of = max(a.published for a in scope if a.published)
    out = {}
    for t, arts in topic_counts(scope).items():
        dates = [a.published for a in arts if a.published]
        last = sum(as_of - dt.timedelta(days=90) < d <= as_of for d in dates)
        prev = sum(as_of - dt.timedelta(days=180) < d <= as_of - dt.timedelta(days=90) for d in dates)
        out[t] = (prev, last)
    return as_of, out


def citation_pairs(model: Corpus):
    urls = {a.url for a in model.articles}
    pairs = defaultdict(lambda: {"links": 0, "arts": set(), "urls": set(), "in_wh": set()})
    links = resolved = self_links = 0
    citing = set()
    for a in model.articles:
        for dom, url in a.related:
            links += 1
            citing.add(a.url)
            resolved += url in urls
            self_links += dom is not None and dom == a.domain
            if a.domain and dom and dom != a.domain:
                p = pairs[(a.domain, dom)]
                p["links"] += 1
                p["arts"].add(a.url)
                p["urls"].add(url)
                if url in urls:
                    p["in_wh"].add(url)
    order = sorted(pairs, key=lambda k: (-pairs[k]["links"], k[0], k[1]))
    return order, pairs, {"links": links, "resolved": resolved, "self": self_links, "citing": len(citing)}


# -- the page as text -----------------------------------------------------------------------------

def test_page_is_self_contained(page):
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>")
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert not re.search(r"<script", html, re.I)
    assert not re.search(r"\ssrc\s*=", html, re.I)
    assert not re.search(r"<link|@import|url\(|<iframe|<object|<embed|<img", html, re.I)
    # links: article titles to http(s) pages, and anchors within the page
    for href in re.findall(r'href="([^"]*)"', html):
        assert href.startswith(("https://", "http://", "#")), href


def test_labels_are_human(pg, wh):
    con = newsetl.connect(wh)
    try:
        raw = {c for v in ("provider_stats", "quality_by_month", "topic_stats", "provider_citations", "data_quality",
                           "top_articles", "duplicate_urls", "quality_distribution", "quality_changes")
               for c in con.sql(f"SELECT * FROM {v} LIMIT 0").columns if "_" in c}
    finally:
        con.close()
    tables = pg.root.find_all("table")
    assert len(tables) >= 10
    for t in tables:
        assert t.attrs.get("id"), "every table has an id"
        assert "table-wrap" in t.parent.classes, "every table sits in a box that scrolls on a phone"
        for label in pg.labels(t.attrs["id"]):
            assert "_" not in label and (label[0].isupper() or label[0].isdigit()), label
    text = pg.visible_text()
    leaked = sorted(c for c in raw if re.search(rf"\b{c}\b", text))
    assert not leaked, f"raw column names on the page: {leaked}"
    # units where a reader needs them: quality on its real scale, never 0-100
    assert "Avg quality (0-190)" in pg.labels("providers-by-articles")
    assert "0-100" not in text


def test_tiles_say_what_they_count(pg, model):
    cards = pg.cards()
    arts = model.articles
    qs = [a.quality for a in arts if a.quality is not None]
    rated = [a for a in arts if a.rated_heat is not None]
    dated = [a for a in arts if a.published]
    assert cards["articles in this report"] == (str(len(arts)), f"{len(dated)} with a publication date")
    assert cards["providers (distinct domains) with at least one article"][0] == str(len({a.domain for a in arts if a.domain}))
    value, sub = cards["average quality, on a scale of 0-190"]
    assert close1(value, mean(qs)) and sub == f"median {quantile_cont(qs, 0.5):.1f}, over {len(qs)} scored articles"
    assert cards["of articles have a heat rating"] == (f"{pct(len(rated), len(arts)):.1f}%", f"{len(rated)} of {len(arts)}")
    assert cards["topics"][0] == str(len(topic_counts(arts)))
    assert cards["input files rejected (whole warehouse)"][0] == f"{len(model.rejected)} of {model.files}"


def test_period_filters_and_comparison_are_stated(pg, model):
    lines = pg.scope_lines()
    dates = [a.published for a in model.articles if a.published]
    assert lines["Period"] == f"whole warehouse: articles published {span(min(dates), max(dates))}."
    assert lines["Filters"].startswith("none")
    (a0, a1), (b0, b1) = halves(model)
    assert f"{span(a0, a1)} (earlier half) against {span(b0, b1)} (later half)" in lines["Compared with"]
    assert "no --since given" in lines["Compared with"]


def test_a_slice_states_its_filters_and_the_previous_period(wh, model):
    html = html_report.build(wh, since="2021-03-01", until="2021-05-31", provider="ALPHA.com", topic="ai",
                             generated_at=GENERATED)
    p = Page(html)
    lines = p.scope_lines()
    assert lines["Period"] == "articles published 1 Mar 2021 – 31 May 2021 (--since 2021-03-01 --until 2021-05-31)."
    assert lines["Filters"] == "provider alpha.com, topic ai."  # the provider as stored, the topic as asked
    since = dt.datetime(2021, 3, 1, tzinfo=UTC)
    until = dt.datetime(2021, 6, 1, tzinfo=UTC) - US
    length = until - since + US
    prev = (since - length, since - US)
    assert f"the same length just before --since: {span(*prev)}" in lines["Compared with"]
    scope = model.where(since, until, "alpha.com", "AI")
    assert p.cards()["articles in this report"][0] == str(len(scope)) == "1"  # a04
    before = model.where(prev[0], prev[1], "alpha.com", "AI")
    rows = {r["Measure"]: r for r in p.table("period-comparison")}
    assert num(rows["Articles"]["Previous period"]) == len(before)
    assert num(rows["Articles"]["This period"]) == len(scope)


def test_provider_leaderboard(pg, model):
    stats = expected_provider_stats(model.articles)
    rows = pg.table("providers-by-articles")
    order = leaderboard(model.articles)
    assert [r["_key"] for r in rows] == order
    rk = ranks(model.articles)
    for r in rows:
        d, s = r["_key"], stats[r["_key"]]
        assert r["Provider (domain · name)"].startswith(d)
        assert num(r["Rank"]) == rk[d]
        assert num(r["Articles"]) == s["articles"]
        assert close1(r["Share of articles"], s["articles_share_pct"])
        assert close1(r["Avg quality (0-190)"], s["avg_quality"]) and close1(r["90th percentile quality"], s["p90_quality"])
        assert close1(r["Avg heat (rated only)"], s["avg_heat_rated"]) and close1(r["Published"], s["published_pct"])
        assert num(r["Times cited (related links)"]) == s["citations_received"]
    # bars are labelled by domain, with the name the records use beside it
    wide = pg.figure("chart-providers").find("div", cls="wide")
    labels = [squash(t.text()) for t in wide.find_all("text", cls="label")]
    assert [lb.split(" · ")[0] for lb in labels] == order
    assert "gamma.net · @SUM(1+1)" in labels and "alpha.com · Alpha News" in labels
    # the article without a provider is counted, not ranked
    assert "1 article without a provider is not ranked." in pg.section_text("providers")


def test_quality_ranking_needs_a_minimum_of_articles(wh, pg, model):
    # default minimum 5: alpha has 5 articles but only 4 with a score
    assert pg.table("providers-by-quality") == []
    assert pg.empty_text("providers-by-quality") == "no provider has 5 or more scored articles in this period"
    assert "Providers with at least 5 articles that have a quality score" in pg.section_text("providers")
    p = Page(html_report.build(wh, min_articles=2, generated_at=GENERATED))
    stats = expected_provider_stats(model.articles)
    want = sorted((d for d, s in stats.items() if d and s["articles_with_quality"] >= 2),
                  key=lambda d: -stats[d]["avg_quality"])
    rows = p.table("providers-by-quality")
    assert [r["_key"] for r in rows] == want == ["alpha.com", "gamma.net", "beta.org"]
    for i, r in enumerate(rows, 1):
        assert num(r["Rank"]) == i  # no ties here
        assert close1(r["Avg quality (0-190)"], stats[r["_key"]]["avg_quality"])
        assert num(r["Articles with a score"]) == stats[r["_key"]]["articles_with_quality"]
    assert "at least 2 scored articles" in squash(p.figure("chart-quality-ranking").find("figcaption").text())


def _check_comparison(p: Page, model: Corpus, prev: tuple, cur: tuple, names: tuple[str, str]):
    a_scope, b_scope = model.where(*prev), model.where(*cur)
    n1, n2 = names
    rows = {r["Measure"]: r for r in p.table("period-comparison")}

    def qs(scope):
        return [a.quality for a in scope if a.quality is not None]

    want = {"Articles": (len(a_scope), len(b_scope)),
            "Providers": (len({a.domain for a in a_scope if a.domain}), len({a.domain for a in b_scope if a.domain})),
            "Avg quality (0-190)": (mean(qs(a_scope)), mean(qs(b_scope))),
            "Median quality (0-190)": (quantile_cont(qs(a_scope), 0.5), quantile_cont(qs(b_scope), 0.5)),
            "Articles with a heat rating": (sum(a.rated_heat is not None for a in a_scope),
                                            sum(a.rated_heat is not None for a in b_scope)),
            "Articles marked published (isPublished)": (sum(a.is_published for a in a_scope), sum(a.is_published for a in b_scope))}
    for measure, (x, y) in want.items():
        r = rows[measure]
        if isinstance(x, int):
            assert (num(r[n1]), num(r[n2]), num(r["Change"])) == (x, y, y - x), measure
        else:
            assert close1(r[n1], x) and close1(r[n2], y), measure
    # providers: articles, average quality and rank, before -> now
    sa, sb = expected_provider_stats(a_scope), expected_provider_stats(b_scope)
    ra, rb = ranks(a_scope), ranks(b_scope)
    got = p.table("providers-compared")
    assert [r["_key"] for r in got] == leaderboard(b_scope)
    for r in got:
        d = r["_key"]
        before, now, _ = move(r["Articles"])
        assert now == sb[d]["articles"] and before == (sa[d]["articles"] if d in sa else None)
        rank_before, rank_now, mark = move(r["Rank by articles"])
        assert rank_now == rb[d] and rank_before == ra.get(d)
        if d in ra:
            diff = ra[d] - rb[d]
            assert mark == ("=" if diff == 0 else f"▲ {diff}" if diff > 0 else f"▼ {-diff}")
        qa, qb, _ = move(r["Avg quality (0-190)"])
        assert abs(qb - sb[d]["avg_quality"]) <= 0.0551
        if d in sa and sa[d]["avg_quality"] is not None:
            assert abs(qa - sa[d]["avg_quality"]) <= 0.0551


def test_comparison_of_the_two_halves(pg, model):
    _check_comparison(pg, model, *halves(model), ("Earlier half", "Later half"))


def test_comparison_with_the_previous_period(wh, model):
    p = Page(html_report.build(wh, since="2021-04-01", until="2021-06-30", generated_at=GENERATED))
    since, until = dt.datetime(2021, 4, 1, tzinfo=UTC), dt.datetime(2021, 7, 1, tzinfo=UTC) - US
    prev = (since - (until - since + US), since - US)
    assert prev[0] == dt.datetime(2020, 12, 31, tzinfo=UTC)
    _check_comparison(p, model, prev, (since, until), ("Previous period", "This period"))


def test_months_with_their_sample_sizes(pg, model):
    by = defaultdict(list)
    for a in model.articles:
        if a.published:
            by[a.published.date().replace(day=1)].append(a)
    rows = pg.table("months-table")
    assert [r["_key"] for r in rows] == [m.isoformat() for m in sorted(by)]
    for r in rows:
        arts = by[dt.date.fromisoformat(r["_key"])]
        qs = [a.quality for a in arts if a.quality is not None]
        heats = [a.rated_heat for a in arts if a.rated_heat is not None]
        assert num(r["Articles"]) == len(arts) and num(r["With a quality score"]) == len(qs)
        assert close1(r["Avg quality (0-190)"], mean(qs)) and close1(r["Median quality (0-190)"], quantile_cont(qs, 0.5))
        assert close1(r["90th percentile quality"], quantile_cont(qs, 0.9))
        assert num(r["With a heat rating"]) == len(heats) and close1(r["Avg heat (rated only)"], mean(heats))
        # every fixture month has fewer than 10 articles: each is marked
        assert r["Note"] == "few articles" and r["_class"] == "thin"
    assert "fewer than 10 articles" in pg.section_text("months")
    wide = pg.figure("chart-month-articles").find("div", cls="wide")
    bars = wide.find_all("rect", cls="bar")
    assert len(bars) == len(rows) and all("thin" in b.classes for b in bars)
    assert all(float(b.attrs["height"]) >= 2 for b in bars)  # a one-article month still shows
    q = pg.figure("chart-month-quality").find("div", cls="wide")
    assert q.find_all("polyline") == []  # no line joins months this thin
    points = sum(v is not None for r in rows for v in (num(r["Avg quality (0-190)"]), num(r["Median quality (0-190)"]),
                                                          num(r["90th percentile quality"])))
    assert len(q.find_all("circle", cls="hollow")) == points + 1  # + the legend's


def test_topics_and_their_growth(pg, model):
    arts = model.articles
    by = topic_counts(arts)
    rows = pg.table("top-topics")
    assert [r["_key"] for r in rows] == sorted(by, key=lambda t: (-len(by[t]), t))
    for r in rows:
        ts = by[r["_key"]]
        qs = [a.quality for a in ts if a.quality is not None]
        assert num(r["Articles"]) == len(ts) and close1(r["Share of articles"], pct(len(ts), len(arts)))
        assert num(r["Providers"]) == len({a.domain for a in ts if a.domain})
        assert close1(r["Avg quality (0-190)"], mean(qs))
        assert r["Latest article"] == day(max(a.published for a in ts if a.published))
    as_of, g = growth(arts)
    rising = sorted((t for t in g if g[t][1] > g[t][0]), key=lambda t: (-(g[t][1] - g[t][0]), -g[t][1], t))
    falling = sorted((t for t in g if g[t][1] < g[t][0]), key=lambda t: (g[t][1] - g[t][0], -g[t][0], t))
    for id, want in (("topics-rising", rising), ("topics-falling", falling)):
        got = pg.table(id)
        assert [r["_key"] for r in got] == want, id
        for r in got:
            prev, last = g[r["_key"]]
            assert (num(r["Earlier 90 days"]), num(r["Last 90 days"]), num(r["Change (articles)"])) == (prev, last, last - prev)
            assert r["Change (%)"] == ("new" if prev == 0 else f"{'+' if last > prev else '−'}{abs(pct(last - prev, prev)):.1f}%")
    assert rising[:1] == ["AI"] and g["AI"] == (2, 4)  # by hand: a01, a02 then a04, a05, b02, n01
    text = pg.section_text("topics")
    assert f"the 90 days {day(as_of - dt.timedelta(days=90) + US)} – {day(as_of)}" in text
    # the data start on Jan 10, inside the earlier window (Jan 1 - Apr 1): said so
    assert "only partly covered" in text


def test_citations(pg, model):
    order, pairs, totals = citation_pairs(model)
    rows = pg.table("citation-pairs")
    assert [tuple(r["_key"].split(" -> ")) for r in rows] == order[:10]
    for r in rows:
        p = pairs[tuple(r["_key"].split(" -> "))]
        assert (num(r["Links"]), num(r["Citing articles"]), num(r["Pages cited"]), num(r["Of which in this warehouse"])) == (
            p["links"], len(p["arts"]), len(p["urls"]), len(p["in_wh"]))
    assert order[0] == ("alpha.com", "outside.example")
    cards = pg.cards("citations")
    assert cards["of related links lead to an article in this warehouse"] == (
        f"{pct(totals['resolved'], totals['links']):.1f}%", f"{totals['resolved']} of {totals['links']} links")
    assert cards["of related links cite the article's own provider"][0] == f"{pct(totals['self'], totals['links']):.1f}%"
    assert cards["related links"] == (str(totals["links"]), f"from {totals['citing']} articles")
    assert (totals["links"], totals["resolved"], totals["self"]) == (9, 5, 2)  # by hand, see NOTES.txt
    glance = " ".join(pg.glance())
    assert "Strongest link between providers: alpha.com → outside.example, 2 related links from 1 article;" in glance


def _bar_titles(fig) -> list[str]:
    wide = fig.find("div", cls="wide")
    return [squash(r.find("title").text()) for r in wide.find_all("rect", cls="bar")]


def test_quality_and_heat_distributions(pg, model):
    qs = [a.quality for a in model.articles if a.quality is not None]
    got = {}
    for t in _bar_titles(pg.figure("chart-quality-distribution")):
        m = re.match(r"\[(\d+), (\d+)\): (\d+) articles", t) or re.match(r"no quality: (\d+) articles", t)
        got[int(m.group(1)) if m.lastindex == 3 else None] = int(m.group(m.lastindex))
    starts = range(min(qs) // 10 * 10, max(qs) // 10 * 10 + 10, 10)
    assert got == {**{s: sum(s <= q < s + 10 for q in qs) for s in starts}, None: len(model.articles) - len(qs)}

    heats = [a.rated_heat for a in model.articles if a.rated_heat is not None]
    note = squash(pg.figure("chart-heat-distribution").find("p", cls="note").text())
    width = int(re.match(r"Bands of (\d+)\.", note).group(1))
    got = {}
    for t in _bar_titles(pg.figure("chart-heat-distribution")):
        m = re.match(r"heat (-?\d+) to (-?\d+): (\d+) articles", t)
        assert int(m.group(2)) == int(m.group(1)) + width - 1
        got[int(m.group(1))] = int(m.group(3))
    lo, hi = min(heats) // width * width, max(heats) // width * width
    assert got == {s: sum(s <= h < s + width for h in heats) for s in range(lo, hi + 1, width)}
    assert len(got) <= 20 and -5 in got  # negative ratings are ratings
    not_rated = sum(a.heat == -1 for a in model.articles)
    assert (f"{len(heats)} of {len(model.articles)} articles have a heat rating "
            f"({pct(len(heats), len(model.articles)):.1f}%); {not_rated} are not rated (heat −1)") in note


def test_top_articles(pg, model):
    low = dt.datetime.min.replace(tzinfo=UTC)
    ranked = sorted(model.articles, key=lambda a: (
        a.quality is None, -(a.quality or 0), a.rated_heat is None, -(a.rated_heat or 0),
        a.published is None, -(a.published or low).timestamp(), a.article_id))
    rows = pg.table("top-articles-table")
    assert [r["_key"] for r in rows] == [a.article_id for a in ranked[:10]]
    for r, a in zip(rows, ranked):
        assert r["Heat"] == ("not rated" if a.heat == -1 else str(a.heat))
        assert r["Published"] == (day(a.published) if a.published else "—")


def test_hostile_values_are_text(page):
    html = page.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "@SUM(1+1)" in html  # the provider name, as text
    assert '<a href="https://beta.org/b02" rel="noopener noreferrer nofollow"><bdi>+cmd</bdi></a>' in html
    assert "><bdi>-2+3</bdi></a>" in html


def test_links_only_for_web_urls():
    assert html_report._title_link("<b>x</b>", "javascript:alert(1)") == "<bdi>&lt;b&gt;x&lt;/b&gt;</bdi>"
    assert html_report._title_link("y", 'https://ok.example/a?b=1&c="2"') == (
        '<a href="https://ok.example/a?b=1&amp;c=&quot;2&quot;" rel="noopener noreferrer nofollow"><bdi>y</bdi></a>')
    assert html_report._title_link(None, None) == "(no title)"


def test_charts_have_titles_axis_titles_and_scale(pg):
    figures = pg.root.find_all("figure", cls="chart")
    assert len(figures) == 6  # providers, topics, articles and quality by month, quality, heat
    for fig in figures:
        caption = squash(fig.find("figcaption").text())
        assert caption
        svgs = fig.find_all("svg")
        assert [s.attrs["viewbox"].split()[2] for s in svgs] == [str(html_report.WIDE), str(html_report.NARROW)]
        for svg in svgs:
            assert squash(svg.find("title").text()) == caption
            assert svg.attrs["width"] == svg.attrs["viewbox"].split()[2]  # CSS max-width: 100% scales it down
            for axis in ("x-title", "y-title"):
                titles = [squash(t.text()) for t in svg.find_all("text", cls=axis)]
                assert len(titles) == 1 and titles[0], (caption, axis)
    assert "figure.chart svg { display: block; max-width: 100%; height: auto; }" in pg.html


def test_filters_scope_the_page(wh, model):
    p = Page(html_report.build(wh, topic="Security", generated_at=GENERATED))
    assert p.scope_lines()["Filters"] == "topic Security."
    assert [r["_key"] for r in p.table("providers-by-articles")] == leaderboard(model.where(topic="Security"))
    assert [r["_key"] for r in p.table("top-topics")] == ["Security"]
    # the hostile provider name is a label, not markup, in the bars too
    wide = p.figure("chart-providers").find("div", cls="wide")
    assert [squash(t.text()) for t in wide.find_all("text", cls="label")] == ["alpha.com · Alpha News", "gamma.net · @SUM(1+1)"][::-1]


def test_a_warehouse_without_dates_or_articles_still_makes_a_page(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "a.md").write_text('---\ntitle: "Undated"\nwebUrl: "https://x.example/1"\nquality: 50\n---\n')
    (site / "b.md").write_text("not a record\n")
    pipeline.run([site], tmp_path / "wh", workers=1)
    p = Page(html_report.build(tmp_path / "wh"))
    assert p.scope_lines()["Period"] == "whole warehouse: no article has a publication date."
    assert p.scope_lines()["Compared with"] == "no comparison: no article has a publication date."
    assert p.cards()["articles in this report"] == ("1", "0 with a publication date")
    assert p.cards()["input files rejected (whole warehouse)"][0] == "1 of 2"
    assert "No dated article in scope." in p.section_text("months")
    empty = tmp_path / "empty"  # no article: its one file is no record (an input without a file is refused)
    empty.mkdir()
    (empty / "notes.md").write_text("no front matter\n")
    pipeline.run([empty], tmp_path / "wh0", workers=1)
    md = html_report.summary_markdown(tmp_path / "wh0")
    assert "**0 articles** from **0 providers**" in md and "No article with a provider." in md


def test_ticks_are_round():
    assert html_report._ticks(339) == [0, 100, 200, 300, 400]
    assert html_report._ticks(7) == [0, 2, 4, 6, 8]
    assert html_report._ticks(0) == [0, 1]
    assert html_report._ticks(2, counts=True) == [0, 1, 2]  # no half articles
    assert html_report._ticks(2) == [0, 0.5, 1, 1.5, 2]
    assert html_report._ticks(190) == [0, 50, 100, 150, 200]
    assert html_report._ticks_between(-5, 50, 4, counts=True) == [-20, 0, 20, 40, 60]


# -- data health ----------------------------------------------------------------------------------

LONG = "a-very-long-file-name-that-an-editor-should-never-see-stretched-over-several-lines-" * 2 + "broken.md"


@pytest.fixture(scope="module")
def health_wh(tmp_path_factory):
    """The fixture records plus a rejected file with a very long name."""
    site = tmp_path_factory.mktemp("health") / "site"
    shutil.copytree(FIXTURE, site)
    (site / "deep" / "folder").mkdir(parents=True)
    (site / "deep" / "folder" / LONG).write_text("---\ntitle: [unclosed\n---\n", encoding="utf-8")
    wh = site.parent / "wh"
    pipeline.run([site], wh, workers=1)
    return wh


def test_data_health(pg, model):
    rows = {r["_key"]: r for r in pg.table("health-summary")}
    dup_files = sum(len(losers) for _, losers in model.duplicates.values())
    assert num(rows["Input files read"]["Count"]) == model.files
    assert num(rows["Rejected files (not a readable record)"]["Count"]) == len(model.rejected)
    r = rows["URLs carried by more than one file"]
    assert num(r["Count"]) == len(model.duplicates) and r["Detail"].startswith(f"{dup_files} extra file;")
    r = rows["Values that could not be read (loaded empty)"]
    assert (num(r["Count"]), r["Detail"]) == (3, "in 3 files")
    # a standalone page names the command that lists them
    assert [r["Listed by"] for r in pg.table("health-summary")] == [
        "newsetl report data_quality", "newsetl report rejected_files", "newsetl report duplicate_urls",
        "newsetl report data_issues"]
    (rej,) = pg.table("health-rejections")
    assert (rej["Reason"], rej["Files"], rej["Example file"]) == ("invalid YAML", "1", "reports/z_rejected.md")
    issues = {(r["Field"], r["Problem"]): r["Example value"] for r in pg.table("health-issues")}
    assert issues == {("quality", "expected an integer, got text"): "n/a",
                      ("images[].width", "expected an integer, got text"): "1200px",
                      ("related[].quality", "expected an integer, got text"): "good"}
    (dup,) = pg.table("health-duplicates")
    assert (dup["Article"], dup["Files"], dup["Kept file"]) == ("Beta covers it", "2", "reports/b01_beta.md")


def test_long_paths_are_one_short_line(health_wh):
    p = Page(html_report.build(health_wh, generated_at=GENERATED))
    rows = p.table("health-rejections")
    cell = next(r for r in rows if r["Reason"] == "invalid YAML" and "deep" in r["_cells"][2].find("span").attrs["title"])
    span_ = cell["_cells"][2].find("span", cls="path")
    full = f"site/deep/folder/{LONG}"
    assert span_.attrs["title"] == f"\u2068{full}\u2069"  # the whole path in the tooltip, isolated
    shown = squash(span_.text())
    assert len(shown) <= 48 and shown.startswith("site/deep") and shown.endswith("broken.md") and "…" in shown


def test_health_links_to_the_report_files_written_beside_it(health_wh, tmp_path):
    out = bundle.export_all(health_wh, tmp_path / "all")
    p = Page(Path(out["report.html"]["path"]).read_text(encoding="utf-8"))
    listed = {r["_key"]: r["_cells"][3] for r in p.table("health-summary")}
    for what, name in (("Rejected files (not a readable record)", "rejected_files"),
                       ("URLs carried by more than one file", "duplicate_urls"),
                       ("Values that could not be read (loaded empty)", "data_issues")):
        (a,) = listed[what].find_all("a")
        assert a.attrs["href"] == f"{name}.csv" and (tmp_path / "all" / f"{name}.csv").is_file()
        assert squash(listed[what].text()) == f"{name}.csv · newsetl report {name}"
    # the same page written alone into an empty folder links nothing that is not there
    (tmp_path / "alone").mkdir()
    alone = html_report.write(health_wh, tmp_path / "alone" / "report.html")
    assert not re.search(r'href="[^"#h]', alone.read_text(encoding="utf-8"))


# -- changes ----------------------------------------------------------------------------------------

def _set(path: Path, key: str, value: str) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    i = next(i for i, line in enumerate(lines) if line.startswith(f"{key}:"))
    lines[i] = f"{key}: {value}"
    path.write_text("\n".join(lines), encoding="utf-8")


T1, T2, T3 = (dt.datetime(2021, 7, d, tzinfo=UTC) for d in (1, 8, 15))


@pytest.fixture(scope="module")
def history_wh(tmp_path_factory):
    """Three runs over the fixture records: moves at T2 (four articles), then one at T3."""
    site = tmp_path_factory.mktemp("history") / "reports"
    shutil.copytree(FIXTURE, site)
    wh = site.parent / "wh"
    pipeline.run([site], wh, workers=1, as_of=T1)
    _set(site / "a01_alpha.md", "quality", "60")   # 120 -> 60
    _set(site / "a01_alpha.md", "heat", "80")      # 50 -> 80
    _set(site / "b02_beta.md", "heat", "-1")       # 30 -> not rated
    _set(site / "g02_gamma.md", "quality", "130")  # 110 -> 130
    pipeline.run([site], wh, workers=1, as_of=T2)
    _set(site / "d01_delta.md", "quality", "150")  # 189 -> 150
    _set(site / "g02_gamma.md", "quality", "120")  # 130 -> 120 (110 -> 120 since T1)
    pipeline.run([site], wh, workers=1, as_of=T3)
    return wh


A01, B02, D01, G02 = (sha16(u) for u in ("https://alpha.com/a01", "https://beta.org/b02", "https://delta.io/d01",
                                          "https://gamma.net/g02"))


def test_changes_since_the_previous_run(history_wh):
    p = Page(html_report.build(history_wh, generated_at=GENERATED))
    text = p.section_text("changes")
    # the previous run saw T2's state: only what moved at T3
    assert "moved since the previous run (8 Jul 2021 00:00 UTC): 2 moved in quality, 0 in heat" in text
    assert [(r["_key"], r["Quality (0-190)"], r["Changed"]) for r in p.table("quality-moves")] == [
        (D01, "189 → 150 (−39)", "15 Jul 2021"), (G02, "130 → 120 (−10)", "15 Jul 2021")]
    assert p.table("heat-moves") == [] and p.empty_text("heat-moves") == "no heat moved"
    assert ("Changes since the previous run (8 Jul 2021 00:00 UTC): quality moved for 2 articles, heat for 0 articles."
            in p.glance())
    # quality_changes has a row per new version that moved: a01, b02, g02 at T2; d01, g02 at T3
    assert "The warehouse has recorded 5 moves since 8 Jul 2021" in text


def test_changes_since_a_chosen_date(history_wh):
    # between the first and second runs: the state T1 saw, against now
    p = Page(html_report.build(history_wh, changes_since="2021-07-03"))
    assert "moved since 3 Jul 2021 00:00 UTC: 3 moved in quality, 2 in heat" in p.section_text("changes")
    assert [(r["_key"], r["Quality (0-190)"]) for r in p.table("quality-moves")] == [
        (A01, "120 → 60 (−60)"), (D01, "189 → 150 (−39)"), (G02, "110 → 120 (+10)")]
    assert [(r["_key"], r["Heat"]) for r in p.table("heat-moves")] == [(A01, "50 → 80 (+30)"), (B02, "30 → not rated")]
    # before the first run no article had a state: nothing to compare
    before = Page(html_report.build(history_wh, changes_since="2021-06-01"))
    assert before.table("quality-moves") == [] and "0 moved in quality, 0 in heat" in before.section_text("changes")
    # a slice: gamma's article only
    g = Page(html_report.build(history_wh, changes_since="2021-07-03", provider="gamma.net"))
    assert [r["_key"] for r in g.table("quality-moves")] == [G02] and g.table("heat-moves") == []


def test_the_cli_takes_the_changes_date(history_wh, tmp_path):
    out = tmp_path / "page.html"
    r = newsetl_cli("report", "--html", out, "--changes-since", "2021-07-03", "--warehouse", history_wh)
    assert r.returncode == 0, r.stderr
    assert "moved since 3 Jul 2021 00:00 UTC: 3 moved in quality, 2 in heat" in \
        Page(out.read_text(encoding="utf-8")).section_text("changes")
    bad = newsetl_cli("report", "top_providers", "--changes-since", "2021-07-03", "--warehouse", history_wh)
    assert bad.returncode == 2 and "--changes-since goes with --html" in bad.stderr


def test_no_history_is_said_plainly(pg):
    assert "No history yet: every article has one recorded state." in pg.section_text("changes")
    assert not pg.root.find_all("table", id="quality-moves")


# -- the Markdown summary ---------------------------------------------------------------------------

def test_summary_markdown(wh, model):
    md = html_report.summary_markdown(wh)
    arts = model.articles
    stats = expected_provider_stats(arts)
    assert md.startswith("# News report\n")
    assert "Filters: none." in md
    assert f"**{len(arts)} articles** from **{len({a.domain for a in arts if a.domain})} providers**" in md
    providers = re.findall(r"^\| (\d+) \| (\S+) \| .*? \| (\d+) \| ([\d.]+|—) \|$", md, re.M)
    assert [(d, int(n)) for _, d, n, _ in providers] == [(d, stats[d]["articles"]) for d in leaderboard(arts)[:5]]
    by = topic_counts(arts)
    topics = re.findall(r"^\| (\w+) \| (\d+) \| [\d.]+% \|$", md, re.M)
    assert [(t, int(n)) for t, n in topics] == [(t, len(by[t])) for t in sorted(by, key=lambda t: (-len(by[t]), t))[:5]]
    order, pairs, _ = citation_pairs(model)
    assert f"{order[0][0]} → {order[0][1]}: {pairs[order[0]]['links']} related links from 1 article." in md
    assert f"Rejected files: {len(model.rejected)} of {model.files}" in md
    assert "Values that could not be read: 3 in 3 files" in md
    # a slice, and a hostile name kept from being read as markup
    md = html_report.summary_markdown(wh, topic="Security")
    assert "Filters: topic Security." in md and f"**{len(model.where(topic='Security'))} articles**" in md
    assert "| gamma.net | @SUM(1+1) |" in md


# -- in a real browser -----------------------------------------------------------------------------

SHOTS = os.environ.get("NEWSETL_SCREENSHOTS")  # keep the screenshots there, to look at them


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("no headless browser: /usr/bin/chromium is missing (`apt-get install chromium`; "
                    "`make test` installs it where it can)")
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def check_layout(browser: Browser, page: Path, name: str, out: Path) -> dict:
    """Lay the page out at 1280 px, at 390 px (a phone) and for print; nothing may stick out."""
    figures = len(re.findall(r'<figure class="chart"', page.read_text(encoding="utf-8")))
    shots = Path(SHOTS) if SHOTS else out
    shots.mkdir(parents=True, exist_ok=True)
    seen = {}
    for width, mobile, media, drawing in ((1280, False, "screen", html_report.WIDE), (390, True, "screen", html_report.NARROW),
                                          (718, False, "print", html_report.WIDE)):
        with browser.open(page.as_uri(), width, mobile=mobile, media=media) as tab:
            m = tab.evaluate(MEASURE)
            where = f"{name} at {width} px ({media})"
            assert m["vw"] == width, where
            assert m["scrollWidth"] == width and m["overflow"] == [], (where, m["overflow"][:10])
            assert m["tallPaths"] == [], where
            assert m["tallHeaders"] == [], (where, m["tallHeaders"])
            # one drawing of each chart shows: the wide one on a screen and in print, the narrow one on a phone
            assert len(m["charts"]) == figures and {c["viewBox"] for c in m["charts"]} == {drawing}, where
            for c in m["charts"]:
                assert c["left"] >= 0 and c["right"] <= width, (where, c)
                assert c["minFont"] >= 9, (where, c)  # chart text stays readable once scaled down
            if media == "screen":
                png = tab.screenshot(shots / f"{name}-{width}.png")
                w, h = _png_size(png)
                assert w == width and h > 2000, where
            else:
                pdf = tab.pdf(shots / f"{name}-print.pdf").read_bytes()
                assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b", pdf)) >= 3
            seen[(width, media)] = m
    return seen


def test_layout_in_chromium(browser, page, tmp_path):
    check_layout(browser, page, "fixture", tmp_path)


def test_page_renders_without_script_in_chromium(page, tmp_path):
    """The command-line Chromium too: the hostile title stays a text node."""
    if not CHROMIUM.exists():
        pytest.skip("no headless browser: /usr/bin/chromium is missing")
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium-profile'}", "--dump-dom", page.as_uri()]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert res.returncode == 0, res.stderr[-2000:]
    dom = res.stdout
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert not re.search(r"<script", dom, re.I)
    assert "Providers with the most articles" in dom and "Month by month" in dom


# -- the real corpus ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def azure(corpus, tmp_path_factory):
    folder = corpus / "azure-2021-01"
    if not folder.is_dir():
        pytest.skip(f"{folder} is missing")
    wh = tmp_path_factory.mktemp("azure") / "wh"
    pipeline.run([folder], wh, workers=2)
    return folder, wh


def test_real_month_shows_its_top_topics_and_strongest_pair(azure, tmp_path):
    folder, wh = azure
    model = Corpus(folder)
    path = html_report.write(wh, tmp_path / "azure.html")
    p = Page(path.read_text(encoding="utf-8"))
    by = topic_counts(model.articles)
    top = sorted(by, key=lambda t: (-len(by[t]), t))
    assert [r["_key"] for r in p.table("top-topics")] == top[:12]
    assert [num(r["Articles"]) for r in p.table("top-topics")] == [len(by[t]) for t in top[:12]]
    order, pairs, totals = citation_pairs(model)
    (citing, cited) = order[0]
    first = p.table("citation-pairs")[0]
    assert first["_key"] == f"{citing} -> {cited}" and num(first["Links"]) == pairs[order[0]]["links"]
    assert f"Strongest link between providers: {citing} → {cited}" in " ".join(p.glance())
    assert f"Top topics: {top[0]} ({len(by[top[0]])})" in " ".join(p.glance())
    assert p.cards("citations")["of related links lead to an article in this warehouse"][0] == \
        f"{pct(totals['resolved'], totals['links']):.1f}%"
    # the provider whose records call it "Windows" is shown by its domain
    assert any(r["Provider (domain · name)"] == "compsmag.com Windows" for r in p.table("providers-by-articles"))
    # the one-article month is marked, the full month is not
    months = {r["_key"]: r["Note"] for r in p.table("months-table")}
    assert months == {"2020-12-01": "few articles", "2021-01-01": ""}
    assert all("_" not in label for t in p.root.find_all("table") for label in p.labels(t.attrs["id"]))


def test_real_month_figures_equal_the_views(azure):
    _, wh = azure
    p = Page(html_report.build(wh))
    con = newsetl.connect(wh)
    try:
        stats = {r[0]: r[1:] for r in con.sql(
            "SELECT provider_domain, articles, avg_quality, p90_quality, citations_received FROM provider_stats "
            "WHERE provider_domain IS NOT NULL").fetchall()}
        months = {m.isoformat(): rest for m, *rest in con.sql(
            "SELECT month, articles, avg_quality, median_quality, p90_quality FROM quality_by_month").fetchall()}
        by_quality = con.sql("SELECT provider_domain FROM provider_stats WHERE provider_domain IS NOT NULL "
                             "AND articles_with_quality >= 5 ORDER BY avg_quality DESC").fetchall()
        pair = con.sql("SELECT citing_provider_domain, cited_provider_domain, links FROM provider_citations "
                       "WHERE NOT is_self_citation AND citing_provider_domain IS NOT NULL "
                       "AND cited_provider_domain IS NOT NULL ORDER BY links DESC LIMIT 1").fetchall()[0]
    finally:
        con.close()
    for r in p.table("providers-by-articles"):
        n, q, p90, cited = stats[r["_key"]]
        assert num(r["Articles"]) == n and close1(r["Avg quality (0-190)"], q) and close1(r["90th percentile quality"], p90)
        assert num(r["Times cited (related links)"]) == cited
    for r in p.table("months-table"):
        n, avg, med, p90 = months[r["_key"]]
        assert num(r["Articles"]) == n and close1(r["Avg quality (0-190)"], avg)
        assert close1(r["Median quality (0-190)"], med) and close1(r["90th percentile quality"], p90)
    assert p.table("citation-pairs")[0]["_key"] == f"{pair[0]} -> {pair[1]}"
    assert [r["_key"] for r in p.table("providers-by-quality")] == [d for (d,) in by_quality][:15]


def test_real_pages_lay_out_in_chromium(browser, azure, corpus, tmp_path):
    _, wh = azure
    check_layout(browser, html_report.write(wh, tmp_path / "azure.html"), "azure-2021-01", tmp_path)
    latest = corpus / "powerapps" / "latest"
    if not latest.is_dir():
        pytest.skip(f"{latest} is missing")
    pa = tmp_path / "powerapps-wh"
    pipeline.run([latest], pa, workers=2)
    page = html_report.write(pa, tmp_path / "powerapps.html")
    check_layout(browser, page, "powerapps-latest", tmp_path)
    con = newsetl.connect(pa)
    try:
        top = con.sql("SELECT topic FROM topic_stats ORDER BY articles DESC, topic LIMIT 3").fetchall()
    finally:
        con.close()
    p = Page(page.read_text(encoding="utf-8"))
    assert [r["_key"] for r in p.table("top-topics")][:3] == [t for (t,) in top]
    assert "The articles carry no related links." in " ".join(p.glance())


# -- bidirectional overrides: a value cannot turn the text around it -------------------------------

RLO, FSI, PDI = "\u202e", "\u2068", "\u2069"
ISOLATE_OPENS = "\u2066\u2067\u2068"  # LRI, RLI, FSI


def _yaml_str(text: str) -> str:
    return '"' + "".join(f"\\u{ord(c):04x}" if ord(c) > 126 or c in '"\\' else c for c in text) + '"'


@pytest.fixture(scope="module")
def bidi_page(tmp_path_factory) -> Path:
    """Six articles of one provider whose name starts with an override, in a topic that does
    too (so both lead the page's headlines), a second provider whose name closes an isolate it
    never opened, titles with overrides, and a rejected file with one in its name."""
    site = tmp_path_factory.mktemp("bidi") / "site"
    site.mkdir()
    for i in range(6):
        (site / f"e{i}.md").write_text(
            f"---\ntitle: {_yaml_str(RLO + f'Title {i}')}\nwebUrl: https://evil.example/{i}\n"
            f"publishedDateTime: 2021-03-0{i + 1}T10:00:00Z\nquality: {150 + i}\nheat: 5\n"
            f"provider:\n  name: {_yaml_str(RLO + 'Evil Corp')}\n  domain: evil.example\n"
            f"topics: [{_yaml_str(RLO + 'Spoof topic')}{', AI' if i % 2 else ''}]\n---\n", encoding="utf-8")
    for i in range(2):
        (site / f"s{i}.md").write_text(
            f"---\ntitle: plain {i}\nwebUrl: https://sneaky.example/{i}\npublishedDateTime: 2021-03-1{i}T10:00:00Z\n"
            f"quality: 20\nprovider:\n  name: {_yaml_str(PDI + RLO + 'Sneaky')}\n  domain: sneaky.example\n"
            f"topics: [{_yaml_str(PDI + PDI + RLO + 'Closer')}]\n---\n", encoding="utf-8")
    (site / f"bad{RLO}name.md").write_text("---\ntitle: [unclosed\n---\n", encoding="utf-8")
    wh = site.parent / "wh"
    pipeline.run([site], wh, workers=1)
    return html_report.write(wh, site.parent / "bidi.html", generated_at=GENERATED)


def _unisolated(text: str, inside: bool) -> list[int]:
    """Positions of overrides in `text` that no isolate holds: not inside a <bdi> (`inside`)
    and not between an isolate initiator and its PDI in the text itself."""
    depth, bad = 0, []
    for i, ch in enumerate(text):
        if ch in ISOLATE_OPENS:
            depth += 1
        elif ch == PDI:
            if depth == 0 and inside:
                bad.append(i)  # would close the <bdi> around it
            depth = max(depth - 1, 0)
        elif ch == RLO and not inside and depth == 0:
            bad.append(i)
    return bad


def test_every_value_from_the_records_is_isolated(bidi_page):
    """Every override in the page (all of them come from the records) is inside an isolating
    element or between FSI and PDI, and no text inside a <bdi> can close it early."""
    p = Page(bidi_page.read_text(encoding="utf-8"))
    seen = Counter()

    def walk(node, inside: bool, where: str):
        for name, value in node.attrs.items():
            if value and RLO in value and not name.startswith("data-"):  # data-key: a row's key, not shown
                assert _unisolated(value, False) == [], (where, node.tag, name, value)
                seen["attribute"] += 1
        for c in node.children:
            if isinstance(c, str):
                if RLO in c or (inside and PDI in c):
                    assert _unisolated(c, inside) == [], (where, node.tag, c)
                    seen[where] += RLO in c
            else:
                walk(c, inside or c.tag == "bdi" or c.attrs.get("dir") == "auto", c.attrs.get("id") or where)

    walk(p.root, False, "page")
    # the values are there, in each place a reader meets them
    for where in ("glance", "chart-providers", "providers-by-articles", "providers-by-quality", "chart-topics",
                  "top-topics", "top-articles-table", "health-rejections"):
        assert seen[where] > 0, (where, seen)
    assert seen["attribute"] > 0  # the tooltips of paths
    assert "bdi, [dir=auto] { unicode-bidi: isolate; }" in p.html


def test_isolated_values_keep_their_text(bidi_page):
    p = Page(bidi_page.read_text(encoding="utf-8"))
    topics = [r["_key"] for r in p.table("top-topics")]
    assert RLO + "Spoof topic" in topics and PDI + PDI + RLO + "Closer" in topics
    cells = {r["_key"]: r["Topic"] for r in p.table("top-topics")}
    assert cells[RLO + "Spoof topic"] == RLO + "Spoof topic"  # squash leaves out the isolate marks only
    glance = " ".join(p.glance())
    assert f"Most articles: evil.example · {RLO}Evil Corp, 6 (75.0%)." in glance
    assert f"Top topics: {RLO}Spoof topic (6), AI (3)" in glance


@pytest.mark.parametrize("text", ["", "plain", RLO + "x", PDI, PDI + PDI + "a" + FSI, "\u2067a\u2069\u2069b\u2066",
                                  "a\u2029\u202eb", "x\n\u202ey\x85z\x1cq"])
def test_a_value_cannot_close_its_isolate(text):
    iso = html_report._iso(text)
    assert iso.startswith(FSI) and iso.endswith(PDI)
    _check_isolate(text, iso)


def _check_isolate(text: str, iso: str):
    """The isolate opened by iso's first character closes at its last one, never before; no
    paragraph separator (which ends every isolate) inside; the text's other characters kept."""
    depth = 0
    for i, ch in enumerate(iso):
        if ch in ISOLATE_OPENS:
            depth += 1
        elif ch == PDI:
            depth -= 1
            assert depth > 0 or i == len(iso) - 1, (text, iso, i)
        assert ch not in "\n\r\x1c\x1d\x1e\x85\u2029", (text, iso)
    assert depth == 0
    kept = [c for c in iso if c not in ISOLATE_OPENS + PDI]
    assert kept == [" " if c in "\n\r\x1c\x1d\x1e\x85\u2029" else c for c in text if c not in ISOLATE_OPENS + PDI]


def test_any_value_stays_in_its_isolate():
    from hypothesis import given, settings, strategies as st

    from .helpers import examples

    bidi = st.sampled_from("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2029\n\x85ab א")

    @settings(max_examples=examples(300), deadline=None)
    @given(st.lists(st.one_of(bidi, st.characters()), max_size=30).map("".join))
    def prop(text):
        _check_isolate(text, html_report._iso(text))
        html = html_report._v(text)
        assert html.startswith("<bdi>") and html.endswith("</bdi>")
        _check_isolate(text, FSI + __import__("html").unescape(html[5:-6]) + PDI)
        # in a headline too: the value is one <bdi>, whatever isolates it holds
        line = html_report._md_to_html(f"Top: **{html_report._m(text)}** (3).")
        assert line.startswith("Top: <b><bdi>") and line.endswith("</bdi></b> (3).")
        assert line.count("<bdi>") == 1 and line.count("</bdi>") == 1

    prop()


# what follows the value in a headline, as laid out: each character's box, in the text's order
ORDER = r"""
((needle) => {
  const walker = document.createTreeWalker(document.querySelector('ul.glance'), NodeFilter.SHOW_TEXT);
  let n;
  while ((n = walker.nextNode())) {
    const i = n.data.indexOf(needle);
    if (i < 0) continue;
    const out = [];
    for (let k = i; k < i + needle.length; k++) {
      if (n.data[k] === ' ') continue;
      const r = document.createRange();
      r.setStart(n, k); r.setEnd(n, k + 1);
      const b = r.getBoundingClientRect();
      out.push([n.data[k], b.left, b.top]);
    }
    return out;
  }
  return null;
})
"""


def _reading_order(tab, needle: str) -> list:
    boxes = tab.evaluate(f"{ORDER}({json.dumps(needle)})")
    assert boxes, needle
    lines = defaultdict(list)
    for ch, left, top in boxes:
        lines[round(top)].append(left)
    return [xs for xs in lines.values() if len(xs) > 1]


def test_an_override_does_not_turn_the_sentence_around_in_chromium(browser, bidi_page, tmp_path):
    """In Chromium, the words after a provider and a topic that carry U+202E read left to right;
    on the same page without the isolates they come out reversed (so the check can fail)."""
    html = bidi_page.read_text(encoding="utf-8")
    bare = tmp_path / "bare.html"
    bare.write_text(html.replace("<bdi>", "<span>").replace("</bdi>", "</span>").replace(FSI, "").replace(PDI, ""),
                    encoding="utf-8")
    for page, isolated in ((bidi_page, True), (bare, False)):
        with browser.open(page.as_uri(), 2400) as tab:
            # after the provider's name, and after the topic
            for needle in ("Highest average quality", "(6), "):
                lines = _reading_order(tab, needle)
                assert lines, needle
                for xs in lines:
                    ordered = xs == sorted(xs)
                    assert ordered == isolated, (page.name, needle, xs)
