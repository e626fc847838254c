"""The README's promises that code can check: its data dictionary and the CLI's help."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from newsetl import schema

from .conftest import ROOT
from .helpers.readme import README, blocks as _blocks, commands as _commands


@pytest.mark.parametrize("marker, generated, command", [
    ("data-dictionary", schema.markdown, "python -m newsetl.schema"),
    ("views", schema.views_markdown, "python -m newsetl.schema views"),
    ("mapping", schema.mapping_markdown, "python -m newsetl.schema mapping"),
])
def test_data_dictionary_is_generated_from_the_schema(marker, generated, command):
    text = (ROOT / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    block = re.search(rf"<!-- {marker}:start.*?-->\n(.*?)\n<!-- {marker}:end -->", text, re.S)
    assert block, f"docs/data-dictionary.md has no generated {marker} block"
    assert block.group(1).strip() == generated().strip(), f"run: {command}, paste into docs/data-dictionary.md"


def test_readme_shows_the_two_commands():
    assert "make run" in README and "make test" in README


@pytest.mark.parametrize("command", ["", "run", "demo", "sql", "report", "runs", "status", "serve", "tables",
                                     "describe", "check", "rollback"])
def test_every_command_has_help_with_examples(command, capsys):
    from newsetl import cli

    with pytest.raises(SystemExit) as done:  # in this process: what `newsetl COMMAND --help` prints
        cli.main([*([command] if command else []), "--help"])
    out = capsys.readouterr()
    assert done.value.code == 0, out.err
    assert "examples:" in out.out.lower(), command


# -- every example of the README, run as written -------------------------------------------------

@pytest.fixture(scope="module")
def readme_folder(demo_dir, demo_wh, tmp_path_factory) -> Path:
    """A folder laid out as the README assumes after `make run`: data/demo, warehouse/,
    and the sites of "Your own records" (a few demo records each, and the Hugo post)."""
    import shutil

    here = tmp_path_factory.mktemp("readme")
    (here / "data").mkdir()
    shutil.copytree(demo_dir, here / "data" / "demo")
    shutil.copytree(demo_wh, here / "warehouse", symlinks=True)
    records = sorted(demo_dir.glob("*.md"))
    for site, start in (("site", 0), ("site-a", 40), ("site-b", 80)):
        (here / site / "_posts").mkdir(parents=True)
        for path in records[start:start + 40]:
            shutil.copy(path, here / site / "_posts" / path.name)
    # the Hugo post the README shows (```markdown), where it says it is
    post = here / "blog" / "content" / "posts" / "hello.md"
    post.parent.mkdir(parents=True)
    post.write_text(_blocks("markdown")[0], encoding="utf-8")
    return here


def test_the_readme_has_examples_to_run():
    assert len(_commands()) >= 15 and len(_blocks("sql")) >= 3 and len(_blocks("python")) >= 1


@pytest.mark.slow
@pytest.mark.parametrize("command", _commands())
def test_every_readme_command_runs_as_written(readme_folder, command):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("NEWSETL_WAREHOUSE", None)
    env.pop("PREFECT_API_URL", None)
    res = subprocess.run(command, shell=True, cwd=readme_folder, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f"{command}\n{res.stderr[-2000:]}"
    assert "Traceback" not in res.stderr
    if command.startswith(("newsetl sql", "newsetl report", "newsetl tables", "newsetl describe", "duckdb")) and \
            ("--out " not in command or "--out -" in command) and "--html" not in command:
        assert res.stdout.strip(), command  # it printed rows


@pytest.mark.parametrize("sql", _blocks("sql"))
def test_every_readme_sql_example_returns_rows_on_the_demo_data(demo_wh, sql):
    import newsetl

    assert len(newsetl.query(sql, demo_wh)) > 0


@pytest.mark.slow
def test_the_readme_python_runs(readme_folder):
    (code,) = _blocks("python")
    res = subprocess.run([sys.executable, "-c", code], cwd=readme_folder, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "run " in res.stdout  # the summary of the run it starts
