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


def _caret_under(lines: list[str], word: str) -> bool:
    """Whether the line after `LINE n: ...` puts a caret under the first letter of `word`."""
    i = next(i for i, line in enumerate(lines) if line.startswith("LINE "))
    return lines[i + 1].index("^") == lines[i].index(word)


def _sql_error(wh, query: str) -> list[str]:
    """The lines `newsetl sql QUERY` writes to standard error, which it ends with exit code 1."""
    r = newsetl("sql", query, "--warehouse", wh)
    assert r.returncode == 1, r.stdout
    return r.stderr.rstrip("\n").split("\n")


def test_sql_error_keeps_duckdbs_hint_and_caret(wh):
    lines = _sql_error(wh, "SELECT title FROM artcles")
    assert lines[0] == "newsetl sql: error: SQL error: Catalog Error: Table with name artcles does not exist!"
    assert 'Did you mean "articles"?' in lines
    assert "LINE 1: SELECT title FROM artcles" in lines and _caret_under(lines, "artcles")


def test_sql_binder_error_names_the_candidates_and_the_place(wh):
    lines = _sql_error(wh, "SELECT provider_domain,\n       titel FROM articles")
    assert lines[0].startswith('newsetl sql: error: SQL error: Binder Error: Referenced column "titel" not found')
    assert any(line.startswith("Candidate bindings:") and '"title"' in line for line in lines)
    assert "LINE 2:        titel FROM articles" in lines and _caret_under(lines, "titel")


def test_sql_syntax_error_shows_the_place(wh):
    lines = _sql_error(wh, "SELECT * FRM articles")
    assert lines[0].startswith("newsetl sql: error: SQL error: Parser Error: syntax error at or near")
    assert "LINE 1: SELECT * FRM articles" in lines and _caret_under(lines, "articles")


def test_errors_other_than_duckdbs_stay_one_line(wh):
    r = newsetl("sql", "COPY articles TO 'x.csv'", "--warehouse", wh)
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("newsetl sql: error: COPY articles ...: newsetl sql runs queries only")


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


# -- numeric options are checked as the command line is read ------------------------------------------

# (command line before the option, the option, values it refuses, values it takes)
NUMERIC = [
    (["run", "site"], "--lock-timeout", ["-5", "-0.1", "nan", "inf", "soon"], ["0", "2.5", "600"]),
    (["run", "site"], "--workers", ["0", "-1", "1.5", "many"], ["1", "4"]),
    (["run", "site"], "--top", ["0", "-3", "ten"], ["1", "20"]),
    (["demo", "d"], "--records", ["-1", "1.5", "lots"], ["0", "50"]),
    (["demo", "d"], "--seed", ["1.5", "x"], ["-7", "0"]),
    (["sql", "SELECT 1"], "--max-width", ["0", "-80", "wide"], ["1", "80"]),
    (["runs"], "--limit", ["0", "-5", "all"], ["1", "3"]),
    (["runs"], "--max-width", ["0"], ["100"]),
    (["tables"], "--max-width", ["-1"], ["100"]),
    (["describe", "articles"], "--max-width", ["0"], ["100"]),
    (["report", "top_providers"], "--max-width", ["0"], ["100"]),
    (["serve", "site", "--cron", "* * * * *"], "--lock-timeout", ["-1", "nan"], ["0"]),
    (["serve", "site"], "--interval", ["0", "-900", "nan", "inf", "hourly"], ["900", "0.5"]),
]


@pytest.mark.parametrize("before, option, bad, good", NUMERIC, ids=[f"{b[0]} {o}" for b, o, _, _ in NUMERIC])
def test_numeric_options_are_checked_in_one_line(before, option, bad, good, capsys):
    from newsetl import cli

    parser = cli.build_parser()
    for value in bad:
        with pytest.raises(SystemExit) as e:
            cli.main([*before, option, value])
        err = capsys.readouterr().err
        assert e.value.code == 2, (option, value)
        (line,) = err.splitlines()  # one line, no usage text
        assert line.startswith(f"newsetl {before[0]}: error: argument {option}: {value!r} is not "), line
    for value in good:
        a = parser.parse_args([*before, option, value])
        assert getattr(a, option.lstrip("-").replace("-", "_")) == float(value)


def test_report_limits_are_checked_in_one_line(wh):
    for args in (("--limit", "0"), ("--limit", "-5"), ("--min-articles", "-1"), ("--limit", "x")):
        r = newsetl("report", "top_providers", *args, "--warehouse", wh)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, (args, r.stderr)
        assert args[0] in r.stderr


def test_a_negative_lock_timeout_stops_the_run_before_it_starts(tmp_path):
    r = newsetl("run", BAD_INPUT, "--warehouse", tmp_path / "wh", "--lock-timeout", "-5", "--no-prefect")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines() == ["newsetl run: error: argument --lock-timeout: '-5' is not a number of seconds "
                                     "of at least 0"]
    assert not (tmp_path / "wh").exists()


# -- a reader that goes away: `newsetl ... | head -1` ------------------------------------------------

MANY_ROWS = "SELECT range AS n, repeat('x', 40) AS pad FROM range(300000)"  # megabytes: more than a pipe holds


def _reader_goes_away(*args, read: int = 1000) -> tuple[int, str]:
    """Run newsetl with its standard output on a real pipe; read `read` bytes of it (none: close
    it at once), close it, and return the exit code and what it wrote on standard error."""
    p = subprocess.Popen([sys.executable, "-m", "newsetl.cli", *map(str, args)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        if read:
            got = os.read(p.stdout.fileno(), read)
            assert got
        p.stdout.close()
        err = p.stderr.read().decode()
        return p.wait(timeout=120), err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.parametrize("fmt", [("--out", "-"), ("--format", "json"), ("--format", "ndjson"),
                                 ("--format", "markdown")], ids=lambda f: " ".join(f))
def test_a_closed_pipe_ends_the_output_quietly(wh, fmt):
    code, err = _reader_goes_away("sql", MANY_ROWS, "--warehouse", wh, *fmt)
    assert (code, err) == (141, ""), err  # 128 + SIGPIPE, as a shell reports `seq 1e9 | head -1`


@pytest.mark.parametrize("args", [("report", "top_providers"), ("status",), ("report", "--list"),
                                  ("runs", "--format", "csv")], ids=lambda a: " ".join(a))
def test_a_pipe_closed_before_any_output_ends_quietly(wh, args):
    extra = () if "--list" in args else ("--warehouse", wh)
    code, err = _reader_goes_away(*args, *extra, read=0)
    assert (code, err) == (141, ""), err
