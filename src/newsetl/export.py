"""Writing query results: a readable terminal table, CSV, JSON or Parquet.

CSV is written to open safely in any spreadsheet: titles and names come from
the open web, so a cell that a spreadsheet would run as a formula is
neutralised the way OWASP recommends (a leading `'`), while real numbers stay
numbers.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import re
import shutil
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

FORMATS = ("table", "csv", "json", "parquet")
# OWASP "CSV Injection": cells starting with these run as formulas somewhere
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
LIST_SEP = "; "


def neutralise(cell: str) -> str:
    """`=HYPERLINK(...)` -> `'=HYPERLINK(...)`; `-2` stays `-2`."""
    if cell and cell.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def _text(v) -> str:
    """A value as spreadsheet-friendly text, before neutralising."""
    if v is None:
        return ""
    t = type(v)
    if t is str:
        return v
    if t is bool:
        return "true" if v else "false"
    if t is dt.datetime:
        if v.tzinfo is not None:  # ISO 8601 in UTC, with Z
            return v.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat() + "Z"
        return v.isoformat()
    if t is dt.date or t is dt.time:
        return v.isoformat()
    if t is list or t is tuple:
        return LIST_SEP.join(_text(x) for x in v)
    if t is dict:
        return orjson.dumps(v, default=str).decode()
    return str(v)


def _cell(v) -> str:
    t = type(v)
    if t is int or t is float or t is Decimal:
        return str(v)  # numbers are never neutralised: -2 must stay a number
    return neutralise(_text(v))


def write_csv(table: pa.Table, out) -> int:
    """Write `table` as RFC 4180 CSV (header row, UTF-8, CRLF) to a path or a text stream."""
    own = not hasattr(out, "write")
    fh = open(out, "w", encoding="utf-8", newline="") if own else out
    try:
        w = csv.writer(fh, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        w.writerow([neutralise(n) for n in table.column_names])
        for batch in table.to_batches(max_chunksize=10_000):
            cols = [c.to_pylist() for c in batch.columns]
            for row in zip(*cols):
                w.writerow([_cell(v) for v in row])
    finally:
        if own:
            fh.close()
    return table.num_rows


def write_json(table: pa.Table, out) -> int:
    """A JSON array of objects; timestamps in ISO 8601 UTC."""
    data = orjson.dumps(table.to_pylist(), option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC, default=str)
    if hasattr(out, "write"):
        out.write(data.decode())
    else:
        Path(out).write_bytes(data)
    return table.num_rows


def write_parquet(table: pa.Table, out) -> int:
    pq.write_table(table, out, compression="zstd")
    return table.num_rows


def format_for(path: str | None, fmt: str | None) -> str:
    """The output format: given explicitly, else from the file's extension, else a table."""
    if fmt:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
        return fmt
    if path:
        ext = Path(path).suffix.lower().lstrip(".")
        if ext in ("csv", "json", "parquet"):
            return ext
        raise ValueError(f"cannot tell the format of {path}: use a .csv, .json or .parquet name, or --format")
    return "table"


def show(table: pa.Table, max_rows: int = 40, stream=None) -> None:
    """Print a readable table (DuckDB's box rendering) on the terminal."""
    stream = stream or sys.stdout
    con = duckdb.connect()
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):  # DuckDB prints; honour `stream`
            con.from_arrow(table).show(max_rows=max_rows, max_width=_width(), null_value="NULL")
    finally:
        con.close()
    stream.write(buf.getvalue())


def _width() -> int:
    return max(shutil.get_terminal_size((120, 40)).columns, 80)


def write(table: pa.Table, out: str | None, fmt: str | None) -> str:
    """Write `table` to `out` in the chosen format (stdout when out is None or '-')."""
    fmt = format_for(out if out not in (None, "-") else None, fmt)
    to_stdout = out in (None, "-")
    if fmt == "table":
        show(table)
    elif fmt == "csv":
        write_csv(table, sys.stdout if to_stdout else out)
    elif fmt == "json":
        write_json(table, sys.stdout if to_stdout else out)
        if to_stdout:
            sys.stdout.write("\n")
    elif fmt == "parquet":
        if to_stdout:
            raise ValueError("parquet output needs a file: --out FILE.parquet")
        write_parquet(table, out)
    return fmt
