"""DuckDB text: literals and the lists of files DuckDB reads.

The few places that cannot bind parameters (paths in views, COPY targets)
build SQL text here, and nowhere else.
"""

from __future__ import annotations

from pathlib import Path


def sql_literal(s: str) -> str:
    """A string as a SQL literal, for the few places that cannot bind parameters (paths in views)."""
    return "'" + s.replace("'", "''") + "'"


GLOB_CHARS = "[*?"


def read_list(paths) -> str:
    """Concrete files as a SQL list for DuckDB's readers (`read_parquet(...)`): each file read
    as itself, never as a pattern.

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
        items.append(sql_literal(s))
    return "[" + ", ".join(items) + "]"


def parquet_files(folder: Path) -> list[Path]:
    """The Parquet files of a table folder, in name order (as DuckDB's glob gave them)."""
    return sorted(folder.glob("*.parquet"))
