"""The whole pipeline on the hand-written fixture folder; every figure below is
counted by hand from the files in tests/fixtures/bad_input."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import newsetl
from newsetl import demo, pipeline, runners, schema

from .conftest import BAD_INPUT
from .helpers.tables import assert_same_tables

REJECTED = {
    "alias_bomb.md", "binary.md", "empty.md", "invalid_yaml.md", "latin1.md",
    "no_front_matter.md", "python_tag.md", "top_level_list.md", "unclosed.md",
}
PARSED = {
    "bad_date.md", "bom_crlf.md", "dashes_in_quoted.md", "hr_in_body.md", "images_mapping.md",
    "no_provider.md", "quality_high.md", "related_no_weburl.md", "same_url_newer.md",
    "same_url_older.md", "unknown_keys.md", "width_px.md",
}


def sha16(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()[:16]


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    out = tmp_path_factory.mktemp("wh")
    result = pipeline.run([BAD_INPUT], out, workers=1)
    return out, result


@pytest.fixture(scope="module")
def con(wh):
    return newsetl.connect(wh[0])


def q(con, sql):
    return con.sql(sql).fetchall()


def test_every_md_file_is_in_source_files_and_other_files_are_ignored(con):
    rows = dict(q(con, "SELECT source_path, status FROM source_files"))
    assert {p.split("/", 1)[1] for p in rows} == REJECTED | PARSED
    assert not any(p.endswith("notes.txt") for p in rows)


def test_statuses(con):
    rows = dict(q(con, "SELECT source_path, status FROM source_files"))
    status = {p.split("/", 1)[1]: s for p, s in rows.items()}
    assert {n for n, s in status.items() if s == "rejected"} == REJECTED
    assert {n for n, s in status.items() if s == "duplicate"} == {"same_url_older.md"}
    assert {n for n, s in status.items() if s == "loaded"} == PARSED - {"same_url_older.md"}


def test_rejected_files_carry_their_error(con):
    errors = dict(q(con, "SELECT source_path, error FROM source_files WHERE status = 'rejected'"))
    assert all(errors.values())
    assert errors["bad_input/invalid_yaml.md"].startswith("invalid YAML at line 5, column 2")


def test_one_article_per_id_and_the_newest_copy_wins(con):
    assert q(con, "SELECT count(*), count(DISTINCT article_id) FROM articles") == [(11, 11)]
    row = q(con, f"SELECT title, source_path, duplicate_files FROM articles WHERE article_id = '{sha16('https://example.com/same-url')}'")
    assert row == [("Newer copy", "bad_input/same_url_newer.md", 1)]


def test_article_id_is_sha256_of_web_url(con):
    ids = {r[0] for r in q(con, "SELECT article_id FROM articles")}
    assert sha16("https://example.com/bom-crlf") in ids


def test_wrong_types_load_as_null_and_are_listed(con):
    issues = sorted(q(con, "SELECT source_path, field, raw_value FROM data_issues"))
    assert issues == [
        ("bad_input/bad_date.md", "publishedDateTime", "last Tuesday"),
        ("bad_input/images_mapping.md", "images", json.dumps(
            {"url": "https://img.example.com/images-mapping.jpg", "width": 800, "height": 450}, separators=(",", ":"))),
        ("bad_input/quality_high.md", "quality", "high"),
        ("bad_input/related_no_weburl.md", "related[1].webUrl", ""),
        ("bad_input/width_px.md", "images[0].width", "1200px"),
    ]
    assert q(con, f"SELECT quality FROM articles WHERE article_id = '{sha16('https://example.com/quality-high')}'") == [(None,)]
    assert q(con, f"SELECT published_at FROM articles WHERE article_id = '{sha16('https://example.com/bad-date')}'") == [(None,)]
    assert q(con, f"SELECT width, height FROM images WHERE article_id = '{sha16('https://example.com/width-px')}'") == [(None, 450)]


def test_images_and_related_rows(con):
    # one image in every loaded record but images_mapping.md
    assert q(con, "SELECT count(*) FROM images") == [(10,)]
    assert q(con, "SELECT count(*) FROM related_links") == [(3,)]
    assert q(con, "SELECT count(*) FROM related_images") == [(0,)]
    links = q(con, f"""SELECT position, url, title, provider_domain, related_article_id FROM related_links
                      WHERE article_id = '{sha16('https://example.com/related-no-weburl')}' ORDER BY position""")
    assert links == [
        (0, "https://example.com/same-url", "Has a URL", None, sha16("https://example.com/same-url")),
        (1, None, "Has no URL", "nowhere.example", None),
    ]


def test_counts_on_articles_match_child_tables(con):
    assert q(con, """SELECT count(*) FROM articles a WHERE image_count <> (SELECT count(*) FROM images i WHERE i.article_id = a.article_id)
                     OR related_count <> (SELECT count(*) FROM related_links r WHERE r.article_id = a.article_id)""") == [(0,)]


def test_unknown_keys_are_kept_in_extra(con):
    (extra,) = q(con, f"SELECT extra FROM articles WHERE article_id = '{sha16('https://example.com/unknown-keys')}'")[0]
    assert json.loads(extra) == {"author": "Jane Doe", "readingTime": 4, "provider": {"twitter": "@example"}}
    assert q(con, "SELECT count(*) FROM articles WHERE extra IS NOT NULL") == [(1,)]


def test_text_is_cleaned(con):
    assert {r[0] for r in q(con, "SELECT DISTINCT excerpt FROM articles")} == {"An excerpt & more"}


def test_no_provider_loads_with_null_provider(con):
    assert q(con, f"SELECT provider_domain, provider_name FROM articles WHERE article_id = '{sha16('https://example.com/no-provider')}'") == [(None, None)]


def test_providers_cover_articles_and_related_links(con):
    assert q(con, "SELECT provider_domain, provider_name, article_count, citation_count FROM providers ORDER BY 1") == [
        ("example.com", "Example News", 10, 0),
        ("nowhere.example", "Nowhere", 0, 1),
    ]


def test_body_is_kept(con):
    (body,) = q(con, f"SELECT body FROM articles WHERE article_id = '{sha16('https://example.com/hr-body')}'")[0]
    assert body.startswith("\nFirst part of the body.") and "After a horizontal rule." in body


def test_runs_row(con, wh):
    (row,) = con.sql("SELECT * FROM runs").to_arrow_table().to_pylist()
    assert row["run_id"] == wh[1].run_id
    assert (row["files_seen"], row["files_new"], row["files_rejected"]) == (21, 21, 9)
    assert (row["articles_rows"], row["images_rows"], row["data_issues_rows"]) == (11, 10, 5)


def test_parquet_types_match_the_declared_schema(wh):
    current = newsetl.catalog.Warehouse(wh[0]).current()
    for table in schema.WAREHOUSE_TABLES:
        (first, *_) = sorted((current / table.name).glob("*.parquet"))
        got = pq.read_schema(first)
        assert got.names == table.names, table.name
        for field in table.schema:
            g = got.field(field.name).type
            if hasattr(field.type, "value_type"):  # list field names differ (item/element)
                assert g.value_type == field.type.value_type, (table.name, field.name)
            else:
                assert g == field.type, (table.name, field.name, g)


def test_catalog_file_has_every_table(wh):
    import duckdb

    con = duckdb.connect(str(wh[0] / "news.duckdb"), read_only=True)
    try:
        for table in schema.WAREHOUSE_TABLES:
            con.sql(f"SELECT count(*) FROM {table.name}").fetchall()
    finally:
        con.close()



def test_workers_start_from_a_forkserver_while_another_thread_runs():
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:
        assert runners._start_method() == "forkserver"  # a fork could copy that thread's locks held
    finally:
        stop.set()
        t.join()


EARLY_WORKERS = """
import json, os
from newsetl import runners
runners.fork_early(2)
import prefect  # what the flow path imports after forking: its workers must not carry it
loc = runners.Local(2)
loc.start()
pids = sorted(set(loc._pool.submit(os.getpid).result() for _ in range(8)))
parents = [int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1]) for p in pids]
carried = loc._pool.submit(eval, "'prefect' in __import__('sys').modules").result()
loc.close()
runners.fork_early(2)
runners.Local(2).close()  # an early pool that no run took is freed by close
print(json.dumps({"me": os.getpid(), "parents": parents, "carried": carried, "left": runners._early is not None}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or sys.version_info >= (3, 12),
                    reason="workers are forked only on Linux before Python 3.12 (runners._start_method)")
@pytest.mark.slow
def test_workers_forked_early_are_the_runs_workers_and_carry_no_prefect():
    out = subprocess.run([sys.executable, "-c", EARLY_WORKERS], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    # forked by this process itself (not a forkserver), before Prefect was imported
    assert got["parents"] and set(got["parents"]) == {got["me"]}, got
    assert got["carried"] is False and got["left"] is False, got


@pytest.mark.slow
@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_worker_processes_give_the_in_process_tables(method, tmp_path, monkeypatch):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method on this platform")
    site = tmp_path / "site"
    demo.generate(site, records=120, seed=5, profile="bench")
    pipeline.run([site], tmp_path / "one", workers=1)
    monkeypatch.setattr(runners, "_start_method", lambda: method)
    monkeypatch.setattr(runners, "IN_PROCESS_BYTES", 0)  # even this little goes to the workers
    r = pipeline.run([site], tmp_path / "two", workers=2, batch_files=20)
    assert r.run["files_parsed"] == r.run["files_seen"] > 120
    assert_same_tables(tmp_path / "one", tmp_path / "two")


def test_batches_handed_over_together_all_end_before_a_failure_is_raised(tmp_path):
    """The flow's task hands a run of batches to the pool (runners.Local.parse) and is retried
    whole when one fails: none of them may still be writing its staging files by then."""
    from newsetl.parse import parse_batch
    from newsetl.plan import BatchSpec
    from newsetl.sources import discover

    site = tmp_path / "site"
    demo.generate(site, records=400, seed=3, profile="bench", malformed=False)
    files = [(f, None) for f in discover([site])]
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "b0").write_text("in the way")  # the first batch cannot make its folder
    runs = [files[:1]] + [files[1 + i::4] for i in range(4)]
    specs = [BatchSpec(f"b{i}", "r", str(staging), run) for i, run in enumerate(runs)]
    parse_batch(BatchSpec("ref", "r", str(tmp_path / "ref"), runs[1]))
    written = sorted(p.name for p in (tmp_path / "ref" / "ref").iterdir())

    local = runners.Local(2)
    local.start()
    try:
        with pytest.raises(OSError):
            local.parse(specs)
        for i in range(1, 5):  # at the moment it raised, every other batch had written all of its tables
            assert sorted(p.name for p in (staging / f"b{i}").iterdir()) == written, i
            for name in written:
                pq.read_table(staging / f"b{i}" / name)
    finally:
        local.close()


def test_the_preset_sample_skips_an_entry_that_is_no_longer_a_file(tmp_path):
    """The sample for preset detection reads the first files of the plan; one that became a folder
    (or a FIFO, or grew past the cap) since it was listed is the parse's to reject, never the
    sample's error: the records after it are sampled."""
    from types import SimpleNamespace

    from newsetl.sources import SourceFile

    site = tmp_path / "site"
    site.mkdir()
    (site / "a.md").mkdir()  # listed as a file, a folder by the time it is read
    (site / "b.md").write_text("---\ntitle: B\nwebUrl: https://x.example/b\n---\nbody\n", encoding="utf-8")
    files = [SourceFile(f"site/{n}", str(site / n), n, 60, 0) for n in ("a.md", "b.md")]
    got = pipeline._sample(SimpleNamespace(to_read=[(f, None) for f in files]))
    assert got == [("b.md", {"title": "B", "webUrl": "https://x.example/b"})]


def test_duckdb_threads_follow_the_warehouse_size(tmp_path, monkeypatch):
    """Under duck.ONE_THREAD_FILES files the build and the checks run DuckDB on one thread;
    from there on the build takes DuckDB's default (a thread a core) and the checks two. The
    tables are the same either way."""
    from newsetl import build, checks, duck

    demo.generate(tmp_path / "site", records=6, seed=2, malformed=False)
    files = len(list((tmp_path / "site").glob("*.md")))
    seen = []
    real = build.build_connection

    def spy(temp_dir, memory_limit="384MB", threads=None, database=None):
        con = real(temp_dir, memory_limit, threads, database)
        seen.append((threads, con.execute("SELECT current_setting('threads')").fetchone()[0]))
        return con

    monkeypatch.setattr(build, "build_connection", spy)
    one = pipeline.run([tmp_path / "site"], tmp_path / "one", workers=1)
    assert seen == [(1, 1)] and checks._threads(Path(one.snapshot)) == 1
    monkeypatch.setattr(duck, "ONE_THREAD_FILES", files)  # this warehouse is now "large"
    seen.clear()
    many = pipeline.run([tmp_path / "site"], tmp_path / "many", workers=1)
    cores = duckdb_default_threads()
    assert seen == [(None, cores)] and checks._threads(Path(many.snapshot)) == 2
    assert_same_tables(tmp_path / "one", tmp_path / "many")


def duckdb_default_threads() -> int:
    import duckdb

    with duckdb.connect() as con:
        return con.execute("SELECT current_setting('threads')").fetchone()[0]
