"""Exploring a warehouse from the command line, and what every command prints: `--format line`,
`describe` with the whole meaning, `sql -p`, close matches for a mistyped name, `runs` with
the Prefect flow run, `-` as standard output, `-q`, progress only on a terminal, the Prefect
note once per warehouse, and counts in words (`1 file`, `2,010 files`). Expected values come
from DuckDB reading the Parquet files, from the schema, or from Prefect's own API."""

from __future__ import annotations

import io
import json
import re
import string
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsetl import export, schema
from newsetl.words import close_match, plural

from .helpers import examples
from .helpers.cli import newsetl_cli, newsetl_here
from .helpers.servers import prefect_env


@pytest.fixture(scope="module")
def wh(demo_wh):
    return demo_wh


def parquet(wh: Path, table: str) -> str:
    return f"read_parquet('{wh}/current/{table}/*.parquet')"


# -- counts in words -------------------------------------------------------------------------

@given(n=st.integers(min_value=-10**15, max_value=10**15),
       word=st.text(string.ascii_lowercase, min_size=1, max_size=12).filter(lambda w: w not in ("batch", "entry",
                                                                                               "query", "was", "is")))
@settings(max_examples=examples(300))
def test_plural_says_the_number_with_separators_and_the_right_word(n, word):
    text = plural(n, word)
    number, _, noun = text.partition(" ")
    assert noun == (word if n == 1 else word + "s")
    assert int(number.replace(",", "")) == n
    groups = number.lstrip("-").split(",")
    assert 1 <= len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:])  # thousands, and only those


def test_plural_of_the_irregular_nouns():
    assert [plural(1, "batch"), plural(2, "batch"), plural(0, "file"), plural(2010, "file")] == \
        ["1 batch", "2 batches", "0 files", "2,010 files"]
    assert plural(1, "worker process", "worker processes") == "1 worker process"
    assert plural(4, "worker process", "worker processes") == "4 worker processes"


def test_the_python_summary_is_the_cli_line(demo_dir, tmp_path):
    from newsetl import pipeline

    p = newsetl_cli("run", str(demo_dir), "--warehouse", str(tmp_path / "cli"), "--no-prefect")
    assert p.returncode == 0, p.stderr
    result = pipeline.run([demo_dir], tmp_path / "py")  # the same first run, from Python
    n = result.run["files_seen"]
    assert n > 1000 and f": {n:,} files ({n:,} new" in result.summary()
    without_id = lambda line: line.split(":", 1)[1]  # noqa: E731
    assert without_id(p.stdout.splitlines()[0]) == without_id(result.summary())


# -- --format line ---------------------------------------------------------------------------

def uninert(text: str) -> str:
    """What `export.inert` escaped, read back (the test's own reader)."""
    out, i = [], 0
    named = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt in named:
                out.append(named[nxt])
                i += 2
                continue
            if nxt == "x" and re.fullmatch(r"[0-9a-f]{2}", text[i + 2:i + 4]):
                out.append(chr(int(text[i + 2:i + 4], 16)))
                i += 4
                continue
            if nxt == "u" and re.fullmatch(r"[0-9a-f]{4}", text[i + 2:i + 6]):
                out.append(chr(int(text[i + 2:i + 6], 16)))
                i += 6
                continue
        out.append(ch)
        i += 1
    return "".join(out)


def parse_lines(text: str) -> list[dict]:
    """`--format line` read back: a dict per row, values as text (NULL: None)."""
    rows = []
    if not text:
        return rows
    assert text.endswith("\n")
    for block in text[:-1].split("\n\n"):
        lines = block.split("\n")  # not splitlines(): U+2028 is a value's, not a line break
        width = len(lines[0].partition(" = ")[0])
        row = {}
        for line in lines:
            name, sep, value = line.partition(" = ")
            assert sep and len(name) == width and name == name.strip().rjust(width), line  # right-aligned
            row[name.strip()] = None if value == "NULL" else uninert(value)
        rows.append(row)
    return rows


def test_line_format_shows_the_rows_duckdb_reads(wh):
    sql = ("SELECT article_id, title, quality, provider_domain, published_at FROM articles "
           "ORDER BY quality DESC NULLS LAST, article_id LIMIT 5")
    p = newsetl_here("sql", sql, "--warehouse", wh, "--format", "line")
    assert p.returncode == 0, p.stderr
    got = parse_lines(p.stdout)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    want = con.sql(f"SELECT article_id, title, quality, provider_domain, "
                   f"strftime(published_at, '%Y-%m-%dT%H:%M:%SZ') AS published_at FROM {parquet(wh, 'articles')} "
                   "ORDER BY quality DESC NULLS LAST, article_id LIMIT 5").fetchall()
    assert [tuple(r.values()) for r in got] == [tuple(None if v is None else str(v) for v in w) for w in want]
    assert p.stdout.split("\n")[0].startswith("     article_id = ")  # right-aligned to published_at's width


@given(rows=st.lists(st.tuples(st.text(max_size=30).filter(lambda s: s != "NULL"),
                               st.one_of(st.none(), st.integers(-10**12, 10**12)),
                               st.one_of(st.none(), st.text(max_size=10).filter(lambda s: s != "NULL"))),
                     max_size=6),
       names=st.lists(st.from_regex(r"[a-z_][a-z0-9_]{0,14}", fullmatch=True), min_size=3, max_size=3, unique=True))
@settings(max_examples=examples(200), deadline=None)
def test_line_format_reads_back_whatever_the_strings_hold(rows, names):
    table = pa.table({names[0]: pa.array([r[0] for r in rows], pa.string()),
                      names[1]: pa.array([r[1] for r in rows], pa.int64()),
                      names[2]: pa.array([r[2] for r in rows], pa.string())})
    out = io.StringIO()
    assert export.write_line(table, out) == len(rows)
    text = out.getvalue()
    assert all(ord(c) >= 0x20 or c == "\n" for c in text)  # nothing that drives a terminal
    assert parse_lines(text) == [{names[0]: a, names[1]: None if b is None else str(b), names[2]: c}
                                 for a, b, c in rows]


def test_every_command_with_format_takes_line(wh, tmp_path):
    for args in (("tables",), ("describe", "runs"), ("runs",), ("report", "top_providers"),
                 ("sql", "SELECT 1 AS one")):
        p = newsetl_here(*args, "--warehouse", wh, "--format", "line")
        assert p.returncode == 0 and " = " in p.stdout.split("\n")[0], (args, p.stderr)
    p = newsetl_cli("check", "--warehouse", str(wh), "--all", "--dry-run", "--format", "line")
    assert p.returncode in (0, 1, 2) and parse_lines(p.stdout)[0]["status"], p.stderr
    bad = newsetl_here("report", "--all", "--out-dir", tmp_path / "r", "--format", "line", "--warehouse", wh)
    assert bad.returncode == 2 and "--all writes files" in bad.stderr


# -- describe: the whole meaning -------------------------------------------------------------

def test_describe_wraps_the_meaning_instead_of_cutting_it(wh):
    p = newsetl_here("describe", "runs", "--warehouse", wh, "--max-width", "70")
    assert p.returncode == 0, p.stderr
    assert "…" not in p.stdout
    lines = p.stdout.splitlines()
    assert max(len(line) for line in lines[:-1]) <= 70
    meaning: dict[str, list[str]] = {}
    name = None
    for line in lines[3:-2]:  # between the header's rule and the bottom rule
        column, _type, text = [c.strip() for c in line.strip("│").split("│")]
        name = column or name
        meaning.setdefault(name, []).append(text)
    want = {c.name: " ".join(c.doc.split()) for c in schema.BY_NAME["runs"].columns}
    assert {k: " ".join(v) for k, v in meaning.items()} == want
    assert any(len(v) > 1 for v in meaning.values())  # some did need more than one line


# -- sql -p ----------------------------------------------------------------------------------

def test_sql_binds_named_parameters(wh):
    con = duckdb.connect()  # its own: the module's default connection is shared with other tests
    (domain, q), = con.sql(f"SELECT provider_domain, median(quality)::INT FROM {parquet(wh, 'articles')} "
                           "GROUP BY 1 ORDER BY count(*) DESC LIMIT 1").fetchall()
    (want,), = con.sql(f"SELECT count(*) FROM {parquet(wh, 'articles')} "
                       f"WHERE provider_domain = ? AND quality > ?", params=[domain, q]).fetchall()
    con.close()
    sql = "SELECT count(*) AS n FROM articles WHERE provider_domain = $d AND quality > $q"
    p = newsetl_here("sql", sql, "-p", "d", domain, "--param", "q", str(q), "--warehouse", wh, "--format", "json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == [{"n": want}] and want > 0
    # bound, never pasted: a value that would be SQL stays a value
    p = newsetl_here("sql", sql, "-p", "d", f"{domain}' OR 1=1 --", "-p", "q", "0", "--warehouse", wh, "--format", "json")
    assert p.returncode == 0 and json.loads(p.stdout) == [{"n": 0}], p.stderr
    p = newsetl_here("sql", "SELECT $x AS x, CAST($x AS INTEGER) + 1 AS y", "-p", "x", "41", "--warehouse", wh,
                     "--format", "json")
    assert json.loads(p.stdout) == [{"x": "41", "y": 42}], p.stderr  # text, cast where the query says
    for args, msg in ((("-p", "x", "1", "-p", "x", "2"), "given twice"), (("-p", "a b", "1"), "parameter's name")):
        p = newsetl_here("sql", "SELECT $x", *args, "--warehouse", wh)
        assert p.returncode == 2 and msg in p.stderr and p.stderr.count("\n") == 1, p.stderr


# -- close matches ---------------------------------------------------------------------------

def test_a_mistyped_name_gets_its_close_match(wh):
    p = newsetl_cli("tabels", "--warehouse", str(wh))
    assert p.returncode == 2 and "invalid choice: 'tabels' (did you mean 'tables'?)" in p.stderr
    p = newsetl_here("report", "top_provider", "--warehouse", wh)
    assert p.returncode == 2 and "unknown report 'top_provider' (did you mean 'top_providers'?)" in p.stderr
    p = newsetl_here("describe", "artcles", "--warehouse", wh)
    assert p.returncode == 2 and "no table or view 'artcles' (did you mean 'articles'?)" in p.stderr
    p = newsetl_here("sql", "SELECT 1", "--format", "jsn", "--warehouse", wh)
    assert p.returncode == 2 and "(did you mean 'json'?)" in p.stderr
    p = newsetl_here("report", "zzzzzz", "--warehouse", wh)  # nothing close: no guess
    assert p.returncode == 2 and "did you mean" not in p.stderr
    assert close_match("sumary", ["status", "summary"]) == " (did you mean 'summary'?)"


# -- `-` is standard output ------------------------------------------------------------------

def test_html_dash_writes_the_page_to_standard_output(wh, tmp_path):
    p = newsetl_here("report", "--html", "-", "--warehouse", wh, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("<!DOCTYPE html>") and p.stdout.rstrip().endswith("</html>")
    assert not (tmp_path / "-").exists() and p.stderr == ""
    page = tmp_path / "r.html"
    assert newsetl_here("report", "--html", page, "--warehouse", wh).returncode == 0
    # the same page, but for the moment it was made (in both forms the page writes times in:
    # the two commands may run either side of a minute's turn)
    strip = lambda t: re.sub(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?( UTC)?"  # noqa: E731
                             r"|\d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d UTC", "", t)
    assert strip(p.stdout) == strip(page.read_text(encoding="utf-8"))


def test_a_catalog_cannot_go_to_standard_output(tmp_path):
    from newsetl.demo import generate

    generate(tmp_path / "site", records=3, seed=1, malformed=False)
    p = newsetl_cli("run", str(tmp_path / "site"), "--warehouse", str(tmp_path / "wh"), "--catalog", "-")
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "--catalog - :" in p.stderr, p.stderr
    assert not (tmp_path / "wh").exists() and not (tmp_path / "-").exists()  # refused before anything is written


# -- quiet, progress, the Prefect note -------------------------------------------------------

def test_demo_quiet_prints_nothing_and_no_progress_in_a_log(tmp_path):
    p = newsetl_cli("demo", str(tmp_path / "d"), "--records", "30", "-q")
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")
    p = newsetl_cli("demo", str(tmp_path / "e"), "--records", "30")
    assert p.returncode == 0 and p.stderr == ""  # not a terminal: no progress lines
    assert re.fullmatch(r"wrote 3\d files \(30 records, \d+ malformed on purpose, [\d.]+ MB\) to .*\n", p.stdout)


def test_a_local_run_draws_no_progress_in_a_log_and_notes_prefect_once(tmp_path):
    from .test_run_modes import no_prefect_env

    from newsetl.demo import generate

    generate(tmp_path / "site", records=40, seed=3)
    env = no_prefect_env(tmp_path)
    first = newsetl_cli("run", str(tmp_path / "site"), "--warehouse", str(tmp_path / "wh"), env=env)
    assert first.returncode == 0, first.stderr
    assert "parsing" not in first.stderr
    assert first.stderr.count("not tracked in Prefect") == 1
    again = newsetl_cli("run", str(tmp_path / "site"), "--warehouse", str(tmp_path / "wh"), env=env)
    assert again.returncode == 0 and "not tracked in Prefect" not in again.stderr
    other = newsetl_cli("run", str(tmp_path / "site"), "--warehouse", str(tmp_path / "wh2"),
                        env={**env, "NEWSETL_PREFECT_NOTE": "off"})
    assert other.returncode == 0 and "not tracked in Prefect" not in other.stderr
    rejected = int(re.search(r"(\d+) rejected\)", first.stdout).group(1))
    if rejected:
        assert f"{plural(rejected, 'file')} rejected:" in first.stderr


# -- runs: the Prefect flow run --------------------------------------------------------------

@pytest.mark.slow
def test_runs_shows_the_flow_run_and_its_page(prefect_server, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from newsetl.demo import generate

    url, home = prefect_server
    generate(tmp_path / "site", records=20, seed=5, malformed=False)
    env = prefect_env(home, PREFECT_API_URL=url)
    p = newsetl_cli("run", str(tmp_path / "site"), "--warehouse", str(tmp_path / "wh"), env=env)
    assert p.returncode == 0, p.stderr
    assert "temporary Prefect server" not in p.stderr  # there is one running
    p = newsetl_here("runs", "--warehouse", tmp_path / "wh", "--format", "json", env={"PREFECT_API_URL": url})
    (row,) = json.loads(p.stdout)
    with temporary_settings(updates={PREFECT_API_URL: url}), get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(row["flow_run_id"])
    assert flow_run.state.is_completed()
    assert row["flow_run_url"] == f"{url.removesuffix('/api')}/runs/flow-run/{flow_run.id}"
    p = newsetl_here("runs", "--warehouse", tmp_path / "wh", "--format", "json",
                     env={"PREFECT_API_URL": url, "PREFECT_UI_URL": "https://ui.example/"})
    assert json.loads(p.stdout)[0]["flow_run_url"] == f"https://ui.example/runs/flow-run/{flow_run.id}"
