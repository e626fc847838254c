"""CSV that opens safely everywhere, JSON and Parquet in UTC, a terminal table that
hostile text cannot drive; on hand-made tables and on the fixture corpus's reports."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from newsetl import bundle, export, reports

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
    assert "\\e[31mred" in out  # DuckDB shows C0 controls as escapes
    assert "c1 \ufffd31m csi" in out and "bidi \ufffdgnp.exe" in out
