"""The fast parser changes nothing: tables built with it equal tables built
with PyYAML alone, on every real record and on generated corpora."""

from __future__ import annotations

import pytest

import newsetl
from newsetl import demo, pipeline

from .helpers.tables import assert_same_tables


def _build_both(inputs, tmp_path):
    fast = pipeline.run(inputs, tmp_path / "fast", workers=1)
    ref = pipeline.run(inputs, tmp_path / "ref", workers=1, parser="pyyaml")
    return fast, ref


@pytest.mark.slow
def test_real_corpus_tables_are_identical(corpus, tmp_path):
    inputs = [corpus / "seed", corpus / "azure-2021-01", corpus / "powerapps" / "latest"]
    fast, ref = _build_both(inputs, tmp_path)
    assert ref.run["fast_parsed"] == 0
    assert fast.run["fast_parsed"] == fast.run["files_parsed"]  # every real record took the fast path
    assert_same_tables(tmp_path / "fast", tmp_path / "ref")


@pytest.mark.slow
@pytest.mark.parametrize("profile, seed", [("demo", 3), ("bench", 4)])
def test_generated_corpus_tables_are_identical(profile, seed, tmp_path):
    site = tmp_path / "site"
    demo.generate(site, records=300, seed=seed, profile=profile)  # with malformed files
    fast, ref = _build_both([site], tmp_path)
    assert fast.run["fast_parsed"] > 0.9 * fast.run["files_parsed"]
    assert_same_tables(tmp_path / "fast", tmp_path / "ref")


def test_records_the_fast_path_refuses_fall_back_with_the_same_result(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    # YAML 1.1 booleans, an anchor and alias, a flow list, a quoted date: all PyYAML's job
    (site / "a.md").write_text('---\ntitle: "A"\nwebUrl: "https://x.example/a"\npublished: yes\n'
                               'base: &p {name: P, domain: p.example}\nprovider: *p\ntopics: [AI, Cloud]\n'
                               'publishedDateTime: "2021-03-01T10:00:00Z"\n---\n')
    (site / "b.md").write_text('---\ntitle: "B"\nwebUrl: "https://x.example/b"\npublished: true\n'
                               'publishedDateTime: 2021-03-01T10:00:00Z\n---\n')
    fast, ref = _build_both([site], tmp_path)
    assert fast.run["fast_parsed"] == 1  # b.md only
    assert_same_tables(tmp_path / "fast", tmp_path / "ref")
    con = newsetl.connect(tmp_path / "fast")
    assert con.sql("SELECT title, is_published, provider_domain, topics FROM articles ORDER BY title").fetchall() == [
        ("A", True, "p.example", ["AI", "Cloud"]), ("B", True, None, [])]
