"""Writing query results: a readable terminal table, CSV, JSON or Parquet.

CSV is written to open safely in any spreadsheet. Titles and names come from
the open web, so they are treated as hostile:

- RFC 4180: a header row, fields separated by commas, quoted when they hold a
  comma, a quote or a line break (quotes doubled), records ended by CRLF.
- UTF-8 without a byte-order mark (see `write_csv`).
- NULL is an empty cell; booleans are `true`/`false`; timestamps are ISO 8601
  in UTC with a `Z` (`2021-03-01T10:00:00Z`), dates `2021-03-01`; lists are
  joined with `; `; mappings are JSON.
- Formula injection (OWASP "CSV Injection"): a text cell that starts with `=`,
  `+`, `-`, `@`, a tab or a carriage return, and is not a plain number, gets a
  leading `'`, so a spreadsheet shows it as text instead of running it
  (`=HYPERLINK(...)` -> `'=HYPERLINK(...)`). Plain numbers in text (`-2`) are
  left alone, and numeric columns are never touched: `-5` stays a number.

JSON and Parquet keep values exactly as they are (typed; nothing neutralised).
The terminal table replaces the control characters that DuckDB's renderer lets
through (C1 controls, bidirectional overrides) so a title cannot drive the
terminal.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import os
import re
import shutil
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

FORMATS = ("table", "csv", "json", "parquet")
# OWASP "CSV Injection": cells starting with these run as formulas somewhere
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# ASCII digits only: `-٣` (Arabic-Indic three) is not a number to a spreadsheet
_PLAIN_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)
LIST_SEP = "; "


def neutralise(cell: str) -> str:
    """`=HYPERLINK(...)` -> `'=HYPERLINK(...)`; `-2` stays `-2`."""
    if cell and cell.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def _iso_duration(v: dt.timedelta) -> str:
    """ISO 8601 duration: 1 day 2 h -> P1DT7200S (days, then seconds)."""
    sign = "-" if v < dt.timedelta(0) else ""
    v = abs(v)
    secs = v.seconds + v.microseconds / 1e6
    secs_text = f"{secs:.6f}".rstrip("0").rstrip(".") if v.microseconds else str(v.seconds)
    return f"{sign}P{v.days}DT{secs_text}S"


def _text(v) -> str:
    """A value as spreadsheet-friendly text, before neutralising."""
    if v is None:
        return ""
    t = type(v)
    if t is str:
        return v
    if t is bool:
        return "true" if v else "false"
    if isinstance(v, dt.datetime):
        if v.tzinfo is not None:  # ISO 8601 in UTC, with Z
            return v.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat() + "Z"
        return v.isoformat()
    if isinstance(v, (dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return _iso_duration(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(v).hex()
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


def _utc(table: pa.Table) -> pa.Table:
    """Timestamp columns with a time zone, re-labelled UTC (same instants; DuckDB labels them
    with the session's zone)."""
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz not in (None, "UTC"):
            utc = pa.timestamp(field.type.unit, "UTC")
            table = table.set_column(i, pa.field(field.name, utc, field.nullable), table.column(i).cast(utc))
    return table


def write_csv(table: pa.Table, out) -> int:
    """Write `table` as RFC 4180 CSV (header row, UTF-8, CRLF) to a path or a text stream.

    UTF-8 without a byte-order mark: RFC 4180, pandas, Python's csv module, DuckDB,
    PostgreSQL COPY, LibreOffice, Google Sheets and Numbers read it as UTF-8 as it
    is, while a BOM ends up inside the first column name for many programs that read
    CSV (pandas with the wrong encoding, csv.reader, cut/awk) and breaks `cat a.csv b.csv`.
    In Excel, open it with Data > From Text/CSV, which detects UTF-8.
    """
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


def _json_default(v):
    if isinstance(v, (dt.timedelta, bytes, bytearray, memoryview)):
        return _text(v)
    return str(v)  # Decimal and anything else orjson does not know: exact text


def write_json(table: pa.Table, out) -> int:
    """A JSON array of objects; timestamps in ISO 8601 UTC (Z)."""
    data = orjson.dumps(_utc(table).to_pylist(), option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC,
                        default=_json_default)
    if hasattr(out, "write"):
        out.write(data.decode())
    else:
        Path(out).write_bytes(data)
    return table.num_rows


def write_parquet(table: pa.Table, out) -> int:
    pq.write_table(_utc(table), out, compression="zstd")
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


# C1 controls (0x80-0x9f: 0x9b is an 8-bit CSI), DEL and the bidirectional overrides and
# isolates; DuckDB's box renderer already shows C0 controls as escapes (\e, \n, \t)
_UNPRINTABLE = r"[\x{7f}-\x{9f}\x{202a}-\x{202e}\x{2066}-\x{2069}]"
_UNPRINTABLE_PY = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(table: pa.Table) -> pa.Table:
    """`table` with terminal-unsafe characters in text (and lists of text) replaced by U+FFFD."""
    for i, field in enumerate(table.schema):
        col = table.column(i)
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            new = pc.replace_substring_regex(col, _UNPRINTABLE, "\ufffd")
        elif (pa.types.is_list(field.type) or pa.types.is_large_list(field.type)) and (
                pa.types.is_string(field.type.value_type) or pa.types.is_large_string(field.type.value_type)):
            new = pa.array([None if v is None else [None if x is None else _UNPRINTABLE_PY.sub("\ufffd", x)
                                                    for x in v] for v in col.to_pylist()], type=field.type)
        else:
            continue
        table = table.set_column(i, field, new)
    return table


def show(table: pa.Table, max_rows: int = 40, stream=None) -> None:
    """Print a readable table (DuckDB's box rendering) on the terminal."""
    stream = stream or sys.stdout
    con = duckdb.connect()
    buf = io.StringIO()
    try:
        con.execute("SET TimeZone = 'UTC'")
        with contextlib.redirect_stdout(buf):  # DuckDB prints; honour `stream`
            con.from_arrow(printable(table)).show(max_rows=max_rows, max_width=_width(), null_value="NULL")
    finally:
        con.close()
    stream.write(buf.getvalue())


def _width() -> int:
    return max(shutil.get_terminal_size((120, 40)).columns, 80)


def write_atomically(write_to, path: Path) -> None:
    """Write through a temporary name in the same folder, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write_to(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


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
