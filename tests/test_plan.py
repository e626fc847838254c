"""The plan: which files a run reads, decided in Arrow from the listing and the last manifest.

Each decision is checked against the rule written out here in plain Python, from values read
independently of the plan (os.lstat of the files, the manifest and runs read with DuckDB):
for any rows (`decide`), and for any sequence of adds, edits, touches and deletes on a real
folder (`plan.plan`). And a run that finds no change does almost nothing: it parses nothing,
writes no staging batch and never imports the parser, worker pools, pandas or Prefect.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

import newsetl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsetl import catalog, pipeline, plan
from newsetl.remote import open_warehouse
from newsetl.sources import rejection_key

from .helpers import examples
from .helpers.records import record

CAP = 1000
RACY = 5_000


def expected(listing: list[dict], manifest: list[dict], racy_ns: int, cap: int, reuse: bool = True) -> dict:
    """The plan's rule, row by row: what to read (with the key handed to the parse), what is
    unchanged, what is gone, how many are new."""
    old = {m["source_path"]: m for m in manifest}
    seen = {f["source_path"] for f in listing}
    to_read, unchanged = {}, set()
    for f in listing:
        before = old.get(f["source_path"])
        if not reuse or before is None:
            to_read[f["source_path"]] = None
            continue
        no_hash_rejected = before["status"] == "rejected" and before["sha256"] is None
        key = rejection_key(before["bytes"], before["error"]) if no_hash_rejected else None
        if f["problem"] or (no_hash_rejected and f["size"] <= cap):
            to_read[f["source_path"]] = key  # looked at again every run
        elif (before["bytes"], before["mtime_ns"]) == (f["size"], f["mtime_ns"]) and (
                f["object"] or f["mtime_ns"] < racy_ns):
            unchanged.add(f["source_path"])
        else:
            to_read[f["source_path"]] = key if key is not None else before["sha256"]
    return {"to_read": to_read, "unchanged": unchanged, "deleted": sorted(set(old) - seen),
            "new": sum(f["source_path"] not in old for f in listing)}


def got(files: pa.Table, d: plan.Decisions) -> dict:
    paths = files.column("source_path").to_pylist()
    return {"to_read": {paths[i]: key for i, key in zip(d.to_read, d.keys)}, "unchanged": set(d.unchanged.to_pylist()),
            "deleted": d.deleted, "new": d.new}


LISTING = pa.schema([("source_path", pa.string()), ("size", pa.int64()), ("mtime_ns", pa.int64()),
                     ("problem", pa.bool_()), ("object", pa.bool_())])
MANIFEST = pa.schema([("source_path", pa.string()), ("bytes", pa.int64()), ("mtime_ns", pa.int64()),
                      ("sha256", pa.string()), ("status", pa.string()), ("error", pa.string())])

# few distinct values, so that sizes and mtimes meet often
paths_ = st.sampled_from([f"s/{c}.md" for c in "abcdefgh"] + ["s/é.md", "s/\\\\x.md", "t/a.md"])
sizes = st.sampled_from([0, 7, CAP, CAP + 1])
mtimes = st.sampled_from([1, 2, RACY - 1, RACY, RACY + 1])
listed = st.fixed_dictionaries({"size": sizes, "mtime_ns": mtimes, "problem": st.booleans(), "object": st.booleans()})
kept = st.one_of(
    st.fixed_dictionaries({"bytes": sizes, "mtime_ns": mtimes, "sha256": st.sampled_from(["h1", "h2"]),
                           "status": st.sampled_from(["parsed", "rejected"]), "error": st.none()}),
    st.fixed_dictionaries({"bytes": st.one_of(st.none(), sizes), "mtime_ns": mtimes, "sha256": st.none(),
                           "status": st.just("rejected"),
                           "error": st.sampled_from(["cannot read file: Permission denied", "not a regular file: a FIFO"])}),
)


@settings(max_examples=examples(200), deadline=None)
@given(st.dictionaries(paths_, listed), st.dictionaries(paths_, kept), st.booleans())
def test_decide_reads_exactly_what_the_rule_says(listing, manifest, reuse):
    files = [{"source_path": p, **f} for p, f in listing.items()]
    old = [{"source_path": p, **m} for p, m in manifest.items()]
    d = plan.decide(pa.Table.from_pylist(files, schema=LISTING), pa.Table.from_pylist(old, schema=MANIFEST),
                    RACY, CAP, reuse)
    want = expected(files, old, RACY, CAP, reuse)
    assert got(pa.Table.from_pylist(files, schema=LISTING), d) == want
    assert set(d.to_read).isdisjoint(i for i, f in enumerate(files) if f["source_path"] in want["unchanged"])
    assert len(d.to_read) + len(d.unchanged) == len(files)


@pytest.mark.parametrize("case, listing, manifest, to_read, unchanged", [
    ("same size and mtime, settled", [("s/a.md", 5, 1)], [("s/a.md", 5, 1, "h", "parsed", None)], {}, {"s/a.md"}),
    ("touched", [("s/a.md", 5, 2)], [("s/a.md", 5, 1, "h", "parsed", None)], {"s/a.md": "h"}, set()),
    ("edited", [("s/a.md", 6, 1)], [("s/a.md", 5, 1, "h", "parsed", None)], {"s/a.md": "h"}, set()),
    ("written in the last run's tick", [("s/a.md", 5, RACY)], [("s/a.md", 5, RACY, "h", "parsed", None)],
     {"s/a.md": "h"}, set()),
    ("new", [("s/b.md", 5, 1)], [], {"s/b.md": None}, set()),
    ("rejected unread, looked at again", [("s/a.md", 5, 1)],
     [("s/a.md", 5, 1, None, "rejected", "cannot read file: Permission denied")],
     {"s/a.md": "rejected\x005\x00cannot read file: Permission denied"}, set()),
    ("rejected past the cap, known from its size", [("s/a.md", CAP + 1, 1)],
     [("s/a.md", CAP + 1, 1, None, "rejected", "file too large")], {}, {"s/a.md"}),
    ("rejected after it was read: a hash like any file", [("s/a.md", 5, 1)],
     [("s/a.md", 5, 1, "h", "rejected", "no front matter")], {}, {"s/a.md"}),
])
def test_decide_named_cases(case, listing, manifest, to_read, unchanged):
    files = pa.Table.from_pylist([{"source_path": p, "size": s, "mtime_ns": m, "problem": False, "object": False}
                                  for p, s, m in listing], schema=LISTING)
    old = pa.Table.from_pylist([dict(zip(MANIFEST.names, row)) for row in manifest], schema=MANIFEST)
    d = got(files, plan.decide(files, old, RACY, CAP))
    assert (d["to_read"], d["unchanged"]) == (to_read, unchanged), case


def test_decide_gone_files_and_another_parse_version():
    files = pa.Table.from_pylist([{"source_path": "s/a.md", "size": 5, "mtime_ns": 1, "problem": False,
                                   "object": False}], schema=LISTING)
    old = pa.Table.from_pylist([dict(zip(MANIFEST.names, row)) for row in [
        ("s/a.md", 5, 1, "h", "parsed", None), ("s/z.md", 1, 1, "h", "parsed", None),
        ("s/c.md", 1, 1, "h", "parsed", None)]], schema=MANIFEST)
    d = got(files, plan.decide(files, old, RACY, CAP))
    assert (d["to_read"], d["unchanged"], d["deleted"], d["new"]) == ({}, {"s/a.md"}, ["s/c.md", "s/z.md"], 0)
    # parsed by another version: every file is read again, with no key; the gone ones still go
    d = got(files, plan.decide(files, old.select(["source_path"]), RACY, CAP, reuse=False))
    assert (d["to_read"], d["unchanged"], d["deleted"], d["new"]) == ({"s/a.md": None}, set(), ["s/c.md", "s/z.md"], 0)


# -- the plan of a real folder after a run --------------------------------------------------

OLD = 1_600_000_000  # seconds: long before any run (settled, whatever the racy rule)


def _write(f: Path, text: str, when: int | None = OLD) -> None:
    f.write_text(text)
    if when is not None:
        os.utime(f, (when, when))


def _listing(site: Path) -> list[dict]:
    out = []
    for f in sorted(site.iterdir()):
        st = os.lstat(f)
        out.append({"source_path": f"site/{f.name}", "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                    "problem": False, "object": False})
    return out


def _manifest_and_racy(wh: Path) -> tuple[list[dict], int]:
    current = (wh / "current").resolve()
    con = duckdb.connect()
    try:
        rows = con.execute("SELECT source_path, bytes, mtime_ns, sha256, status, error FROM read_parquet(?)",
                           [str(current / "_state" / "manifest.parquet")]).fetchall()
        (listed,), = con.execute("SELECT epoch_ns(max(started_at)) FROM read_parquet(?)",
                                 [str(current / "runs" / "part-0.parquet")]).fetchall()
    finally:
        con.close()
    return [dict(zip(MANIFEST.names, r)) for r in rows], listed - plan.RACY_NS


ops = st.lists(st.tuples(st.sampled_from(["add", "edit", "touch", "touch-now", "delete"]), st.integers(0, 5)),
               max_size=8)


@pytest.mark.slow
@settings(max_examples=examples(4), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops)
def test_plan_of_a_folder_after_any_changes_is_the_rule_applied_to_its_listing(tmp_path_factory, changes):
    base = tmp_path_factory.mktemp("plan")
    site, wh = base / "site", base / "wh"
    site.mkdir()
    for i in range(4):
        _write(site / f"r{i}.md", record(f"r{i}", f"quality: {i}"))
    pipeline.run([site], wh, workers=1)
    for op, i in changes:
        f = site / f"r{i}.md"
        if op == "add" and not f.exists():
            _write(f, record(f"r{i}", "quality: 50"))
        elif op == "edit" and f.exists():
            _write(f, f.read_text() + "more body\n", OLD + 60)
        elif op == "touch" and f.exists():
            os.utime(f, (OLD + 120, OLD + 120))
        elif op == "touch-now" and f.exists():
            os.utime(f)  # now: within the racy window of no run, but after the last one started
        elif op == "delete" and f.exists():
            f.unlink()
    manifest, racy_ns = _manifest_and_racy(wh)
    p = plan.plan([site], wh)
    want = expected(_listing(site), manifest, racy_ns, plan.limits.RECORD.file_bytes)
    assert {f.source_path: key for f, key in p.to_read} == want["to_read"]
    assert [f.source_path for f, _ in p.to_read] == sorted(want["to_read"])
    assert (set(p.unchanged.to_pylist()), p.deleted, p.files_new, p.files_seen) == (
        want["unchanged"], want["deleted"], want["new"], len(_listing(site)))
    assert p.idle == (not want["to_read"] and not want["deleted"])
    for f, _ in p.to_read:  # a file to read is found where its source_path says
        assert (f.path, f.rel_path, f.problem) == (str(site.resolve() / f.source_path[5:]), f.source_path[5:], None)


# -- a run that finds no change -------------------------------------------------------------

# what a run imports only when it has something to parse, or never on its own
NOT_IMPORTED = ("prefect", "pandas", "multiprocessing.pool", "concurrent.futures.process", "newsetl.runners",
                "newsetl.flatten", "newsetl.frontmatter", "newsetl.fastyaml", "newsetl.safeyaml", "yaml", "dask")


@pytest.mark.slow
def test_a_run_that_finds_no_change_parses_nothing_and_imports_no_parser_pandas_or_prefect(tmp_path):
    site, wh = tmp_path / "site", tmp_path / "wh"
    site.mkdir()
    for i in range(30):
        _write(site / f"r{i}.md", record(f"r{i}", f"quality: {i}"))
    pipeline.run([site], wh, workers=1)
    batches = sorted(p.name for p in (wh / "staging").iterdir())
    # `newsetl run` as the command runs it (cli.main), in a fresh interpreter without a Prefect API
    code = (f"import json, sys\nfrom newsetl.cli import main\n"
            f"code = main(['run', {str(site)!r}, '--warehouse', {str(wh)!r}, '-q'])\n"
            f"print(json.dumps([code, sorted(m for m in {list(NOT_IMPORTED)!r} if m in sys.modules)]))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_PROFILES_PATH"] = str(tmp_path / "no-profiles.toml")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == [0, []]
    con = duckdb.connect()
    try:
        runs = con.execute("SELECT files_seen, files_unchanged, files_parsed, files_new, files_deleted FROM "
                           "read_parquet(?) ORDER BY started_at", [str(wh / "current" / "runs" / "part-0.parquet")]
                           ).fetchall()
    finally:
        con.close()
    assert runs[-1] == (30, 30, 0, 0, 0) and len(runs) == 2
    assert sorted(p.name for p in (wh / "staging").iterdir()) == batches  # no batch written
    # the catalog file shows the new snapshot, exactly as a fresh write would
    current = (wh / "current").resolve()
    assert catalog.catalog_snapshot(open_warehouse(wh)) == current.name
    assert catalog.inspect_catalog(open_warehouse(wh), current) == ("ok", [])


def test_a_run_with_something_to_parse_still_parses_it(tmp_path):
    """The idle path is taken only when nothing is to read: one edited file is parsed."""
    site, wh = tmp_path / "site", tmp_path / "wh"
    site.mkdir()
    for i in range(3):
        _write(site / f"r{i}.md", record(f"r{i}", f"quality: {i}"))
    pipeline.run([site], wh, workers=1)
    _write(site / "r1.md", record("r1", "quality: 99"), OLD + 60)
    r = pipeline.run([site], wh, workers=1).run
    assert (r["files_changed"], r["files_parsed"], r["files_unchanged"]) == (1, 1, 2)
    con = newsetl.connect(wh)  # the table's rows: its parts less their delete files
    try:
        assert con.execute("SELECT quality FROM articles WHERE title = 'r1'").fetchall() == [(99,)]
    finally:
        con.close()
