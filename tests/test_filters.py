"""Filters mean what the data means (issue 11): provider domains in one normal form,
whole-topic matching whatever a topic holds, and --as-of within what a warehouse holds.

The fixture records are written below by hand; what they must load as (STORED) and
every expected figure are written or counted here in plain Python from that table,
never by running the code under test a second way.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import newsetl
from newsetl import pipeline, plan, reports
from newsetl.clean import as_domain, normalize_domain
from newsetl.columns import type_column

from .helpers.tables import assert_same_tables

ROOT = Path(__file__).resolve().parents[1]
UTC = dt.timezone.utc

# -- the fixture records ------------------------------------------------------------------
# name -> (published, quality, provider.domain as written, topics as written, related links' domains)
RECORDS = {
    "r01": ("2021-03-01T10:00:00Z", 100, "İSTANBUL.TR", ["AI\x1fML"], ["XN--BCHER-KVA.DE", "IstanBul.TR."]),
    "r02": ("2021-03-05T10:00:00Z", 80, "IstanBul.TR.", ["a,b", "ML"], []),
    "r03": ("2021-04-01T10:00:00Z", 60, "istanbul.tr", ["semi;colon", 'He said "hi"', "it's"], []),
    "r04": ("2021-04-10T10:00:00Z", 140, "XN--BCHER-KVA.DE", ["  Spaced  ", ""], ["bücher.de"]),
    "r05": ("2021-05-01T10:00:00Z", 120, "bücher.de", ["Ünïcode", "ai"], []),
    "r06": ("2021-05-20T10:00:00Z", 30, "BU\u0308CHER.DE", ["AI", "ÜNÏCODE"], []),  # U + combining diaeresis
    "r07": ("2021-05-10T10:00:00Z", 90, "ıstanbul.tr", [], []),  # dotless ı: a letter, and a name, of its own
    "r08": ("2021-06-01T10:00:00Z", 70, "example.com", ["AI", "Cloud, Edge"], []),
    "r09": ("2021-06-02T10:00:00Z", 50, "ＥＸＡＭＰＬＥ．ＣＯＭ", ["ML"], []),  # fullwidth
}
# what each record must load as, by hand: (provider_domain, topics, related links' provider_domain)
STORED = {
    "r01": ("istanbul.tr", ["AI\x1fML"], ["bücher.de", "istanbul.tr"]),
    "r02": ("istanbul.tr", ["a,b", "ML"], []),
    "r03": ("istanbul.tr", ["semi;colon", 'He said "hi"', "it's"], []),
    "r04": ("bücher.de", ["Spaced"], ["bücher.de"]),  # topics are stripped and blank ones dropped, as always
    "r05": ("bücher.de", ["Ünïcode", "ai"], []),
    "r06": ("bücher.de", ["AI", "ÜNÏCODE"], []),
    "r07": ("ıstanbul.tr", [], []),
    "r08": ("example.com", ["AI", "Cloud, Edge"], []),
    "r09": ("example.com", ["ML"], []),
}


def url(name: str) -> str:
    return f"https://t.example/{name}"


def _yaml(text: str) -> str:
    """Plain when YAML reads it back as the same text, else double-quoted (JSON escapes are YAML's)."""
    plain = text and all(c.isalnum() or c in ".-" for c in text) and not text[0].isdigit()
    return text if plain else json.dumps(text, ensure_ascii=not text.isprintable())


def _record(name: str) -> str:
    published, quality, domain, topics, related = RECORDS[name]
    text = (f"---\ntitle: \"Story {name}\"\nwebUrl: \"{url(name)}\"\npublishedDateTime: {published}\n"
            f"quality: {quality}\nheat: -1\npublished: true\n"
            f"provider:\n  name: \"Provider of {name}\"\n  domain: {_yaml(domain)}\n")
    text += "topics:\n" + "".join(f"  - {_yaml(t)}\n" for t in topics) if topics else "topics: []\n"
    if related:
        text += "related:\n" + "".join(
            f"  - title: \"Link {i}\"\n    webUrl: \"https://elsewhere.example/{name}/{i}\"\n"
            f"    provider:\n      name: \"Linked {i}\"\n      domain: {_yaml(d)}\n" for i, d in enumerate(related))
    return text + "---\nBody.\n"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("filters-site")
    for name in RECORDS:
        (d / f"{name}.md").write_text(_record(name), encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def wh(site, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("filters-wh")
    result = pipeline.run([site], out, workers=1)
    assert result.run["files_rejected"] == 0
    return out


@pytest.fixture(scope="module")
def con(wh):
    c = newsetl.connect(wh)
    yield c
    c.close()


def by_name(rows: list[tuple]) -> dict:
    """{record name: rest of the row} for rows whose first column is the article's URL."""
    return {r[0].rsplit("/", 1)[-1]: r[1:] for r in rows}


def articles_with_topic(topic: str) -> set[str]:
    """Independently: the records one of whose stored topics is `topic`, ignoring case."""
    want = topic.strip().lower()
    return {n for n, (_d, topics, _r) in STORED.items() if any(t.lower() == want for t in topics)}


def articles_of(domain: str) -> set[str]:
    return {n for n, (d, _t, _r) in STORED.items() if d == domain}


def names(table) -> set[str]:
    return {u.rsplit("/", 1)[-1] for u in table.column("url").to_pylist()}


# -- provider domains: stored -------------------------------------------------------------

def test_domains_and_topics_load_as_written_by_hand(con):
    got = by_name(con.sql("SELECT url, provider_domain, topics FROM articles").fetchall())
    assert got == {n: (d, t) for n, (d, t, _r) in STORED.items()}
    links = {}
    for link, domain in con.sql("SELECT url, provider_domain FROM related_links ORDER BY url").fetchall():
        links.setdefault(link.split("/")[-2], []).append(domain)  # https://elsewhere.example/r01/0
    assert links == {n: r for n, (_d, _t, r) in STORED.items() if r}


def test_spellings_of_one_domain_are_one_provider(con):
    got = dict(con.sql("SELECT provider_domain, article_count FROM providers").fetchall())
    want = {d: len(articles_of(d)) for d in {d for d, _t, _r in STORED.values()}}
    assert got == want == {"istanbul.tr": 3, "bücher.de": 3, "ıstanbul.tr": 1, "example.com": 2}


def test_fast_parser_tables_equal_pyyaml_tables(site, wh, tmp_path):
    ref = pipeline.run([site], tmp_path / "ref", workers=1, parser="pyyaml")
    assert ref.run["fast_parsed"] == 0
    con = newsetl.connect(wh)
    try:  # most of these records take the fast path (quoted escapes may send a few to PyYAML)
        assert con.execute("SELECT fast_parsed FROM runs").fetchone()[0] >= len(RECORDS) // 2
    finally:
        con.close()
    assert_same_tables(wh, tmp_path / "ref")


def test_arrow_path_equals_the_python_function():
    raw = [d for _p, _q, d, _t, _r in RECORDS.values()]
    arr, bad = type_column(raw, "domain")
    assert bad == []
    assert arr.to_pylist() == [d for d, _t, _r in STORED.values()]
    assert arr.to_pylist() == [normalize_domain(d) for d in raw] == [as_domain(d, [], "") for d in raw]


def test_every_bmp_character_goes_the_same_way_through_arrow_python_and_duckdb():
    chars = [chr(c) for c in range(0x80, 0x10000) if not 0xD800 <= c < 0xE000]
    raw = [f" Ab{c}Cd.Example.COM. " for c in chars]
    fast, _ = type_column(raw, "domain")
    slow = [normalize_domain(v) for v in raw]
    assert fast.to_pylist() == slow
    assert [normalize_domain(v) for v in slow] == slow  # idempotent
    # what the view macros do to a stored domain, lower(trim()), changes nothing
    (back,), = duckdb.execute("SELECT list_transform($v, lambda d: lower(trim(d)))", {"v": slow}).fetchall()
    assert back == slow


@pytest.mark.parametrize("written, stored", [
    ("İSTANBUL.TR", "istanbul.tr"),      # İ folds to i (Unicode's simple case mapping, as DuckDB's lower)
    ("IstanBul.TR.", "istanbul.tr"),     # a trailing dot is the DNS root, not part of the name
    ("ISTANBUL.TR", "istanbul.tr"),
    ("ıstanbul.tr", "ıstanbul.tr"),      # dotless ı is a letter of its own: not i
    ("XN--BCHER-KVA.DE", "bücher.de"),   # punycode is stored as the Unicode it spells
    ("BÜCHER.de", "bücher.de"),
    ("bu\u0308cher.de", "bücher.de"),    # decomposed: NFKC composes it
    ("ｅｘａｍｐｌｅ．ｃｏｍ", "example.com"),  # fullwidth letters and dot
    ("例え。テスト", "例え.テスト"),         # ideographic full stop separates labels
    ("Faß.DE", "faß.de"),                # ß is kept (IDNA 2008: faß.de is not fass.de)
    ("ΟΔΟΣ.GR", "οδοσ.gr"),              # Σ -> σ wherever it stands
    ("xn--mnchen-3ya.de", "münchen.de"),
    ("a\u202eb.com", "xn--ab-g4t.com"),   # a bidi override does not show: kept as punycode
    ("xn--ab-g4t.com", "xn--ab-g4t.com"),
    ("xn--zz-not-punycode.com", "xn--zz-not-punycode.com"),
    ("  Example.COM . ", "example.com"),
    ("...", None),
    (" \t", None),
])
def test_normalize_domain_rules(written, stored):
    assert normalize_domain(written) == stored
    assert normalize_domain(stored) == stored


# Hypothesis: text made of the characters that matter here
_DOMAIN_CHARS = st.sampled_from(list("abcXYZ019-._ .\t") + ["xn--", "İ", "ı", "I", "Σ", "ς", "ß", "ẞ", "Ü", "u\u0308",
                                                            "\u0307", "ｅ", "．", "。", "\u202e", "\u200d", "\x1f",
                                                            "\x85", "\u3000", "日本", "💩", "ǅ", "ﬁ", "⒈", "\U000e0001"])
domain_texts = st.lists(_DOMAIN_CHARS, max_size=12).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(domain_texts, min_size=1, max_size=8))
def test_property_arrow_python_duckdb_agree_and_normal_form_is_stable(values):
    fast, _ = type_column(values, "domain")
    slow = [normalize_domain(v) for v in values]
    assert fast.to_pylist() == slow
    for v, n in zip(values, slow):
        assert normalize_domain(n) == n, v
        if n is not None:
            assert n == n.strip() and not n.endswith(".")
            assert duckdb.execute("SELECT lower(trim($d))", {"d": n}).fetchall() == [(n,)]  # all: the result finished


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(categories=["Ll", "Lu", "Lo", "Mn"]), min_size=1, max_size=15))
def test_property_punycode_and_unicode_spellings_are_one_domain(label):
    unicode_form = normalize_domain(label + ".DE")
    head = unicode_form.split(".")[0] if unicode_form else ""
    if not head or head.isascii() or head.startswith("xn--") or unicode_form.count(".") != 1:
        return  # not one non-ASCII label that shows: nothing to compare
    a_label = "xn--" + head.encode("punycode").decode("ascii")
    if len(a_label) > 63:
        return  # not a DNS label
    assert normalize_domain(a_label.upper() + ".de.") == unicode_form
    assert normalize_domain(a_label + ".de") == unicode_form


# -- --provider -------------------------------------------------------------------------

@pytest.mark.parametrize("given_, domain", [
    ("İSTANBUL.TR", "istanbul.tr"), ("IstanBul.TR.", "istanbul.tr"), (" istanbul.tr ", "istanbul.tr"),
    ("XN--BCHER-KVA.DE", "bücher.de"), ("bücher.de", "bücher.de"), ("BU\u0308CHER.DE.", "bücher.de"),
    ("ıstanbul.tr", "ıstanbul.tr"), ("ＥＸＡＭＰＬＥ．ＣＯＭ", "example.com"),
])
def test_provider_filter_finds_the_provider_however_written(wh, given_, domain):
    (row,) = reports.run(wh, "provider_stats", provider=given_).to_pylist()
    assert row["provider_domain"] == domain and row["articles"] == len(articles_of(domain))
    assert names(reports.run(wh, "top_articles", provider=given_)) == articles_of(domain)
    cited = sum(r.count(domain) for _d, _t, r in STORED.values())
    assert row["citations_received"] == cited


def test_provider_filter_applies_to_citations_and_issues(wh):
    rows = reports.run(wh, "provider_citations", provider="XN--BCHER-KVA.DE").to_pylist()
    # links into or out of bücher.de: r01 (istanbul.tr -> bücher.de) and r04 (bücher.de -> bücher.de)
    assert sorted((r["citing_provider_domain"], r["cited_provider_domain"], r["links"]) for r in rows) == [
        ("bücher.de", "bücher.de", 1), ("istanbul.tr", "bücher.de", 1)]


def test_provider_that_is_no_domain_is_a_one_line_error(wh):
    with pytest.raises(reports.ReportError) as e:
        reports.run(wh, "provider_stats", provider=" . ")
    assert str(e.value) == "--provider ' . ' is not a domain"


def test_provider_through_the_real_cli(wh):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    res = subprocess.run([sys.executable, "-m", "newsetl.cli", "report", "provider_stats", "--warehouse", str(wh),
                          "--provider", "İSTANBUL.TR", "--format", "json"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    (row,) = json.loads(res.stdout)
    assert (row["provider_domain"], row["articles"]) == ("istanbul.tr", 3)


# -- --topic ------------------------------------------------------------------------------

TOPICS = ["ML", "ml", "AI", "ai", "AI\x1fML", "ai\x1fml", "a,b", "a", "b", "semi;colon", "semi", "colon",
          'He said "hi"', "it's", "it", " Spaced ", "spaced", "ünïcode", "ÜNÏCODE", "Cloud, Edge", "Cloud", "Edge",
          "AI\x1f", ",", ";", '"', "'"]


def test_topic_filter_matches_whole_topics_only(con):
    assert articles_with_topic("ML") == {"r02", "r09"}  # the model: "AI\x1fML" (r01) is no ML
    for topic in TOPICS:
        want = articles_with_topic(topic)
        assert names(reports.run(con, "top_articles", topic=topic)) == want, topic


def test_every_report_with_a_topic_counts_the_same_articles(con):
    for topic in TOPICS:
        want = articles_with_topic(topic)
        n = len(want)
        assert sum(r["articles"] for r in reports.run(con, "provider_stats", topic=topic).to_pylist()) == n, topic
        assert sum(r["articles"] for r in reports.run(con, "top_providers", topic=topic).to_pylist()) == n, topic
        assert sum(r["articles"] for r in reports.run(con, "quality_distribution", topic=topic).to_pylist()) == n, topic
        assert sum(r["articles"] for r in reports.run(con, "quality_by_month", topic=topic).to_pylist()) == n, topic
        citing = {n_ for n_ in want if STORED[n_][2]}
        got = sum(r["citing_articles"] for r in reports.run(con, "provider_citations", topic=topic).to_pylist())
        assert got == sum(len(set(STORED[n_][2])) for n_ in citing), topic  # one row per cited domain
        stats = reports.run(con, "topic_stats", topic=topic).to_pylist()
        written = {t for n_ in want for t in STORED[n_][1] if t.lower() == topic.strip().lower()}
        assert {r["topic"] for r in stats} == written, topic
        for r in stats:
            assert r["articles"] == sum(r["topic"] in STORED[n_][1] for n_ in STORED), topic


def test_macros_match_whole_topics_and_never_an_empty_one(con):
    def count(topic):
        return con.execute("SELECT count(*) FROM articles_in(topic := $t)", {"t": topic}).fetchone()[0]

    assert count("") == count(" ") == 0  # r07 has no topics: no empty topic to match
    assert count(None) == len(STORED)
    assert count("ai" + chr(31) + "ml") == 1 and count("ml") == 2
    assert con.execute("SELECT topic, articles FROM topic_stats_for(topic := $t)", {"t": "AI\x1fML"}).fetchall() == [
        ("AI\x1fML", 1)]


def test_html_page_scope_counts_whole_topics(wh):
    from newsetl import html_report

    page = html_report.build(wh, topic="ML")
    assert "topic ML" in page
    con = newsetl.connect(wh)
    try:
        assert html_report._summary(con, reports.check_filters({"topic": "ML"}))["articles"] == 2
    finally:
        con.close()


def test_older_duckdb_shell_answers_the_same(wh):
    shell = Path(sys.executable).parent / "duckdb"
    if not shell.exists():
        found = shutil.which("duckdb")
        if not found:
            pytest.skip("no DuckDB shell (.venv/bin/duckdb: pip install duckdb-cli)")
        shell = Path(found)
    queries = {
        "ml": "SELECT count(*) FROM articles_in(topic := 'ml')",
        "aiml": "SELECT count(*) FROM articles_in(topic := 'ai' || chr(31) || 'ml')",
        "a": "SELECT count(*) FROM articles_in(topic := 'a')",
        "ab": "SELECT count(*) FROM articles_in(topic := 'A,B')",
        "quote": "SELECT count(*) FROM articles_in(topic := 'he said \"hi\"')",
        "uni": "SELECT count(*) FROM articles_in(topic := 'ünïcode')",
        "empty": "SELECT count(*) FROM articles_in(topic := '')",
        "buecher": "SELECT articles FROM provider_stats_for(provider := 'BÜCHER.DE')",
        "istanbul": "SELECT articles FROM provider_stats_for(provider := 'İSTANBUL.TR')",
    }
    sql = ";\n".join(f"SELECT '{k}', ({q})" for k, q in queries.items())
    res = subprocess.run([str(shell), "-readonly", "-csv", "-noheader", str(wh / "news.duckdb"), "-c", sql],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    got = {k: int(v) for k, v in (line.rsplit(",", 1) for line in res.stdout.split())}
    assert got == {"ml": 2, "aiml": 1, "a": 0, "ab": 1, "quote": 1, "uni": 2, "empty": 0, "buecher": 3,
                   "istanbul": 3}


# -- --as-of --------------------------------------------------------------------------------

def _run_cli(site: Path, warehouse: Path, as_of: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    return subprocess.run([sys.executable, "-m", "newsetl.cli", "run", str(site), "--warehouse", str(warehouse),
                           "--no-prefect", "-q", "--workers", "1", "--as-of", as_of],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("as_of, message", [
    ("2099-01-01T00:00:00Z", "is in the future"),
    ("9999-12-31T23:59:59-14:00", "is out of range"),  # UTC: year 10000
    ("0001-01-01T00:00:00+01:00", "is out of range"),  # UTC: year 0
    ("last tuesday", "is not an ISO 8601 date or time"),
])
def test_cli_refuses_an_as_of_it_cannot_keep_before_writing_anything(site, tmp_path, as_of, message):
    warehouse = tmp_path / "wh"
    res = _run_cli(site, warehouse, as_of)
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("newsetl run: error: ") and res.stderr.count("\n") == 1, res.stderr
    assert message in res.stderr and res.stdout == ""
    assert not warehouse.exists()


def test_cli_future_message_names_the_skew(site, tmp_path):
    res = _run_cli(site, tmp_path / "wh", (dt.datetime.now(UTC) + dt.timedelta(minutes=6)).isoformat())
    assert res.returncode == 2 and "at most 5 minutes ahead" in res.stderr, res.stderr
    assert plan.AS_OF_SKEW == dt.timedelta(minutes=5)
    helptext = subprocess.run([sys.executable, "-m", "newsetl.cli", "run", "--help"], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, timeout=60).stdout
    assert "at most 5 minutes ahead" in " ".join(helptext.split())


def test_cli_accepts_an_as_of_within_the_skew(site, tmp_path):
    soon = (dt.datetime.now(UTC) + dt.timedelta(minutes=2)).replace(microsecond=0)
    res = _run_cli(site, tmp_path / "wh", soon.isoformat())
    assert res.returncode == 0, res.stderr
    con = newsetl.connect(tmp_path / "wh")
    try:
        assert con.sql("SELECT as_of FROM runs").fetchall() == [(soon,)]
        assert {v for (v,) in con.sql("SELECT valid_from FROM article_versions").fetchall()} == {soon}
    finally:
        con.close()


def test_check_as_of_boundaries():
    now = dt.datetime(2021, 6, 1, 12, 0, tzinfo=UTC)
    assert pipeline.check_as_of(now + dt.timedelta(minutes=5), now=now) == now + dt.timedelta(minutes=5)
    with pytest.raises(ValueError, match="in the future"):
        pipeline.check_as_of(now + dt.timedelta(minutes=5, microseconds=1), now=now)
    assert pipeline.check_as_of(dt.datetime(2021, 6, 1), now=now) == dt.datetime(2021, 6, 1, tzinfo=UTC)  # naive: UTC
    tz = dt.timezone(dt.timedelta(hours=-14))
    assert pipeline.check_as_of(dt.datetime(2021, 6, 1, 0, tzinfo=tz), now=now + dt.timedelta(hours=14)).utcoffset() == \
        dt.timedelta(hours=-14)  # kept as given: same instant
    with pytest.raises(ValueError, match="out of range"):
        pipeline.check_as_of(dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))), now=now)
    assert pipeline.check_as_of(dt.datetime(1, 1, 1, tzinfo=UTC), now=now).year == 1


def test_library_and_flow_refuse_before_writing(site, tmp_path):
    future = dt.datetime.now(UTC) + dt.timedelta(days=1)
    with pytest.raises(ValueError, match="in the future"):
        pipeline.run([site], tmp_path / "lib", workers=1, as_of=future)
    assert not (tmp_path / "lib").exists()
    from newsetl.flows import news_etl

    with pytest.raises(ValueError, match="in the future"):
        news_etl.fn(inputs=[str(site)], warehouse=str(tmp_path / "flow"), as_of=future)
    assert not (tmp_path / "flow").exists()


def test_an_as_of_far_ahead_no_longer_blocks_later_runs(site, tmp_path):
    assert _run_cli(site, tmp_path / "wh", "9999-12-31T23:59:59-14:00").returncode == 2
    assert pipeline.run([site], tmp_path / "wh", workers=1).run["files_new"] == len(RECORDS)
    assert pipeline.run([site], tmp_path / "wh", workers=1).run["files_unchanged"] == len(RECORDS)
