"""Authors as a dimension beside providers: article_authors, authors and the top_authors report.

Records name their authors under `author` or `authors` (a name, a list, mappings with `name`);
the expected rows are computed here from the records' YAML (yaml.safe_load) by the documented
rule: white space collapsed and trimmed, one author per lower-cased name.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter, defaultdict
from pathlib import Path

import yaml

import newsetl
from newsetl import pipeline, reports
from newsetl.checks.config import parse_config

from .helpers.tables import assert_same_as_rebuild

UTC = dt.timezone.utc

RECORDS = {
    "a.md": "title: A\ndate: 2024-01-01\nauthor: Dana  Reyes\n",
    "b.md": "title: B\ndate: 2024-02-01\nauthors: [dana reyes, {name: Sam Ortiz, email: s@example.com}, 3]\n",
    "c.md": "title: C\ndate: 2024-03-01\nauthor: {name: Sam Ortiz}\n",
    "d.md": "title: D\ndate: 2024-04-01\n",
    "e.md": "title: E\ndate: 2024-05-01\nauthors: [Lee Wu, Lee Wu]\n",
}


def _write(root: Path, records: dict) -> Path:
    (root / "content").mkdir(parents=True, exist_ok=True)
    (root / "hugo.toml").write_text("", encoding="utf-8")
    for name, body in records.items():
        (root / "content" / name).write_text(f"---\n{body}---\ntext\n", encoding="utf-8")
    return root


def _expected(records: dict) -> tuple[list, dict]:
    links, spellings = [], defaultdict(Counter)
    for name, body in sorted(records.items()):
        rec = yaml.safe_load(body)
        raw = rec.get("authors", rec.get("author"))
        if raw is None:
            continue
        for pos, item in enumerate(raw if isinstance(raw, list) else [raw]):
            n = item if isinstance(item, str) else item.get("name") if isinstance(item, dict) else None
            if not isinstance(n, str) or not " ".join(n.split()):
                continue
            n = " ".join(n.split())
            links.append((f"site/content/{name}", pos, n))
    per = defaultdict(set)
    for sp, _pos, n in links:
        per[n.lower()].add(sp)
        spellings[n.lower()][n] += 1
    return links, {k: (sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[0][0], len(per[k]))
                   for k, c in spellings.items()}


def _rows(wh, sql):
    con = newsetl.connect(wh)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def test_authors_and_article_authors(tmp_path):
    root = _write(tmp_path / "site", RECORDS)
    pipeline.run([root], tmp_path / "wh", workers=1, config=parse_config({}))
    links, authors = _expected(RECORDS)
    got = _rows(tmp_path / "wh", "SELECT a.source_path, l.position, l.author_name FROM article_authors l "
                                 "JOIN articles a USING (article_id) ORDER BY 1, 2")
    assert got == sorted(links)
    got = _rows(tmp_path / "wh", "SELECT author_key, author_name, articles FROM authors")
    assert {k: (n, c) for k, n, c in got} == authors
    report = reports.run(tmp_path / "wh", "top_authors").to_pylist()
    assert [(r["author_name"], r["articles"]) for r in report] == [("Dana Reyes", 2), ("Sam Ortiz", 2),
                                                                    ("Lee Wu", 1)]
    assert report[0]["first_published_at"] == dt.datetime(2024, 1, 1, tzinfo=UTC)
    scoped = reports.run(tmp_path / "wh", "top_authors", since="2024-02-15").to_pylist()
    assert [(r["author_name"], r["articles"]) for r in scoped] == [("Lee Wu", 1), ("Sam Ortiz", 1)]
    assert [r["author_name"] for r in reports.run(tmp_path / "wh", "top_authors", min_articles=2).to_pylist()] == \
        ["Dana Reyes", "Sam Ortiz"]


def test_authors_follow_incremental_runs_as_a_rebuild(tmp_path):
    root = _write(tmp_path / "site", RECORDS)
    wh = tmp_path / "wh"
    pipeline.run([root], wh, workers=1, config=parse_config({}))
    edited = dict(RECORDS, **{"a.md": "title: A\ndate: 2024-01-01\nauthor: Kim Park\n"})
    del edited["e.md"]
    (root / "content" / "e.md").unlink()
    _write(root, edited)
    pipeline.run([root], wh, workers=1, config=parse_config({}))
    (tmp_path / "rebuilds").mkdir()
    assert_same_as_rebuild([root], wh, tmp_path / "rebuilds")  # tables, and the author views (DIMENSION_VIEWS)
    got = {k: (n, c) for k, n, c in _rows(wh, "SELECT author_key, author_name, articles FROM authors")}
    assert got == _expected(edited)[1]


def test_report_is_listed_with_its_filters():
    r = reports.get("top_authors")
    assert set(r.parameters) == {"since", "until", "provider", "topic", "min_articles", "limit"}
    assert re.search(r"author", r.description)
