"""The incremental build: a run writes the rows of what changed and delete files for the rows
they replace (newsetl.parts), compaction rewrites parts that lost too many rows, and after any
sequence of edits, spread anywhere over the warehouse, the tables equal a full rebuild."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import newsetl
from newsetl import build, demo, pipeline
from newsetl.parts import is_delete
from newsetl.store import Warehouse, read_info, table_files

from .helpers import examples
from .helpers.tables import assert_same_as_rebuild

HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large]

SMALL_PART_ROWS = build.SMALL_PART_ROWS  # the default, before a test changes it

# the layout of a large warehouse on small fixtures: every part kept, however small
pytestmark = pytest.mark.usefixtures("delta_layout")


def _site(tmp_path: Path, records: int = 40, seed: int = 5) -> Path:
    site = tmp_path / "site"
    demo.generate(site, records=records, seed=seed, malformed=False)
    old = os.path.getmtime(site) - 3600  # long before the runs: mtimes are trusted
    for f in site.iterdir():
        os.utime(f, (old, old))
    return site


def _article_id(path: Path) -> str:
    """A file's article_id, computed here from the contract: SHA-256 of webUrl, else
    originalUrl, else the path below the input folder."""
    front = yaml.safe_load(path.read_text(encoding="utf-8").split("---\n")[1])
    url = front.get("webUrl") or front.get("originalUrl")
    identity = url.strip() if isinstance(url, str) and url.strip() else path.name
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def _new_files(wh: Path) -> dict[str, list[Path]]:
    """Per table, the files of the current snapshot that the last run wrote (not linked from an
    earlier snapshot)."""
    files = table_files(Warehouse(wh).current())
    return {t: [f for f in fs if f.stat().st_nlink == 1] for t, fs in files.items()}


def _keys(files: list[Path]) -> set[str]:
    return {k for f in files for k in pq.read_table(f).column("key").to_pylist()}


def _count(wh: Path, table: str) -> int:
    con = newsetl.connect(wh)
    try:
        return con.sql(f"SELECT count(*) FROM {table}").fetchall()[0][0]
    finally:
        con.close()


def test_a_run_writes_the_rows_of_what_changed_and_deletes_only_those(tmp_path):
    site = _site(tmp_path, records=120)
    wh = tmp_path / "wh"
    pipeline.run([site], wh, workers=1)
    edited = demo.edit(site, 0.05, seed=3)  # heat and the like: the lists stay
    ids = {_article_id(p) for p in edited}
    r = pipeline.run([site], wh, workers=1)
    assert r.run["files_changed"] == len(edited)
    new = _new_files(wh)
    parts = {t: [f for f in fs if not is_delete(f)] for t, fs in new.items()}
    deletes = {t: [f for f in fs if is_delete(f)] for t, fs in new.items()}
    # articles and their history: one delete file naming the edited articles, one part with their rows
    for table in ("articles", "article_versions"):
        assert _keys(deletes[table]) == ids, table
        assert {a for f in parts[table] for a in pq.read_table(f).column("article_id").to_pylist()} == ids
    assert sum(pq.read_metadata(f).num_rows for f in parts["articles"]) == len(ids)
    # source files: the edited files' rows only
    paths = {f"site/{p.name}" for p in edited}
    assert _keys(deletes["source_files"]) == paths
    assert {s for f in parts["source_files"] for s in pq.read_table(f).column("source_path").to_pylist()} == paths
    # the lists did not change: no child row was written or deleted
    for table in ("images", "related_links", "related_images"):
        assert not new[table], table
    assert_same_as_rebuild([site], wh, tmp_path)


def test_a_changed_list_rewrites_that_articles_child_rows_only(tmp_path):
    site = _site(tmp_path)
    wh = tmp_path / "wh"
    pipeline.run([site], wh, workers=1)
    target = sorted(site.glob("*.md"))[7]
    target.write_text(_drop_related(target.read_text(encoding="utf-8")), encoding="utf-8")
    pipeline.run([site], wh, workers=1)
    new = _new_files(wh)
    assert _keys([f for f in new["related_links"] if is_delete(f)]) >= {_article_id(target)}
    assert_same_as_rebuild([site], wh, tmp_path)


def test_compaction_rewrites_parts_that_lost_rows_and_drops_their_deletes(tmp_path, monkeypatch):
    site = _site(tmp_path)
    wh = tmp_path / "wh"
    pipeline.run([site], wh, workers=1)
    demo.edit(site, 0.05, seed=1)
    pipeline.run([site], wh, workers=1)
    info = read_info(Warehouse(wh).current())
    assert any(is_delete(n) for n in info["files"]["articles"])  # 5%: below the share that compacts
    monkeypatch.setattr(build, "DEAD_SHARE", 0.0)
    demo.edit(site, 0.05, seed=2)
    r = pipeline.run([site], wh, workers=1)
    snap = Warehouse(wh).current()
    names = read_info(snap)["files"]["articles"]
    assert "part-0.parquet" not in names and f"{r.run_id}.parquet" in names  # the first run's part, rewritten
    assert r.run["rows_compacted"] > 0
    # every row a part holds is live: nothing left for a delete file to remove
    assert sum(pq.read_metadata(snap / "articles" / n).num_rows for n in names if not is_delete(n)) == \
        _count(wh, "articles")
    assert_same_as_rebuild([site], wh, tmp_path)


def test_past_max_parts_the_smallest_parts_are_merged(tmp_path, monkeypatch):
    site = _site(tmp_path)
    wh = tmp_path / "wh"
    monkeypatch.setattr(build, "MAX_PARTS", 3)
    pipeline.run([site], wh, workers=1)
    for seed in range(5):
        demo.edit(site, 0.03, seed=seed)
        pipeline.run([site], wh, workers=1)
        names = read_info(Warehouse(wh).current())["files"]["articles"]
        assert len([n for n in names if not is_delete(n)]) <= 3, names
    assert_same_as_rebuild([site], wh, tmp_path)


def _drop_related(text: str) -> str:
    return re.sub(r"(?ms)^related:\n.*?(?=^---$)", "related: []\n", text, count=1)


def _drop_images(text: str) -> str:
    return re.sub(r"(?ms)^images:\n.*?(?=^related:|^---$)", "", text, count=1)


def _later(text: str) -> str:
    return re.sub(r"(?m)^publishedDateTime: (\d{4})", lambda m: f"publishedDateTime: {int(m[1]) + 1}", text, count=1)


OPS = st.one_of(
    st.tuples(st.just("edit"), st.sampled_from([0.02, 0.1, 0.5]), st.integers(0, 50)),
    st.tuples(st.sampled_from(["delete", "related", "images", "move", "dup", "restore"]), st.integers(0, 10**6)),
)


@pytest.mark.slow
def _live_rows(snapshot: Path, table: str) -> dict[str, int]:
    """Each part's live rows, counted here from the files: its keys less those of every delete
    file listed after it (docs/warehouse-contract.md)."""
    names = read_info(snapshot)["files"][table]
    key = "article_id" if table != "source_files" else "source_path"
    out = {}
    for i, n in enumerate(names):
        if not is_delete(n):
            gone = _keys([snapshot / table / d for d in names[i + 1:] if is_delete(d)])
            out[n] = sum(k not in gone for k in pq.read_table(snapshot / table / n).column(key).to_pylist())
    return out


def test_parts_under_small_part_rows_are_merged_into_the_next_runs_part(tmp_path, monkeypatch):
    """A schedule's runs of a few edits each keep one small part per table, not one per run; the
    parts at or above the threshold stay as they are (only compaction's other rules rewrite them)."""
    monkeypatch.setattr(build, "SMALL_PART_ROWS", 10)
    monkeypatch.setattr(build, "DEAD_SHARE", 1.0)  # no part is rewritten for its deleted rows here
    site = _site(tmp_path)
    wh = tmp_path / "wh"
    pipeline.run([site], wh, workers=1)
    for seed in range(6):
        demo.edit(site, 0.05, seed=seed)  # two records
        r = pipeline.run([site], wh, workers=1)
        live = _live_rows(Warehouse(wh).current(), "articles")
        assert "part-0.parquet" in live  # 40 rows: never small
        small = [n for n, k in live.items() if k < 10]
        assert len(small) <= 1, live  # the last run's, which the next one merges
        assert len(live) <= 3, live
        assert sum(live.values()) == r.counts["articles"]
    assert_same_as_rebuild([site], wh, tmp_path)


def test_a_small_warehouse_stays_one_file_a_table(tmp_path, monkeypatch):
    """At the default threshold a warehouse of a few dozen records keeps one part per table and no
    delete file, whatever its runs changed: every read opens one file a table."""
    monkeypatch.setattr(build, "SMALL_PART_ROWS", SMALL_PART_ROWS)
    site = _site(tmp_path)
    wh = tmp_path / "wh"
    pipeline.run([site], wh, workers=1)
    for seed in range(3):
        demo.edit(site, 0.1, seed=seed)
        sorted(site.glob("*.md"))[seed].unlink()
        pipeline.run([site], wh, workers=1)
        snap = Warehouse(wh).current()
        for table in ("articles", "images", "related_links", "related_images", "source_files", "article_versions"):
            names = read_info(snap)["files"][table]
            assert len(names) == 1 and not is_delete(names[0]), (table, names)
    assert_same_as_rebuild([site], wh, tmp_path)
    # merged small parts are sorted as a first run writes them
    published = pq.read_table(Warehouse(wh).current() / "articles" / read_info(Warehouse(wh).current())["files"]
                              ["articles"][0], columns=["published_at", "article_id"]).to_pylist()
    assert published == sorted(published, key=lambda r: (r["published_at"] is None, r["published_at"], r["article_id"]))


@settings(suppress_health_check=HEALTH, max_examples=examples(2), deadline=None)
@given(runs=st.lists(st.lists(OPS, min_size=1, max_size=4), min_size=1, max_size=4),
       dead_share=st.sampled_from([0.0, 0.05, 0.5]), max_parts=st.sampled_from([2, 3, 8]),
       step_files=st.sampled_from([7, 150_000]), small_part_rows=st.sampled_from([0, 5, SMALL_PART_ROWS]))
def test_any_edits_anywhere_with_compactions_between_equal_a_rebuild(tmp_path_factory, runs, dead_share, max_parts,
                                                                     step_files, small_part_rows):
    """Edits spread over the whole warehouse (changed values, changed lists, files deleted,
    moved, duplicated with a later date, deleted articles brought back, which other articles
    link to), with compaction thresholds that make it run often, and runs built in steps of a
    few files: after every run the tables equal a rebuild, and the counts the run recorded are
    the rows readers see."""
    tmp = tmp_path_factory.mktemp("edits")
    site = _site(tmp)
    wh, stash = tmp / "wh", tmp / "stash"
    stash.mkdir()
    saved = (build.DEAD_SHARE, build.MAX_PARTS, build.STEP_FILES, build.SMALL_PART_ROWS)
    build.DEAD_SHARE, build.MAX_PARTS, build.STEP_FILES, build.SMALL_PART_ROWS = \
        dead_share, max_parts, step_files, small_part_rows
    try:
        pipeline.run([site], wh, workers=1)
        for n, ops in enumerate(runs):
            for k, op in enumerate(ops):
                _apply(site, stash, op, f"{n}-{k}")
            os.utime(site, None)
            r = pipeline.run([site], wh, workers=1)
            assert_same_as_rebuild([site], wh, tmp)
            con = newsetl.connect(wh)
            try:
                for table, count in r.counts.items():
                    assert con.sql(f"SELECT count(*) FROM {table}").fetchall()[0][0] == count, table
            finally:
                con.close()
    finally:
        build.DEAD_SHARE, build.MAX_PARTS, build.STEP_FILES, build.SMALL_PART_ROWS = saved


def _apply(site: Path, stash: Path, op: tuple, tag: str) -> None:
    files = sorted(site.glob("*.md"))
    if op[0] == "edit":
        demo.edit(site, op[1], seed=op[2])
        return
    kind, i = op
    if kind == "restore":
        kept = sorted(stash.iterdir())
        if kept:
            shutil.move(kept[i % len(kept)], site / kept[i % len(kept)].name)
        return
    if not files:
        return
    f = files[i % len(files)]
    text = f.read_text(encoding="utf-8")
    if kind == "delete":
        shutil.move(f, stash / f.name)
    elif kind == "related":
        f.write_text(_drop_related(text), encoding="utf-8")
    elif kind == "images":
        f.write_text(_drop_images(text), encoding="utf-8")
    elif kind == "move":
        f.rename(site / f"moved-{tag}.md")
    elif kind == "dup":  # the same URL in another file, published later: it wins
        (site / f"dup-{tag}.md").write_text(_later(text), encoding="utf-8")


def test_readers_apply_the_deletes_the_same_way_everywhere(tmp_path):
    """The catalog file (DuckDB shell), newsetl.connect and the contract's rule applied by hand
    to the Parquet files give the same rows."""
    site = _site(tmp_path)
    wh = tmp_path / "wh"
    pipeline.run([site], wh, workers=1)
    demo.edit(site, 0.2, seed=9)
    pipeline.run([site], wh, workers=1)
    snap = Warehouse(wh).current()
    info = read_info(snap)
    shell = duckdb.connect(str(wh / "news.duckdb"), read_only=True)
    con = newsetl.connect(wh)
    try:
        for table, names in info["files"].items():
            by_hand = duckdb.connect().from_arrow(_by_the_contract(snap / table, names, table)).fetchall()
            want = sorted(map(repr, shell.sql(f"SELECT * FROM {table}").fetchall()))
            assert sorted(map(repr, con.sql(f"SELECT * FROM {table}").fetchall())) == want, table
            assert sorted(map(repr, by_hand)) == want, table
    finally:
        shell.close()
        con.close()


def _by_the_contract(folder: Path, names: list[str], table: str) -> pa.Table:
    """docs/warehouse-contract.md's rule, with pyarrow only: a part loses the keys of every delete
    file listed after it."""
    from newsetl.parts import ROW_KEY

    kept = []
    for i, name in enumerate(names):
        if is_delete(name):
            continue
        t = pq.read_table(folder / name)
        later = set()
        for d in names[i + 1:]:
            if is_delete(d):
                later.update(pq.read_table(folder / d).column("key").to_pylist())
        if later:
            key = t.column(ROW_KEY[table]).to_pylist()
            t = t.filter(pa.array([k not in later for k in key]))
        kept.append(t)
    return pa.concat_tables(kept)


def test_a_run_built_in_steps_equals_one_built_at_once(tmp_path, monkeypatch):
    """A first run of more files than a step takes (a million-record site) builds in steps that
    share no article: the same rows as one step, and one part per step, no delete file."""
    site = _site(tmp_path, records=60)
    whole, steps = tmp_path / "whole", tmp_path / "steps"
    pipeline.run([site], whole, workers=1)
    monkeypatch.setattr(build, "STEP_FILES", 25)
    r = pipeline.run([site], steps, workers=1)
    names = read_info(Warehouse(steps).current())["files"]["articles"]
    assert len(names) == 3 and not any(is_delete(n) for n in names), names  # 60 files, 25 a step
    from .helpers.tables import assert_same_tables

    assert_same_tables(steps, whole)
    demo.edit(site, 0.5, seed=4)  # and an incremental run in steps on top of it
    pipeline.run([site], steps, workers=1)
    assert_same_as_rebuild([site], steps, tmp_path)
    assert r.counts["articles"] == _count(whole, "articles")

