"""The DuckDB catalog: a view per table over a snapshot, plus the analytics views.

Two ways in, built by the same function:
- `warehouse/news.duckdb`, for the DuckDB shell and any tool that opens a file;
- `connect(warehouse)`, an in-memory connection with the same views, which
  never takes the catalog file's lock (a shell left open does not block it).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

import duckdb
import pyarrow as pa

from .duck import parquet_files, read_list, sql_literal
from .schema import BY_NAME, VIEWS, VIEWS_BY_NAME, WAREHOUSE_TABLES
from .remote import open_warehouse
from .store import CATALOG as CATALOG_NAME
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


def create_views(con: duckdb.DuckDBPyConnection, snapshot: Path | None, files: dict | None = None) -> None:
    """Views over the tables of `snapshot` (or over `files`: each table's file URLs) and every
    analytics view, in `con`'s current schema."""
    for table in WAREHOUSE_TABLES:
        # the files by name, not a pattern: a snapshot never changes, and a
        # warehouse path may hold glob characters
        files_sql = read_list(files[table.name] if files is not None else parquet_files(snapshot / table.name))
        con.execute(f"CREATE OR REPLACE VIEW {table.name} AS SELECT * FROM read_parquet({files_sql})")
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
        # the marker first, naming the new file by inode: whenever this is
        # killed, the marker still tells which snapshot the catalog file shows
        _write_marker(wh, {"snapshot": snapshot.name, "inode": os.stat(tmp).st_ino, "previous": _shown(wh)})
        os.replace(tmp, wh.catalog)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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


def _read_marker(wh: Warehouse) -> dict:
    try:
        text = (wh.root / MARKER).read_text()
    except OSError:
        return {}
    try:
        m = json.loads(text)
    except ValueError:
        m = None
    return m if isinstance(m, dict) else {"snapshot": text.strip()}  # older newsetl: the name alone


def _write_marker(wh: Warehouse, marker: dict) -> None:
    tmp = wh.root / f"{MARKER}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(marker) + "\n")
    os.replace(tmp, wh.root / MARKER)


def _shown(wh: Warehouse) -> dict | None:
    """The marker entry of the catalog file as it is now, if known."""
    try:
        ino = os.stat(wh.catalog).st_ino
    except OSError:
        return None
    m = _read_marker(wh)
    for entry in (m, m.get("previous") or {}):
        if entry.get("inode") == ino:
            return {"snapshot": entry.get("snapshot"), "inode": ino}
    if "inode" not in m and m.get("snapshot"):  # an older newsetl's marker, written after the file
        return {"snapshot": m["snapshot"], "inode": ino}
    return None


def catalog_snapshot(wh: Warehouse) -> str | None:
    """The name of the snapshot the catalog file shows (None: no catalog file, or not known)."""
    shown = _shown(wh)
    return shown["snapshot"] if shown else None


def ensure_catalog(wh: Warehouse) -> None:
    """Rewrite the catalog if it does not show the current snapshot (a run killed after its commit)."""
    if wh.remote:
        return
    cur = wh.current()
    if cur is None:
        return
    if catalog_snapshot(wh) != cur.name:
        write_catalog(wh, cur)


def heal_catalog(warehouse) -> bool:
    """What read commands do first: rewrite a catalog file that shows another snapshot than
    `current`, if that needs no waiting. A run holding the lock writes it itself when it
    publishes; a folder this user may not write is left as it is (`status` says so).
    Never raises: the reader reads `current` anyway. Returns whether it rewrote it."""
    try:
        wh = open_warehouse(warehouse)
        if wh.remote:  # no catalog file there
            return False
        cur = wh.current()
        if cur is None or catalog_snapshot(wh) == cur.name:
            return False
        with wh.try_lock() as held:
            if held and catalog_snapshot(wh) != wh.current().name:
                write_catalog(wh, wh.current())
                return True
    except (OSError, duckdb.Error, WarehouseError):
        pass
    return False


def connect(warehouse="warehouse", *, snapshot=None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with every view of the warehouse's current snapshot
    (a folder, or a URL: s3://bucket/prefix)."""
    wh = open_warehouse(warehouse)
    if wh.remote:  # the pointer names the files; DuckDB reads them through fsspec, no extension
        files = wh.reader_files(snapshot)
        con = duckdb.connect()
        wh.register(con, files)
        create_views(con, None, files)
        return con
    snap = snapshot or wh.require_current()
    con = duckdb.connect()
    create_views(con, snap)
    return con


def write_url_catalog(warehouse, path) -> Path:
    """A DuckDB file at `path` (local) whose views read the warehouse's current snapshot by its
    URLs, for the DuckDB shell. The shell reads s3:// with its httpfs extension, which it
    installs itself when online, and credentials from a secret (docs/scaling.md)."""
    wh = open_warehouse(warehouse)
    if not wh.remote:
        raise ValueError(f"--catalog is for a warehouse in object storage; {wh.root} has its own {CATALOG_NAME}")
    files = wh.reader_files()
    path = Path(path).expanduser().absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect()
    try:
        wh.register(con, files)  # the views are checked as they are made: read through fsspec here
        con.execute(f"ATTACH {sql_literal(str(tmp))} AS cat (STORAGE_VERSION {sql_literal(STORAGE_VERSION)})")
        con.execute("USE cat")
        create_views(con, None, files)
        con.execute("USE memory")
        con.execute("DETACH cat")
    finally:
        con.close()
    os.replace(tmp, path)
    return path


# -- finding one's way: what the warehouse holds, and what a column means ------------------

def _first_sentence(text: str) -> str:
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


def tables(warehouse) -> pa.Table:
    """Every table and analytics view: its kind, its row count and what a row is."""
    con = connect(warehouse)
    try:
        rows = []
        for kind, items in (("table", [(t.name, t.grain) for t in WAREHOUSE_TABLES]),
                            ("view", [(v.name, _first_sentence(v.about)) for v in VIEWS])):
            for name, about in items:
                (n,), = con.execute(f'SELECT count(*) FROM "{name}"').fetchall()
                rows.append({"name": name, "kind": kind, "rows": n, "about": about})
    finally:
        con.close()
    return pa.Table.from_pylist(rows, schema=pa.schema([("name", pa.string()), ("kind", pa.string()),
                                                        ("rows", pa.int64()), ("about", pa.string())]))


def describe(warehouse, name: str) -> pa.Table:
    """The columns of a table or view: name, DuckDB type, and the data dictionary's meaning."""
    docs = {c.name: c.doc for c in (BY_NAME[name].columns if name in BY_NAME else
                                     VIEWS_BY_NAME[name].columns if name in VIEWS_BY_NAME else ())}
    if not docs:
        known = ", ".join([t.name for t in WAREHOUSE_TABLES] + [v.name for v in VIEWS])
        raise ValueError(f"no table or view {name!r}: the warehouse has {known}")
    con = connect(warehouse)
    try:
        cols = con.execute(f'DESCRIBE "{name}"').fetchall()
    finally:
        con.close()
    return pa.Table.from_pylist([{"column": c[0], "type": c[1].replace("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"),
                                  "meaning": docs.get(c[0])} for c in cols],
                                schema=pa.schema([("column", pa.string()), ("type", pa.string()),
                                                  ("meaning", pa.string())]))
