"""Static-site generators' front matter (Hugo, Jekyll, Eleventy, Astro), loaded with no configuration.

The fixture sites under tests/fixtures/generators/ are written by hand, in each generator's
style. Every expected value here is computed from the fixture's YAML (yaml.safe_load) by the
rules the data dictionary states ("Generator front matter"), written again here on their own,
not by newsetl.mapping.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path
from urllib.parse import urljoin

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import newsetl
from newsetl import mapping, pipeline
from newsetl.checks.config import ConfigError, parse_config
from newsetl.flatten import BatchBuilder
from newsetl.frontmatter import Extracted
from newsetl.sources import SourceFile

from .helpers.tables import assert_same_as_rebuild, assert_same_tables

SITES = Path(__file__).parent / "fixtures" / "generators"
BASE = {"hugo": "https://hugo.example.org", "jekyll": "https://jekyll.example.com", "eleventy": None,
        "astro": "https://astro.example.dev"}
UTC = dt.timezone.utc


def _front(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    return yaml.safe_load(text.split("---\n")[1])


def _utc(v) -> dt.datetime:
    if isinstance(v, dt.datetime):
        return v.replace(tzinfo=UTC) if v.tzinfo is None else v.astimezone(UTC)
    if isinstance(v, dt.date):
        return dt.datetime(v.year, v.month, v.day, tzinfo=UTC)
    try:
        return _utc(dt.datetime.fromisoformat(v))
    except ValueError:
        return _utc(dt.datetime.strptime(v, "%b %d %Y").date())  # Astro's `Jul 08 2022`


def expected(site: str, path: Path) -> dict:
    """The documented rules, applied by hand to one fixture file."""
    rec = _front(path)
    rel = path.relative_to(SITES / site).as_posix()
    name = path.stem
    day = re.match(r"(\d{4})-(\d\d)-(\d\d)-(.*)", name)
    # published_at: date, pubDate, publishDate, published (a date); else the Jekyll file name's date
    when = next((rec[k] for k in ("date", "pubDate", "publishDate", "published") if k in rec), None)
    if when is None and day:
        when = dt.date(int(day[1]), int(day[2]), int(day[3]))
    # topics: tags, categories, keywords merged, each once; strings split (keywords on commas)
    topics = []
    for k in ("tags", "categories", "keywords"):
        v = rec.get(k)
        if isinstance(v, str):
            v = [t.strip() for t in v.split(",")] if k == "keywords" else v.split()
        for t in v or []:
            if t not in topics:
                topics.append(t)
    # URL: canonical, url, permalink; else the page's path from the file; joined to the base URL
    base = BASE[site]
    url = next((rec[k] for k in ("canonical", "url", "permalink") if k in rec), None)
    if url is None:
        folder = [p for p in path.relative_to(SITES / site).parent.parts]
        for prefix in (["src", "content"], ["content"], ["_posts"]):
            if folder[:len(prefix)] == prefix:
                folder = folder[len(prefix):]
                break
        slug = rec.get("slug") or (day[4] if day else name)
        if slug in ("index", "_index"):
            slug = ""
        if site == "jekyll":
            d = _utc(when)
            url = "/" + "/".join([*folder, f"{d:%Y}", f"{d:%m}", f"{d:%d}", f"{slug}.html"])
        else:
            url = "/" + "/".join([*folder, *([slug] if slug else [])]) + "/"
    if base and not re.match(r"https?://", url):
        url = urljoin(base + "/", url.lstrip("/"))
    # images: images, else image, cover, heroImage, featured_image; URL under url, src, image or path
    raw = next((rec[k] for k in ("images", "image", "cover", "heroImage", "featured_image") if rec.get(k)), None)
    images = []
    for item in (raw if isinstance(raw, list) else [raw] if raw is not None else []):
        u = item if isinstance(item, str) else next(item[k] for k in ("url", "src", "image", "path") if k in item)
        images.append(urljoin(base + "/", u.lstrip("/")) if base and not re.match(r"https?://", u) else u)
    excerpt = next((rec[k] for k in ("excerpt", "description", "summary") if k in rec), None)
    published = (not rec["draft"]) if "draft" in rec else None
    return {"source_path": f"{site}/{rel}", "published_at": _utc(when), "topics": topics, "url": url,
            "images": images, "excerpt": excerpt, "is_published": published}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """Each fixture site run once into its own warehouse, with no configuration."""
    out = {}
    for site in BASE:
        wh = tmp_path_factory.mktemp(f"wh-{site}")
        result = pipeline.run([str(SITES / site)], wh, workers=1, config=parse_config({}))
        out[site] = (wh, result)
    return out


def _articles(wh) -> dict:
    con = newsetl.connect(wh)
    try:
        rows = con.sql("SELECT source_path, published_at, topics, url, excerpt, is_published, article_id "
                       "FROM articles").fetchall()
        images = con.sql("SELECT article_id, url FROM images ORDER BY article_id, position").fetchall()
        issues = con.sql("SELECT source_path, field, problem FROM data_issues").fetchall()
    finally:
        con.close()
    by_id: dict = {}
    for aid, url in images:
        by_id.setdefault(aid, []).append(url)
    return {r[0]: {"source_path": r[0], "published_at": r[1].astimezone(UTC) if r[1] else None, "topics": r[2],
                   "url": r[3], "excerpt": r[4], "is_published": r[5], "images": by_id.get(r[6], [])}
            for r in rows}, issues


@pytest.mark.parametrize("site", list(BASE))
def test_every_file_gets_its_date_topics_url_and_images(loaded, site):
    wh, result = loaded[site]
    got, issues = _articles(wh)
    files = sorted((SITES / site).rglob("*.md"))
    assert len(files) == 5
    assert sorted(got) == sorted(f"{site}/{f.relative_to(SITES / site).as_posix()}" for f in files)
    for f in files:
        want = expected(site, f)
        assert got[want["source_path"]] == want, want["source_path"]
    assert issues == []
    assert result.mapping.preset == site and "detected" in result.keys


@pytest.mark.parametrize("site, folder", [("hugo", "hugo/content/posts"), ("jekyll", "jekyll/_posts"),
                                          ("eleventy", "eleventy/posts"), ("astro", "astro/src/content/blog"),
                                          ("astro", "astro")])
def test_detection_from_the_site_files_near_the_input(site, folder):
    found = mapping.detect_files(SITES / folder)
    assert found is not None and found[0] == site


def test_detection_by_the_records_keys(tmp_path):
    assert mapping.detect_files(tmp_path) is None
    assert mapping.detect_records([("a.md", {"publishedDateTime": "2024-01-01", "tags": []})])[0] == "news"
    assert mapping.detect_records([("a.md", {"pubDate": "Jul 08 2022"})])[0] == "astro"
    assert mapping.detect_records([("2024-01-02-a.md", {"title": "x", "tags": ["a"]})])[0] == "jekyll"
    assert mapping.detect_records([("a.md", {"date": "2024-01-01"})])[0] == "hugo"
    assert mapping.detect_records([("a.md", {"title": "x"})]) is None


def test_the_news_demo_is_detected_as_news_and_unchanged(tmp_path):
    from newsetl.demo import generate

    generate(tmp_path / "demo", 20)
    result = pipeline.run([tmp_path / "demo"], tmp_path / "wh", workers=1, config=parse_config({}))
    assert result.mapping is mapping.NEWS and result.keys.startswith("preset news")


def test_news_records_in_a_jekyll_posts_folder_stay_news(tmp_path):
    from newsetl.demo import generate

    root = tmp_path / "site"
    generate(root / "_posts", 10)
    (root / "_config.yml").write_text("url: https://site.example\n", encoding="utf-8")
    m, why = mapping.resolve([root / "_posts"], config=parse_config({}),
                             sample=lambda: mapping.sample_folders([root / "_posts"]))
    assert m is mapping.NEWS and ("publishedDateTime" in why or "webUrl" in why)


def test_keys_on_the_news_preset_map_only_those_columns():
    m = mapping.Mapping("news", {"topics": ("tags",)})
    rec = {"webUrl": "https://n.example/a", "tags": ["x"], "date": "2024-01-01", "image": "/i.jpg"}
    out, moved, issues = mapping.apply(rec, m, "a.md")
    assert out == {"webUrl": "https://n.example/a", "topics": ["x"], "date": "2024-01-01", "image": "/i.jpg"}
    assert moved == {} and issues == []


def test_a_date_under_published_is_a_date_not_the_flag():
    m = mapping.Mapping("hugo")
    out, moved, _ = mapping.apply({"published": dt.date(2024, 1, 2), "draft": True}, m, "a.md")
    assert out == {"publishedDateTime": dt.date(2024, 1, 2), "published": False, "webUrl": "/a/"} and moved == {}
    out, moved, _ = mapping.apply({"date": "2024-01-01", "published": dt.date(2024, 1, 2)}, m, "a.md")
    assert out["publishedDateTime"] == "2024-01-01" and "published" not in out
    assert moved == {"published": dt.date(2024, 1, 2)}  # kept, in extra
    out, moved, _ = mapping.apply({"published": True, "date": "2024-01-01"}, m, "a.md")
    assert out["published"] is True and moved == {}


def _site(tmp_path, files: dict) -> Path:
    root = tmp_path / "site"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def test_keys_and_base_url_override(tmp_path):
    root = _site(tmp_path, {"hugo.toml": "", "content/a.md": "---\ntitle: A\ncreated: 2024-05-06\n"
                            "date: 2020-01-01\ntags: [x]\nseries: [s1]\n---\nbody\n"})
    cfg = parse_config({"keys": {"published_at": "created", "topics": ["tags", "series"]},
                        "site": {"base_url": "https://cfg.example"}}, "t.toml")
    result = pipeline.run([root], tmp_path / "wh", workers=1, config=cfg, base_url="https://flag.example/blog")
    got, issues = _articles(tmp_path / "wh")
    row = got["site/content/a.md"]
    assert row["published_at"] == dt.datetime(2024, 5, 6, tzinfo=UTC)
    assert row["topics"] == ["x", "s1"]
    assert row["url"] == "https://flag.example/blog/a/"
    assert "[keys]" in result.keys and "https://flag.example/blog" in result.keys


def test_preset_given_and_config_errors(tmp_path):
    root = _site(tmp_path, {"_posts/2024-03-04-hello.md": "---\ntitle: Hi\n---\n"})
    result = pipeline.run([root], tmp_path / "wh", workers=1, config=parse_config({}), preset="hugo")
    assert result.mapping.preset == "hugo" and result.keys.startswith("preset hugo (given)")
    got, _ = _articles(tmp_path / "wh")
    assert got["site/_posts/2024-03-04-hello.md"]["url"] == "/hello/"  # Hugo's rule: no date in the path
    for doc, key in [({"keys": {"author": "by"}}, "keys.author"), ({"site": {"preset": "wordpress"}}, "site.preset"),
                     ({"site": {"base_url": "example.com"}}, "site.base_url"), ({"keys": {"topics": 3}}, "keys.topics")]:
        with pytest.raises(ConfigError, match=re.escape(key)):
            parse_config(doc, "t.toml")


def test_a_record_with_no_date_gets_a_data_issue(tmp_path):
    root = _site(tmp_path, {"hugo.toml": "", "content/undated.md": "---\ntitle: No date\ntags: [a]\n---\n",
                            "content/dated.md": "---\ntitle: Dated\ndate: 2024-01-01\n---\n"})
    pipeline.run([root], tmp_path / "wh", workers=1, config=parse_config({}))
    got, issues = _articles(tmp_path / "wh")
    assert got["site/content/undated.md"]["published_at"] is None
    assert [(sp, field) for sp, field, _ in issues] == [("site/content/undated.md", "published_at")]
    con = newsetl.connect(tmp_path / "wh")
    try:
        ((n,),) = con.sql("SELECT sum(issues) FROM data_quality WHERE kind = 'field_issue'").fetchall()
    finally:
        con.close()
    assert n == 1


def test_the_cli_takes_preset_and_base_url(tmp_path, capsys):
    from newsetl import cli

    shutil.copytree(SITES / "eleventy", tmp_path / "eleventy")
    code = cli.main(["run", str(tmp_path / "eleventy"), "--warehouse", str(tmp_path / "wh"), "--no-prefect",
                     "--preset", "eleventy", "--base-url", "https://e.example", "--workers", "1"])
    assert code in (0, None)
    err = capsys.readouterr().err
    assert "keys: preset eleventy (given); base URL https://e.example" in err
    got, _ = _articles(tmp_path / "wh")
    assert got["eleventy/posts/ferry.md"]["url"] == "https://e.example/posts/ferry/"


def test_deployments_store_the_resolved_mapping(tmp_path):
    from newsetl.serve import deployment_parameters

    params = deployment_parameters([str(SITES / "jekyll")], tmp_path / "wh")
    assert params["preset"] == "jekyll" and params["base_url"] == "https://jekyll.example.com"
    assert params["keys"] == {}
    params = deployment_parameters([str(SITES / "eleventy")], tmp_path / "wh", preset="hugo",
                                   base_url="https://x.example")
    assert (params["preset"], params["base_url"]) == ("hugo", "https://x.example")


def test_incremental_runs_on_a_generator_site_equal_a_rebuild(tmp_path):
    site = tmp_path / "hugo"
    shutil.copytree(SITES / "hugo", site)
    cfg = parse_config({})
    inc = tmp_path / "inc"
    pipeline.run([site], inc, workers=1, config=cfg, as_of=dt.datetime(2026, 1, 1, tzinfo=UTC))
    post = site / "content/posts/first-light.md"
    post.write_text(post.read_text().replace("[\"astronomy\", \"telescopes\"]", "[\"astronomy\", \"optics\"]"))
    (site / "content/news/rail-strike.md").unlink()
    pipeline.run([site], inc, workers=1, config=cfg, as_of=dt.datetime(2026, 1, 2, tzinfo=UTC))
    assert_same_as_rebuild([site], inc, tmp_path)
    con = newsetl.connect(inc)
    try:
        (versions,) = con.sql("SELECT count(*) FROM article_versions WHERE source_path LIKE '%first-light%'").fetchall()
        topics = con.sql("SELECT topic FROM topic_stats ORDER BY 1").fetchall()
    finally:
        con.close()
    assert versions == (2,)
    assert ("optics",) in topics and ("telescopes",) not in topics


# -- the property: news keys win, nothing is lost --------------------------------------------------

_GEN_KEYS = ["date", "pubDate", "publishDate", "tags", "categories", "keywords", "url", "permalink", "canonical",
             "image", "cover", "heroImage", "featured_image", "description", "summary", "draft", "slug", "lastmod"]
_NEWS = {"publishedDateTime": st.just("2021-02-12T20:25:00Z"), "webUrl": st.just("https://n.example/a"),
         "topics": st.just(["news-topic"]), "excerpt": st.just("news excerpt"), "published": st.just(True)}
_value = st.one_of(st.text(min_size=1, max_size=8).filter(lambda s: s.strip()), st.lists(
    st.text(min_size=1, max_size=5).filter(lambda s: s.strip()), max_size=3), st.booleans())


def _flat(rec: dict, keys: mapping.Mapping) -> dict:
    f = SourceFile(path="x/p.md", source_path="s/p.md", rel_path="p.md", size=1, mtime_ns=0)
    b = BatchBuilder("t", keys)
    b.add(Extracted(f, "0" * 64, 1, record=rec, issues=[]))
    t = b.tables()["stg_articles"].to_pylist()[0]
    return t


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(news=st.fixed_dictionaries({}, optional=_NEWS),
       gen=st.dictionaries(st.sampled_from(_GEN_KEYS), _value, max_size=6))
def test_news_keys_win_and_nothing_is_lost(news, gen):
    rec = {**gen, **news}
    row = _flat(dict(rec), mapping.Mapping("hugo"))
    extra = json.loads(row["extra"]) if row["extra"] else {}
    if "publishedDateTime" in news:
        assert row["published_at"] == dt.datetime(2021, 2, 12, 20, 25, tzinfo=UTC)
    if "webUrl" in news:
        assert row["url"] == "https://n.example/a"
    if "topics" in news:
        assert row["topics"] == ["news-topic"]
    if "excerpt" in news:
        assert row["excerpt"] == "news excerpt"
    if "published" in news:
        assert row["is_published"] is True
    # every generator key is mapped (its column holds its value) or in extra, as written
    mapped = {
        "date": "published_at", "pubDate": "published_at", "publishDate": "published_at",
        "tags": "topics", "categories": "topics", "keywords": "topics",
        "url": "url", "permalink": "url", "canonical": "url",
        "description": "excerpt", "summary": "excerpt", "draft": "is_published",
    }
    for k, v in gen.items():
        if k in extra:
            continue
        col = mapped.get(k)
        if col is None:  # an image key: the article has images rows
            assert k in ("image", "cover", "heroImage", "featured_image"), k
            assert row["image_count"] >= 1 or v == [] or isinstance(v, bool)
            continue
        news_key = mapping.DEFAULT_KEYS[col][0]
        assert news_key not in news, (k, news)  # a news key present keeps its generator keys in extra
        if col == "topics":
            assert row["topics"] is not None
        elif col == "excerpt":
            assert row["excerpt"] is not None or not isinstance(v, str)
        elif col == "url":
            assert row["url"] is not None


@pytest.mark.parametrize("site", list(BASE))
def test_the_mapping_is_the_same_on_both_parsers(tmp_path, site):
    """The fast parser (rapidyaml) and PyYAML alone load the fixture sites to the same tables."""
    fast, slow = tmp_path / "fast", tmp_path / "slow"
    cfg = parse_config({})
    at = dt.datetime(2026, 1, 1, tzinfo=UTC)
    pipeline.run([SITES / site], fast, workers=1, config=cfg, as_of=at)
    pipeline.run([SITES / site], slow, workers=1, config=cfg, as_of=at, parser="pyyaml")
    assert_same_tables(fast, slow)
    con = newsetl.connect(fast)
    try:
        parsers = con.sql("SELECT count(*) FROM source_files").fetchall()
    finally:
        con.close()
    assert parsers == [(5,)]


def test_fast_parsed_generator_records_map_as_pyyaml_ones(tmp_path):
    """Records inside the fast parser's subset are parsed by rapidyaml, and map to the same rows."""
    from newsetl import fastyaml
    from newsetl.frontmatter import extract_all
    from newsetl.parse import flatten_files

    text = ("title: Fast one\ndate: 2024-01-02T10:00:00Z\ntags:\n  - a\n  - b\ncategories: news town\n"
            "draft: false\ndescription: Hi there\nurl: \"/fast/one/\"\nimage: \"/img/x.jpg\"\nlastmod: 2024-01-03\n")
    fastyaml.load_fast(text)  # inside the subset (raises NeedsFallback if not)
    root = tmp_path / "site"
    root.mkdir()
    (root / "one.md").write_text(f"---\n{text}---\nbody\n", encoding="utf-8")
    f = SourceFile(path=str(root / "one.md"), source_path="site/one.md", rel_path="one.md", size=1, mtime_ns=0)
    data = (root / "one.md").read_bytes()
    keys = mapping.Mapping("hugo", {}, "https://f.example")
    fast = flatten_files("r", extract_all([(f, data)], fast=True, split_related=True), keys)
    slow = flatten_files("r", extract_all([(f, data)], fast=False, split_related=True), keys)
    assert fast["stg_files"].column("parser").to_pylist() == ["fast"]
    assert slow["stg_files"].column("parser").to_pylist() == ["pyyaml"]
    for name in fast:
        a, b = fast[name], slow[name]
        if name == "stg_files":
            a, b = a.drop(["parser"]), b.drop(["parser"])
        assert a.equals(b), name
    row = fast["stg_articles"].to_pylist()[0]
    assert row["url"] == "https://f.example/fast/one/" and row["topics"] == ["a", "b", "news", "town"]
    assert row["is_published"] is True and row["excerpt"] == "Hi there"



@pytest.mark.parametrize("permalink", ["/news/{{ page.fileSlug }}/", "/{% if x %}a{% endif %}/"])
def test_a_templated_permalink_is_not_a_url(permalink):
    """Eleventy and Liquid permalinks hold templates the generator renders: the URL is built from
    the file's path instead, and the template stays in extra."""
    out, _, _ = mapping.apply({"date": "2024-03-11", "permalink": permalink}, mapping.Mapping("eleventy"),
                              "posts/food-bank-record.md")
    assert out["webUrl"] == "/posts/food-bank-record/" and out["permalink"] == permalink
