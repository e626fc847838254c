"""The README's promises that code can check: its data dictionary and the CLI's help."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from newsetl import schema

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_table_dictionary_is_generated_from_the_schema():
    text = (ROOT / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- data-dictionary:start.*?-->\n(.*?)\n<!-- data-dictionary:end -->", text, re.S)
    assert block, "docs/data-dictionary.md has no generated block"
    assert block.group(1).strip() == schema.markdown().strip(), \
        "run: python -m newsetl.schema, paste into docs/data-dictionary.md"


def test_readme_shows_the_two_commands():
    assert "make run" in README and "make test" in README


@pytest.mark.parametrize("command", ["", "run", "demo", "sql", "report", "runs", "status", "serve"])
def test_every_command_has_help_with_examples(command):
    args = [sys.executable, "-m", "newsetl.cli", *([command] if command else []), "--help"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "examples:" in out.stdout.lower(), command
