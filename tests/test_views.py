"""The analytics views on the fixture corpus tests/fixtures/reports.

Expected figures are computed here from the fixture files themselves (PyYAML and
plain Python: `Corpus` below is an independent model of the records), never by
re-running the views' SQL; a few hand-computed constants guard the model.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

import newsetl
from newsetl import schema
from newsetl.catalog import view_sql_files

from .helpers.model import (DIGITS, UTC, Corpus, assert_rows_match, close, expected_provider_stats,
                            mean, pct, quantile_cont, sha16)

ROOT = Path(__file__).resolve().parents[1]
VIEWS = ("provider_stats", "quality_distribution", "quality_by_month", "topic_stats", "article_authors", "authors",
         "data_quality", "provider_citations", "top_articles", "duplicate_urls", "open_alerts", "check_history")


@pytest.fixture(scope="module")
def wh(reports_wh):
    return reports_wh


@pytest.fixture(scope="module")
def con(wh):
    c = newsetl.connect(wh)
    yield c
    c.close()


@pytest.fixture(scope="module")
def corpus():
    return Corpus()


def rows(con, sql, params=None) -> list[dict]:
    return con.sql(sql, params=params).to_arrow_table().to_pylist()


# -- the model itself ------------------------------------------------------------------------

def test_the_model_agrees_with_hand_counts(corpus):
    assert corpus.rejected == ["z_rejected.md"]
    assert corpus.files == 15 and len(corpus.articles) == 13
    assert [a.name for a in corpus.duplicates["https://beta.org/b01"][1]] == ["b01_beta_old.md"]
    alpha = expected_provider_stats(corpus.articles)["alpha.com"]
    # qualities 120, 95, 150, n/a, 110; heats 50, -1, 10, -1, -5
    assert alpha["avg_quality"] == 118.75 and alpha["median_quality"] == 115 and alpha["p90_quality"] == 141
    assert alpha["articles_heat_rated"] == 3 and round(alpha["avg_heat_rated"], 2) == 18.33
    assert alpha["citations_received"] == 3  # a01 -> a02, a02 -> a01, b01 -> a01


# -- every view ------------------------------------------------------------------------------

def test_every_view_file_is_numbered_and_creates_what_its_name_says():
    names = [n for n, _ in view_sql_files()]
    assert names[0] == "articles_in"
    for view in VIEWS:
        assert view in names
    for name, sql in view_sql_files():
        assert re.search(rf"CREATE OR REPLACE (VIEW|MACRO) {name}\b", sql), name


def test_provider_stats(con, corpus):
    got = {r["provider_domain"]: r for r in rows(con, "SELECT * FROM provider_stats")}
    want = expected_provider_stats(corpus.articles)
    assert set(got) == set(want) == {"alpha.com", "beta.org", "gamma.net", "delta.io", "epsilon.co", None}
    for dom, w in want.items():
        assert_rows_match(got[dom], w, DIGITS)
    assert sum(r["articles"] for r in got.values()) == len(corpus.articles)


def test_provider_stats_name_is_the_most_frequent_of_the_domain(con):
    got = dict(con.sql("SELECT provider_domain, provider_name FROM provider_stats").fetchall())
    assert got["alpha.com"] == "Alpha News"  # not "Alpha News Ltd" (written once, as ALPHA.com)
    assert got["gamma.net"] == "@SUM(1+1)"


def test_provider_stats_for_a_period_and_topic(con, corpus):
    since, until = dt.datetime(2021, 3, 1, tzinfo=UTC), dt.datetime(2021, 5, 31, 23, 59, 59, 999999, tzinfo=UTC)
    got = {r["provider_domain"]: r for r in rows(
        con, "SELECT * FROM provider_stats_for(since := $s, until := $u)",
        {"s": since.replace(tzinfo=None), "u": until.replace(tzinfo=None)})}
    want = expected_provider_stats(corpus.where(since, until))
    assert set(got) == set(want)
    for dom, w in want.items():
        assert_rows_match(got[dom], w, DIGITS)
    got = {r["provider_domain"]: r for r in rows(con, "SELECT * FROM provider_stats_for(topic := 'ai')")}
    want = expected_provider_stats(corpus.where(topic="AI"))
    assert set(got) == set(want) == {"alpha.com", "beta.org", "epsilon.co", None}
    for dom, w in want.items():
        assert_rows_match(got[dom], w, DIGITS)


def test_quality_distribution(con, corpus):
    got = rows(con, "SELECT * FROM quality_distribution")
    qs = [a.quality for a in corpus.articles if a.quality is not None]
    n = len(corpus.articles)
    starts = list(range(min(qs) // 10 * 10, max(qs) // 10 * 10 + 10, 10))
    counts = [sum(s <= q < s + 10 for q in qs) for s in starts] + [n - len(qs)]
    assert [r["bucket_start"] for r in got] == starts + [None]
    assert [r["bucket_end"] for r in got] == [s + 10 for s in starts] + [None]
    assert [r["articles"] for r in got] == counts
    assert got[0]["bucket"] == "[0, 10)" and got[-1]["bucket"] == "no quality" and got[-1]["articles"] == 1
    running = 0
    for r, c in zip(got, counts):
        running += c
        assert close(r["articles_pct"], pct(c, n), 1) and close(r["cumulative_pct"], pct(running, n), 1)
    assert got[-1]["cumulative_pct"] == 100.0
    assert [r["articles"] for r in got if r["bucket_start"] == 110] == [3]  # a05, g01, g02


def test_quality_by_month(con, corpus):
    got = rows(con, "SELECT * FROM quality_by_month")
    by = defaultdict(list)
    for a in corpus.articles:
        if a.published:
            by[a.published.date().replace(day=1)].append(a)
    assert [r["month"] for r in got] == sorted(by) == [dt.date(2021, m, 1) for m in range(1, 7)]
    for r in got:
        arts = by[r["month"]]
        qs = [a.quality for a in arts if a.quality is not None]
        heats = [a.rated_heat for a in arts if a.rated_heat is not None]
        assert_rows_match(r, dict(
            articles=len(arts), articles_with_quality=len(qs), avg_quality=mean(qs),
            median_quality=quantile_cont(qs, 0.5), p90_quality=quantile_cont(qs, 0.9),
            articles_heat_rated=len(heats), avg_heat_rated=mean(heats),
            published_pct=pct(sum(a.is_published for a in arts), len(arts))), DIGITS)
    # e01 has no date: not placed
    assert sum(r["articles"] for r in got) == len(corpus.articles) - 1


def test_quality_by_month_is_utc_whatever_the_session_time_zone(wh):
    con = newsetl.connect(wh)
    try:
        con.execute("SET TimeZone = 'Asia/Tokyo'")  # d01 (2021-02-28T23:30Z) is March 1st there
        got = dict(con.sql("SELECT month, articles FROM quality_by_month").fetchall())
        assert got[dt.date(2021, 2, 1)] == 2 and got[dt.date(2021, 3, 1)] == 2
        # and the date bounds of the macros too
        assert con.sql("SELECT count(*) FROM articles_in(until := TIMESTAMP '2021-02-28 23:59:59')").fetchall() == [(4,)]
    finally:
        con.close()


def test_quality_by_month_lists_empty_months(con):
    got = rows(con, "SELECT * FROM quality_by_month_for(provider := 'gamma.net')")
    assert [(r["month"], r["articles"]) for r in got] == [
        (dt.date(2021, 3, 1), 1), (dt.date(2021, 4, 1), 0), (dt.date(2021, 5, 1), 1)]
    assert got[1]["avg_quality"] is None and got[1]["published_pct"] is None


def test_topic_stats(con, corpus):
    got = {r["topic"]: r for r in rows(con, "SELECT * FROM topic_stats")}
    as_of = max(a.published for a in corpus.articles if a.published)
    assert as_of == dt.datetime(2021, 6, 30, 12, tzinfo=UTC)
    topics = {t for a in corpus.articles for t in a.topics}
    assert set(got) == topics == {"AI", "Cloud", "Security", "Markets"}
    for topic in topics:
        arts = [a for a in corpus.articles if topic in a.topics]
        qs = [a.quality for a in arts if a.quality is not None]
        dates = [a.published for a in arts if a.published]
        last = sum(as_of - dt.timedelta(days=90) < d <= as_of for d in dates)
        prev = sum(as_of - dt.timedelta(days=180) < d <= as_of - dt.timedelta(days=90) for d in dates)
        assert_rows_match(got[topic], dict(
            articles=len(arts), provider_count=len({a.domain for a in arts if a.domain}),
            articles_with_quality=len(qs), avg_quality=mean(qs),
            first_published_at=min(dates), last_published_at=max(dates),
            articles_last_90d=last, articles_prev_90d=prev,
            growth_pct=pct(last - prev, prev) if prev else None, as_of=as_of), DIGITS)
    # by hand: AI last 90 days a04, a05, b02, n01; previous 90 a01, a02 (e01 has no date)
    assert (got["AI"]["articles_last_90d"], got["AI"]["articles_prev_90d"], got["AI"]["growth_pct"]) == (4, 2, 100.0)


def test_topic_stats_growth_is_relative_to_the_newest_article_in_scope(con):
    (row,) = rows(con, "SELECT * FROM topic_stats_for(until := TIMESTAMP '2021-03-31 23:59:59', topic := 'ai')")
    # in scope: a01 (Jan 10), a02 (Feb 15); as_of = a02
    assert row["topic"] == "AI" and row["as_of"] == dt.datetime(2021, 2, 15, 9, 30, tzinfo=UTC)
    assert (row["articles"], row["articles_last_90d"], row["articles_prev_90d"], row["growth_pct"]) == (2, 2, 0, None)


def test_data_quality(con, corpus):
    got = rows(con, "SELECT * FROM data_quality")
    status = {r["item"]: r for r in got if r["kind"] == "file_status"}
    dup_files = sum(len(losers) for _, losers in corpus.duplicates.values())
    assert {k: r["files"] for k, r in status.items()} == {
        "loaded": len(corpus.articles), "duplicate": dup_files, "rejected": len(corpus.rejected)}
    assert close(status["rejected"]["files_pct"], pct(1, corpus.files), 1)
    assert status["loaded"]["issues"] == 3
    assert [r["kind"] for r in got] == ["file_status"] * 3 + ["rejection"] + ["field_issue"] * 3
    (rej,) = [r for r in got if r["kind"] == "rejection"]
    assert (rej["item"], rej["files"], rej["example_source_path"]) == ("invalid YAML", 1, "reports/z_rejected.md")
    assert rej["example_value"].startswith("invalid YAML at line 5, column 2")
    issues = {(r["item"], r["problem"]): (r["files"], r["issues"], r["example_source_path"], r["example_value"])
              for r in got if r["kind"] == "field_issue"}
    assert issues == {
        ("quality", "expected an integer, got text"): (1, 1, "reports/a04_alpha.md", "n/a"),
        ("images[].width", "expected an integer, got text"): (1, 1, "reports/b03_beta.md", "1200px"),
        ("related[].quality", "expected an integer, got text"): (1, 1, "reports/g01_gamma.md", "good"),
    }


def test_provider_citations(con, corpus):
    got = {(r["citing_provider_domain"], r["cited_provider_domain"]): r for r in rows(con, "SELECT * FROM provider_citations")}
    want = defaultdict(lambda: {"links": 0, "arts": set(), "urls": set(), "in_wh": set()})
    ids = {a.url for a in corpus.articles}
    for a in corpus.articles:
        for dom, url in a.related:
            w = want[(a.domain, dom)]
            w["links"] += 1
            w["arts"].add(a.article_id)
            w["urls"].add(url)
            if url in ids:
                w["in_wh"].add(url)
    assert set(got) == set(want)
    for key, w in want.items():
        r = got[key]
        assert (r["links"], r["citing_articles"], r["cited_urls"], r["cited_articles_in_warehouse"]) == (
            w["links"], len(w["arts"]), len(w["urls"]), len(w["in_wh"])), key
        assert r["is_self_citation"] == (key[0] == key[1])
    assert got[("alpha.com", "outside.example")]["links"] == 2
    assert got[("gamma.net", "beta.org")]["citing_provider_name"] == "@SUM(1+1)"
    # the losing copy of b01 cites nowhere.example: only the winning record's links count
    assert not any(k[1] == "nowhere.example" for k in got)


def test_provider_citations_for_a_provider_matches_either_side(con):
    got = {(r["citing_provider_domain"], r["cited_provider_domain"])
           for r in rows(con, "SELECT * FROM provider_citations_for(provider := 'BETA.org')")}
    assert got == {("alpha.com", "beta.org"), ("beta.org", "alpha.com"), ("beta.org", "outside.example"),
                   ("gamma.net", "beta.org")}


def test_top_articles(con, corpus):
    got = rows(con, "SELECT * FROM top_articles")
    low = dt.datetime.min.replace(tzinfo=UTC)
    want = sorted(corpus.articles, key=lambda a: (
        a.quality is None, -(a.quality or 0), a.rated_heat is None, -(a.rated_heat or 0),
        a.published is None, -(a.published or low).timestamp(), a.article_id))
    assert [r["article_id"] for r in got] == [a.article_id for a in want]
    assert [r["rank"] for r in got] == list(range(1, len(want) + 1))
    # the quality-110 tie: rated heat 20, then rated heat -5, then not rated (-1)
    tie = [(r["title"], r["heat"], r["is_heat_rated"]) for r in got if r["quality"] == 110]
    assert tie == [("@SUM(1+1)", 20, True), ("-2+3", -5, True), ("Gamma on breaches", -1, False)]
    assert got[0]["title"] == "Delta, late on the last day of February" and got[-1]["quality"] is None


def test_duplicate_urls(con, corpus):
    got = rows(con, "SELECT * FROM duplicate_urls")
    assert len(got) == len(corpus.duplicates) == 1
    (url, (winner, losers)), = corpus.duplicates.items()
    r = got[0]
    assert (r["url"], r["article_id"], r["file_count"]) == (url, sha16(url), 1 + len(losers))
    assert r["winning_source_path"] == "reports/" + winner.name == "reports/b01_beta.md"
    assert r["other_source_paths"] == ["reports/" + a.name for a in losers]
    assert r["title"] == "Beta covers it"


def test_views_and_macros_agree(con):
    for view in VIEWS:
        if view in ("data_quality", "open_alerts", "check_history"):  # no scoped macro: not reports
            continue
        a = con.sql(f"SELECT count(*) FROM {view}").fetchall()
        b = con.sql(f"SELECT count(*) FROM {view}_for()").fetchall()
        assert a == b, view


# -- the catalog file and its data dictionary ---------------------------------------------------

def _type(t: str) -> str:
    return {"TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ"}.get(t, t)


def test_every_view_column_is_in_the_data_dictionary(con):
    assert set(schema.VIEWS_BY_NAME) == set(VIEWS) | {"quality_changes"}
    for view in schema.VIEWS_BY_NAME.values():
        got = [(n, _type(t)) for n, t, *_ in con.sql(f"DESCRIBE {view.name}").fetchall()]
        assert [(c.name, c.type) for c in view.columns] == got, view.name


def test_catalog_file_opens_in_the_duckdb_shell(wh, con):
    shell = Path(sys.executable).parent / "duckdb"
    if not shell.exists():
        shell = shutil.which("duckdb")
        if not shell:
            pytest.skip("no DuckDB shell (.venv/bin/duckdb: pip install duckdb-cli); skipping the shell check")
    version = subprocess.run([str(shell), "--version"], capture_output=True, text=True).stdout.strip()
    sql = ";\n".join([f"SELECT '{v}', count(*) FROM {v}" for v in VIEWS]
                     + ["SELECT 'ai_since', count(*) FROM top_articles_for(topic := 'ai', since := TIMESTAMP '2021-04-01')"])
    res = subprocess.run([str(shell), "-readonly", "-csv", "-noheader", str(wh / "news.duckdb"), "-c", sql],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, (version, res.stderr)
    got = dict(line.rsplit(",", 1) for line in res.stdout.split())
    for v in VIEWS:
        assert int(got[v]) == con.sql(f"SELECT count(*) FROM {v}").fetchall()[0][0], (version, v)
    assert int(got["ai_since"]) == 4  # a04, a05, b02, n01


def test_views_bound_when_queried_read_as_views_bound_when_made(wh, monkeypatch):
    """connect() and the catalog file make the analytics views WITH (DEFER_BINDING), bound when a
    query names them: every view gives the same rows, columns and types as one bound when made."""
    import duckdb

    from newsetl import catalog

    deferred = newsetl.connect(wh)
    monkeypatch.setattr(catalog, "_DEFERS", [False])  # as a DuckDB without deferred binding makes them
    bound = newsetl.connect(wh)
    on_disk = duckdb.connect(str(Path(wh) / "news.duckdb"), read_only=True)
    names = [r[0] for r in bound.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal "
                                         "ORDER BY 1").fetchall()]
    views = {v.lower() for _, sql in view_sql_files() for v in re.findall(r"CREATE OR REPLACE VIEW (\w+)", sql)}
    assert set(names) == views | {t.name for t in schema.WAREHOUSE_TABLES}
    for con in (deferred, on_disk):
        assert [r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal "
                                          "ORDER BY 1").fetchall()] == names
    for name in names:
        want = bound.execute(f"DESCRIBE {name}").fetchall(), sorted(map(repr, bound.execute(f"FROM {name}").fetchall()))
        for con in (deferred, on_disk):
            assert (con.execute(f"DESCRIBE {name}").fetchall(),
                    sorted(map(repr, con.execute(f"FROM {name}").fetchall()))) == want, name
    cols = "SELECT table_name, column_name, data_type FROM information_schema.columns ORDER BY ALL"
    assert deferred.execute(cols).fetchall() == bound.execute(cols).fetchall()


def test_the_deferred_binding_probe_never_aborts_the_callers_transaction(tmp_path, monkeypatch):
    """The catalog file is written in one transaction; a DuckDB that refuses DEFER_BINDING (1.x)
    must leave it open and get its views bound, not a write that fails at COMMIT. (The refusal
    here is an error while running, which aborts the transaction it happens in: a parser or
    catalog error would not.)"""
    import duckdb

    from newsetl import catalog

    monkeypatch.setattr(catalog, "_DEFERS", [])
    monkeypatch.setattr(catalog, "_DEFER_PROBE", "CREATE TEMP TABLE p AS SELECT 'a'::INT AS x")
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{tmp_path / 'f.duckdb'}' AS f")
        con.execute("BEGIN TRANSACTION")
        con.execute("CREATE TABLE f.t AS SELECT 42 AS x")
        assert catalog._can_defer_binding(con) is False
        con.execute("COMMIT")
        assert con.execute("SELECT x FROM f.t").fetchall() == [(42,)]
        assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'p'").fetchall() == [(0,)]
    assert catalog._DEFERS == [False]
