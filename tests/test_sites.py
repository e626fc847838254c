"""The hand-written sites of tests/fixtures/sites (Hugo with TOML, YAML and JSON front matter,
Jekyll, Eleventy, Astro), loaded with no configuration, as a user of each generator would:
every file lands with its publish time, topics, URL, images and draft flag, each expected value
worked out here from the file itself (tomllib, json, PyYAML, pandas' date parser) by the rules
of the data dictionary's key mapping, not by newsetl's code."""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from pathlib import Path

import pandas as pd
import pytest
import yaml

import newsetl
from newsetl import pipeline

from .helpers.tables import assert_same_as_rebuild

SITES = Path(__file__).parent / "fixtures" / "sites"
BASES = {"hugo": "https://harbourtimes.example", "jekyll": "https://valleycourier.example/news",
         "eleventy": None, "astro": "https://northshore-dispatch.example"}


def front(path: Path) -> dict:
    text = path.read_text("utf-8-sig").replace("\r\n", "\n")
    if text.startswith("+++\n"):
        return tomllib.loads(text[4:text.index("\n+++", 3)])
    if text.lstrip().startswith("{"):
        return json.JSONDecoder().raw_decode(text.lstrip())[0]
    assert text.startswith("---\n"), path
    return yaml.safe_load(text[4:text.index("\n---", 3)]) or {}


def expected_published(path: Path, fm: dict):
    for key in ("date", "pubDate", "publishDate", "published"):
        v = fm.get(key)
        if v is None or isinstance(v, bool):
            continue
        try:
            ts = pd.Timestamp(v)
        except (ValueError, TypeError):
            return None  # not a date (Eleventy's `Last Modified`): NULL, and a data issue
        return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if path.parent.name == "_posts":  # Jekyll: the file name's date
        return pd.Timestamp(path.name[:10], tz="UTC")
    return None


def expected_topics(fm: dict) -> list[str]:
    out: list[str] = []
    for key, sep in (("tags", None), ("categories", None), ("keywords", ",")):
        v = fm.get(key)
        items = v if isinstance(v, list) else ([] if v is None else str(v).split(sep))
        for t in (str(i).strip() for i in items):
            if t and t not in out:
                out.append(t)
    return out


def expected_images(fm: dict) -> int:
    for key in ("images", "image", "cover", "heroImage", "featured_image"):
        v = fm.get(key)
        if v:
            return len(v) if isinstance(v, list) else 1
    return 0


def expected_url_tail(fm: dict) -> str | None:
    for key in ("canonical", "url", "permalink"):
        v = fm.get(key)
        if isinstance(v, str) and v.strip() and "{{" not in v and "{%" not in v:
            return v.strip()
    return None


@pytest.fixture(scope="module")
def loaded(tmp_path_factory) -> dict[str, Path]:
    out = {}
    for site in BASES:
        wh = tmp_path_factory.mktemp(f"wh-{site}")
        pipeline.run([SITES / site], wh, workers=1)
        out[site] = wh
    return out


def site_files(site: str) -> list[Path]:
    return sorted(p for p in (SITES / site).rglob("*.md"))


@pytest.mark.parametrize("site", list(BASES))
def test_every_file_lands_with_its_date_topics_url_images_and_draft_flag(loaded, site):
    con = newsetl.connect(loaded[site])
    rows = {r[0]: r[1:] for r in con.execute(
        "SELECT a.source_path, a.published_at, a.topics, a.web_url, a.is_published, "
        "(SELECT count(*) FROM images i WHERE i.article_id = a.article_id) "
        "FROM articles a").fetchall()}
    rejected = con.execute("SELECT count(*) FROM source_files WHERE status = 'rejected'").fetchall()[0][0]
    con.close()
    files = site_files(site)
    assert rejected == 0 and len(rows) == len(files)
    base = BASES[site]
    for path in files:
        fm = front(path)
        rel = f"{site}/{path.relative_to(SITES / site).as_posix()}"
        published, topics, url, is_published, images = rows[rel]
        want = expected_published(path, fm)
        assert (published is None) if want is None else pd.Timestamp(published) == want, rel
        assert list(topics or []) == expected_topics(fm), rel
        assert images == expected_images(fm), rel
        assert url, rel
        if base:
            assert url.startswith(base + "/"), (rel, url)
        tail = expected_url_tail(fm)
        if tail and "://" not in tail:
            assert url.endswith(tail), (rel, url)
        elif tail:
            assert url == tail, rel
        else:  # built from the file: its slug, else its name (less a Jekyll date)
            assert (fm.get("slug") or re.sub(r"^\d{4}-\d{2}-\d{2}-", "", path.stem)) in url, (rel, url)
        if isinstance(fm.get("published"), bool):
            assert is_published is fm["published"], rel
        elif "draft" in fm:
            assert is_published is (not fm["draft"]), rel


@pytest.mark.parametrize("site", list(BASES))
def test_a_record_without_a_date_is_a_data_issue(loaded, site):
    undated = sorted(f"{site}/{p.relative_to(SITES / site).as_posix()}" for p in site_files(site)
                     if expected_published(p, front(p)) is None)
    con = newsetl.connect(loaded[site])
    flagged = con.execute("SELECT source_path, field, raw_value FROM data_issues ORDER BY ALL").fetchall()
    con.close()
    assert sorted({s for s, _, _ in flagged}) == undated
    for path, field, raw in flagged:  # the field: the record's own date key with its value, or none at all
        fm = front(SITES / path)
        assert (field, raw) == ("published_at", "") or (field in fm and raw == str(fm[field])), (path, field)


@pytest.mark.parametrize("site", ["hugo", "jekyll"])
def test_incremental_runs_history_and_reports_work_unchanged(site, tmp_path):
    root = tmp_path / site
    shutil.copytree(SITES / site, root)
    wh = tmp_path / "wh"
    pipeline.run([root], wh, workers=1)
    edited = site_files(site)[1]
    target = root / edited.relative_to(SITES / site)
    target.write_text(target.read_text("utf-8").replace("title", "title", 1) + "\nOne more line.\n", "utf-8")
    text = target.read_text("utf-8")
    # a changed field, in the file's own syntax
    target.write_text(text.replace('title = "', 'title = "Updated: ', 1).replace("title: ", "title: Updated ", 1),
                      "utf-8")
    (root / next(iter(site_files(site))).relative_to(SITES / site)).unlink()
    pipeline.run([root], wh, workers=1)
    assert_same_as_rebuild([root], wh, tmp_path)
    con = newsetl.connect(wh)
    rel = f"{site}/{edited.relative_to(SITES / site).as_posix()}"
    versions = con.execute("SELECT count(*) FROM article_versions v JOIN articles a USING (article_id) "
                           "WHERE a.source_path = $p", {"p": rel}).fetchall()[0][0]
    con.close()
    assert versions == 2
    for name in ("top_articles", "data_quality", "topic_stats", "top_authors"):
        newsetl.report(name, warehouse=wh)  # every report runs on a generator's site
