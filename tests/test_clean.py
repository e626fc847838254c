"""Typing and cleaning of single values (newsetl.clean): values computed by hand."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from newsetl import safeyaml
from newsetl.clean import (as_bool, as_int, as_name, as_text, as_timestamp, fix_mojibake, item_path, json_key, key_path,
                           raw_text, to_json)

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


def test_a_timestamp_past_year_9999_in_utc_is_an_issue_not_an_error():
    issues = []
    assert as_timestamp("9999-12-31T23:59:59-14:00", issues, "d") is None
    assert issues == [("d", "9999-12-31T23:59:59-14:00", "date outside the years 1-9999 in UTC")]
    assert as_timestamp("0001-01-01T00:00:00Z", issues, "d") == dt.datetime(1, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("key, text", [
    ("title", "title"), ("1", "1"), ("True", "True"), ("!x", "!!str !x"), ("!!int 1", "!!str !!int 1"),
    (1, "!!int 1"), (True, "!!bool true"), (False, "!!bool false"), (None, "!!null"), (1.5, "!!float 1.5"),
    (dt.date(2021, 1, 2), "!!timestamp 2021-01-02"),
    (safeyaml.Key("tag:yaml.org,2002:float", 1.0), "!!float 1.0"),
    (safeyaml.Unrepresentable("tag:yaml.org,2002:timestamp", "2021-02-30", "x"), "!!timestamp 2021-02-30"),
])
def test_json_keys_never_collide(key, text):
    assert json_key(key) == text


def test_distinct_yaml_keys_stay_distinct_in_json():
    keys = ["1", 1, "True", True, safeyaml.Key("tag:yaml.org,2002:bool", True), None, "null", "!x", "!!str !x"]
    texts = [json_key(k) for k in keys]
    assert len(set(texts)) == len(texts) - 1  # True and Key(bool, True) are one key: the same YAML `true`


def test_to_json_writes_keys_with_their_tags_at_any_depth():
    value = {"a": [{1: "x", "1": "y"}], "!b": {None: True}, "d": dt.date(2021, 1, 2)}
    assert json.loads(to_json(value)) == {"a": [{"!!int 1": "x", "1": "y"}], "!!str !b": {"!!null": True},
                                          "d": "2021-01-02"}


def test_field_paths():
    assert key_path("", "title") == "title"
    assert key_path("provider", "name") == "provider.name"
    assert key_path("", "provider.x") == '["provider.x"]'
    assert key_path("seen", 1) == 'seen["!!int 1"]'
    assert item_path("related", 3) == "related[3]"
    assert raw_text({"a": [1, None]}) == '{"a":[1,null]}' and raw_text(dt.date(2021, 1, 2)) == "2021-01-02"
