"""CSV that opens safely everywhere, JSON and Parquet in UTC, a terminal table that
hostile text cannot drive; on hand-made tables and on the fixture corpus's reports."""

from __future__ import annotations

import csv
import datetime as dt
import io
import html
import json
import re
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from newsetl import bundle, export, reports

from .helpers.cli import newsetl_here
from .helpers.model import UTC

@pytest.fixture(scope="module")
def wh(reports_wh):
    return reports_wh


# -- neutralising ---------------------------------------------------------------------------------

@pytest.mark.parametrize("cell, want", [
    ('=HYPERLINK("http://evil","x")', '\'=HYPERLINK("http://evil","x")'),
    ("@SUM(1+1)", "'@SUM(1+1)"),
    ("+cmd", "'+cmd"),
    ("-2+3", "'-2+3"),
    ("\tTAB", "'\tTAB"),
    ("\rCR", "'\rCR"),
    ("=1+1", "'=1+1"),
    ("-", "'-"),
    ("+33 1 23 45 67 89", "'+33 1 23 45 67 89"),
    ("-٣", "'-٣"),  # not an ASCII number
    # plain numbers in text stay as they are
    ("-2", "-2"), ("+3", "+3"), ("-2.5", "-2.5"), ("-.5", "-.5"), ("-1e5", "-1e5"), ("+1.5E-3", "+1.5E-3"),
    # nothing to do
    ("", ""), ("Hello", "Hello"), ("a=b", "a=b"), (" =1+1", " =1+1"), ("'=1", "'=1"),
    ("<script>alert(1)</script>", "<script>alert(1)</script>"),
])
def test_neutralise(cell, want):
    assert export.neutralise(cell) == want


def _csv(table: pa.Table) -> str:
    buf = io.StringIO(newline="")
    export.write_csv(table, buf)
    return buf.getvalue()


def test_csv_format_rules():
    t = pa.table({
        "title": ["plain", 'a "quoted", comma', "two\nlines", None, "=cmd"],
        "n": pa.array([1, -2, None, 0, -5], pa.int32()),
        "x": [1.5, -0.25, None, 1e20, -2.0],
        "ok": [True, False, None, True, False],
        "at": pa.array([dt.datetime(2021, 3, 1, 10, tzinfo=UTC), dt.datetime(2021, 3, 1, 10, 0, 0, 123456, tzinfo=UTC),
                        None, dt.datetime(2021, 3, 1, 19, tzinfo=dt.timezone(dt.timedelta(hours=9))), None],
                       pa.timestamp("us", "UTC")),
        "day": [dt.date(2021, 3, 1), None, None, None, None],
        "tags": [["AI", "Cloud"], [], None, ["=x", "y"], ["-1"]],
        "amount": pa.array([Decimal("1.50"), None, None, None, Decimal("-3.25")], pa.decimal128(5, 2)),
    })
    text = _csv(t)
    assert not text.startswith("\ufeff")
    assert text.endswith("\r\n") and "\r\n" in text
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["title", "n", "x", "ok", "at", "day", "tags", "amount"]
    assert rows[1] == ["plain", "1", "1.5", "true", "2021-03-01T10:00:00Z", "2021-03-01", "AI; Cloud", "1.50"]
    assert rows[2] == ['a "quoted", comma', "-2", "-0.25", "false", "2021-03-01T10:00:00.123456Z", "", "", ""]
    assert rows[3] == ["two\nlines", "", "", "", "", "", "", ""]
    assert rows[4] == ["", "0", "1e+20", "true", "2021-03-01T10:00:00Z", "", "'=x; y", ""]
    assert rows[5] == ["'=cmd", "-5", "-2.0", "false", "", "", "-1", "-3.25"]
    assert '"a ""quoted"", comma"' in text  # RFC 4180: quotes doubled inside a quoted field


def test_hostile_header_is_neutralised():
    assert _csv(pa.table({"=cmd()": [1]})).splitlines()[0] == "'=cmd()"


def test_csv_file_is_utf8_without_bom(tmp_path):
    path = tmp_path / "t.csv"
    export.write_csv(pa.table({"name": ["Café €", "naïve"]}), path)
    data = path.read_bytes()
    assert data == "name\r\nCafé €\r\nnaïve\r\n".encode("utf-8")


# -- on the fixture corpus ------------------------------------------------------------------------

def test_report_csv_round_trips_through_pandas(wh, tmp_path):
    table = reports.run(wh, "top_articles")
    path = tmp_path / "top.csv"
    reports.export_report(wh, "top_articles", path)
    df = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={"article_id": str})
    assert list(df.columns) == table.column_names
    assert len(df) == table.num_rows
    want = table.to_pylist()
    for got_row, w in zip(df.to_dict("records"), want):
        for col, value in w.items():
            g = got_row[col]
            if value is None or value == []:  # an empty list is an empty cell, like NULL
                assert pd.isna(g), (col, g)
            elif isinstance(value, bool):
                assert g == value, col
            elif isinstance(value, int):
                assert int(g) == value, col
            elif isinstance(value, dt.datetime):
                assert pd.Timestamp(g).to_pydatetime() == value, col
            elif isinstance(value, list):
                assert g == export.LIST_SEP.join(value), col
            else:
                assert g == export.neutralise(value), col
    # numbers are numbers again, negative heats included; hostile titles are text with a leading '
    assert df["heat"].dtype.kind == "i" and -5 in set(df["heat"]) and -1 in set(df["heat"])
    assert df["quality"].dtype.kind in "if"
    titles = set(df["title"])
    assert {'\'=HYPERLINK("http://evil","x")', "'@SUM(1+1)", "'+cmd", "'-2+3", "<script>alert(1)</script>"} <= titles
    assert not any(isinstance(t, str) and t[:1] in "=+-@\t\r" for t in titles)


def test_every_report_csv_parses_and_has_no_live_formula(wh, tmp_path):
    out = bundle.export_all(wh, tmp_path, html=False)
    for name, w in out.items():
        with open(w["path"], newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        assert rows[0] == reports.run(wh, name).column_names
        assert len(rows) == 1 + w["rows"], name
        for row in rows[1:]:
            for cell in row:
                if cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
                    float(cell)  # only plain numbers may start like a formula


def test_sql_out_csv_is_neutralised_too(wh, tmp_path, capsys):
    from newsetl import cli

    path = tmp_path / "sql.csv"
    code = cli.main(["sql", "SELECT title, heat, published_at FROM articles ORDER BY title",
                     "--warehouse", str(wh), "--out", str(path)])
    assert code == 0
    df = pd.read_csv(path)
    assert "'=HYPERLINK(\"http://evil\",\"x\")" in set(df["title"]) and "'@SUM(1+1)" in set(df["title"])
    assert df["heat"].dtype.kind == "i" and -5 in set(df["heat"])
    assert all(v.endswith("Z") for v in df["published_at"].dropna())


def test_json_and_parquet_keep_values_and_say_utc(wh, tmp_path):
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'Asia/Tokyo'")
        t = con.sql("SELECT TIMESTAMPTZ '2021-03-01 10:00:00+00' AS at, '=cmd' AS title, -5 AS heat").to_arrow_table()
    finally:
        con.close()
    assert t.schema.field("at").type.tz == "Asia/Tokyo"
    buf = io.StringIO()
    export.write_json(t, buf)
    assert json.loads(buf.getvalue()) == [{"at": "2021-03-01T10:00:00Z", "title": "=cmd", "heat": -5}]
    export.write_parquet(t, tmp_path / "t.parquet")
    back = pq.read_table(tmp_path / "t.parquet")
    assert back.schema.field("at").type.tz == "UTC"
    assert back.to_pylist() == [{"at": dt.datetime(2021, 3, 1, 10, tzinfo=UTC), "title": "=cmd", "heat": -5}]


def test_formats():
    assert export.format_for("x.CSV", None) == "csv"
    assert export.format_for(None, None) == "table"
    with pytest.raises(ValueError, match="cannot tell the format"):
        export.format_for("x.xlsx", None)
    with pytest.raises(ValueError, match="unknown format"):
        export.format_for(None, "xlsx")


def test_terminal_table_neutralises_control_characters(capsys):
    t = pa.table({"title": ["ok \x1b[31mred", "c1 \x9b31m csi", "bidi \u202egnp.exe"],
                  "topics": [["a\x9b"], None, []]})
    buf = io.StringIO()
    export.show(t, stream=buf)
    out = buf.getvalue()
    assert "\x1b" not in out and "\x9b" not in out and "\u202e" not in out
    # visible escapes, one for each character (not U+FFFD, which would hide which one it was)
    assert "ok \\x1b[31mred" in out and "a\\x9b" in out
    assert "c1 \\x9b31m csi" in out and "bidi \\u202egnp.exe" in out


# -- what is shown is inert: the terminal, CSV on standard output, Markdown --------------------------

# what may not reach a terminal or a renderer as it is: C0, DEL, C1, bidirectional controls
CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
MARKUP = set("\\`*_[]<>|#!~$&@")  # and a colon that starts :// or :emoji:
# white space that is not a control character: a Markdown table cell may lose it at its ends
PAD = "".join(c for c in map(chr, range(0x3001)) if c.isspace() and not CONTROLS.match(c))

HOSTILE = {
    "esc": "red \x1b[31mALERT\x1b[0m and a title \x1b]0;owned\x07",
    "bel": "ding\x07dong",
    "link": "[click me](javascript:alert(1))",
    "image": "![img](https://evil.example/pixel.png)",
    "script": "<script>alert(1)</script>",
    "bidi": "invoice \u202egpj.exe",
    "c1": "8-bit CSI \x9b31m and DEL \x7f",
    "cr": "good\rEVIL",
}


def decode_shown(text: str) -> str:
    """Read back what `inert` shows (written here from its rules: \\\\ \\n \\r \\t \\xNN \\uNNNN; a
    backslash before anything else is itself)."""
    out, i = [], 0
    while i < len(text):
        c, nxt = text[i], text[i + 1: i + 2]
        if c == "\\" and nxt == "\\":
            out.append("\\")
            i += 2
        elif c == "\\" and nxt in ("n", "r", "t") and nxt:
            out.append({"n": "\n", "r": "\r", "t": "\t"}[nxt])
            i += 2
        elif c == "\\" and nxt == "x" and re.fullmatch("[0-9a-f]{2}", text[i + 2: i + 4]):
            out.append(chr(int(text[i + 2: i + 4], 16)))
            i += 4
        elif c == "\\" and nxt == "u" and re.fullmatch("[0-9a-f]{4}", text[i + 2: i + 6]):
            out.append(chr(int(text[i + 2: i + 6], 16)))
            i += 6
        else:
            out.append(c)
            i += 1
    return "".join(out)


def sql_text(value: str) -> str:
    """A DuckDB expression for `value` (control characters as chr(n))."""
    parts = re.split(r"([\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069])", value)
    return " || ".join(f"chr({ord(p)})" if CONTROLS.fullmatch(p) else "'" + p.replace("'", "''") + "'"
                       for p in parts if p) or "''"


def markdown_cells(md: str, ncols: int) -> list[list[str]]:
    """The cells of a Markdown table, checked against the escaping rules: outside a backslash
    escape, the only markup characters are the table's own pipes."""
    rows = []
    for line in md.splitlines():
        if re.fullmatch(r"\|(-{3}:?\|)+", line):
            continue
        cells, cur, i = [], [], 0
        assert line.startswith("| ") and line.endswith(" |"), line
        body = line[2:-2]
        while i < len(body):
            c = body[i]
            ref = re.match(r"&(amp|lt|gt|#[0-9]+);", body[i:])
            if ref:  # a character reference: the character, as text
                cur.append(html.unescape(ref.group()))
                i += len(ref.group())
                continue
            if c == ":":
                assert not re.match(r":(//|[A-Za-z][\w+-]*:)", body[i:]), line  # a link, an emoji image
            if c == "\\":
                assert i + 1 < len(body), line  # a backslash always escapes something
                cur.append(body[i + 1])
                i += 2
                continue
            if c == "|":
                assert body[i - 1] == " " and body[i + 1] == " ", line
                cells.append("".join(cur)[:-1])
                cur = []
                i += 2
                continue
            # an underscore inside a word cannot start or end emphasis (CommonMark's flanking rules)
            inside_word = c == "_" and i and body[i - 1].isalnum() and body[i + 1: i + 2].isalnum()
            assert c not in MARKUP or inside_word, (c, line)
            assert not (c == "." and "".join(cur)[-3:].lower() == "www"), line  # www.example.com links itself
            cur.append(c)
            i += 1
        cells.append("".join(cur))
        assert len(cells) == ncols, line
        rows.append(cells)
    return rows


def render_markdown(md: str) -> str | None:
    """`md` rendered by a real CommonMark renderer with GitHub's tables (markdown-it-py, which
    Prefect's rich brings), raw HTML allowed as CommonMark allows it; None if none is installed.
    Python-Markdown, where installed, must make nothing but the table of it either."""
    try:
        import markdown
    except ImportError:
        pass
    else:
        rendered_cells(markdown.markdown(md, extensions=["tables"]))
    try:
        from markdown_it import MarkdownIt
    except ImportError:
        return None
    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(md)


def rendered_cells(html_text: str) -> list[list[str]]:
    """The cells of the rendered table; nothing but table markup and text may come out."""
    from html.parser import HTMLParser

    rows: list[list[str]] = []
    cell = []

    class P(HTMLParser):
        def handle_starttag(self, tag, attrs):
            assert tag in ("table", "thead", "tbody", "tr", "th", "td"), (tag, html_text)
            assert all(k == "style" for k, _ in attrs), (tag, attrs)
            if tag == "tr":
                rows.append([])
            elif tag in ("th", "td"):
                rows[-1].append("")
                cell.append(tag)

        def handle_endtag(self, tag):
            if tag in ("th", "td"):
                cell.pop()

        def handle_data(self, data):
            if cell:
                rows[-1][-1] += data
            else:
                assert not data.strip(), (data, html_text)  # no text outside the cells

    p = P(convert_charrefs=True)
    p.feed(html_text)
    p.close()
    return rows


def check_shown(values: list[str], names: list[str] | None = None) -> None:
    """Every shown form of a table of `values` (and column `names`) is inert and reads back."""
    names = names or ["v"]
    t = pa.table({n: pa.array(values if i == 0 else [None] * len(values), pa.string()) for i, n in enumerate(names)})
    # the terminal table
    buf = io.StringIO()
    export.show(t, stream=buf, max_width=10_000, max_rows=len(values))
    out = buf.getvalue()
    assert not CONTROLS.search(out.replace("\n", "")), out
    # CSV on standard output: only its own line breaks; every cell reads back
    text = _csv_shown(t)
    assert not CONTROLS.search(text.replace("\r\n", "").replace("\n", "")), text
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) == 1 + len(values)
    for cell, v in [*zip(rows[0], names), *((r[0], v) for r, v in zip(rows[1:], values))]:
        if decode_shown(cell) != v:  # neutralised: a leading ' before what a spreadsheet would run
            assert cell.startswith("'") and cell[1:2] in "=+-@" and decode_shown(cell[1:]) == v, (cell, v)
    # Markdown: inert by its rules, and as a renderer shows it
    md = io.StringIO()
    export.write_markdown(t, md)
    md = md.getvalue()
    assert not CONTROLS.search(md.replace("\n", "")), md
    cells = markdown_cells(md, len(names))
    assert [decode_shown(c) for c in cells[0]] == names
    assert [decode_shown(r[0]) for r in cells[1:]] == values
    html_text = render_markdown(md)
    if html_text is not None:
        shown = rendered_cells(html_text)
        assert len(shown) == 1 + len(values) and all(len(r) == len(names) for r in shown), html_text
        # the text a reader sees is the value, but for a cell's own padding (white space at its ends)
        assert [decode_shown(c.strip(PAD)) for c in shown[0]] == [n.strip(PAD) for n in names]
        assert [decode_shown(r[0].strip(PAD)) for r in shown[1:]] == [v.strip(PAD) for v in values]


def _csv_shown(t: pa.Table) -> str:
    buf = io.StringIO(newline="")
    export.write_csv(t, buf, shown=True)
    return buf.getvalue()


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_values_are_inert_when_shown(name):
    check_shown([HOSTILE[name]], names=["v", HOSTILE[name]])


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_values_through_the_command_line(wh, name):
    value = HOSTILE[name]
    sql = f"SELECT {sql_text(value)} AS v, 1 AS n"
    table = newsetl_here("sql", sql, "--warehouse", wh, "--max-width", "200")
    assert table.returncode == 0, table.stderr
    assert not CONTROLS.search(table.stdout.replace("\n", "")), table.stdout
    cell = table.stdout.splitlines()[3].split("│")[1].strip()
    assert decode_shown(cell) == value
    out = newsetl_here("sql", sql, "--warehouse", wh, "--out", "-")
    assert not CONTROLS.search(out.stdout.replace("\n", "")), out.stdout
    (row,) = list(csv.DictReader(io.StringIO(out.stdout)))
    assert decode_shown(row["v"]) == value
    md = newsetl_here("sql", sql, "--warehouse", wh, "--format", "markdown")
    assert not CONTROLS.search(md.stdout.replace("\n", "")), md.stdout
    html_text = render_markdown(md.stdout)
    if html_text is not None:
        assert "<a" not in html_text and "<img" not in html_text and "<script" not in html_text
        assert [decode_shown(c) for c in rendered_cells(html_text)[1]] == [value, "1"]
    # an error message that quotes the value
    err = newsetl_here("sql", f"SELECT CAST({sql_text(value)} AS INTEGER)", "--warehouse", wh)
    assert err.returncode == 1 and err.stderr.startswith("newsetl sql: error: SQL error:"), err.stderr
    assert not CONTROLS.search(err.stderr.replace("\n", "")), err.stderr


def test_the_examples_of_the_issue_read_as_escapes():
    buf = io.StringIO()
    export.show(pa.table({"title": [HOSTILE["esc"], HOSTILE["bel"]]}), stream=buf)
    assert "red \\x1b[31mALERT\\x1b[0m" in buf.getvalue() and "ding\\x07dong" in buf.getvalue()
    md = io.StringIO()
    export.write_markdown(pa.table({"t": [HOSTILE["link"], HOSTILE["image"], HOSTILE["script"]]}), md)
    assert md.getvalue().splitlines()[2:] == [
        "| \\[click me\\](javascript:alert(1)) |",
        "| \\!\\[img\\](https&#58;//evil.example/pixel.png) |",
        "| &lt;script&gt;alert(1)&lt;/script&gt; |",
    ]
    assert export.markdown_text("see www.evil.example & a@b.example") == "see www\\.evil.example &amp; a&#64;b.example"
    assert export.markdown_text(":octocat: at 10:00:00Z, $5 ~x~") == "&#58;octocat: at 10:00:00Z, &#36;5 &#126;x&#126;"
    assert export.markdown_text("provider_domain _x_ a__b") == "provider_domain \\_x\\_ a\\_\\_b"
    # a backslash is doubled only where it would read as an escape
    assert export.inert("C:\\Users\\new\\x41") == "C:\\Users\\\\new\\\\x41"
    assert export.inert("a\\\x1b") == "a\\\\\\x1b" and decode_shown("a\\\\\\x1b") == "a\\\x1b"


def test_any_text_is_inert_when_shown():
    from hypothesis import given, settings, strategies as st

    from .helpers import examples

    tricky = st.sampled_from(list("\x1b\x07\x00\r\n\t\x7f\x85\x9b\u202e\u2066\u2069\\|[]()!<>&*_`#~:@$-+=. xnu0")
                             + ["www.", "://", "\\x1b", "\\u202e", "&amp;", "<a href=x>"])
    # any text a warehouse can hold: Arrow strings are UTF-8, which has no lone surrogate
    text = st.lists(st.one_of(tricky, st.characters(blacklist_categories=("Cs",))), max_size=25).map("".join)

    @settings(max_examples=examples(200), deadline=None)
    @given(st.lists(text, min_size=1, max_size=3), text)
    def prop(values, name):
        check_shown(values, names=["v", name or "n"] if name != "v" else ["v"])

    prop()


def test_a_csv_file_keeps_every_character(tmp_path):
    """A file is data (RFC 4180): control characters are written as they are, and read back."""
    value = HOSTILE["esc"] + HOSTILE["bidi"] + HOSTILE["cr"]
    export.write_csv(pa.table({"v": [value]}), tmp_path / "t.csv")
    with open(tmp_path / "t.csv", newline="", encoding="utf-8") as fh:
        assert list(csv.reader(fh)) == [["v"], [value]]
    assert pd.read_csv(tmp_path / "t.csv")["v"].tolist() == [value]


def test_json_escapes_what_a_terminal_would_act_on():
    value = HOSTILE["c1"] + HOSTILE["bidi"] + HOSTILE["esc"]
    for write in (export.write_json, export.write_ndjson):
        buf = io.StringIO()
        write(pa.table({"v\u202e": [value]}), buf)
        assert not CONTROLS.search(buf.getvalue().replace("\n", "")), buf.getvalue()
        got = json.loads(buf.getvalue().splitlines()[0])
        assert (got[0] if isinstance(got, list) else got) == {"v\u202e": value}
