"""Parts and deletes: how a table's live rows are spread over files, so a run writes only what changed.

A keyed table (every table but `providers` and `runs`) is a list of files, in
the order they were written: parts (`<run id>.parquet`, rows) and delete files
(`_deletes/<run id>.parquet`, one column `key`). A delete file removes, from
every part listed *before* it, the rows whose key column (`ROW_KEY`) holds one
of its keys; parts listed after it keep theirs. A run that changes 1,000
articles writes, per table, one delete file naming their keys and one part
holding their new rows, whatever the size of the warehouse: Delta's deletion
vectors and Iceberg's equality deletes, with the key of the table's grain.

Readers apply them: `view_sql` is the one definition of a table's rows, used
by every view of the catalog, by `newsetl.connect` and by the build itself.
A tool that reads the Parquet files directly applies the same rule
(docs/warehouse-contract.md says how). Compaction (`build`) rewrites a part
whose deleted share grows, and merges parts when there are too many, so reads
stay within a small factor of a compacted table.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from .duck import read_list

# the column that names a row's unit of change: a run replaces all of a key's rows at once
ROW_KEY = {
    "articles": "article_id",
    "images": "article_id",
    "related_links": "article_id",
    "related_images": "article_id",
    "article_versions": "article_id",
    "source_files": "source_path",
    "data_issues": "source_path",
}

DELETES = "_deletes"


def is_delete(name) -> bool:
    """Whether a table's file (as the snapshot names it, or its path) is a delete file."""
    return PurePosixPath(str(name).replace("\\", "/")).parent.name == DELETES


def spans(files: list) -> list[tuple[list, list]]:
    """Group a table's files (in order) into (parts, deletes that apply to them): each part
    loses the keys of every delete file listed after it."""
    groups: list[tuple[list, list]] = []
    later: list = []
    for f in reversed(files):
        if is_delete(f):
            later = [f, *later]
        elif groups and groups[-1][1] == later:
            groups[-1][0].insert(0, f)
        else:
            groups.append(([f], list(later)))
    return list(reversed(groups))


def view_sql(table: str, files: list, prefix: str | None = None) -> str:
    """The SELECT that gives `table`'s live rows from its files (paths or URLs, in order; with
    `prefix`, a SQL expression, paths relative to the folder it gives when the query runs)."""
    if not files:  # a table no run has written yet (the checks' in an older snapshot): no rows, its columns
        from .schema import BY_NAME

        cols = ", ".join(f'CAST(NULL AS {c.type}) AS "{c.name}"' for c in BY_NAME[table].columns)
        return f"SELECT {cols} LIMIT 0"
    key = ROW_KEY.get(table)
    branches = []
    for parts, deletes in spans(files):
        src = f"read_parquet({read_list(parts, prefix)})"
        if deletes and key is not None:
            branches.append(f"SELECT t.* FROM {src} AS t ANTI JOIN read_parquet({read_list(deletes, prefix)}) AS d "
                            f"ON t.{key} = d.key")
        else:
            branches.append(f"SELECT * FROM {src}")
    return "\nUNION ALL\n".join(branches)
