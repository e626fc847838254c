"""The newsetl command as a user runs it: a real process, its output and exit code."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys

import pytest

from .conftest import BAD_INPUT


def newsetl(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "newsetl.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


@pytest.fixture(scope="module")
def wh(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "wh"
    r = newsetl("run", BAD_INPUT, "--warehouse", out, "--no-prefect", "--top", "3")
    assert r.returncode == 0, r.stderr
    assert "21 files (21 new" in r.stdout and "Top 3 providers" in r.stdout and "example.com" in r.stdout
    assert "9 files rejected" in r.stderr  # and how to see them
    return out


def test_missing_input_folder_is_one_line_and_exit_2(tmp_path):
    r = newsetl("run", tmp_path / "nope", "--warehouse", tmp_path / "wh")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"newsetl run: error: input folder not found: {tmp_path / 'nope'}"]


def test_unwritable_warehouse_is_one_line_and_exit_1(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    r = newsetl("run", BAD_INPUT, "--warehouse", blocker / "wh", "--no-prefect")
    assert r.returncode == 1
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("newsetl run: error: warehouse ") and "is not writable" in line


def test_sql_without_a_warehouse_says_what_to_do(tmp_path):
    r = newsetl("sql", "SELECT 1", "--warehouse", tmp_path / "none")
    assert r.returncode == 1
    assert "no warehouse at" in r.stderr and "newsetl run" in r.stderr


def test_sql_prints_a_table(wh):
    r = newsetl("sql", "SELECT provider_domain, article_count FROM providers ORDER BY 1", "--warehouse", wh)
    assert r.returncode == 0, r.stderr
    assert "example.com" in r.stdout and "nowhere.example" in r.stdout and "│" in r.stdout


def test_sql_bad_query_is_one_line(wh):
    r = newsetl("sql", "SELECT nope FROM articles", "--warehouse", wh)
    assert r.returncode == 1
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("newsetl sql: error: SQL error:")


def test_sql_out_csv_from_another_folder(wh, tmp_path):
    out = tmp_path / "issues.csv"
    r = newsetl("sql", "SELECT field, raw_value FROM data_issues ORDER BY field", "--warehouse", wh, "--out", out,
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert rows[0] == ["field", "raw_value"] and len(rows) == 6
    assert ["quality", "high"] in rows


@pytest.mark.slow
def test_demo_then_run_twice_is_incremental(tmp_path):
    d = tmp_path / "demo"
    r = newsetl("demo", d, "--records", 50, "--seed", 9)
    assert r.returncode == 0 and "50 records" in r.stdout
    assert newsetl("run", d, "--warehouse", tmp_path / "wh", "--no-prefect", "-q").returncode == 0
    again = newsetl("run", d, "--warehouse", tmp_path / "wh", "--no-prefect")
    n = len(list(d.glob("*.md")))
    assert f"{n} files (0 new, 0 changed, {n} unchanged" in again.stdout
    runs = newsetl("runs", "--warehouse", tmp_path / "wh", "--format", "csv")
    assert runs.returncode == 0 and len(runs.stdout.strip().splitlines()) == 3  # header + 2 runs
    status = newsetl("status", "--warehouse", tmp_path / "wh")
    assert status.returncode == 0 and "last run" in status.stdout and "articles" in status.stdout


def test_duckdb_shell_opens_the_catalog_from_the_repository_root(wh):
    shell = os.path.join(os.path.dirname(sys.executable), "duckdb")
    if not os.path.exists(shell):
        pytest.skip("no .venv/bin/duckdb (make install provides it)")
    r = subprocess.run([shell, "-readonly", "-csv", "-noheader", str(wh / "news.duckdb"), "-c",
                        "SELECT count(*) FROM articles"], capture_output=True, text=True, timeout=60, cwd="/")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "11"
