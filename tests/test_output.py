"""What commands print, as in the DuckDB CLI and sqlite-utils: --format, --out -, tables that
fit the terminal, `tables`, `describe`, NEWSETL_WAREHOUSE, and the Python API for notebooks.
Expected values come from the Parquet files themselves (pyarrow), not from the code under test."""

from __future__ import annotations

import csv
import io
import json
import os

import pyarrow.parquet as pq
import pytest

import newsetl
from newsetl import schema

from .helpers.cli import newsetl_cli, newsetl_here

SQL = "SELECT provider_domain, article_count, name_variants FROM providers ORDER BY provider_domain"


def parquet_rows(wh, table: str) -> int:
    folder = wh / "current" / table
    return sum(pq.read_metadata(p).num_rows for p in folder.glob("*.parquet"))


def providers(wh) -> list[dict]:
    t = pq.read_table(wh / "current" / "providers").sort_by("provider_domain")
    return t.select(["provider_domain", "article_count", "name_variants"]).to_pylist()


@pytest.fixture(scope="module")
def wh(demo_wh):
    return demo_wh


def test_out_dash_writes_csv(wh):
    p = newsetl_here("sql", SQL, "--warehouse", str(wh), "--out", "-")
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    want = providers(wh)
    assert [r["provider_domain"] for r in rows] == [w["provider_domain"] for w in want]
    assert [int(r["article_count"]) for r in rows] == [w["article_count"] for w in want]


@pytest.mark.parametrize("fmt", ["json", "ndjson", "markdown", "csv"])
def test_every_format_holds_the_same_rows(wh, fmt):
    p = newsetl_here("sql", SQL, "--warehouse", str(wh), "--format", fmt)
    assert p.returncode == 0, p.stderr
    want = providers(wh)
    if fmt == "json":
        got = json.loads(p.stdout)
    elif fmt == "ndjson":
        got = [json.loads(line) for line in p.stdout.splitlines()]
    elif fmt == "csv":
        got = [{**r, "article_count": int(r["article_count"]), "name_variants": r["name_variants"].split("; ")
                if r["name_variants"] else []} for r in csv.DictReader(io.StringIO(p.stdout))]
    else:
        lines = p.stdout.splitlines()
        assert lines[0] == "| provider_domain | article_count | name_variants |" and lines[1] == "|---|---:|---|"
        got = []
        for line in lines[2:]:
            domain, count, variants = [c.strip() for c in line.strip("|").split(" | ")]
            got.append({"provider_domain": domain, "article_count": int(count),
                        "name_variants": variants.split("; ") if variants else []})
    assert got == want


def test_files_take_their_format_from_the_name(wh, tmp_path):
    for name in ("p.csv", "p.json", "p.ndjson", "p.md", "p.parquet"):
        p = newsetl_here("sql", SQL, "--warehouse", str(wh), "--out", str(tmp_path / name))
        assert p.returncode == 0 and (tmp_path / name).stat().st_size > 0, p.stderr
    assert pq.read_table(tmp_path / "p.parquet").to_pylist() == providers(wh)


def test_a_terminal_table_fits_its_width_and_names_what_it_leaves_out(wh):
    p = newsetl_here("report", "data_quality", "--warehouse", str(wh), "--max-width", "70")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert max(len(line) for line in lines[:-1]) <= 70
    header = [c.strip() for c in lines[1].strip("│").split("│")]
    view = [c.name for c in schema.VIEWS_BY_NAME["data_quality"].columns]
    assert header == view[:len(header)] and "files" in header  # left to right: the useful ones first
    hidden = view[len(header):]
    assert f"{len(hidden)} more column" in lines[-1] and ", ".join(hidden) in lines[-1] and "--max-width" in lines[-1]


def test_runs_shows_the_whole_run_id_and_the_figures_people_look_for(wh):
    p = newsetl_here("runs", "--warehouse", str(wh), "--max-width", "120")
    assert p.returncode == 0, p.stderr
    (run_id,) = pq.read_table(wh / "current" / "runs").column("run_id").to_pylist()
    assert run_id in p.stdout
    header = [c.strip() for c in p.stdout.splitlines()[1].strip("│").split("│")]
    assert header[:7] == ["run_id", "status", "duration_s", "new", "changed", "deleted", "rejected"]


def test_tables_lists_every_table_and_view_with_its_row_count(wh):
    p = newsetl_here("tables", "--warehouse", str(wh), "--format", "json")
    assert p.returncode == 0, p.stderr
    got = {r["name"]: r for r in json.loads(p.stdout)}
    assert set(got) == {t.name for t in schema.WAREHOUSE_TABLES} | set(schema.VIEWS_BY_NAME)
    for t in schema.WAREHOUSE_TABLES:
        assert got[t.name]["rows"] == parquet_rows(wh, t.name) and got[t.name]["kind"] == "table"
    assert got["provider_stats"]["kind"] == "view" and got["provider_stats"]["about"]


def test_describe_gives_columns_types_and_meaning(wh):
    p = newsetl_here("describe", "articles", "--warehouse", str(wh), "--format", "json")
    assert p.returncode == 0, p.stderr
    got = json.loads(p.stdout)
    assert [(r["column"], r["meaning"]) for r in got] == [(c.name, c.doc) for c in schema.ARTICLES.columns]
    assert {r["column"]: r["type"] for r in got}["published_at"] == "TIMESTAMPTZ"
    bad = newsetl_here("describe", "nope", "--warehouse", str(wh))
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no table or view 'nope'" in bad.stderr


def test_the_warehouse_comes_from_the_environment(wh, tmp_path):
    env = {"NEWSETL_WAREHOUSE": str(wh)}
    for args in (("tables",), ("sql", "SELECT count(*) AS n FROM articles", "--format", "csv"), ("status",),
                 ("runs",), ("report", "top_providers"), ("describe", "runs")):
        p = newsetl_here(*args, env=env, cwd=tmp_path)  # no ./warehouse there
        assert p.returncode == 0, (args, p.stderr)
    # and the installed command, in a process of its own
    p = newsetl_cli("sql", "SELECT count(*) AS n FROM articles", "--format", "csv", env=env, cwd=tmp_path)
    assert p.stdout.splitlines()[1] == str(parquet_rows(wh, "articles"))


def test_the_python_api_gives_dataframes(wh, monkeypatch):
    import pandas as pd
    import pyarrow as pa

    monkeypatch.setenv("NEWSETL_WAREHOUSE", str(wh))
    df = newsetl.table("providers")
    assert isinstance(df, pd.DataFrame) and len(df) == parquet_rows(wh, "providers")
    assert str(df["article_count"].dtype) == "Int64"
    top = newsetl.report("top_articles", limit=3)
    assert list(top["rank"]) == [1, 2, 3]
    n = newsetl.query("SELECT count(*) AS n FROM articles", arrow=True)
    assert isinstance(n, pa.Table) and n.column("n").to_pylist() == [parquet_rows(wh, "articles")]
    assert newsetl.query("SELECT $x AS x", params={"x": 5})["x"].tolist() == [5]
    with pytest.raises(ValueError, match="no table or view"):
        newsetl.table("nope")
    assert os.environ["NEWSETL_WAREHOUSE"] == str(wh)
