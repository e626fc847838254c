"""Related lists flattened from JSON by Arrow (flatten._related_from_json) give the
rows the Python path gives, and every list it cannot vouch for goes the Python way."""

from __future__ import annotations

import datetime as dt

import newsetl
from newsetl import flatten, pipeline, related_json
from newsetl.frontmatter import extract
from newsetl.sources import SourceFile

from .helpers.tables import assert_same_tables

HEAD = '---\ntitle: "{name}"\nwebUrl: "https://site.example/{name}"\npublishedDateTime: 2021-03-01T10:00:00Z\n'
LINK = ('  - title: "Link {i}"\n    webUrl: "https://other.example/{i}"\n    publishedDateTime: 2021-02-0{i}T08:30:00Z\n'
        '    provider:\n      name: Other\n      domain: other.example\n    quality: {i}\n')
IMAGES = '    images:\n      - url: "https://img.example/{i}.jpg"\n        width: 640\n        height: 480\n        isCached: true\n'


def _record(name: str, related: str) -> str:
    return HEAD.format(name=name) + related + "---\nbody\n"


def _links(n: int = 2, extra: str = "") -> str:
    return "related:\n" + "".join(LINK.format(i=i) + IMAGES.format(i=i) for i in range(1, n + 1)) + extra


# one file per case; the JSON path must take the first group and refuse the second
TAKEN = {
    "clean": _links(),
    "no-web-url": "related:\n  - title: \"No URL\"\n    quality: 3\n  - title: \"Blank\"\n    webUrl: \"  \"\n"
                  "  - title: \"Wide space\"\n    webUrl: \"\u3000\"\n",
    "null-items": "related:\n  - null\n" + LINK.format(i=2) + "    images:\n      - null\n" + IMAGES.format(i=3)[12:],
    "entities": "related:\n  - title: \"Tom &amp; Jerry\"\n    excerpt: \"city\u00e2\u20ac\u2122s news\"\n"
                "    webUrl: \"https://e.example/x\"\n    provider:\n      name: \"Morningstar%2c Inc.\"\n"
                "      domain: \" E.Example \"\n",
    "null-related": "related:\n",
    "no-related": "",
    "digit-led": "related:\n  - title: \"2021 in review\"\n    webUrl: \"https://9to5mac.example/x\"\n"
                 "    provider:\n      name: 9to5Mac\n      domain: 13newsnow.com\n",
}
REFUSED = {
    "unknown-key": _links(extra="    mood: happy\n"),
    "quality-text": "related:\n  - title: \"Q\"\n    webUrl: \"https://q.example/\"\n    quality: \"high\"\n",
    "quality-big": "related:\n  - title: \"Q\"\n    webUrl: \"https://q.example/\"\n    quality: 3000000000\n",
    "offset-time": "related:\n  - webUrl: \"https://t.example/\"\n    publishedDateTime: 2021-02-12T20:25:00+01:00\n",
    "date-only": "related:\n  - webUrl: \"https://t.example/\"\n    publishedDateTime: 2021-02-12\n",
    "title-date": "related:\n  - webUrl: \"https://t.example/\"\n    title: 2021-02-12T20:25:00Z\n",
    "name-octal": "related:\n  - webUrl: \"https://o.example/\"\n    provider:\n      name: 0123\n",
    "title-sexagesimal": "related:\n  - webUrl: \"https://s.example/\"\n    title: 1:30\n",
    "not-a-list": "related: soon\n",
    "images-text": "related:\n  - webUrl: \"https://i.example/\"\n    images: none yet\n",
    "provider-text": "related:\n  - webUrl: \"https://p.example/\"\n    provider: Reuters\n",
    "cached-text": "related:\n  - webUrl: \"https://c.example/\"\n    images:\n      - url: \"https://c.example/1.jpg\"\n"
                   "        isCached: \"yes\"\n",
    "excerpt-number": "related:\n  - webUrl: \"https://n.example/\"\n    excerpt: 42\n",
    "twice": "related:\n  - webUrl: \"https://d.example/\"\n    title: \"first\"\n    title: \"second\"\n",
}


def _site(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    for name, related in {**TAKEN, **REFUSED}.items():
        (site / f"{name}.md").write_text(_record(name, related), encoding="utf-8")
    return site


def _extracted(site, names):
    return [extract(SourceFile(f"site/{n}.md", str(site / f"{n}.md"), f"{n}.md", 0, 0), split_related=True)
            for n in names]


def test_fast_parsed_related_lists_stay_json(tmp_path):
    site = _site(tmp_path)
    for ex in _extracted(site, [*TAKEN, *REFUSED]):
        name = ex.file.rel_path[:-3]
        assert ex.fast and "related" not in ex.record, name
        assert (ex.related_json is None) == (name == "no-related"), name


def test_the_reader_refuses_what_its_schema_does_not_hold(tmp_path):
    site = _site(tmp_path)
    names = ["clean", "unknown-key", "quality-text", "not-a-list", "images-text", "provider-text",
             "cached-text", "excerpt-number", "twice", "null-items"]
    lists, refused = related_json._read_json_lists([ex.related_json for ex in _extracted(site, names)])
    assert [names[i] for i in refused] == ["unknown-key", "quality-text", "not-a-list", "images-text",
                                           "provider-text", "cached-text", "excerpt-number", "twice"]
    assert [len(v) for v in lists.to_pylist()] == [2, 2]  # clean, null-items (with its null link)


def test_values_it_cannot_vouch_for_are_suspect(tmp_path):
    site = _site(tmp_path)
    names = ["clean", "quality-big", "offset-time", "date-only", "title-date", "entities", "digit-led",
             "name-octal", "title-sexagesimal"]
    lists, refused = related_json._read_json_lists([ex.related_json for ex in _extracted(site, names)])
    assert refused == []
    links, rec, _pos, _ok = related_json._children(lists)
    bad = (related_json._suspect(links, related_json._LINK_KINDS)
           | related_json._suspect(links.field("provider"), related_json._LINK_PROVIDER_KINDS))
    # 0123 and 1:30 are the ints 83 and 90 for PyYAML: rapidyaml's JSON has them as strings
    assert sorted({names[r] for r in rec[bad]}) == ["date-only", "name-octal", "offset-time", "quality-big",
                                                    "title-date", "title-sexagesimal"]


def test_tables_are_the_python_paths(tmp_path):
    site = _site(tmp_path)
    fast = pipeline.run([site], tmp_path / "fast", workers=1)
    pipeline.run([site], tmp_path / "ref", workers=1, parser="pyyaml")
    # every file but "twice": a key given twice goes PyYAML's way, which records the dropped value
    assert fast.run["files_parsed"] == len(TAKEN) + len(REFUSED)
    assert fast.run["fast_parsed"] == fast.run["files_parsed"] - 1
    assert_same_tables(tmp_path / "fast", tmp_path / "ref")


def test_rows_by_hand(tmp_path):
    site = _site(tmp_path)
    pipeline.run([site], tmp_path / "wh", workers=1)
    con = newsetl.connect(tmp_path / "wh")
    q = ("SELECT l.position, l.url, l.title, l.published_at, l.provider_name, l.quality, l.image_count "
         "FROM related_links l JOIN articles a USING (article_id) WHERE a.title = ? ORDER BY l.position")
    utc = dt.timezone.utc
    assert con.execute(q, ["clean"]).fetchall() == [
        (0, "https://other.example/1", "Link 1", dt.datetime(2021, 2, 1, 8, 30, tzinfo=utc), "Other", 1, 1),
        (1, "https://other.example/2", "Link 2", dt.datetime(2021, 2, 2, 8, 30, tzinfo=utc), "Other", 2, 1)]
    # the null link is skipped but keeps its place; so is the null image
    assert [r[0] for r in con.execute(q, ["null-items"]).fetchall()] == [1]
    assert con.execute("SELECT i.related_position, i.position, i.url FROM related_images i JOIN articles a "
                       "USING (article_id) WHERE a.title = 'null-items'").fetchall() == [(1, 1, "https://img.example/3.jpg")]
    assert con.execute("SELECT l.title, l.excerpt, l.provider_name, l.provider_domain FROM related_links l "
                       "JOIN articles a USING (article_id) WHERE a.title = 'entities'").fetchall() == [
        ("Tom & Jerry", "city\u2019s news", "Morningstar, Inc.", "e.example")]
    issues = con.execute("SELECT d.field, d.raw_value, d.problem FROM data_issues d JOIN articles a "
                         "USING (article_id) WHERE a.title IN ('no-web-url', 'quality-big', 'not-a-list') "
                         "ORDER BY a.title, d.field").fetchall()
    missing = "missing: the related link has no webUrl"
    assert issues == [("related[0].webUrl", "", missing), ("related[1].webUrl", "  ", missing),
                      ("related[2].webUrl", "\u3000", missing),
                      ("related", "soon", "expected a list, got text"),
                      ("related[0].quality", "3000000000", "integer out of range")]
    assert con.execute("SELECT related_count FROM articles WHERE title = 'null-items'").fetchall() == [(1,)]
    # skipped, but never silently: the null items and the dropped duplicate are issues
    issues = con.execute("SELECT a.title, d.field, d.raw_value, d.problem FROM data_issues d JOIN articles a "
                         "USING (article_id) WHERE a.title IN ('null-items', 'twice') ORDER BY a.title, d.field").fetchall()
    null = "empty list item (null): skipped"
    assert issues == [("null-items", "related[0]", "null", null), ("null-items", "related[1].images[0]", "null", null),
                      ("twice", "related[0].title", "first", "duplicate key: this value is dropped, a later one is kept")]


def test_a_list_that_cannot_be_read_again_is_an_issue_not_a_crash(tmp_path, monkeypatch):
    # fault injection: PyYAML has accepted every text the fast path did (test_fastyaml's fuzz);
    # should a re-read ever fail, the batch goes on and the file says why
    site = _site(tmp_path)
    exs = _extracted(site, ["clean", "unknown-key"])

    def broken(text, utf8=None):
        raise ValueError("simulated")

    monkeypatch.setattr(flatten.fastyaml, "load", broken)
    b = flatten.BatchBuilder("r")
    for ex in exs:
        b.add(ex)
    t = b.tables()
    assert t["stg_articles"].column("related_count").to_pylist() == [2, 0]
    assert t["stg_related_links"].num_rows == 2
    assert t["stg_data_issues"].select(["source_path", "field", "problem"]).to_pylist() == [
        {"source_path": "site/unknown-key.md", "field": "related",
         "problem": "could not read again the related list of this file: ValueError: simulated"}]
