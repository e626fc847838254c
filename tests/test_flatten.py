"""Flatten and column typing, unit by unit: values computed by hand."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from newsetl.frontmatter import Extracted
from newsetl.sources import SourceFile
from newsetl.columns import type_column
from newsetl.flatten import BatchBuilder, article_id_for

UTC = dt.timezone.utc


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


def test_a_record_that_fails_midway_takes_back_its_rows_and_is_rejected(monkeypatch):
    """A failure late in one record (its file row half written, its images and related links
    added, its article row begun) leaves every table as if that record had been rejected."""
    from newsetl import flatten

    real, calls = flatten._Extra.json, []

    def extra_json(self):  # the article's `extra` is appended after most of its row
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return real(self)

    monkeypatch.setattr(flatten._Extra, "json", extra_json)
    b = BatchBuilder("r1")
    record = lambda u: {"webUrl": u, "quality": 7, "images": [{"url": u + "/i"}],  # noqa: E731
                        "related": [{"webUrl": u + "/r", "images": [{"url": u + "/ri"}]}]}
    b.add(_ex(record("https://a.example/1"), "one.md"))
    b.add(_ex(record("https://a.example/2"), "bad.md"))
    b.add(_ex(record("https://a.example/3"), "three.md"))
    t = b.tables()
    files = t["stg_files"].select(["source_path", "status", "error", "article_id"]).to_pylist()
    assert [(f["source_path"], f["status"]) for f in files] == [
        ("site/one.md", "parsed"), ("site/bad.md", "rejected"), ("site/three.md", "parsed")]
    assert files[1]["error"] == "could not flatten this file: RuntimeError: boom" and files[1]["article_id"] is None
    assert t["stg_articles"].column("url").to_pylist() == ["https://a.example/1", "https://a.example/3"]
    assert t["stg_articles"].column("quality").to_pylist() == [7, 7]
    assert t["stg_images"].column("url").to_pylist() == ["https://a.example/1/i", "https://a.example/3/i"]
    assert t["stg_related_links"].column("url").to_pylist() == ["https://a.example/1/r", "https://a.example/3/r"]
    assert t["stg_related_images"].column("url").to_pylist() == ["https://a.example/1/ri", "https://a.example/3/ri"]
