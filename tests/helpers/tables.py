"""Comparing warehouses table by table."""

from __future__ import annotations

from pathlib import Path

import newsetl
from newsetl import pipeline, schema

# columns that say *when* or *by which run* a row was loaded: they differ
# between an incremental warehouse and a rebuild by design
RUN_COLUMNS = {"run_id"}
HISTORY_TABLES = {"runs", "article_versions"}


def table_rows(wh: Path, name: str) -> list[tuple]:
    """The rows of a table, sorted, without the run columns, as comparable text."""
    con = newsetl.connect(wh)
    try:
        t = con.sql(f"SELECT * FROM {name}").to_arrow_table()
    finally:
        con.close()
    keep = [c for c in t.column_names if c not in RUN_COLUMNS]
    return sorted(tuple(repr(v) for v in row.values()) for row in t.select(keep).to_pylist())


def assert_same_tables(a, b) -> None:
    """Two warehouses built from the same files hold the same rows (history's times aside)."""
    for t in schema.WAREHOUSE_TABLES:
        if t.name == "runs":
            continue
        rows_a, rows_b = table_rows(a, t.name), table_rows(b, t.name)
        if t.name == "article_versions":  # valid_from is each run's own time
            rows_a = [r[:2] + r[3:] for r in rows_a]
            rows_b = [r[:2] + r[3:] for r in rows_b]
        assert rows_a == rows_b, t.name


def assert_same_as_rebuild(inputs: list[Path], wh: Path, tmp_path: Path) -> None:
    """`wh` (after any sequence of runs) equals a full rebuild from `inputs` now."""
    fresh = tmp_path / f"rebuild-{len(list(tmp_path.iterdir()))}"
    pipeline.run(inputs, fresh, workers=1)
    for t in schema.WAREHOUSE_TABLES:
        if t.name in HISTORY_TABLES:
            continue
        assert table_rows(wh, t.name) == table_rows(fresh, t.name), t.name
