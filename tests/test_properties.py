"""Properties over generated inputs: any front matter, any bytes, any file tree.

Hypothesis draws front matter from YAML's grammar (hostile scalars, tags,
anchors and aliases, flow and block collections, keys given twice, deep
nesting, line mutations), random bytes, byte mutations of the real records,
and file trees with odd names, links and FIFOs. For each, the real run must:

- complete (the CLI exits 0 without a traceback);
- list every record file in source_files exactly once;
- load the two good control records beside them, with their values;
- build the same tables with the fast parser as with PyYAML's meaning alone;
- give, after an incremental run, the tables of a rebuild;
- and the YAML loader must mean what PyYAML means (tests/helpers/yamlref.py).

`make test` runs a small budget (the `default` profile in conftest.py);
`make fuzz` runs the `fuzz` profile. Every failure found is kept as a named
case in test_hostile.py.
"""

from __future__ import annotations

import os
import resource
import shutil
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import newsetl
from newsetl import fastyaml, pipeline, safeyaml
from newsetl.sources import SUFFIXES, display_name

from .helpers import examples, yamlgen
from .helpers.cli import newsetl_cli
from .helpers.records import record
from .helpers.tables import assert_same_as_rebuild, assert_same_tables
from .helpers.yamlref import assert_same, reference_load

CONTROLS = {
    "control-a.md": record("control a", "quality: 101\nheat: 5\nprovider: {name: A, domain: a.example}\ntopics: [x]"),
    "control-b.md": record("control b", "quality: 7\nheat: -1\npublishedDateTime: 2021-03-01T10:00:00Z"),
}
HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture]
files_ = st.lists(st.one_of(yamlgen.front_matter().map(yamlgen.as_file), yamlgen.random_bytes, yamlgen.random_toml,
                            yamlgen.random_json), max_size=5)


def _fresh(base: Path, name: str) -> Path:
    d = base / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


def _site(base: Path, contents: list[bytes]) -> Path:
    site = _fresh(base, "site")
    for name, text in CONTROLS.items():
        (site / name).write_text(text)
    for i, data in enumerate(contents):
        (site / f"case-{i}.md").write_bytes(data)
    return site


def _records_on_disk(site: Path) -> set[str]:
    """The source_path every record file must have: regular files with a record's
    name, not hidden, not below a link (walked here independently of newsetl)."""
    out = set()
    for dirpath, dirnames, filenames in os.walk(site):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel = os.path.relpath(dirpath, site)
        for f in filenames:
            p = os.path.join(dirpath, f)
            if not f.startswith(".") and f.lower().endswith(SUFFIXES) and stat.S_ISREG(os.lstat(p).st_mode):
                path = f if rel == "." else f"{rel}/{f}"
                out.add(f"{site.name}/{display_name(path)}")
    return out


def _check_run(site: Path, wh: Path) -> dict:
    con = newsetl.connect(wh)
    try:
        listed = [r[0] for r in con.sql("SELECT source_path FROM source_files").fetchall()]
        assert len(listed) == len(set(listed)), "a file listed twice"
        assert _records_on_disk(site) <= set(listed)
        # the control files' articles, whichever file won them (a link to a control is a duplicate of it)
        controls = con.sql("SELECT a.title, a.quality, a.heat, a.provider_domain FROM source_files s "
                           "JOIN articles a USING (article_id) WHERE s.source_path LIKE '%/control-_.md' "
                           "ORDER BY a.title").fetchall()
        assert controls == [("control a", 101, 5, "a.example"), ("control b", 7, -1, None)]
        errors = [r[0] for r in con.sql("SELECT error FROM source_files WHERE error IS NOT NULL").fetchall()]
        assert all("\n" not in e and "Traceback" not in e for e in errors), errors
        assert not [e for e in errors if e.startswith("could not")], errors  # newsetl's own failures
    finally:
        con.close()
    # memory stays bounded: this process (where the runs parse) never went near 1 GB
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss < 1 << 20
    return {"listed": len(listed)}


@settings(suppress_health_check=HEALTH, max_examples=examples(60))
@given(fm=yamlgen.front_matter())
def test_the_loader_means_what_pyyaml_means(fm):
    try:
        got = safeyaml.load(fm)
    except safeyaml.YAMLLimit:
        return  # a cap, which PyYAML does not have
    except safeyaml.YAMLProblem:
        got = "refused"
    try:
        want = reference_load(fm)
    except safeyaml.YAMLProblem:
        want = "refused"
    if "refused" in (got, want):
        assert got == want, (got, want)
    else:
        assert_same(got, want)


@settings(suppress_health_check=HEALTH, max_examples=examples(60))
@given(fm=yamlgen.front_matter())
def test_the_fast_parser_is_exact_or_steps_aside(fm):
    try:
        got = fastyaml.load_fast(fm)
    except fastyaml.NeedsFallback:
        return
    assert_same(got, reference_load(fm))


@pytest.mark.slow
@settings(suppress_health_check=HEALTH, max_examples=examples(8))
@given(contents=files_)
def test_any_files_load_beside_good_ones_and_both_parsers_agree(tmp_path, contents):
    site = _site(tmp_path, contents)
    fast, ref = _fresh(tmp_path, "fast"), _fresh(tmp_path, "ref")
    pipeline.run([site], fast, workers=1)
    pipeline.run([site], ref, workers=1, parser="pyyaml")
    assert _check_run(site, fast)["listed"] == len(contents) + 2
    assert_same_tables(fast, ref)


@settings(suppress_health_check=HEALTH, max_examples=examples(5))
@given(before=files_, after=files_)
# found by Hypothesis: a key YAML reads as a bool in a related item (test_hostile.py keeps it too)
@pytest.mark.slow
@example(before=[], after=[yamlgen.as_file("related:\n  - webUrl: https://r.example/0\n    true: []\n")])
def test_incremental_runs_equal_a_rebuild(tmp_path, before, after):
    wh = _fresh(tmp_path, "wh")
    site = _site(tmp_path, before)
    pipeline.run([site], wh, workers=1)
    site = _site(tmp_path, after)
    os.utime(site, None)
    pipeline.run([site], wh, workers=1, allow_deletes=True)  # any change: deleting most files too
    _check_run(site, wh)
    assert_same_as_rebuild([site], wh, _fresh(tmp_path, "rebuilds"))


@pytest.mark.slow
@settings(suppress_health_check=HEALTH, max_examples=examples(10))
@given(tree=yamlgen.file_tree())
@example(tree=[("link", b"x.md", b"sibling")])  # found by Hypothesis: a link to a control file wins its article
@pytest.mark.timeout(300)
def test_any_file_tree_is_listed_and_never_hangs(tmp_path, tree):
    site = _fresh(tmp_path, "site")
    (tmp_path / "outside.md").write_bytes(yamlgen.as_file("title: outside\n"))
    for name, text in CONTROLS.items():
        (site / name).write_text(text)
    yamlgen.build_tree(site, tree, sibling=b"control-a.md")
    wh = _fresh(tmp_path, "wh")
    pipeline.run([site], wh, workers=1)
    _check_run(site, wh)


@pytest.mark.slow
@settings(suppress_health_check=HEALTH, max_examples=examples(5))
@given(data=st.data())
def test_mutated_real_records_load_beside_good_ones(tmp_path, corpus_files, data):
    originals = [data.draw(st.sampled_from(corpus_files)).read_bytes() for _ in range(data.draw(st.integers(1, 3)))]
    contents = [data.draw(yamlgen.mutated(b)) for b in originals]
    site = _site(tmp_path, contents)
    fast, ref = _fresh(tmp_path, "fast"), _fresh(tmp_path, "ref")
    pipeline.run([site], fast, workers=1)
    pipeline.run([site], ref, workers=1, parser="pyyaml")
    _check_run(site, fast)
    assert_same_tables(fast, ref)


@pytest.mark.slow
@settings(suppress_health_check=HEALTH, max_examples=examples(2))
@given(contents=files_)
def test_the_command_exits_0_without_a_traceback(tmp_path, contents):
    site = _site(tmp_path, contents)
    proc = newsetl_cli("run", str(site), "--warehouse", str(_fresh(tmp_path, "wh")), "--no-prefect", "-q")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
