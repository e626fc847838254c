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

import csv
import datetime as dt
import os
import re
import shutil
import sys
from decimal import Decimal
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

FORMATS = ("table", "csv", "json", "ndjson", "markdown", "parquet")
_EXTENSIONS = {"csv": "csv", "json": "json", "ndjson": "ndjson", "jsonl": "ndjson", "md": "markdown",
               "markdown": "markdown", "parquet": "parquet"}
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


_JSON = orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def _write_text(data: str, out) -> None:
    if hasattr(out, "write"):
        out.write(data)
    else:
        Path(out).write_text(data, encoding="utf-8")


def write_json(table: pa.Table, out) -> int:
    """A JSON array of objects; timestamps in ISO 8601 UTC (Z)."""
    data = orjson.dumps(_utc(table).to_pylist(), option=_JSON, default=_json_default)
    if hasattr(out, "write"):
        out.write(data.decode())
    else:
        Path(out).write_bytes(data)
    return table.num_rows


def write_ndjson(table: pa.Table, out) -> int:
    """One JSON object per line (JSON Lines), as `write_json` writes each."""
    _write_text("".join(orjson.dumps(row, option=_JSON | orjson.OPT_APPEND_NEWLINE, default=_json_default).decode()
                        for row in _utc(table).to_pylist()), out)
    return table.num_rows


def _md(v) -> str:
    text = "" if v is None else (str(v) if type(v) in (int, float) else _text(v))
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r\n", " ").replace("\n", " ")


def write_markdown(table: pa.Table, out) -> int:
    """A GitHub-flavoured Markdown table (pipes and line breaks in values escaped)."""
    lines = ["| " + " | ".join(_md(c) for c in table.column_names) + " |",
             "|" + "".join("---:|" if _is_number(f.type) else "---|" for f in table.schema)]
    for row in table.to_pylist():
        lines.append("| " + " | ".join(_md(v) for v in row.values()) + " |")
    _write_text("\n".join(lines) + "\n", out)
    return table.num_rows


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def write_parquet(table: pa.Table, out) -> int:
    pq.write_table(_utc(table), out, compression="zstd")
    return table.num_rows


def format_for(path: str | None, fmt: str | None) -> str:
    """The output format: given explicitly, else from the file's extension; on standard
    output (`-`) CSV, and a table on the terminal when there is no --out at all."""
    if fmt:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
        return fmt
    if path == "-":
        return "csv"
    if path:
        ext = Path(path).suffix.lower().lstrip(".")
        if ext in _EXTENSIONS:
            return _EXTENSIONS[ext]
        raise ValueError(f"cannot tell the format of {path}: use a .csv, .json, .ndjson, .md or .parquet name, "
                         "or --format")
    return "table"


# C1 controls (0x80-0x9f: 0x9b is an 8-bit CSI), DEL and the bidirectional overrides and
# isolates; C0 controls are shown as escapes instead (\e, \n, \t), as DuckDB's shell does
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


MAX_ROWS = 40  # rows a terminal table shows; --out or a --format gives them all
MAX_CELL = 60  # characters of one cell on the terminal (the rest is "…")
MIN_TEXT = 12  # a text column is not squeezed below this to make room for others
_C0 = re.compile("[\x00-\x1f]")
_C0_SHOWN = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\x1b": "\\e"}


def _shown(v) -> str:
    """A value as one line of terminal text: C0 controls as escapes (`\\n`), others safe."""
    if v is None:
        return "NULL"
    text = str(v) if type(v) in (int, float, Decimal) else _text(v)
    text = _UNPRINTABLE_PY.sub("\ufffd", text)
    return _C0.sub(lambda m: _C0_SHOWN.get(m.group(), f"\\x{ord(m.group()):02x}"), text)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def show(table: pa.Table, max_rows: int = MAX_ROWS, max_width: int | None = None, stream=None) -> None:
    """Print `table` for a terminal: columns left to right as they fit in `max_width`
    (the terminal's width by default; wide text columns are shortened first), the first
    `max_rows` rows, and a last line that says what is not shown and how to see it."""
    stream = stream or sys.stdout
    width = max_width or terminal_width()
    names = table.column_names
    head = table.slice(0, max_rows).to_pylist()
    cells = [[_shown(r[n]) for n in names] for r in head]
    numeric = [_is_number(f.type) for f in table.schema]
    # numbers, dates and the first column (what a row is) are never shortened
    fixed = [i == 0 or numeric[i] or pa.types.is_temporal(f.type) or pa.types.is_boolean(f.type)
             for i, f in enumerate(table.schema)]
    widths = [min(max([len(n)] + [len(c[i]) for c in cells]), MAX_CELL) for i, n in enumerate(names)]

    def total(ws):
        return sum(ws) + 3 * len(ws) + 1

    natural = total(widths)
    # squeeze the widest text columns, then leave out columns from the right
    while total(widths) > width:
        texts = [i for i, w in enumerate(widths) if not fixed[i] and w > MIN_TEXT]
        if not texts:
            break
        widest = max(texts, key=lambda i: widths[i])
        widths[widest] = max(MIN_TEXT, widths[widest] - (total(widths) - width))
    shown = len(names)
    while shown > 1 and total(widths[:shown]) > width:
        shown -= 1
    ws = widths[:shown]

    def line(values, aligns=None) -> str:
        out = []
        for i, (v, w) in enumerate(zip(values, ws)):
            v = _clip(v, w)
            out.append(v.rjust(w) if aligns and aligns[i] else v.ljust(w))
        return "│ " + " │ ".join(out) + " │"

    rule = lambda a, b, c: a + b.join("─" * (w + 2) for w in ws) + c  # noqa: E731
    lines = [rule("┌", "┬", "┐"), line(names[:shown]), rule("├", "┼", "┤")]
    lines += [line(c[:shown], numeric) for c in cells]
    lines.append(rule("└", "┴", "┘"))
    notes = [f"{table.num_rows:,} row{'s' if table.num_rows != 1 else ''}"]
    if table.num_rows > len(head):
        notes.append(f"the first {len(head)} shown (all of them: --out FILE, or --format csv)")
    if shown < len(names):
        hidden = names[shown:]
        notes.append(f"{len(hidden)} more column{'s' if len(hidden) > 1 else ''} not shown: {', '.join(hidden)} "
                     f"(see them with --max-width {natural}, --format csv, or by selecting fewer columns)")
    stream.write("\n".join(lines) + "\n" + "; ".join(notes) + "\n")


def terminal_width() -> int:
    return max(shutil.get_terminal_size((120, 40)).columns, 40)


def write_atomically(write_to, path: Path) -> None:
    """Write through a temporary name in the same folder, so a reader never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write_to(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write(table: pa.Table, out: str | None, fmt: str | None, *, max_width: int | None = None,
          max_rows: int = MAX_ROWS) -> str:
    """Write `table` to `out` in the chosen format (standard output when out is None or
    '-'); the format as format_for chooses it. Returns the format."""
    fmt = format_for(out, fmt)
    target = sys.stdout if out in (None, "-") else out
    if fmt == "table":
        if target is not sys.stdout:
            raise ValueError("a table is for the terminal: write a file as --format csv, json, ndjson, markdown "
                             "or parquet")
        show(table, max_rows=max_rows, max_width=max_width)
    elif fmt == "csv":
        write_csv(table, target)
    elif fmt == "json":
        write_json(table, target)
        if target is sys.stdout:
            sys.stdout.write("\n")
    elif fmt == "ndjson":
        write_ndjson(table, target)
    elif fmt == "markdown":
        write_markdown(table, target)
    elif fmt == "parquet":
        if target is sys.stdout:
            raise ValueError("parquet output needs a file: --out FILE.parquet")
        write_parquet(table, out)
    return fmt
