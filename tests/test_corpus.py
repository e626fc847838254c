"""The warehouse built from the real corpus (../shared/corpus), checked against
figures this test computes itself from the files with PyYAML."""

from __future__ import annotations

import collections
import hashlib
import html
from pathlib import Path

import pytest
import yaml

import newsetl
from newsetl import pipeline

FOLDERS = ("seed", "azure-2021-01", "powerapps/latest")


def _records(folder: Path):
    for path in sorted(folder.rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        head, fm, _body = text.split("---\n", 2)
        assert head == ""
        yield path, yaml.load(fm, Loader=yaml.CSafeLoader)


@pytest.fixture(scope="module")
def expected(corpus):
    """Winners per URL and the figures derived from them, computed from the files."""
    by_url = {}
    n_files = 0
    for folder in FOLDERS:
        root = corpus / folder
        for path, rec in _records(root):
            n_files += 1
            url = (rec.get("webUrl") or rec.get("originalUrl")).strip()
            key = (rec["publishedDateTime"], f"{root.name}/{path.relative_to(root).as_posix()}")
            if url not in by_url or key > by_url[url][0]:
                by_url[url] = (key, rec)
    winners = {u: r for u, (_k, r) in by_url.items()}
    related = [link for r in winners.values() for link in r.get("related") or []]
    domains = {r["provider"]["domain"].lower() for r in winners.values()} | {
        link["provider"]["domain"].lower() for link in related}
    per_provider = collections.defaultdict(list)
    for r in winners.values():
        per_provider[r["provider"]["domain"].lower()].append(r["quality"])
    return {
        "files": n_files,
        "articles": len(winners),
        "images": sum(len(r.get("images") or []) for r in winners.values()),
        "related": len(related),
        "related_images": sum(len(link.get("images") or []) for link in related),
        "related_to_articles": sum(1 for link in related if link["webUrl"].strip() in winners),
        "providers": len(domains),
        "heat_unrated": sum(1 for r in winners.values() if r["heat"] == -1),
        "published": sum(1 for r in winners.values() if r["published"]),
        "per_provider": per_provider,
        "winners": winners,
    }


@pytest.fixture(scope="module")
def con(corpus, tmp_path_factory):
    wh = tmp_path_factory.mktemp("corpus-wh")
    pipeline.run([corpus / f for f in FOLDERS], wh)
    return newsetl.connect(wh)


def one(con, sql):
    return con.execute(sql).fetchall()[0][0]


def test_every_file_is_loaded_or_duplicate(con, expected):
    assert one(con, "SELECT count(*) FROM source_files") == expected["files"]
    assert one(con, "SELECT count(*) FROM source_files WHERE status = 'rejected'") == 0
    assert one(con, "SELECT count(*) FROM source_files WHERE status = 'duplicate'") == expected["files"] - expected["articles"]


def test_row_counts(con, expected):
    assert one(con, "SELECT count(*) FROM articles") == expected["articles"]
    assert one(con, "SELECT count(*) FROM images") == expected["images"]
    assert one(con, "SELECT count(*) FROM related_links") == expected["related"]
    assert one(con, "SELECT count(*) FROM related_images") == expected["related_images"]
    assert one(con, "SELECT count(*) FROM providers") == expected["providers"]


def test_related_links_resolve_to_articles(con, expected):
    assert one(con, "SELECT count(related_article_id) FROM related_links") == expected["related_to_articles"]


def test_heat_and_published(con, expected):
    assert one(con, "SELECT count(*) FROM articles WHERE heat = -1") == expected["heat_unrated"]
    assert one(con, "SELECT count(*) FROM articles WHERE is_published") == expected["published"]


def test_quality_per_provider(con, expected):
    got = dict(con.sql("SELECT provider_domain, avg(quality) FROM articles GROUP BY 1").fetchall())
    want = {d: sum(q) / len(q) for d, q in expected["per_provider"].items()}
    assert got.keys() == want.keys()
    for d in want:
        assert got[d] == pytest.approx(want[d]), d


def test_titles_are_unescaped(con, expected):
    want = {hashlib.sha256(u.encode()).hexdigest()[:16]: html.unescape(r["title"]).strip()
            for u, r in expected["winners"].items() if "&" in r["title"]}
    assert want, "the corpus has titles with HTML entities"
    got = dict(con.sql("SELECT article_id, title FROM articles").fetchall())
    for aid, title in want.items():
        assert got[aid] == title


def test_no_data_issues_on_clean_records(con):
    assert one(con, "SELECT count(*) FROM data_issues") == 0


def test_seed_record(con, corpus):
    path, rec = next(_records(corpus / "seed"))
    aid = hashlib.sha256(rec["webUrl"].encode()).hexdigest()[:16]
    row = con.execute(f"SELECT image_count, related_count, heat, quality, is_published FROM articles WHERE article_id = '{aid}'").fetchall()[0]
    assert row == (1, 3, -1, 39, False)
    assert one(con, f"SELECT count(*) FROM images WHERE article_id = '{aid}'") == 1
    assert one(con, f"SELECT count(*) FROM related_links WHERE article_id = '{aid}'") == 3
    assert one(con, f"SELECT count(*) FROM related_images WHERE article_id = '{aid}'") == 3
    # mojibake in the first link's excerpt (cityâ€™s) is repaired
    excerpt = one(con, f"SELECT excerpt FROM related_links WHERE article_id = '{aid}' AND position = 0")
    assert "city\u2019s" in excerpt and "â€" not in excerpt
