"""newsetl: Markdown news records with YAML front matter -> Parquet tables and a DuckDB catalog."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("newsetl")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"


def connect(warehouse="warehouse"):
    """A DuckDB connection with every table and analytics view of the warehouse ready.

    >>> con = newsetl.connect("warehouse")
    >>> con.sql("SELECT count(*) FROM articles").fetchall()
    """
    from .catalog import connect as _connect

    return _connect(warehouse)


__all__ = ["connect", "__version__"]
