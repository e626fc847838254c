"""Incremental runs: only new and changed files are parsed, and the tables
after any sequence of runs equal a full rebuild from the same files."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import time
from pathlib import Path

import pytest

import newsetl
from newsetl import demo, pipeline, plan

from .helpers import FUZZ
from .helpers.tables import assert_same_as_rebuild

def last_run(wh: Path) -> dict:
    con = newsetl.connect(wh)
    try:
        return con.sql("SELECT * FROM runs ORDER BY started_at DESC LIMIT 1").to_arrow_table().to_pylist()[0]
    finally:
        con.close()


@pytest.fixture
def site(tmp_path) -> Path:
    d = tmp_path / "site"
    demo.generate(d, records=150, seed=11)
    # written long before the runs, as on a real site: files modified within two
    # seconds of the last listing are re-hashed (coarse mtimes), which these tests are not about
    old = os.path.getmtime(d) - 3600
    for f in d.iterdir():
        os.utime(f, (old, old))
    return d


def test_second_run_with_nothing_changed_parses_nothing(site, tmp_path):
    wh = tmp_path / "wh"
    first = pipeline.run([site], wh, workers=1)
    second = pipeline.run([site], wh, workers=1)
    n = len(list(site.glob("*.md")))
    assert (second.run["files_seen"], second.run["files_unchanged"], second.run["files_parsed"]) == (n, n, 0)
    assert second.counts == {**first.counts, "runs": 2}


def test_touched_but_unchanged_file_is_hashed_not_parsed(site, tmp_path):
    wh = tmp_path / "wh"
    pipeline.run([site], wh, workers=1)
    f = sorted(site.glob("*.md"))[3]
    earlier = f.stat().st_mtime - 3600  # touched (to an hour ago): same size, new mtime
    os.utime(f, (earlier, earlier))
    r = pipeline.run([site], wh, workers=1).run
    assert (r["files_changed"], r["files_unchanged"], r["files_parsed"]) == (0, r["files_seen"], 0)
    # the new mtime is remembered: a third run does not even read the file
    assert plan.plan([site], wh).to_read == []


def test_new_changed_deleted_files_are_counted_and_tables_match_a_rebuild(site, tmp_path):
    wh = tmp_path / "wh"
    pipeline.run([site], wh, workers=1)
    files = sorted(site.glob("*.md"))
    edited = demo.edit(site, 0.05, seed=3)
    deleted = [f for f in files if f not in edited][:4]
    for f in deleted:
        f.unlink()
    extra = tmp_path / "more"
    demo.generate(extra, records=6, seed=99, malformed=False)
    for f in sorted(extra.glob("*.md")):
        shutil.copy(f, site / ("new-" + f.name))
    r = pipeline.run([site], wh, workers=1).run
    assert r["files_new"] == 6
    assert r["files_changed"] == len(edited)
    assert r["files_deleted"] == 4
    assert r["files_unchanged"] == len(files) - len(edited) - 4
    assert r["files_seen"] == len(files) - 4 + 6
    # an edited file is hashed once (to compare with the manifest), and that hash is the one kept
    con = newsetl.connect(wh)
    try:
        kept = dict(con.sql("SELECT source_path, sha256 FROM source_files").fetchall())
    finally:
        con.close()
    assert {f.name: kept[f"site/{f.name}"] for f in edited} == {f.name: hashlib.sha256(f.read_bytes()).hexdigest()
                                                               for f in edited}
    assert_same_as_rebuild([site], wh, tmp_path)


def test_a_change_in_the_same_second_as_the_last_listing_is_not_missed(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    f = site / "a.md"
    f.write_text(RECORD)
    # a filesystem that keeps whole seconds (FAT, HFS+, some shares): an mtime with no fraction
    whole = time.time_ns() // 10**9 * 10**9
    os.utime(f, ns=(whole, whole))
    wh = tmp_path / "wh"
    pipeline.run([site], wh, workers=1)
    # same size, and the mtime put back: only a coarse-mtime filesystem would look like this
    st = f.stat()
    f.write_text(RECORD.replace("quality: 10", "quality: 99"))
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    r = pipeline.run([site], wh, workers=1).run
    assert r["files_changed"] == 1
    con = newsetl.connect(wh)
    assert con.sql("SELECT quality FROM articles").fetchall() == [(99,)]


def test_a_file_edited_just_before_a_run_is_not_read_again_by_the_next_on_a_fine_clock(tmp_path):
    """On a filesystem with sub-second mtimes the racy window is a tick (FINE_RACY_NS), not two
    seconds: edits made right before a run are not hashed again by the run after it; a file
    written within that tick still is."""
    site = tmp_path / "site"
    site.mkdir()
    f = site / "a.md"
    f.write_text(RECORD)
    now = time.time_ns()
    fine = now - now % 10**9 - plan.FINE_RACY_NS * 5 + 123_456  # a second ago, with a fraction
    if fine % 10**9 == 0:
        fine += 1
    os.utime(f, ns=(fine, fine))
    wh = tmp_path / "wh"
    pipeline.run([site], wh, workers=1)
    assert pipeline.run([site], wh, workers=1).run["files_unchanged"] == 1  # settled: not read again
    g = site / "b.md"
    g.write_text(RECORD.replace("news.example/a", "news.example/b"))
    tick = time.time_ns() + 10**9 // 2 + 123  # within a tick of the next listing
    os.utime(g, ns=(tick, tick))
    pipeline.run([site], wh, workers=1)
    g.write_text(RECORD.replace("news.example/a", "news.example/b").replace("quality: 10", "quality: 99"))
    os.utime(g, ns=(tick, tick))  # same size, mtime put back: only the racy rule can tell
    r = pipeline.run([site], wh, workers=1).run
    assert (r["files_unchanged"], r["files_changed"]) == (1, 1)


def test_deleting_a_winning_duplicate_brings_back_the_other_copy(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    rec = "---\ntitle: \"{t}\"\nwebUrl: \"https://x.example/a\"\npublishedDateTime: {d}\nquality: 1\n---\n"
    (site / "old.md").write_text(rec.format(t="old", d="2021-01-01T00:00:00Z"))
    (site / "new.md").write_text(rec.format(t="new", d="2021-02-01T00:00:00Z"))
    wh = tmp_path / "wh"
    pipeline.run([site], wh, workers=1)
    (site / "new.md").unlink()
    pipeline.run([site], wh, workers=1)
    con = newsetl.connect(wh)
    assert con.sql("SELECT title, duplicate_files FROM articles").fetchall() == [("old", 0)]
    assert con.sql("SELECT source_path, status FROM source_files").fetchall() == [("site/old.md", "loaded")]


@pytest.mark.slow
def test_many_incremental_runs_compact_staging(site, tmp_path):
    wh = tmp_path / "wh"
    pipeline.run([site], wh, workers=1)
    files = sorted(site.glob("*.md"))
    for i in range(20):  # more than MAX_SMALL_BATCHES small batches
        f = files[i]
        f.write_text(f.read_text(encoding="utf-8").replace("heat: ", f"heat: {i}", 1), encoding="utf-8")
        pipeline.run([site], wh, workers=1)
    info = newsetl.store.read_info(newsetl.store.Warehouse(wh).current())
    assert len(info["batches"]) <= 1 + 16 + 1
    assert len(list((wh / "staging").iterdir())) <= 3 * (1 + 16 + 1)  # kept snapshots' batches only
    assert_same_as_rebuild([site], wh, tmp_path)


# -- history ---------------------------------------------------------------------------

def _rewrite(path: Path, **changes) -> None:
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    for key, value in changes.items():
        for i, line in enumerate(lines):
            if line.startswith(f"{key}:"):
                lines[i] = f"{key}: {value}"
                break
        else:
            raise AssertionError(f"{key} not in {path}")
    path.write_text("\n".join(lines), encoding="utf-8")


RECORD = """---
title: "First title"
webUrl: "https://news.example/a"
publishedDateTime: 2021-01-01T00:00:00Z
quality: 10
heat: -1
published: false
secured: "token-1"
provider:
  name: Example
  domain: example.com
---
"""


def test_versions_open_on_tracked_changes_only(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    f = site / "a.md"
    f.write_text(RECORD)
    # a file that is no record (rejected, no article): the folder still holds one when a.md goes,
    # as an input must (an empty one is refused: tests/test_guards.py)
    (site / "README.md").write_text("notes, no front matter\n")
    wh = tmp_path / "wh"
    t = [dt.datetime(2021, 1, d, tzinfo=dt.timezone.utc) for d in range(1, 6)]
    pipeline.run([site], wh, workers=1, as_of=t[0])
    _rewrite(f, secured='"token-2"')  # opaque token alone: no new version
    pipeline.run([site], wh, workers=1, as_of=t[1])
    _rewrite(f, heat="12", secured='"token-3"')
    pipeline.run([site], wh, workers=1, as_of=t[2])
    _rewrite(f, quality="40", title='"Second title"')
    pipeline.run([site], wh, workers=1, as_of=t[3])
    f.unlink()
    pipeline.run([site], wh, workers=1, as_of=t[4])
    con = newsetl.connect(wh)
    rows = con.sql("SELECT version, valid_from, valid_to, title, quality, heat FROM article_versions ORDER BY version").fetchall()
    assert rows == [
        (1, t[0], t[2], "First title", 10, -1),
        (2, t[2], t[3], "First title", 10, 12),
        (3, t[3], t[4], "Second title", 40, 12),
    ]
    changes = con.sql("SELECT changed_at, quality_before, quality_after, heat_before, heat_after "
                      "FROM quality_changes ORDER BY changed_at").fetchall()
    assert changes == [(t[2], 10, 10, -1, 12), (t[3], 10, 40, 12, 12)]


def test_as_of_cannot_go_back(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "a.md").write_text(RECORD)
    wh = tmp_path / "wh"
    pipeline.run([site], wh, workers=1, as_of=dt.datetime(2021, 6, 1, tzinfo=dt.timezone.utc))
    with pytest.raises(ValueError, match="history only moves forward"):
        pipeline.run([site], wh, workers=1, as_of=dt.datetime(2021, 5, 1, tzinfo=dt.timezone.utc))


# -- the real history of a site ------------------------------------------------------------

# commit folders per run: a budget like a property's (about 30 runs here, 500 in `make fuzz`);
# NEWSETL_REPLAY_STEP=1 replays every commit (2,488 runs)
REPLAY_STEP = int(os.environ.get("NEWSETL_REPLAY_STEP", "5" if FUZZ else "80"))


def _front(path: Path) -> dict:
    import yaml

    return yaml.load(path.read_text(encoding="utf-8").split("---\n", 2)[1], Loader=yaml.CSafeLoader)


@pytest.mark.slow
def test_replay_of_real_history(corpus, tmp_path):
    """Replays powerapps/history in time order, a run per group of commit folders.

    Independently of newsetl, the test keeps the current files, picks each
    article's winning record after every step (greatest publishedDateTime, then
    path) and counts how often quality and heat move; article_versions and
    quality_changes must show the same moves, and the final tables must equal
    a rebuild.
    """
    history = corpus / "powerapps" / "history"
    stamps = sorted(p.name for p in history.iterdir() if p.is_dir())
    site = tmp_path / "powerapps"
    site.mkdir()
    wh = tmp_path / "wh"
    current: dict[str, dict] = {}
    state: dict[str, tuple] = {}
    moves = {"quality": 0, "heat": 0}
    winners: dict[str, tuple] = {}
    for g in range(0, len(stamps), REPLAY_STEP):
        group = stamps[g:g + REPLAY_STEP]
        for stamp in group:
            for f in sorted((history / stamp).iterdir()):
                shutil.copyfile(f, site / f.name)
                current[f.name] = _front(f)
        winners: dict[str, tuple] = {}
        for name, rec in current.items():
            url = (rec.get("webUrl") or rec.get("originalUrl")).strip()
            key = (rec["publishedDateTime"], name)
            if url not in winners or key > winners[url][0]:
                winners[url] = (key, rec)
        for url, (_k, rec) in winners.items():
            before = state.get(url)
            if before is not None:
                moves["quality"] += before[0] != rec.get("quality")
                moves["heat"] += before[1] != rec.get("heat")
            state[url] = (rec.get("quality"), rec.get("heat"))
        as_of = dt.datetime.strptime(group[-1], "%Y%m%dT%H%M%S").replace(tzinfo=dt.timezone.utc)
        pipeline.run([site], wh, workers=1, as_of=as_of)

    con = newsetl.connect(wh)
    got = con.sql("SELECT count(*) FILTER (WHERE quality_after IS DISTINCT FROM quality_before), "
                  "count(*) FILTER (WHERE heat_after IS DISTINCT FROM heat_before) FROM quality_changes").fetchall()[0]
    assert got == (moves["quality"], moves["heat"])
    assert moves["heat"] > 50 and moves["quality"] > 0  # the replay really moved things (97 and more)
    # one open version per article present now, and none for articles gone
    assert con.sql("SELECT count(*) FROM article_versions WHERE valid_to IS NULL").fetchall()[0][0] == len(winners)
    assert_same_as_rebuild([site], wh, tmp_path)


# -- child tables are reused part by part --------------------------------------------------

LINKED = """---
title: "{title}"
webUrl: "https://news.example/{slug}"
publishedDateTime: 2021-01-0{day}T00:00:00Z
quality: 10
related:
{links}---
"""


def _linked(slug: str, day: int, targets: list[str], title: str = "t") -> str:
    links = "".join(f'  - title: "to {t}"\n    webUrl: "https://news.example/{t}"\n    quality: 5\n'
                    f'    images:\n      - url: "https://img.example/{slug}-{t}.jpg"\n        width: 10\n' for t in targets)
    return LINKED.format(title=title, slug=slug, day=day, links=links or "  []\n")


def test_a_new_article_updates_links_to_it_and_edits_to_links_are_picked_up(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "a.md").write_text(_linked("a", 1, ["b", "c"]))
    (site / "c.md").write_text(_linked("c", 2, []))
    wh = tmp_path / "wh"
    pipeline.run([site], wh, workers=1)

    def links():
        con = newsetl.connect(wh)
        return con.sql("SELECT article_id, position, url, related_article_id FROM related_links "
                       "ORDER BY article_id, position").fetchall()

    from newsetl.flatten import article_id_for as aid

    a, b, c = (aid(f"https://news.example/{x}") for x in "abc")
    assert links() == sorted([(a, 0, "https://news.example/b", None), (a, 1, "https://news.example/c", c)])
    # b appears: a's unchanged file must now resolve its link to b
    (site / "b.md").write_text(_linked("b", 3, ["a"]))
    pipeline.run([site], wh, workers=1)
    assert links() == sorted([(a, 0, "https://news.example/b", b), (a, 1, "https://news.example/c", c),
                              (b, 0, "https://news.example/a", a)])
    assert_same_as_rebuild([site], wh, tmp_path)
    # a's links change; c goes away
    (site / "a.md").write_text(_linked("a", 1, ["c", "b", "b"]))
    (site / "c.md").unlink()
    pipeline.run([site], wh, workers=1)
    assert links() == sorted([(a, 0, "https://news.example/c", None), (a, 1, "https://news.example/b", b),
                              (a, 2, "https://news.example/b", b), (b, 0, "https://news.example/a", a)])
    assert_same_as_rebuild([site], wh, tmp_path)


def test_links_to_an_article_that_goes_away_or_has_no_url_follow_it(tmp_path):
    # A link points at an article when its URL is what that article's id hashes:
    # its webUrl, or, for a record without one, its path below the input folder.
    # a's file never changes: only the targets of its links come and go.
    site = tmp_path / "site"
    (site / "posts").mkdir(parents=True)
    (site / "a.md").write_text('---\ntitle: A\nwebUrl: "https://news.example/a"\nrelated:\n'
                               '  - webUrl: "https://news.example/c"\n  - webUrl: "posts/d.md"\n'
                               '  - webUrl: "posts/e.md"\n---\n')
    (site / "c.md").write_text(_linked("c", 2, []))
    (site / "posts" / "e.md").write_text("---\ntitle: E, no URL\n---\n")
    wh = tmp_path / "wh"
    pipeline.run([site], wh, workers=1)

    def targets():
        return newsetl.connect(wh).sql("SELECT position, related_article_id FROM related_links "
                                       "ORDER BY position").fetchall()  # a's links: the only ones

    from newsetl.flatten import article_id_for as aid

    assert targets() == [(0, aid("https://news.example/c")), (1, None), (2, aid("posts/e.md"))]
    (site / "posts" / "e.md").unlink()  # a target without a URL goes away
    pipeline.run([site], wh, workers=1)
    assert targets() == [(0, aid("https://news.example/c")), (1, None), (2, None)]
    (site / "c.md").unlink()  # one with a URL goes away, one without appears
    (site / "posts" / "d.md").write_text("---\ntitle: D, no URL\n---\n")
    pipeline.run([site], wh, workers=1)
    assert targets() == [(0, None), (1, aid("posts/d.md")), (2, None)]
    assert_same_as_rebuild([site], wh, tmp_path)


def test_unchanged_child_rows_are_not_rewritten(site, tmp_path):
    wh = tmp_path / "wh"
    pipeline.run([site], wh, workers=1)
    before = {p.name: p.stat().st_ino for p in (newsetl.store.Warehouse(wh).current() / "related_links").glob("*.parquet")}
    demo.edit(site, 0.05, seed=4)  # heat, quality, title: the related lists stay
    r = pipeline.run([site], wh, workers=1)
    assert r.run["files_changed"] > 0
    after = {p.name: p.stat().st_ino for p in (newsetl.store.Warehouse(wh).current() / "related_links").glob("*.parquet")}
    assert after == before  # the same files, hard-linked
    assert_same_as_rebuild([site], wh, tmp_path)
