"""DuckDB text: literals and the lists of files DuckDB reads.

The few places that cannot bind parameters (paths in views, COPY targets)
build SQL text here, and nowhere else.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from pathlib import Path


class Lazy:
    """A module imported on first use of one of its names: `import duckdb` costs 100-180 ms,
    which `tables`, `describe` and `status` do without when newsetl's own records answer."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr):
        return getattr(importlib.import_module(self._name), attr)


@functools.cache
def engine_version() -> str:
    """DuckDB's version, for cache keys, read from its installed metadata without importing it
    (the import itself if that cannot tell)."""
    spec = importlib.util.find_spec("duckdb")
    if spec is not None and spec.origin:
        found = list(Path(spec.origin).parent.parent.glob("duckdb-*.dist-info"))
        if len(found) == 1:
            return found[0].name[len("duckdb-"):-len(".dist-info")]
    return importlib.import_module("duckdb").__version__


# Below this many files, DuckDB's queries here are planning and small scans, where a second thread
# costs more than it gives: a first run of 4,765 files built in 0.82-0.86 s on one thread, 0.89-0.91 s
# on two (its checks 0.21-0.23 s against 0.26-0.31 s), a 60-file run took 10 % less CPU; at 20,000
# files two threads built in 2.7 s, one in 3.0 s (2 cores, docs/scaling.md).
ONE_THREAD_FILES = 5_000


def threads_for(files: int, most: int | None = None) -> int | None:
    """DuckDB's threads for work over a warehouse of `files` files: one below ONE_THREAD_FILES,
    else `most` (None: DuckDB's default, a thread a core)."""
    return 1 if files < ONE_THREAD_FILES else most


def sql_literal(s: str) -> str:
    """A string as a SQL literal, for the few places that cannot bind parameters (paths in views)."""
    return "'" + s.replace("'", "''") + "'"


GLOB_CHARS = "[*?"


def read_list(paths, prefix: str | None = None) -> str:
    """Concrete files as a SQL list for DuckDB's readers (`read_parquet(...)`): each file read
    as itself, never as a pattern. With `prefix` (a SQL expression: the folder the paths are
    relative to, known only when the query runs, glob-escaped by the expression itself), each
    item is `prefix || 'path'`.

    DuckDB globs every path it reads, so a warehouse at `wh[1]` would read
    `wh1` (or nothing). Each glob character becomes a class holding only
    itself (`[` -> `[[]`), which DuckDB matches literally; a path without one
    is read as it is. DuckDB also takes a backslash for a folder separator, so
    a path with both cannot be expressed (`Warehouse` refuses backslashes).
    Paths DuckDB writes (COPY ... TO, ATTACH, temp_directory) are not globbed:
    they go as plain `sql_literal`s.
    """
    items = []
    for p in paths:
        s = str(p)
        if any(c in s for c in GLOB_CHARS):
            if "\\" in s:
                raise ValueError(f"{s}: DuckDB cannot read a path that holds a backslash and one of [ * ?")
            s = "".join(f"[{c}]" if c in GLOB_CHARS else c for c in s)
        items.append(sql_literal(s) if prefix is None else f"{prefix} || {sql_literal(s)}")
    return "[" + ", ".join(items) + "]"


def glob_escaped(path) -> str:
    """A path as read_list writes it (the text DuckDB is given to read the file by)."""
    return read_list([path])[2:-2].replace("''", "'")


_OBJECTS = """
    SELECT 'view', view_name, sql FROM duckdb_views() WHERE {db} AND NOT internal
    UNION ALL SELECT 'table', table_name, sql FROM duckdb_tables() WHERE {db}
    UNION ALL SELECT 'macro', function_name, concat(parameters::VARCHAR, ' ', macro_definition) FROM duckdb_functions()
              WHERE {db} AND function_type IN ('macro', 'table_macro') AND NOT internal
    UNION ALL SELECT 'sequence', sequence_name, sql FROM duckdb_sequences() WHERE {db}
    UNION ALL SELECT 'type', type_name, logical_type FROM duckdb_types() WHERE {db} AND NOT internal
    UNION ALL SELECT 'index', index_name, sql FROM duckdb_indexes() WHERE {db}
    UNION ALL SELECT 'schema', schema_name, NULL FROM duckdb_schemas()
              WHERE {db} AND NOT internal AND schema_name <> 'main'
    ORDER BY 1, 2, 3"""


def objects_in(con, database: str) -> list[tuple[str, str, str | None]]:
    """(kind, name, definition) of every object of `database` in `con` (views, macros, tables,
    sequences, types, indexes, schemas), in a stable order."""
    return [tuple(r) for r in con.execute(_OBJECTS.format(db=f"database_name = {sql_literal(database)}")).fetchall()]


def database_objects(path: Path, sql: bool = False) -> list[tuple]:
    """(kind, name) of every object in the DuckDB database file at `path`, opened read-only;
    with `sql`, each object's definition as a third item. Raises duckdb.Error if it cannot be
    opened (not a DuckDB file, or open for writing in another process)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute(f"ATTACH {sql_literal(str(path))} AS inspected (READ_ONLY)")
        rows = objects_in(con, "inspected")
    finally:
        con.close()
    return rows if sql else [(k, n) for k, n, _ in rows]
