"""newsetl: Markdown news records with YAML front matter -> Parquet tables and a DuckDB catalog.

In a notebook, every table, view, report and query is one call away, as a
pandas DataFrame (or a pyarrow Table with `arrow=True`):

    >>> import newsetl
    >>> newsetl.table("provider_stats")                          # a table or view
    >>> newsetl.report("top_articles", topic="AI", limit=10)     # a named report, with its filters
    >>> newsetl.query("SELECT count(*) AS n FROM articles")      # any SQL
    >>> con = newsetl.connect()                                  # DuckDB itself: con.sql(...).df()

The warehouse is `warehouse=`, else $NEWSETL_WAREHOUSE, else ./warehouse.
"""

from __future__ import annotations

import os

WAREHOUSE_ENV = "NEWSETL_WAREHOUSE"


def _package_version() -> str:
    """newsetl's version, read from the installed metadata on first use: importlib.metadata
    costs every command 60 ms at start, and most never show the version."""
    global __version__
    try:
        return __version__
    except NameError:
        from importlib.metadata import PackageNotFoundError, version

        try:
            __version__ = version("newsetl")
        except PackageNotFoundError:  # running from a source tree without install
            __version__ = "0.0.0"
        return __version__


def __getattr__(name: str):
    if name == "__version__":
        return _package_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _warehouse(warehouse):
    return warehouse if warehouse is not None else (os.environ.get(WAREHOUSE_ENV) or "warehouse")


def connect(warehouse=None, *, snapshot: str | None = None):
    """A DuckDB connection with every table and analytics view of the warehouse ready: of its
    current snapshot, or of the kept snapshot `snapshot` (`newsetl rollback --list` lists them).

    >>> con = newsetl.connect("warehouse")
    >>> con.sql("SELECT count(*) FROM articles").fetchall()
    """
    from .catalog import connect as _connect

    return _connect(_warehouse(warehouse), snapshot=snapshot)


def _frame(table, arrow: bool):
    if arrow:
        return table
    import pandas as pd
    import pyarrow as pa

    # nullable pandas types: an INTEGER column with a NULL stays integers
    nullable = {pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
                pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype(), pa.string(): pd.StringDtype()}
    return table.to_pandas(types_mapper=nullable.get)


def query(sql: str, warehouse=None, *, params=None, arrow: bool = False, snapshot: str | None = None):
    """The result of `sql` over the warehouse's tables and views (bind values with `params`).
    As `newsetl sql`, it reads the snapshot's files only and writes nothing (catalog.connect
    sealed); `connect()` gives a DuckDB connection to do more with. `snapshot`: a kept snapshot's id."""
    from .catalog import check_read_only
    from .catalog import connect as _connect

    con = _connect(_warehouse(warehouse), snapshot=snapshot, sealed=True, for_sql=sql)  # only the analytics views it can use
    try:
        check_read_only(con, sql)
        return _frame(con.sql(sql, params=params).to_arrow_table(), arrow)
    finally:
        con.close()


def table(name: str, warehouse=None, *, arrow: bool = False, snapshot: str | None = None):
    """A whole table or analytics view (`newsetl tables` lists them)."""
    from .schema import BY_NAME, VIEWS_BY_NAME

    if name not in BY_NAME and name not in VIEWS_BY_NAME:
        from .words import close_match

        known = [*BY_NAME, *VIEWS_BY_NAME]
        raise ValueError(f"no table or view {name!r}{close_match(name, known)}: the warehouse has {', '.join(known)}")
    return query(f'SELECT * FROM "{name}"', warehouse, arrow=arrow, snapshot=snapshot)


def report(name: str, warehouse=None, *, arrow: bool = False, snapshot: str | None = None, **filters):
    """A named report (`newsetl report --list`), with its filters: since, until, provider, topic,
    min_articles, limit; of a kept snapshot with `snapshot`."""
    from . import reports

    return _frame(reports.run(_warehouse(warehouse), name, snapshot=snapshot, **filters), arrow)


__all__ = ["connect", "query", "report", "table", "__version__"]
