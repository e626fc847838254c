"""Read commands start without the heavy libraries (issue 24): what `import newsetl`, building
the parser, `--help`, `tables`, `describe`, `sql` and `status` import, each in a fresh
interpreter. How long they take is bench/startup.py's to measure: no test asserts a time.
And what the shortcuts behind it must not change: the terminal table drawn from DuckDB's rows
is the one drawn from Arrow, `sql` binds only the analytics views a query can use yet sees
them all when it lists the catalog, and `tables` counts the same from its cache."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from newsetl import catalog, export

from .helpers.cli import newsetl_here

# none of these is needed to start, parse the command line or show a table on the terminal
HEAVY = ("pandas", "pyarrow", "numpy", "prefect", "ryml", "yaml", "orjson")

PROBE = """
import contextlib, io, json, sys
with contextlib.redirect_stdout(io.StringIO()):
{body}
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})))
"""


def loaded(body: str, *, also=()) -> list[str]:
    """The heavy modules (and `also`) a fresh interpreter holds after running `body`."""
    code = PROBE.format(body="\n".join("    " + line for line in body.strip().splitlines()),
                        heavy=(*HEAVY, *also))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def cli_main(*argv: str) -> str:
    return f"""
import newsetl.cli
try:
    code = newsetl.cli.main({list(argv)!r})
except SystemExit as e:  # --help
    code = e.code
assert not code, code
"""


def test_import_newsetl_imports_no_engine():
    """newsetl.table/query/report/connect are one call away, and importing them costs nothing."""
    assert loaded("import newsetl\nassert callable(newsetl.query) and callable(newsetl.connect)",
                  also=("duckdb",)) == []


def test_the_parser_and_help_import_no_engine():
    assert loaded("import newsetl.cli\nnewsetl.cli.build_parser()", also=("duckdb",)) == []
    assert loaded(cli_main("--help"), also=("duckdb",)) == []
    assert loaded(cli_main("sql", "--help"), also=("duckdb",)) == []


@pytest.mark.parametrize("argv", [("tables",), ("describe", "articles"), ("describe", "provider_stats"),
                                  ("sql", "select 1"), ("sql", "SELECT * FROM provider_stats"), ("status",),
                                  ("runs",)], ids=" ".join)
def test_read_commands_show_a_table_without_pyarrow_or_pandas(demo_wh, argv):
    assert loaded(cli_main(*argv, "--warehouse", str(demo_wh))) == []


def test_status_of_a_warehouse_as_newsetl_left_it_imports_no_engine(tmp_path):
    """Its figures come from the snapshot (test_status_figures: the same as DuckDB's)."""
    from newsetl import pipeline
    from newsetl.demo import generate

    generate(tmp_path / "site", records=10, seed=4)
    pipeline.run([tmp_path / "site"], tmp_path / "wh", workers=1)
    assert loaded(cli_main("status", "--warehouse", str(tmp_path / "wh")), also=("duckdb",)) == []


def test_tables_and_describe_answered_from_the_cache_import_no_engine(demo_wh, tmp_path, monkeypatch):
    """Once counted and described, a snapshot's tables and columns come from the snapshot's
    record and the user's cache (their figures: test_tables_counts_the_same_from_its_cache,
    test_describe_from_the_cache_is_what_duckdb_says)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for argv in (("tables",), ("describe", "articles"), ("describe", "provider_stats")):
        assert newsetl_here(*argv, "--warehouse", demo_wh).returncode == 0
        assert loaded(cli_main(*argv, "--warehouse", str(demo_wh)), also=("duckdb",)) == [], argv


def test_describe_from_the_cache_is_what_duckdb_says(demo_wh, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    con = catalog.connect(demo_wh)
    try:
        for name in [t.name for t in catalog.WAREHOUSE_TABLES] + [v.name for v in catalog.VIEWS]:
            want = [(c, t.replace("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"))
                    for c, t, *_ in con.execute(f'DESCRIBE "{name}"').fetchall()]
            first, again = (catalog.describe(demo_wh, name) for _ in range(2))
            assert [tuple(r[:2]) for r in first.rows] == want == [tuple(r[:2]) for r in again.rows], name
    finally:
        con.close()
    assert len(list((tmp_path / "newsetl" / "describe").iterdir())) == len(catalog.WAREHOUSE_TABLES) + len(catalog.VIEWS)


@pytest.mark.parametrize("sql", ["SELECT * FROM runs", "SELECT * FROM provider_stats",
                                 "SELECT * FROM articles ORDER BY article_id",
                                 "SELECT 1 AS a, 1 AS a, NULL AS n, [1, 2] AS l, {'k': 'v'} AS s, 2.50::DECIMAL(4, 2) AS d"])
def test_the_terminal_table_from_duckdb_rows_is_the_one_from_arrow(demo_wh, sql):
    con = catalog.connect(demo_wh, sealed=True)
    try:
        rel = con.sql(sql)
        shown = []
        for table in (export.Rows.of(rel, export.MAX_ROWS), rel.to_arrow_table()):
            buf = io.StringIO()
            export.show(table, stream=buf, max_width=200)
            shown.append(buf.getvalue())
    finally:
        con.close()
    assert shown[0] == shown[1]


def test_sql_binds_the_views_a_query_names_and_what_they_use():
    names = lambda sql: [n for n, _ in catalog.views_for(sql)]  # noqa: E731
    every = [n for n, _ in catalog.view_sql_files()]
    assert names("select 1") == []
    assert names("SELECT * FROM articles") == []
    some = names("select * from PROVIDER_STATS")  # and what its file names, comments too: more is harmless
    assert {"articles_in", "provider_stats"} <= set(some) and len(some) < len(every)
    assert "articles_in" in names("SELECT * FROM top_articles_for(topic := 'AI')")
    assert "provider_stats" in names("SELECT * FROM provider_statz")  # DuckDB can say "Did you mean"
    for listing in ("SHOW TABLES", "DESCRIBE", "SELECT * FROM duckdb_views()", "FROM information_schema.tables"):
        assert names(listing) == every, listing


def test_sql_lists_every_view_as_the_catalog_file_does(demo_wh):
    p = newsetl_here("sql", "SELECT table_name FROM information_schema.tables ORDER BY 1", "--warehouse", demo_wh,
                     "--format", "csv")
    assert p.returncode == 0, p.stderr
    listed = set(p.stdout.split()[1:])
    assert {t.name for t in catalog.WAREHOUSE_TABLES} | {v.name for v in catalog.VIEWS} <= listed


def test_tables_counts_the_same_from_its_cache(demo_wh, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    first = newsetl_here("tables", "--warehouse", demo_wh, "--format", "csv")
    assert first.returncode == 0, first.stderr
    assert list((tmp_path / "newsetl" / "view-rows").iterdir())
    again = newsetl_here("tables", "--warehouse", demo_wh, "--format", "csv")
    assert again.stdout == first.stdout
    con = catalog.connect(demo_wh)
    try:
        want = {v.name: con.execute(f'SELECT count(*) FROM "{v.name}"').fetchall()[0][0] for v in catalog.VIEWS}
        want |= {t.name: con.execute(f'SELECT count(*) FROM "{t.name}"').fetchall()[0][0]
                 for t in catalog.WAREHOUSE_TABLES}
    finally:
        con.close()
    rows = [line.split(",", 3) for line in again.stdout.splitlines()[1:]]
    assert {name: int(n) for name, _kind, n, _about in rows} == want


@pytest.mark.slow  # three runs
def test_tables_counts_again_what_a_run_changed(tmp_path, monkeypatch):
    """The views' counts are kept by the files they read: a run that changes nothing reuses them,
    one that changes the articles counts them again."""
    from newsetl import pipeline
    from newsetl.demo import generate

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    site, wh = tmp_path / "site", tmp_path / "wh"
    generate(site, records=30, seed=3)
    pipeline.run([site], wh, workers=1)

    def shown() -> dict:
        p = newsetl_here("tables", "--warehouse", wh, "--format", "csv")
        assert p.returncode == 0, p.stderr
        return {name: int(n) for name, _kind, n, _about in (line.split(",", 3) for line in p.stdout.splitlines()[1:])}

    def live() -> dict:
        con = catalog.connect(wh)
        try:
            return {n: con.execute(f'SELECT count(*) FROM "{n}"').fetchall()[0][0]
                    for n in [t.name for t in catalog.WAREHOUSE_TABLES] + [v.name for v in catalog.VIEWS]}
        finally:
            con.close()

    assert shown() == live()
    kept = set((tmp_path / "cache" / "newsetl" / "view-rows").iterdir())
    pipeline.run([site], wh, workers=1)  # nothing changed: the views over the articles are not counted again,
    assert shown() == live()  # and those over the checks' tables come counted by the run's check stage
    new = set((tmp_path / "cache" / "newsetl" / "view-rows").iterdir()) - kept
    assert not new
    assert loaded(cli_main("tables", "--warehouse", str(wh)), also=("duckdb",)) == []
    for f in sorted(site.rglob("*.md"))[:10]:
        f.unlink()
    pipeline.run([site], wh, workers=1)
    before = live()
    assert shown() == before
