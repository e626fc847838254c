"""How the build lays out the files it writes, where the layout is not the rows but still matters:
related_links' rows grouped by their target, so that a row group's repeated urls, titles and
excerpts are dictionary-encoded (rows_related_links.sql says why: 2.5x the bytes without)."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from newsetl import build, demo, pipeline


def _join_types(con: duckdb.DuckDBPyConnection, sql: str) -> list[str]:
    plan = con.execute(f"EXPLAIN {sql}").fetchall()[0][1]
    return [line.split("Join Type:")[1].strip(" │") for line in plan.splitlines() if "Join Type:" in line]


def test_joins_as_written_keep_the_hash_table_on_the_right():
    con = duckdb.connect()
    con.execute("CREATE TABLE ids AS SELECT range::VARCHAR AS id FROM range(10)")
    con.execute("CREATE TABLE links AS SELECT (range % 20)::VARCHAR AS target, range AS n FROM range(100000)")
    sql = "SELECT l.n, i.id FROM ids i RIGHT JOIN links l ON i.id = l.target"
    # DuckDB hashes the smaller side unless told: the ids, streaming the links (a LEFT join)
    assert _join_types(con, sql) == ["LEFT"]
    with build._joins_as_written(con, True):
        assert _join_types(con, sql) == ["RIGHT"]  # the links are the hash table, as written
    assert _join_types(con, sql) == ["LEFT"]  # and only inside
    with build._joins_as_written(con, False):
        assert _join_types(con, sql) == ["LEFT"]


@pytest.mark.slow  # a 2,000-record first run: 4 s
def test_a_first_runs_related_links_are_dictionary_encoded(tmp_path: Path):
    # at 2,000 records the links in their staging order hold too many distinct urls per row group
    # for DuckDB's dictionary (plain pages, 2.1x the bytes); grouped by target they do not
    site = tmp_path / "site"
    demo.generate(site, records=2000, seed=7, malformed=False, profile="azure")
    pipeline.run([site], tmp_path / "wh", workers=1)
    part = tmp_path / "wh" / "current" / "related_links" / "part-0.parquet"
    meta = pq.read_metadata(part)
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    assert meta.num_row_groups > 1
    for rg in range(meta.num_row_groups):
        for column in ("url", "title", "excerpt"):
            encodings = meta.row_group(rg).column(names.index(column)).encodings
            assert any("DICTIONARY" in e for e in encodings), (rg, column, encodings)
    assert os.path.getsize(part) / meta.num_rows < 40  # bytes a link (26 here; 56 in the staging order)
