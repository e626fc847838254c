"""Reports: named queries over the warehouse, shown on the terminal or exported."""

from __future__ import annotations

from importlib import resources

import pyarrow as pa

from .catalog import connect


def _sql(name: str) -> str:
    return (resources.files("newsetl") / "sql" / "reports" / f"{name}.sql").read_text(encoding="utf-8")


def top_providers(warehouse, limit: int = 10) -> pa.Table:
    con = connect(warehouse)
    try:
        return con.execute(_sql("top_providers"), {"limit": limit}).to_arrow_table()
    finally:
        con.close()
