"""Comparing warehouses table by table."""

from __future__ import annotations

from pathlib import Path

import newsetl
from newsetl import pipeline, schema

# columns that say *when* or *by which run* a row was loaded: they differ
# between an incremental warehouse and a rebuild by design
RUN_COLUMNS = {"run_id"}
# tables whose rows depend on the runs that made them, not only on the files: history, and the
# checks' results and alerts (each run's own)
HISTORY_TABLES = {"runs", "article_versions", *(t.name for t in schema.CHECK_TABLES)}
# dimensions that are views over the tables (no table of their own to carry over between runs),
# compared as the tables are: an incremental warehouse and a rebuild must agree on them too
DIMENSION_VIEWS = ("article_authors", "authors")


def _rows(con, name: str) -> list[tuple]:
    t = con.sql(f"SELECT * FROM {name}").to_arrow_table()
    keep = [c for c in t.column_names if c not in RUN_COLUMNS]
    return sorted(tuple(repr(v) for v in row.values()) for row in t.select(keep).to_pylist())


def tables_rows(wh, names) -> dict[str, list[tuple]]:
    """The rows of each named table, sorted, without the run columns, as comparable text
    (one connection: opening one builds every view, and reads the pointer of a URL)."""
    con = newsetl.connect(wh)
    try:
        return {name: _rows(con, name) for name in names}
    finally:
        con.close()


def table_rows(wh: Path, name: str) -> list[tuple]:
    """The rows of one table, as `tables_rows` gives them."""
    return tables_rows(wh, [name])[name]


def assert_same_tables(a, b) -> None:
    """Two warehouses built from the same files hold the same rows (history's times aside)."""
    names = [t.name for t in schema.BUILT_TABLES if t.name != "runs"]  # the checks: each run's own history
    rows_a, rows_b = tables_rows(a, names), tables_rows(b, names)
    for name in names:
        ra, rb = rows_a[name], rows_b[name]
        if name == "article_versions":  # valid_from is each run's own time
            ra = [r[:2] + r[3:] for r in ra]
            rb = [r[:2] + r[3:] for r in rb]
        assert ra == rb, name


def assert_same_as_rebuild(inputs: list[Path], wh: Path, tmp_path: Path) -> None:
    """`wh` (after any sequence of runs) equals a full rebuild from `inputs` now."""
    fresh = tmp_path / f"rebuild-{len(list(tmp_path.iterdir()))}"
    pipeline.run(inputs, fresh, workers=1)
    names = [t.name for t in schema.WAREHOUSE_TABLES if t.name not in HISTORY_TABLES] + list(DIMENSION_VIEWS)
    got, want = tables_rows(wh, names), tables_rows(fresh, names)
    for name in names:
        assert got[name] == want[name], name
