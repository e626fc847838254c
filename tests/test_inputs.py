"""Input folders and their names: whatever inputs and names are given, no two files share a
source_path and no file is read twice (issue 20), or the run is refused in one line."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import newsetl
from newsetl import pipeline
from newsetl.sources import SUFFIXES, InputError, discover, input_names, resolve_inputs

from .helpers import examples
from .helpers.cli import newsetl_cli
from .helpers.records import record

HEALTH = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


def _write(path: Path, n: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(record(f"r{n}", "quality: 1", url=f"https://site.example/{n}"))


def _files_under(root: Path) -> set[str]:
    """Every record file under `root` (walked here, not by newsetl): their real paths."""
    out = set()
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if not x.startswith(".")]
        out.update(os.path.realpath(os.path.join(d, f)) for f in files
                   if not f.startswith(".") and f.lower().endswith(SUFFIXES))
    return out


def _articles(wh) -> list[tuple]:
    return newsetl.connect(wh).execute("SELECT url, source_path FROM articles ORDER BY 1").fetchall()


# -- the issue's example -------------------------------------------------------------------------

@pytest.mark.slow
def test_an_automatic_name_never_meets_a_given_one_issue_example(tmp_path):
    """`newsetl run in/p/in in/q/in p=in/r`: the automatic name `p/in` met the given name `p`,
    whose file `in/a.md` is also `p/in/a.md`: 3 files gave 5 article rows, and the next run
    said "1 changed" and lost an article."""
    for i, folder in enumerate(["in/p/in", "in/q/in", "in/r/in"]):
        _write(tmp_path / folder / "a.md", i)
    args = ["run", "in/p/in", "in/q/in", "p=in/r", "--warehouse", "wh", "--no-prefect"]
    first = newsetl_cli(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    paths = sorted(r[0] for r in newsetl.connect(tmp_path / "wh").execute("SELECT source_path FROM source_files").fetchall())
    assert paths == ["in/p/in/a.md", "p/in/a.md", "q/in/a.md"]
    assert [u for u, _ in _articles(tmp_path / "wh")] == [f"https://site.example/{i}" for i in range(3)]
    again = newsetl_cli(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "3 files (0 new, 0 changed, 3 unchanged, 0 deleted" in again.stdout
    assert len(_articles(tmp_path / "wh")) == 3


# -- names, one case each ------------------------------------------------------------------------

def test_automatic_names_lengthen_past_a_given_name_they_would_fall_inside():
    assert input_names([Path("/t/in/p/in"), Path("/t/in/q/in")], taken={"p"}) == {
        Path("/t/in/p/in"): "in/p/in", Path("/t/in/q/in"): "q/in"}
    # `in` and `p/in` can never give the same source_path: no need to lengthen
    assert input_names([Path("/p/in")], taken={"p/in"}) == {Path("/p/in"): "in"}
    # a name inside an automatic one lengthens it too
    assert input_names([Path("/w/x"), Path("/v/y/x/z")], taken={"x/z"}) == {Path("/w/x"): "w/x", Path("/v/y/x/z"): "z"}


def test_an_automatic_name_that_cannot_lengthen_enough_is_one_line():
    with pytest.raises(InputError) as e:
        input_names([Path("/in")], taken={"in/x"})
    assert "\n" not in str(e.value) and "'in' and 'in/x'" in str(e.value) and "NAME=PATH" in str(e.value)


def _tree(tmp_path) -> Path:
    for i, folder in enumerate(["site", "site/sub", "other"]):
        _write(tmp_path / folder / "a.md", i)
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize("args, says", [
    (["p=site", "p/in=other"], "input names 'p' and 'p/in' overlap"),
    (["a=site", "b=site"], "is given twice, as 'a' and 'b'"),
    (["site", "site/sub"], "site/sub is inside input"),
    (["x=site/sub", "site"], "site/sub is inside input"),
])
def test_inputs_that_would_read_a_file_twice_are_refused_in_one_line(tmp_path, args, says):
    """One folder under two names, or one inside another, would read its files twice (two
    source_paths, two articles): refused, naming both, before anything is written."""
    _tree(tmp_path)
    def absolute(arg: str) -> str:
        name, _, path = arg.rpartition("=")
        return (name + "=" if name else "") + str(tmp_path / path)

    with pytest.raises(InputError) as e:
        resolve_inputs([absolute(a) for a in args])
    assert says in str(e.value) and "\n" not in str(e.value)
    p = newsetl_cli("run", *args, "--warehouse", "wh", "--no-prefect", cwd=tmp_path)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and says in p.stderr, p.stderr
    assert not (tmp_path / "wh").exists()


def test_one_folder_given_twice_or_named_and_not_is_read_once(tmp_path):
    _tree(tmp_path)
    site = str(tmp_path / "site" / "sub")
    assert [f.source_path for f in discover([site, site])] == ["sub/a.md"]
    assert [f.source_path for f in discover([site, f"s={site}"])] == ["s/a.md"]


# -- any inputs, any names -----------------------------------------------------------------------

SEGMENTS = ["in", "p", "q"]
folders_ = st.lists(st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=3).map("/".join),
                    min_size=1, max_size=5, unique=True)
NAMES = ["p", "q", "in", "p/in", "in/p", "q/in", "in/in"]


@st.composite
def input_sets(draw):
    """A tree of folders, each holding a record (and one in a subfolder named like an input),
    and inputs among its folders, some named (NAME=PATH) with names that may overlap."""
    folders = draw(folders_)
    every = sorted({"/".join(f.split("/")[:i]) for f in folders for i in range(1, f.count("/") + 2)})
    inputs = draw(st.lists(st.tuples(st.sampled_from(every), st.none() | st.sampled_from(NAMES)),
                           min_size=1, max_size=4))
    return folders, inputs


def _make(tmp_path: Path, folders: list[str]) -> Path:
    base = tmp_path / "t"
    shutil.rmtree(base, ignore_errors=True)
    for i, f in enumerate(folders):
        _write(base / f / "a.md", 2 * i)
        _write(base / f / "in" / "b.md", 2 * i + 1)
    return base


def _given(base: Path, inputs) -> list[str]:
    return [f"{name}={base / f}" if name else str(base / f) for f, name in inputs]


def _check_listing(base: Path, inputs) -> list | None:
    """The listing of `inputs`, checked: every file under them once, every source_path unique;
    or None when refused in one line."""
    try:
        roots = resolve_inputs(_given(base, inputs))
        files = discover(_given(base, inputs))
    except InputError as e:
        assert str(e) and "\n" not in str(e)
        return None
    paths = [f.source_path for f in files]
    assert len(set(paths)) == len(paths), paths
    expected = sorted(p for root in roots.values() for p in _files_under(root))
    assert sorted(os.path.realpath(f.path) for f in files) == expected  # each exactly once
    for f in files:
        assert any(f.source_path == f"{name}/{f.rel_path}" for name in roots)
    return files


@settings(suppress_health_check=HEALTH, max_examples=examples(60), deadline=None)
@given(case=input_sets())
def test_any_inputs_and_names_give_unique_source_paths_or_one_line(tmp_path, case):
    folders, inputs = case
    _check_listing(_make(tmp_path, folders), inputs)


@pytest.mark.slow
@settings(suppress_health_check=HEALTH, max_examples=examples(6), deadline=None)
@given(case=input_sets())
def test_any_inputs_load_each_article_once_and_a_second_run_changes_nothing(tmp_path, case):
    folders, inputs = case
    base = _make(tmp_path, folders)
    files = _check_listing(base, inputs)
    if files is None:
        return
    wh = tmp_path / "wh"
    shutil.rmtree(wh, ignore_errors=True)
    given_ = _given(base, inputs)
    first = pipeline.run(given_, wh, workers=1)
    assert first.run["files_seen"] == len(files)
    rows = _articles(wh)
    assert len(rows) == len(files)  # each file's own url: one article per file, none counted twice
    second = pipeline.run(given_, wh, workers=1)
    assert (second.run["files_changed"], second.run["files_new"], second.run["files_deleted"]) == (0, 0, 0)
    assert second.run["files_unchanged"] == len(files)
    assert _articles(wh) == rows
