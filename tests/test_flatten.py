"""Flatten and typing, unit by unit: values computed by hand."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from newsetl.clean import as_bool, as_int, as_name, as_text, as_timestamp, fix_mojibake
from newsetl.extract import Extracted, SourceFile
from newsetl.flatten import BatchBuilder, article_id_for, type_column

UTC = dt.timezone.utc


@pytest.mark.parametrize("value, typed, problem", [
    (39, 39, None), (39.0, 39, None), (" 39 ", 39, None), ("-1", -1, None), (None, None, None),
    ("high", None, "expected an integer, got text"), (True, None, "expected an integer, got a boolean"),
    (39.5, None, "expected an integer, got a number"), (2**40, None, "integer out of range"),
])
def test_as_int(value, typed, problem):
    issues = []
    assert as_int(value, issues, "quality") == typed
    assert [i[2] for i in issues] == ([problem] if problem else [])


def test_as_bool_and_as_timestamp():
    issues = []
    assert [as_bool(v, issues, "p") for v in (True, "yes", "False", None)] == [True, True, False, None]
    assert as_bool("maybe", issues, "p") is None and issues[-1][0] == "p"
    assert as_timestamp(dt.datetime(2021, 2, 12, 21, 25, tzinfo=dt.timezone(dt.timedelta(hours=1))), issues, "d") \
        == dt.datetime(2021, 2, 12, 20, 25, tzinfo=UTC)
    assert as_timestamp("2021-02-12T20:25:00Z", issues, "d") == dt.datetime(2021, 2, 12, 20, 25, tzinfo=UTC)
    assert as_timestamp(dt.date(2021, 2, 12), issues, "d") == dt.datetime(2021, 2, 12, tzinfo=UTC)
    n = len(issues)
    assert as_timestamp("last Tuesday", issues, "d") is None and len(issues) == n + 1


def test_text_cleaning():
    issues = []
    assert as_text("  Tom &amp; Jerry&nbsp;", issues, "t") == "Tom & Jerry"
    assert as_text("cityâ€™s", issues, "t") == "city\u2019s"
    assert fix_mojibake("SÃO PAULO") == "SÃO PAULO"  # not mojibake: left alone
    assert as_name("Morningstar%2c Inc.", issues, "n") == "Morningstar, Inc."
    assert as_name("100% Tech", issues, "n") == "100% Tech"
    assert as_text(2021, issues, "t") == "2021" and not issues


def test_type_column_gives_the_same_value_whatever_the_batch():
    # a value's result must not depend on its neighbours (fast Arrow path vs per-value path)
    alone, _ = type_column([" a\u00a0", "x"], "text")
    mixed, bad = type_column([" a\u00a0", 5, ["list"]], "text")
    assert alone.to_pylist()[0] == mixed.to_pylist()[0] == "a"
    assert mixed.to_pylist()[1:] == ["5", None]
    assert [(row, problem) for row, _raw, problem in bad] == [(2, "expected text, got a list")]


def _ex(record, name="x.md", body=""):
    f = SourceFile(f"site/{name}", f"/nowhere/{name}", name, 1, 0)
    return Extracted(f, "0" * 64, 1, record=record, body=body)


def test_batch_builder_rows_and_issue_paths():
    b = BatchBuilder("r1")
    b.add(_ex({
        "webUrl": " https://a.example/x ", "quality": 5, "heat": -1, "topics": ["AI", 3],
        "images": [{"url": "u0", "width": "1200px"}, "not-an-image", {"url": "u2", "height": 10}],
        "related": [{"webUrl": "https://b.example/y", "quality": "bad", "images": [{"url": "ri", "width": 7}]},
                    {"title": "no url"}],
        "secured": "tok", "mystery": {"k": 1},
    }))
    t = b.tables()
    aid = article_id_for("https://a.example/x")
    assert t["stg_articles"].select(["article_id", "url", "image_count", "related_count", "topics", "extra"]).to_pylist() == [
        {"article_id": aid, "url": "https://a.example/x", "image_count": 2, "related_count": 2,
         "topics": ["AI", "3"], "extra": '{"mystery":{"k":1}}'}]
    assert t["stg_images"].select(["position", "url", "width", "height"]).to_pylist() == [
        {"position": 0, "url": "u0", "width": None, "height": None},
        {"position": 2, "url": "u2", "width": None, "height": 10}]
    assert t["stg_related_images"].select(["related_position", "position", "width"]).to_pylist() == [
        {"related_position": 0, "position": 0, "width": 7}]
    issues = sorted((r["field"], r["raw_value"]) for r in t["stg_data_issues"].to_pylist())
    assert issues == [("images[0].width", "1200px"), ("images[1]", "not-an-image"),
                      ("related[0].quality", "bad"), ("related[1].webUrl", "")]
    assert t["stg_files"].column("issue_count").to_pylist() == [4]


def test_frames_are_pandas_with_the_declared_types():
    b = BatchBuilder("r1")
    b.add(_ex({"webUrl": "https://a.example/x", "quality": 5, "publishedDateTime": "2021-01-01T00:00:00Z"}))
    frames = b.frames()
    art = frames["stg_articles"]
    assert str(art["quality"].dtype) == "int32[pyarrow]"
    assert pa.Table.from_pandas(art, preserve_index=False).schema.field("published_at").type == pa.timestamp("us", tz="UTC")
