"""Tests for the demo/benchmark corpus generator (newsetl.demo).

Every value is checked by reading the written files back with PyYAML's
CSafeLoader, never by trusting the generator's own bookkeeping.
"""

from __future__ import annotations

import collections
import datetime as dt
import os
import re
import shutil
import statistics
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from newsetl import demo
from newsetl.demo import DemoSummary, edit, generate

CORPUS = Path(os.environ.get("NEWSETL_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "corpus"))
AZURE = CORPUS / "azure-2021-01"

KNOWN = {
    "category", "title", "excerpt", "publishedDateTime", "originalUrl", "webUrl", "ampWebUrl",
    "cdnAmpWebUrl", "type", "quality", "heat", "published", "featuredContent", "secured",
    "provider", "topics", "images", "related",
}
REQUIRED = {"category", "title", "excerpt", "publishedDateTime", "originalUrl", "type",
            "quality", "heat", "published", "provider", "topics", "secured"}
RELATED_KEYS = {"title", "excerpt", "publishedDateTime", "webUrl", "ampWebUrl", "cdnAmpWebUrl",
                "type", "provider", "quality", "images"}
IMAGE_KEYS = {"url", "width", "height", "isCached", "title"}


# ---------------------------------------------------------------- helpers


def front_matter(text: str) -> str:
    """The YAML between the opening '---' line and the closing one."""
    if not text.startswith("---\n"):
        raise ValueError("no front matter")
    end = text.index("\n---\n")
    return text[4:end + 1]


def without_related(fm: str) -> str:
    """Drop the top-level `related:` block (most of the bytes) for fast partial parses."""
    return re.sub(r"(?ms)^related:\n.*?(?=^\S)", "", fm)


def parse(path: Path, related: bool = True):
    fm = front_matter(path.read_text(encoding="utf-8"))
    return yaml.load(fm if related else without_related(fm), Loader=yaml.CSafeLoader)


def image_problem(img) -> str | None:
    if not isinstance(img, dict) or not set(img) <= IMAGE_KEYS:
        return "image not a mapping of known keys"
    if not isinstance(img.get("url"), str):
        return "image url"
    if type(img.get("width")) is not int or type(img.get("height")) is not int:
        return "image size"
    if not isinstance(img.get("isCached"), bool):
        return "image isCached"
    return None


def problem(doc) -> str | None:
    """None when the record is what the warehouse contract calls well-formed."""
    if not isinstance(doc, dict):
        return "not a mapping"
    if not REQUIRED <= set(doc) or not set(doc) <= KNOWN:
        return f"keys {sorted(set(doc) ^ REQUIRED)}"
    if type(doc["quality"]) is not int or not 0 <= doc["quality"] <= 190:
        return "quality"
    if type(doc["heat"]) is not int or not isinstance(doc["published"], bool):
        return "heat/published"
    if not isinstance(doc["publishedDateTime"], dt.datetime):
        return "publishedDateTime"
    for key in ("title", "excerpt", "originalUrl", "secured", "category", "type"):
        if not isinstance(doc[key], str):
            return key
    prov = doc["provider"]
    if not isinstance(prov, dict) or not isinstance(prov.get("domain"), str) or not isinstance(prov.get("name"), str):
        return "provider"
    if not isinstance(doc["topics"], list) or not all(isinstance(t, str) for t in doc["topics"]):
        return "topics"
    images = doc.get("images", [])
    if not isinstance(images, list):
        return "images not a list"
    for img in images:
        if p := image_problem(img):
            return p
    related = doc.get("related", [])
    if not isinstance(related, list):
        return "related not a list"
    for r in related:
        if not isinstance(r, dict) or not set(r) <= RELATED_KEYS:
            return "related keys"
        if not isinstance(r.get("webUrl"), str):
            return "related without webUrl"
        if not isinstance(r.get("publishedDateTime"), dt.datetime) or type(r.get("quality")) is not int:
            return "related types"
        if not isinstance(r.get("provider"), dict) or set(r["provider"]) != {"name", "domain"}:
            return "related provider"
        for img in r.get("images", []):
            if p := image_problem(img):
                return "related " + p
    return None


def classify(path: Path) -> tuple[dict | None, str | None]:
    """(doc, None) for a well-formed record, (doc or None, reason) otherwise."""
    try:
        doc = parse(path)
    except ValueError:
        return None, "no front matter"
    except yaml.YAMLError:
        return None, "invalid YAML"
    return doc, problem(doc)


def md_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.md"))


def snapshot(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def identity_url(doc: dict) -> str:
    return (doc.get("webUrl") or doc["originalUrl"]).strip()


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def demo2000(tmp_path_factory):
    directory = tmp_path_factory.mktemp("demo2000")
    summary = generate(directory, records=2000, seed=42)
    good, bad = {}, {}
    for path in md_files(directory):
        doc, why = classify(path)
        if why is None:
            good[path] = doc
        else:
            bad[path] = why
    return summary, good, bad


# ---------------------------------------------------------------- determinism


def test_same_seed_gives_identical_bytes_and_other_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, records=300, seed=7)
    generate(b, records=300, seed=7)
    generate(c, records=300, seed=8)
    assert snapshot(a) == snapshot(b)
    assert snapshot(a) != snapshot(c)
    assert set(snapshot(a)) != set(snapshot(c))  # different stories, different names


def test_malformed_flag_does_not_change_the_good_files(tmp_path):
    generate(tmp_path / "with", records=200, seed=3)
    generate(tmp_path / "without", records=200, seed=3, malformed=False)
    with_bad, without = snapshot(tmp_path / "with"), snapshot(tmp_path / "without")
    assert len(without) == 200
    assert all(with_bad[name] == data for name, data in without.items())
    assert len(with_bad) - len(without) == 5


# ---------------------------------------------------------------- counts and shape


def test_counts_match_the_summary(demo2000):
    summary, good, bad = demo2000
    directory = summary.directory
    files = md_files(directory)
    assert isinstance(summary, DemoSummary)
    assert len(files) == summary.files == summary.records + summary.malformed
    assert summary.records == 2000 == len(good)
    assert summary.malformed == len(bad)
    assert 5 <= summary.malformed <= 20  # about 0.5 %
    assert summary.bytes == sum(p.stat().st_size for p in files)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d-[a-z0-9]+(-[a-z0-9]+)*\.md", p.name) for p in files)


def test_small_corpus_has_at_least_one_broken_file(tmp_path):
    summary = generate(tmp_path, records=20, seed=1)
    assert summary.records == 20 and summary.malformed >= 1
    assert len(md_files(tmp_path)) == summary.files


def test_every_kind_of_broken_file_is_present(demo2000):
    _, _, bad = demo2000
    reasons = collections.Counter(bad.values())
    # rejected by the ETL ...
    assert reasons["no front matter"] >= 1
    assert reasons["invalid YAML"] >= 2  # bad indentation and an unclosed quote
    # ... and loaded with NULLs
    for why in ("quality", "publishedDateTime", "image size", "images not a list", "related without webUrl"):
        assert reasons[why] >= 1, (why, reasons)


def test_well_formed_records_look_like_the_real_ones(demo2000):
    summary, good, _ = demo2000
    docs = list(good.values())
    assert all(d["category"] == "news" for d in docs)
    assert all(d["publishedDateTime"].tzinfo is not None for d in docs)
    years = {d["publishedDateTime"].year for d in docs}
    assert len(years) >= 3  # spread over about three years
    assert all(1 <= len(d["topics"]) <= 3 for d in docs)
    assert 20 <= len({t for d in docs for t in d["topics"]}) <= 45
    assert all(0 <= len(d.get("images", [])) <= 3 for d in docs)
    assert all(0 <= len(d.get("related", [])) <= 60 for d in docs)
    videos = [d for d in docs if d["type"] == "video"]
    assert videos and all("<iframe" in d["featuredContent"] and "webUrl" not in d for d in videos)
    only_original = [d for d in docs if "webUrl" not in d]
    assert len(only_original) / len(docs) < 0.2  # most records have a webUrl
    assert any(d["type"] == "article" for d in only_original)
    assert sum("ampWebUrl" in d for d in docs) > 100
    assert sum("images" in d["provider"] for d in docs) / len(docs) > 0.5  # logos for most
    titles = " ".join(d["title"] + d["excerpt"] for d in docs)
    for entity in ("&amp;", "&nbsp;", "&#39;", "&quot;"):
        assert entity in titles
    assert '"' in titles and "\\" in titles  # escaping round-trips
    # style of the real files: double-quoted strings, plain timestamp, blank-line groups
    text = next(iter(good)).read_text(encoding="utf-8")
    assert re.search(r'(?m)^title: ".*"$', text)
    assert re.search(r"(?m)^publishedDateTime: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", text)
    assert re.search(r'(?m)^secured: "[A-Za-z0-9+/=]+;[A-Za-z0-9+/=]+"$', text)
    assert "\n\nprovider:\n" in text and "\n\nsecured: " in text
    assert "\n---\n\n" in text


def test_quality_is_an_integer_up_to_190_mostly_mid_range(demo2000):
    _, good, _ = demo2000
    q = [d["quality"] for d in good.values()]
    assert min(q) >= 0 and max(q) <= 190
    assert max(q) > 120  # not a 0-100 score
    assert sum(20 <= x <= 120 for x in q) / len(q) > 0.7


def test_heat_is_minus_one_for_about_two_thirds(demo2000):
    _, good, _ = demo2000
    heat = [d["heat"] for d in good.values()]
    share = sum(h == -1 for h in heat) / len(heat)
    assert 0.55 <= share <= 0.8
    assert all(h == -1 or h > 0 for h in heat)
    assert {d["published"] for d in good.values()} == {True, False}


def test_most_related_links_point_to_generated_articles(demo2000):
    _, good, _ = demo2000
    titles_by_url = collections.defaultdict(set)
    for d in good.values():
        if "webUrl" in d:
            titles_by_url[d["webUrl"]].add(d["title"].removeprefix("UPDATE: "))
    links = [r for d in good.values() for r in d.get("related", [])]
    internal = [r for r in links if r["webUrl"] in titles_by_url]
    share = len(internal) / len(links)
    assert 0.65 <= share <= 0.9, share
    # copied from the target article
    assert all(r["title"] in titles_by_url[r["webUrl"]] for r in internal)
    counts = [len(d.get("related", [])) for d in good.values()]
    assert statistics.median(counts) < statistics.mean(counts)  # skewed: many few, some dozens
    assert sum(c >= 30 for c in counts) > 20
    # no record cites itself
    assert all(r["webUrl"] != d.get("webUrl") for d in good.values() for r in d.get("related", []))


def test_reposts_share_a_web_url_under_another_name_and_time(demo2000):
    _, good, _ = demo2000
    by_url = collections.defaultdict(list)
    for path, d in good.items():
        by_url[identity_url(d)].append((path.name, d["publishedDateTime"]))
    reposts = [v for v in by_url.values() if len(v) > 1]
    assert 5 <= len(reposts) <= 60  # about 1 %
    for versions in reposts:
        assert len({name for name, _ in versions}) == len(versions)
        assert len({when for _, when in versions}) == len(versions)


def test_provider_names_vary_for_some_domains(demo2000):
    _, good, _ = demo2000
    names = collections.defaultdict(set)
    for d in good.values():
        names[d["provider"]["domain"]].add(d["provider"]["name"])
        for r in d.get("related", []):
            names[r["provider"]["domain"]].add(r["provider"]["name"])
    varied = [v for v in names.values() if len(v) > 1]
    assert 2 <= len(varied) <= 20
    assert any("%2c" in n for v in varied for n in v)


@pytest.mark.slow
def test_provider_share_is_skewed(tmp_path):
    summary = generate(tmp_path, records=5000, seed=11, malformed=False)
    domains = collections.Counter(
        parse(p, related=False)["provider"]["domain"] for p in md_files(tmp_path))
    assert sum(domains.values()) == summary.records
    assert len(domains) >= 200
    top10 = sum(n for _, n in domains.most_common(10))
    assert top10 / summary.records > 0.30


# ---------------------------------------------------------------- azure profile


def measure(directory: Path) -> tuple[float, float, float]:
    """Average bytes, related links and related images per file."""
    files = md_files(directory)
    size = rel = rel_img = 0
    for p in files:
        size += p.stat().st_size
        related = parse(p).get("related") or []
        rel += len(related)
        rel_img += sum(len(r.get("images") or []) for r in related)
    n = len(files)
    return size / n, rel / n, rel_img / n


@pytest.mark.slow
def test_azure_profile_matches_the_real_folder(tmp_path):
    if not AZURE.is_dir():
        pytest.skip(f"real corpus folder {AZURE} is absent (set NEWSETL_CORPUS)")
    real = measure(AZURE)
    generate(tmp_path, records=1000, seed=42, profile="azure", malformed=False)
    fake = measure(tmp_path)
    for label, r, f in zip(("bytes/file", "related/file", "related images/file"), real, fake):
        assert abs(f - r) / r <= 0.15, f"{label}: generated {f:.1f} vs real {r:.1f}"


def test_unknown_profile_is_refused(tmp_path):
    with pytest.raises(ValueError):
        generate(tmp_path, records=10, profile="nope")


# ---------------------------------------------------------------- directory handling


def test_foreign_files_are_kept_and_own_names_overwritten(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    (tmp_path / "2000-01-01-mine.md").write_text("---\ntitle: x\n---\n")
    first = generate(tmp_path, records=50, seed=2)
    again = generate(tmp_path, records=50, seed=2)
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert (tmp_path / "2000-01-01-mine.md").exists()
    assert first == again
    assert len(md_files(tmp_path)) == first.files + 1


def test_progress_is_reported(tmp_path):
    calls = []
    summary = generate(tmp_path / "new" / "nested", records=1200, seed=4,
                       progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1] == (summary.files, summary.files)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert len(calls) >= 2


# ---------------------------------------------------------------- edit


def test_edit_rewrites_about_the_fraction_and_keeps_files_well_formed(tmp_path):
    summary = generate(tmp_path / "a", records=400, seed=9)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    before = snapshot(tmp_path / "a")
    changed = edit(tmp_path / "a", 0.1, seed=3)
    after = snapshot(tmp_path / "a")
    assert 0.08 * summary.files <= len(changed) <= 0.12 * summary.files
    assert sorted(p.name for p in changed) == sorted(n for n in before if before[n] != after[n])
    assert set(after) == set(before)
    fields = collections.Counter()
    for path in changed:
        old = yaml.load(front_matter(before[path.name].decode()), Loader=yaml.CSafeLoader)
        doc, why = classify(path)
        assert why is None, (path.name, why)
        assert problem(old) is None  # broken files are never edited
        assert doc["secured"] != old["secured"]
        assert doc["webUrl" if "webUrl" in doc else "originalUrl"] == identity_url(old)
        fields.update(k for k in ("heat", "quality", "title") if doc[k] != old[k])
    assert fields["heat"] >= 0.8 * len(changed)
    # deterministic by seed
    assert sorted(p.name for p in edit(tmp_path / "b", 0.1, seed=3)) == sorted(p.name for p in changed)
    assert snapshot(tmp_path / "b") == after


def test_edit_all_and_nothing(tmp_path):
    summary = generate(tmp_path, records=60, seed=5)
    assert edit(tmp_path, 0.0) == []
    changed = edit(tmp_path, 1.0, seed=2)
    assert len(changed) == summary.records  # every well-formed file, none of the broken ones
    assert all(classify(p)[1] is None for p in changed)


@settings(max_examples=400, deadline=None)
@given(st.text("0123456789abeExXGTZ:._,+-/% ", min_size=1, max_size=14))
@example("2021-01-01 10:00:00")  # a timestamp for PyYAML
@example("9to5 Cloud")
def test_a_name_written_plain_reads_back_as_itself(name):
    """Names led by a digit are written plain (as real feeds write 9to5Mac) only where
    PyYAML reads them back as the same string."""
    written = demo._scalar(name)
    assert yaml.safe_load(f"a: {written}\n")["a"] == name, written
