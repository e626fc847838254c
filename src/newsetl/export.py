r"""Writing query results: a readable terminal table, CSV, JSON or Parquet.

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

A CSV *file* (`--out FILE.csv`) is data: RFC 4180 allows any character in a
quoted field, so every value is written as it is (control characters included)
and reads back equal in pandas, DuckDB or a spreadsheet; only the formula
neutralisation above applies. A file is not a terminal: whoever shows it
chooses how. Escaping there would change the data for every program that reads
it, and a value with a backslash could no longer be told from an escaped one.

What is *shown* is made inert instead (`inert`): the terminal table, the
one-field-a-line form (`--format line`, to a file too), CSV on standard output
(`--out -`, `--format csv` without --out) and Markdown (`--format markdown`). Every C0 control (ESC, BEL, CR, ...), DEL, C1 control
(0x80-0x9f: 0x9b is an 8-bit CSI) and bidirectional embedding, override or
isolate (U+202A-U+202E, U+2066-U+2069) is written as a visible escape: `\n`,
`\r`, `\t`, `\x1b`, `\u202e`. A backslash is doubled where it would otherwise
read as one of these escapes (before `\`, `n`, `r`, `t`, `x`, `u` or an escaped
character), so a shown `\x1b` always means ESC and the value can be read back.
CSV on standard output keeps its own line breaks: CRLF after each record and a
line feed inside a quoted field (RFC 4180; a bare line feed cannot drive a
terminal). Markdown escapes, besides, everything its renderers read as markup
(backslash escapes, and character references such as `&lt;` where Python-Markdown
has no escape), so that no value becomes a link, an image, HTML, an emoji or a
table column, on GitHub or elsewhere (`markdown_text`). JSON escapes DEL, C1 and bidirectional controls as `\uXXXX`
(the same values to any JSON reader). Parquet keeps values exactly as they are.
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

from .defaults import FORMATS  # the output formats, with the CLI's other defaults

# orjson and pyarrow are imported where they are used: the terminal table of a read command
# needs neither (its rows come from DuckDB, `Rows`)

from .words import plural

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
        import orjson

        return orjson.dumps(v, default=str).decode()
    return str(v)


def _cell(v) -> str:
    t = type(v)
    if t is int or t is float or t is Decimal:
        return str(v)  # numbers are never neutralised: -2 must stay a number
    return neutralise(_text(v))


def _shown_cell(v) -> str:
    t = type(v)
    if t is int or t is float or t is Decimal:
        return str(v)
    return neutralise(inert(_text(v), "\n"))


def _utc(table: pa.Table) -> pa.Table:
    """Timestamp columns with a time zone, re-labelled UTC (same instants; DuckDB labels them
    with the session's zone)."""
    import pyarrow as pa

    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz not in (None, "UTC"):
            utc = pa.timestamp(field.type.unit, "UTC")
            table = table.set_column(i, pa.field(field.name, utc, field.nullable), table.column(i).cast(utc))
    return table


def write_csv(table: pa.Table, out, *, shown: bool = False) -> int:
    """Write `table` as RFC 4180 CSV (header row, UTF-8, CRLF) to a path or a text stream;
    `shown`: for a terminal (standard output), every value and name made `inert` but for
    line feeds (the module's docstring says why a file is not).

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
        cell = _shown_cell if shown else _cell
        w.writerow([neutralise(inert(n, "\n") if shown else n) for n in table.column_names])
        for batch in table.to_batches(max_chunksize=10_000):
            cols = [c.to_pylist() for c in batch.columns]
            for row in zip(*cols):
                w.writerow([cell(v) for v in row])
    finally:
        if own:
            fh.close()
    return table.num_rows


def _json_default(v):
    if isinstance(v, (dt.timedelta, bytes, bytearray, memoryview)):
        return _text(v)
    return str(v)  # Decimal and anything else orjson does not know: exact text


def _json_options() -> int:
    import orjson

    return orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC


def _write_text(data: str, out) -> None:
    if hasattr(out, "write"):
        out.write(data)
    else:
        Path(out).write_text(data, encoding="utf-8")


# JSON escapes C0 itself; these it writes as they are, and a terminal would act on them
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _json_inert(text: str) -> str:
    """DEL, C1 and bidirectional controls as \\uXXXX escapes: they occur only inside JSON
    strings, so the document means the same to any reader."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text) if _JSON_UNSAFE.search(text) else text


def write_json(table: pa.Table, out) -> int:
    """A JSON array of objects; timestamps in ISO 8601 UTC (Z)."""
    import orjson

    data = orjson.dumps(_utc(table).to_pylist(), option=_json_options(), default=_json_default).decode()
    _write_text(_json_inert(data), out)
    return table.num_rows


def write_ndjson(table: pa.Table, out) -> int:
    """One JSON object per line (JSON Lines), as `write_json` writes each."""
    import orjson

    _write_text(_json_inert("".join(
        orjson.dumps(row, option=_json_options() | orjson.OPT_APPEND_NEWLINE, default=_json_default).decode()
        for row in _utc(table).to_pylist())), out)
    return table.num_rows


# Markdown: what its renderers read as markup is written so that CommonMark (GitHub) and
# Python-Markdown alike show it as text. Backslash escapes, which both read: links and images
# ([ ] !), code and emphasis (` *), headings (#), table cells (|), the backslash itself; an
# underscore too, but between two letters or digits, where it can neither open nor close
# emphasis (CommonMark's flanking rules) and snake_case names stay readable. Character
# references, which both show as the character (Python-Markdown has no escape for these): HTML
# and autolinks (< >), entities (&), strikethrough (~), math ($), mentions and e-mail links (@),
# and a colon that would start a link (https://) or an emoji image (:octocat:).
_MD_MARKUP = re.compile(r"(?P<ref>[&<>~$@]|:(?=//)|:(?=[A-Za-z][\w+-]*:))"
                        r"|(?P<esc>[\\`*\[\]!#|]|_(?![^\W_])|(?<![^\W_])_)")
_MD_REFERENCE = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_MD_WWW = re.compile(r"(?i)(www)\.")  # GitHub links www.example.com by itself


def _md_markup(m: re.Match) -> str:
    ch = m.group()
    if m.group("esc"):
        return "\\" + ch
    return _MD_REFERENCE.get(ch) or f"&#{ord(ch)};"


def markdown_text(v) -> str:
    """A value as inert Markdown inline text: shown as `inert` shows it (one line, control
    characters as escapes), then its markup escaped (`_MD_MARKUP`), so a renderer shows the
    characters and makes no link, image, HTML, emphasis or table column of them. (A line
    that starts with `-`, `+` or `1.` would be a list; a table cell never starts a line.)"""
    text = "" if v is None else (str(v) if type(v) in (int, float) else _text(v))
    text = _MD_MARKUP.sub(_md_markup, inert(text))
    return _MD_WWW.sub(lambda m: m.group(1) + "\\.", text)


def write_markdown(table: pa.Table, out) -> int:
    """A GitHub-flavoured Markdown table; values and column names are inert (`markdown_text`)."""
    _md = markdown_text
    lines = ["| " + " | ".join(_md(c) for c in table.column_names) + " |",
             "|" + "".join("---:|" if _is_number(f.type) else "---|" for f in table.schema)]
    for row in _rows(table):
        lines.append("| " + " | ".join(_md(v) for v in row) + " |")
    _write_text("\n".join(lines) + "\n", out)
    return table.num_rows


def write_line(table: pa.Table, out) -> int:
    """One field a line, as DuckDB's `.mode line`: each column's name right-aligned to the
    longest, ` = `, the value as the terminal table shows it (`inert`, NULL as `NULL`, lists
    joined with `; `); a blank line between rows. For wide rows, read down instead of across."""
    names = [inert(n) for n in table.column_names]
    width = max((len(n) for n in names), default=0)
    blocks = ["\n".join(f"{n:>{width}} = {_shown(v)}" for n, v in zip(names, row)) for row in _rows(table)]
    _write_text("\n\n".join(blocks) + ("\n" if blocks else ""), out)
    return table.num_rows


def _rows(table: pa.Table):
    """Rows as tuples, by position: two columns of one name are two cells (to_pylist keeps one)."""
    for batch in table.to_batches(max_chunksize=10_000):
        yield from zip(*(c.to_pylist() for c in batch.columns))


def _is_number(t: pa.DataType) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)


def write_parquet(table: pa.Table, out) -> int:
    import pyarrow.parquet as pq

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


# what `inert` escapes: C0 controls, DEL, C1 controls, bidirectional embeddings, overrides and isolates
_CONTROL = "\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[{_CONTROL}]|\\\\(?=[\\\\nrtxu{_CONTROL}])")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def _escape(ch: str) -> str:
    named = _NAMED.get(ch)
    if named:
        return named
    n = ord(ch)
    return f"\\x{n:02x}" if n <= 0xFF else f"\\u{n:04x}"


def inert(text: str, keep: str = "") -> str:
    """`text` as it may be shown: control characters and bidirectional controls as visible
    escapes (`\\x1b`, `\\u202e`, `\\n`), a backslash doubled where it would read as an
    escape; the characters in `keep` (a format's own line break) as they are."""
    if not _UNSAFE.search(text):
        return text
    return _UNSAFE.sub(lambda m: m.group() if m.group() in keep else _escape(m.group()), text)


MAX_ROWS = 40  # rows a terminal table shows; --out or a --format gives them all
MAX_CELL = 60  # characters of one cell on the terminal (the rest is "…")
MIN_TEXT = 12  # a text column is not squeezed below this to make room for others


def _shown(v) -> str:
    """A value as one line of terminal text (`inert`: `\\n`, `\\x1b`, `\\u202e`)."""
    if v is None:
        return "NULL"
    return inert(str(v) if type(v) in (int, float, Decimal) else _text(v))


def _wrap(text: str, width: int) -> list[str]:
    """`text` over lines of at most `width` characters, broken at spaces where it can be."""
    import textwrap

    return textwrap.wrap(text, max(width, 1), break_on_hyphens=False) or [""]


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


class Rows:
    """A result as DuckDB gives it, for the terminal table without pyarrow (whose import alone
    would take most of a read command's start): column names, DuckDB's type names and the rows
    as Python values, the first ones only when `num_rows` says there are more. Every other
    format writes it as an Arrow table (`to_arrow`, whole results only)."""

    def __init__(self, names, types, rows: list, num_rows: int | None = None):
        self.column_names = list(names)
        self.types = [str(t) for t in types]
        self.rows = rows
        self.num_rows = len(rows) if num_rows is None else num_rows

    @classmethod
    def of(cls, result, max_rows: int | None = None) -> "Rows":
        """A DuckDB relation's rows (the first `max_rows`, and how many there are in all), read
        in one run of it."""
        names, types = result.columns, result.types
        rows, n = [], 0
        for row in result.iter_rows(2048):
            if max_rows is None or n < max_rows:
                rows.append(row)
            n += 1
        return cls(names, types, rows, n)

    def to_arrow(self):
        """As an Arrow table, its columns of the Arrow types of their DuckDB types (schema.arrow)."""
        if self.num_rows != len(self.rows):
            raise ValueError("only the first rows were read: read the whole result as an Arrow table")
        import pyarrow as pa

        from .schema import arrow

        cols = list(zip(*self.rows)) if self.rows else [()] * len(self.column_names)
        return pa.Table.from_arrays([pa.array(list(c), type=arrow(t)) for c, t in zip(cols, self.types)],
                                    names=self.column_names)


_DUCK_NUMBERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
                 "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")


def _duck_kind(t: str) -> str:
    """number, fixed (dates, times, booleans: never shortened) or text, of a DuckDB type name."""
    base = t.split("(", 1)[0].strip()
    if base in _DUCK_NUMBERS:
        return "number"
    if base in ("BOOLEAN", "DATE", "INTERVAL") or base.startswith(("TIME", "TIMESTAMP")):
        return "fixed"
    return "text"


def _arrow_kind(t) -> str:
    """The same, of an Arrow type."""
    import pyarrow as pa

    if _is_number(t):
        return "number"
    return "fixed" if pa.types.is_temporal(t) or pa.types.is_boolean(t) else "text"


def show(table: pa.Table | Rows, max_rows: int = MAX_ROWS, max_width: int | None = None, stream=None,
         wrap: tuple = ()) -> None:
    """Print `table` for a terminal: columns left to right as they fit in `max_width`
    (the terminal's width by default; wide text columns are shortened first), the first
    `max_rows` rows, and a last line that says what is not shown and how to see it. The
    columns named in `wrap` are never cut short: their text is wrapped over several lines."""
    stream = stream or sys.stdout
    width = max_width or terminal_width()
    names = [inert(n) for n in table.column_names]
    if isinstance(table, Rows):
        head = table.rows[:max_rows]
        kinds = [_duck_kind(t) for t in table.types]
    else:
        head = list(_rows(table.slice(0, max_rows)))
        kinds = [_arrow_kind(f.type) for f in table.schema]
    cells = [[_shown(v) for v in r] for r in head]
    numeric = [k == "number" for k in kinds]
    # numbers, dates and the first column (what a row is) are never shortened
    fixed = [i == 0 or k != "text" for i, k in enumerate(kinds)]
    wrapped = [n in wrap for n in table.column_names]
    widths = [min(max([len(n)] + [len(c[i]) for c in cells]), 10**9 if wrapped[i] else MAX_CELL)
              for i, n in enumerate(names)]

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
        parts = [_wrap(v, w) if wrapped[i] else [_clip(v, w)] for i, (v, w) in enumerate(zip(values, ws))]
        out = []
        for k in range(max(len(p) for p in parts)):
            cells = [(p[k] if k < len(p) else "") for p in parts]
            out.append("│ " + " │ ".join(v.rjust(w) if aligns and aligns[i] else v.ljust(w)
                                         for i, (v, w) in enumerate(zip(cells, ws))) + " │")
        return "\n".join(out)

    rule = lambda a, b, c: a + b.join("─" * (w + 2) for w in ws) + c  # noqa: E731
    lines = [rule("┌", "┬", "┐"), line(names[:shown]), rule("├", "┼", "┤")]
    lines += [line(c[:shown], numeric) for c in cells]
    lines.append(rule("└", "┴", "┘"))
    notes = [plural(table.num_rows, "row")]
    if table.num_rows > len(head):
        notes.append(f"the first {len(head)} shown (all of them: --out FILE, or --format csv)")
    if shown < len(names):
        hidden = names[shown:]
        notes.append(f"{plural(len(hidden), 'more column')} not shown: {', '.join(hidden)} "
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


def write(table: pa.Table | Rows, out: str | None, fmt: str | None, *, max_width: int | None = None,
          max_rows: int = MAX_ROWS, wrap: tuple = ()) -> str:
    """Write `table` to `out` in the chosen format (standard output when out is None or
    '-'); the format as format_for chooses it. Returns the format."""
    fmt = format_for(out, fmt)
    target = sys.stdout if out in (None, "-") else out
    if fmt != "table" and isinstance(table, Rows):
        table = table.to_arrow()
    if fmt == "table":
        if target is not sys.stdout:
            raise ValueError("a table is for the terminal: write a file as --format csv, json, ndjson, markdown "
                             "or parquet")
        show(table, max_rows=max_rows, max_width=max_width, wrap=wrap)
    elif fmt == "line":
        write_line(table, target)
    elif fmt == "csv":
        write_csv(table, target, shown=target is sys.stdout)
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
