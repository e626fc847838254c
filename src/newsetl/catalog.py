"""The DuckDB catalog: a view per table over a snapshot, plus the analytics views.

Two ways in, built by the same function:
- `warehouse/news.duckdb`, for the DuckDB shell and any tool that opens a file;
- `connect(warehouse)`, an in-memory connection with the same views, which
  never takes the catalog file's lock (a shell left open does not block it).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

import duckdb

from .load import parquet_files, read_list, sql_literal
from .schema import WAREHOUSE_TABLES
from .store import Warehouse, WarehouseError

# Oldest storage format that holds what the catalog needs (views only), so a
# DuckDB shell older than the Python package still opens it.
STORAGE_VERSION = "v1.0.0"
MARKER = ".catalog-snapshot"


def view_sql_files() -> list[tuple[str, str]]:
    """(view name, SQL) of every analytics view, in file-name order (prefix NN_ sets it)."""
    folder = resources.files("newsetl") / "sql" / "views"
    out = []
    for f in sorted(folder.iterdir(), key=lambda p: p.name):
        if f.name.endswith(".sql"):
            name = f.name[:-4].split("_", 1)[1] if f.name[:2].isdigit() else f.name[:-4]
            out.append((name, f.read_text(encoding="utf-8")))
    return out


def create_views(con: duckdb.DuckDBPyConnection, snapshot: Path) -> None:
    """Views over the tables of `snapshot` and every analytics view, in `con`'s current schema."""
    for table in WAREHOUSE_TABLES:
        # the files by name, not a pattern: a snapshot never changes, and a
        # warehouse path may hold glob characters
        files = read_list(parquet_files(snapshot / table.name))
        con.execute(f"CREATE OR REPLACE VIEW {table.name} AS SELECT * FROM read_parquet({files})")
    for _name, sql in view_sql_files():
        con.execute(sql)


def write_catalog(wh: Warehouse, snapshot: Path) -> None:
    """Write the catalog file for `snapshot` next to it, replacing the old one atomically.

    The old file is never opened for writing: an analyst's shell may hold it.
    """
    tmp = wh.root / f"{wh.catalog.name}.{snapshot.name}.tmp"
    for p in (tmp, Path(str(tmp) + ".wal")):
        p.unlink(missing_ok=True)
    try:
        _write_views_file(tmp, snapshot)
        os.replace(tmp, wh.catalog)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    (wh.root / MARKER).write_text(snapshot.name + "\n")


def _write_views_file(path: Path, snapshot: Path) -> None:
    # DuckDB names a database's WAL by cutting its real path at the first `?`
    # (`w?x/news.duckdb` -> `w.wal?x/news.duckdb`): there, build the file
    # elsewhere and copy it in (it holds views only, a few hundred KB)
    detour = None
    target = path
    if "?" in os.path.realpath(path.parent):
        detour = Path(tempfile.mkdtemp(prefix="newsetl-catalog-"))
        if "?" in os.path.realpath(detour):
            shutil.rmtree(detour, ignore_errors=True)
            raise WarehouseError(f"cannot write the DuckDB catalog in {path.parent}: its path and the temporary "
                                 f"folder {detour.parent} both hold a '?' (set TMPDIR to a folder without one)")
        target = detour / "catalog.duckdb"
    try:
        con = duckdb.connect()
        try:
            con.execute(f"ATTACH {sql_literal(str(target))} AS cat (STORAGE_VERSION {sql_literal(STORAGE_VERSION)})")
            con.execute("USE cat")
            create_views(con, snapshot)
            con.execute("USE memory")
            con.execute("DETACH cat")
        finally:
            con.close()
        if detour is not None:
            shutil.copyfile(target, path)
    finally:
        if detour is not None:
            shutil.rmtree(detour, ignore_errors=True)


def ensure_catalog(wh: Warehouse) -> None:
    """Rewrite the catalog if it does not show the current snapshot (a run killed after its commit)."""
    cur = wh.current()
    if cur is None:
        return
    try:
        marked = (wh.root / MARKER).read_text().strip()
    except FileNotFoundError:
        marked = ""
    if marked != cur.name or not wh.catalog.exists():
        write_catalog(wh, cur)


def connect(warehouse="warehouse", *, snapshot: Path | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with every view of the warehouse's current snapshot."""
    wh = Warehouse(warehouse)
    snap = snapshot or wh.require_current()
    con = duckdb.connect()
    create_views(con, snap)
    return con
