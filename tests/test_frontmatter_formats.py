"""Front matter in TOML (`+++`) and JSON (`{ ... }`) beside YAML (`---`): Hugo's own
examples, the same record in the three formats giving the same record and rows, hostile
TOML and JSON rejected in one line (or loaded with data issues) beside a good record,
and the hand-written sites of tests/fixtures/sites read without a rejection.

The key mapping (date, tags, ... onto the warehouse's columns) is not tested here.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsetl.frontmatter import extract_all, split_any
from newsetl.parse import flatten_files
from newsetl.sources import SourceFile

from .helpers import yamlgen
from .test_hostile import good_loaded, issues, rejected, rows, run_site

SITES = Path(__file__).parent / "fixtures" / "sites"
UTC = dt.timezone.utc


def _file(name: str = "site/a.md") -> SourceFile:
    return SourceFile(name, "/nonexistent/" + name, name.split("/", 1)[-1], 0, 0)


def extract(data: bytes, name: str = "site/a.md"):
    return extract_all([(_file(name), data)], split_related=True)[0]


# -- Hugo's examples (gohugo.io/content-management/front-matter/) ---------------------------

HUGO_TOML = b'''+++
date = 2024-02-02T04:14:54-08:00
draft = false
title = 'Example'
weight = 10
[params]
  author = 'John Smith'
+++
Hugo's TOML example, with `tags` and `categories` added below.
'''

HUGO_TOML_TAXONOMIES = b'''+++
title = 'Example'
date = 2024-02-02T04:14:54-08:00
draft = false
tags = ['red', 'blue']
categories = ['cooking']
[params]
  author = 'John Smith'
  [params.cover]
    image = 'cover.jpg'
    alt = 'A kitchen'
+++
body
'''

HUGO_JSON = b'''{
   "date": "2024-02-02T04:14:54-08:00",
   "draft": false,
   "params": {
      "author": "John Smith"
   },
   "title": "Example",
   "weight": 10,
   "tags": ["red", "blue"],
   "categories": ["cooking"]
}
Hugo's JSON example: the body starts after the object.
'''

HUGO_YAML = b'''---
date: 2024-02-02T04:14:54-08:00
draft: false
params:
  author: John Smith
title: Example
weight: 10
---
Hugo's YAML example.
'''

PST = dt.timezone(dt.timedelta(hours=-8))


def test_hugo_toml_example():
    ex = extract(HUGO_TOML)
    assert ex.error is None and ex.format == "toml"
    assert ex.record == {"date": dt.datetime(2024, 2, 2, 4, 14, 54, tzinfo=PST), "draft": False, "title": "Example",
                         "weight": 10, "params": {"author": "John Smith"}}
    assert ex.body == "Hugo's TOML example, with `tags` and `categories` added below.\n"
    assert ex.issues == []


def test_hugo_toml_with_taxonomies_and_nested_params_tables():
    ex = extract(HUGO_TOML_TAXONOMIES)
    assert ex.error is None
    assert ex.record["tags"] == ["red", "blue"] and ex.record["categories"] == ["cooking"]
    assert ex.record["params"] == {"author": "John Smith", "cover": {"image": "cover.jpg", "alt": "A kitchen"}}


def test_hugo_json_example():
    ex = extract(HUGO_JSON)
    assert ex.error is None and ex.format == "json"
    assert ex.record == {"date": "2024-02-02T04:14:54-08:00", "draft": False, "params": {"author": "John Smith"},
                         "title": "Example", "weight": 10, "tags": ["red", "blue"], "categories": ["cooking"]}
    assert ex.body == "Hugo's JSON example: the body starts after the object.\n"


def test_the_three_hugo_examples_give_the_same_values():
    """A JSON date is a string, as a quoted YAML date is; flatten reads both as times."""
    y, t, j = (extract(d).record for d in (HUGO_YAML, HUGO_TOML, HUGO_JSON))
    assert y == t
    assert {k: v for k, v in j.items() if k not in ("tags", "categories")} == {**y, "date": y["date"].isoformat()}


def test_toml_types_are_the_yaml_path_types():
    ex = extract(b'+++\nodt = 1979-05-27T07:32:00Z\noffs = 1979-05-27T00:32:00.999999-07:00\n'
                 b'ldt = 1979-05-27T07:32:00\nld = 1979-05-27\nlt = 07:32:00\nf = 3.5\ni = -7\nb = true\n'
                 b'inline = { a = 1, b = [1, "x"] }\n[[products]]\nname = "Hammer"\n[[products]]\nname = "Nail"\n'
                 b'+++\n')
    y = yaml.safe_load("odt: 1979-05-27T07:32:00Z\noffs: 1979-05-27T00:32:00.999999-07:00\nldt: 1979-05-27 07:32:00\n"
                       "ld: 1979-05-27\n")
    assert ex.error is None
    for k in y:
        assert ex.record[k] == y[k] and type(ex.record[k]) is type(y[k])
        assert (ex.record[k].tzinfo if isinstance(y[k], dt.datetime) else None) == getattr(y[k], "tzinfo", None)
    assert ex.record["lt"] == "07:32:00"  # YAML has no time of day: its text, as a quoted YAML time
    assert ex.record["products"] == [{"name": "Hammer"}, {"name": "Nail"}]
    assert (ex.record["f"], ex.record["i"], ex.record["b"]) == (3.5, -7, True)


def test_bom_and_crlf_are_read_in_toml_and_json():
    t = extract(b"\xef\xbb\xbf+++\r\ntitle = 'x'\r\ntags = ['a']\r\n+++\r\nbody\r\n")
    j = extract(b'\xef\xbb\xbf{\r\n  "title": "x",\r\n  "tags": ["a"]\r\n}\r\nbody\r\n')
    assert t.record == j.record == {"title": "x", "tags": ["a"]}
    assert t.body == j.body == "body\r\n"


def test_split_any_names_the_format():
    assert split_any(b"---\na: 1\n---\n")[0] == "yaml"
    assert split_any(b"+++\na = 1\n+++\n")[:2] == ("toml", "a = 1\n")
    assert split_any(b'{"a": 1}\nb')[::3] == ("json", "b")


# -- the same record in YAML, TOML and JSON ---------------------------------------------------

def _toml_str(s: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's, and TOML escapes DEL too."""
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(v) -> str:
    """A tiny TOML writer: inline tables and arrays (tomli_w is not a dependency)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, str)):
        return str(v) if isinstance(v, int) else _toml_str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (dt.datetime, dt.date)):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{_toml_str(k)} = {toml_value(x)}" for k, x in v.items()) + "}"


def as_toml(record: dict) -> bytes:
    return ("+++\n" + "".join(f"{_toml_str(k)} = {toml_value(v)}\n" for k, v in record.items())
            + "+++\nbody\n").encode()


def json_form(v):
    """The value JSON can write: dates as their ISO text."""
    if isinstance(v, (dt.datetime, dt.date)):
        return v.isoformat()
    if isinstance(v, list):
        return [json_form(x) for x in v]
    if isinstance(v, dict):
        return {k: json_form(x) for k, x in v.items()}
    return v


def as_json(record: dict) -> bytes:
    return (json.dumps(json_form(record), ensure_ascii=False, indent=2) + "\nbody\n").encode()


def as_yaml(record: dict) -> bytes:
    return ("---\n" + yaml.safe_dump(record, sort_keys=False, width=1 << 20) + "---\nbody\n").encode()


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
datetimes = st.datetimes(dt.datetime(1900, 1, 1), dt.datetime(2100, 1, 1))
aware = st.builds(lambda d, m: d.replace(tzinfo=dt.timezone(dt.timedelta(minutes=m))),
                  datetimes, st.integers(-14 * 60, 14 * 60).map(lambda m: m - m % 15))
leaf = st.one_of(text, st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False),
                 st.booleans(), st.dates(dt.date(1900, 1, 1), dt.date(2100, 1, 1)), datetimes, aware)
keys = st.one_of(st.sampled_from(["title", "webUrl", "publishedDateTime", "quality", "heat", "topics", "excerpt",
                                  "date", "tags", "draft", "params"]), text)
values = st.recursive(leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                    st.dictionaries(keys, inner, max_size=4)), max_leaves=12)
NEWS = st.fixed_dictionaries({}, optional={
    "title": text, "webUrl": st.sampled_from(["https://a.example/1", "https://b.example/x?y=1"]),
    "publishedDateTime": st.one_of(datetimes, aware), "quality": st.integers(0, 200),
    "topics": st.lists(text, max_size=3)})
records = st.builds(lambda news, more: {**news, **{k: v for k, v in more.items() if k not in news}},
                    NEWS, st.dictionaries(keys, values, max_size=6)).filter(bool)

VARYING = {"bytes", "sha256", "source_sha256", "parser"}  # of the file, not of its record


def _rows(ex) -> dict:
    tables = flatten_files("run", [ex])
    return {name: [{k: v for k, v in row.items() if k not in VARYING} for row in t.to_pylist()]
            for name, t in tables.items()}


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(records)
def test_the_same_record_in_yaml_toml_and_json_gives_the_same_record_and_rows(record):
    y, t, j = (extract(data) for data in (as_yaml(record), as_toml(record), as_json(record)))
    assert (y.error, t.error, j.error) == (None, None, None)
    assert y.record == record
    assert t.record == record
    assert j.record == json_form(record)
    assert _rows(t) == _rows(y)
    assert _rows(j) == _rows(extract(as_yaml(json_form(record))))  # JSON dates are text, as quoted YAML ones


def test_related_links_and_images_in_toml_and_json_give_the_yaml_rows():
    """TOML and JSON records hand `related` to flatten as Python values (never as the fast
    parser's JSON): the rows are YAML's."""
    record = {"title": "R", "webUrl": "https://r.example/1", "publishedDateTime": dt.datetime(2024, 1, 2, 3, 4, tzinfo=UTC),
              "images": [{"url": "https://r.example/i.jpg", "width": 640, "height": 480}],
              "related": [{"webUrl": "https://o.example/a", "title": "A", "quality": 80,
                           "provider": {"name": "O", "domain": "o.example"},
                           "images": [{"url": "https://o.example/a.jpg", "width": 10}]},
                          {"webUrl": "https://o.example/b", "title": "B", "quality": "high"}]}
    toml = as_toml(record).replace(b"+++\nbody", b"[[more]]\nx = 1\n+++\nbody")  # and an array of tables
    y, t, j = extract(as_yaml(record)), extract(toml), extract(as_json(record))
    assert t.record == {**record, "more": [{"x": 1}]}
    rows_y, rows_t, rows_j = _rows(y), _rows(t), _rows(extract(as_json(record)))
    assert rows_y["stg_related_links"] and rows_y["stg_related_images"] and rows_y["stg_images"]
    for name in ("stg_related_links", "stg_related_images", "stg_images", "stg_data_issues"):
        assert rows_t[name] == rows_y[name] == rows_j[name], name
    assert j.error is None


# -- hostile TOML and JSON: one line naming the problem, beside a good record ------------------

DEEP_JSON = '{"x": ' + "[" * 5000 + "]" * 5000 + "}\n"
HOSTILE = {  # name: (file content, the error starts with; None: it loads)
    "toml-unterminated": ("+++\ntitle = 'x'\nbody\n", "front matter is not closed: no line '+++' after the opening '+++'"),
    "toml-invalid": ("+++\ntitle = x\n+++\n", "invalid TOML at line 2, column 9: Invalid value"),
    "toml-duplicate-key": ("+++\ntitle = 'a'\ntitle = 'b'\n+++\n", "invalid TOML at line 3, column 12: Cannot overwrite a value"),
    "toml-deep-arrays": ("+++\nx = " + "[" * 5000 + "]" * 5000 + "\n+++\n", "nesting deeper than 100 levels (the cap per record)"),
    "toml-deep-tables": ("+++\n[" + ".".join(["a"] * 300) + "]\nx = 1\n+++\n", "nesting deeper than 100 levels (the cap per record)"),
    "toml-huge-array": ("+++\nx = [" + "1," * 1_600_000 + "]\n+++\n",
                        "record too large: more than 1,500,000 keys and items (the cap per record)"),
    "toml-empty": ("+++\n+++\nbody\n", "front matter is empty"),
    "toml-bad-date": ("+++\ndate = 2021-02-30\n+++\n", "invalid TOML at line 2, column 8: Invalid date or datetime"),
    "json-unterminated": ('{\n  "title": "x"\nbody\n', "front matter is not closed: the JSON object that starts the file never ends"),
    "json-not-json": ("{{< youtube w7Ft2ymGmfc >}}\n", "invalid JSON at line 1, column 2: Expecting property name"),
    "json-liquid": ("{% include head.html %}\n", "invalid JSON at line 1, column 2: Expecting property name"),
    "json-nan": ('{"title": "x", "quality": NaN}\n', "invalid JSON: NaN is not a JSON value"),
    "json-infinity": ('{"title": "x", "quality": -Infinity}\n', "invalid JSON: -Infinity is not a JSON value"),
    "json-deep": (DEEP_JSON, "nesting deeper than 100 levels (the cap per record), at line 1"),
    "json-huge-array": ('{"x": [' + "0," * 1_600_000 + "0]}\n",
                        "record too large: more than 1,500,000 keys and items (the cap per record)"),
    "json-list": ('[{"title": "x"}]\n', "no front matter"),
    "json-trailing-comma": ('{"title": "x",}\n', "invalid JSON at line 1, column 15: Expecting property name"),
    "json-empty": ("{}\nbody\n", "front matter is empty"),
}
LOADS = {  # name: (file content, data issues (field, raw, problem))
    "toml-nan-inf-bigint": ("+++\ntitle = 'x'\nquality = nan\nheat = -inf\nn = 99999999999999999999\n+++\n",
                            [("heat", "-inf", "not a finite number"), ("n", "99999999999999999999", "integer beyond 64 bits"),
                             ("quality", "nan", "not a finite number")]),
    "toml-offsets-and-local": ("+++\ntitle = 'x'\na = 1979-05-27T00:32:00-07:00\nb = 1979-05-27\nc = 07:32:00\n"
                               "d = 0001-01-01T00:00:00+01:00\n[[t]]\nx = 1\n[[t]]\nx = 2\n+++\n",
                               [("d", "0001-01-01T00:00:00+01:00", "date outside the years 1-9999 in UTC")]),
    "json-duplicate-key": ('{"title": "x", "heat": 3, "heat": 4}\n',
                           [("heat", "3", "duplicate key: this value is dropped, a later one is kept")]),
    "json-big-numbers": ('{"title": "x", "quality": 1180591620717411303424, "heat": 1e999}\n',
                         [("heat", "1e999", "not a finite number"), ("quality", "1180591620717411303424", "integer beyond 64 bits")]),
    "json-huge-string": ('{"title": "' + "x" * (8 << 20) + '"}\n', []),
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    files = {f"{name}.md": text for name, (text, _) in {**HOSTILE, **LOADS}.items()}
    files["bad-utf8-toml.md"] = b"+++\ntitle = '\xff'\n+++\n"
    files["bad-utf8-json.md"] = b'{"title": "\xff"}\n'
    files["nul-json.md"] = b'{"title": "a\x00b"}\n'
    _, wh = run_site(tmp_path_factory.mktemp("hostile"), files)
    assert good_loaded(wh)
    return wh


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_toml_and_json_are_rejected_in_one_line(hostile, name):
    assert (rejected(hostile, f"{name}.md") or "").startswith(HOSTILE[name][1])


@pytest.mark.parametrize("name", LOADS)
def test_values_the_warehouse_cannot_hold_load_as_null_with_issues(hostile, name):
    assert rejected(hostile, f"{name}.md") is None
    assert issues(hostile, f"{name}.md") == LOADS[name][1]


def test_invalid_utf8_and_nul_bytes(hostile):
    assert rejected(hostile, "bad-utf8-toml.md") == "not UTF-8: byte 0xff at offset 13 cannot be decoded"
    assert rejected(hostile, "bad-utf8-json.md") == "not UTF-8: byte 0xff at offset 11 cannot be decoded"
    assert rejected(hostile, "nul-json.md").startswith("invalid JSON at line 1, column 13: Invalid control character")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(yamlgen.random_toml, yamlgen.random_json))
def test_any_toml_or_json_bytes_give_a_record_or_one_line(data):
    ex = extract(data)
    if ex.error is None:
        assert isinstance(ex.record, dict) and ex.record
    else:
        assert "\n" not in ex.error and not ex.error.startswith("could not")


# -- a folder mixing the three formats loads every file -----------------------------------------

def test_a_folder_mixing_yaml_toml_and_json_loads_every_file(tmp_path):
    files = {"hugo-toml.md": HUGO_TOML, "hugo-json.md": HUGO_JSON, "hugo-yaml.md": HUGO_YAML,
             "news-toml.md": b"+++\ntitle = 'T'\nwebUrl = 'https://t.example/1'\n"
                             b"publishedDateTime = 2021-03-01T10:00:00Z\nquality = 5\ntopics = ['AI']\n+++\nbody\n",
             "news-json.md": b'{"title": "J", "webUrl": "https://j.example/1", '
                             b'"publishedDateTime": "2021-03-01T10:00:00Z", "quality": 5, "topics": ["AI"]}\nbody\n'}
    _, wh = run_site(tmp_path, files)
    assert rows(wh, "SELECT source_path, status, error FROM source_files ORDER BY 1") == [
        (f"site/{n}", "loaded", None) for n in sorted([*files, "good.md"])]
    got = rows(wh, "SELECT a.title, a.published_at, a.quality FROM articles a JOIN source_files f USING (source_path) "
                   "WHERE source_path LIKE 'site/news-%' ORDER BY 1")
    when = dt.datetime(2021, 3, 1, 10, tzinfo=UTC)
    assert [(t, p.astimezone(UTC), q) for t, p, q in got] == [("J", when, 5), ("T", when, 5)]


# -- the hand-written sites of tests/fixtures/sites ---------------------------------------------

def _expected(data: bytes) -> dict:
    """The front matter, parsed here with tomllib, json or PyYAML directly."""
    text = data.decode("utf-8").removeprefix("\ufeff").replace("\r\n", "\n")
    if text.startswith("+++"):
        return tomllib.loads(text.split("\n+++", 1)[0][4:])
    if text.startswith("{"):
        return json.JSONDecoder().raw_decode(text)[0]
    return yaml.safe_load(text.split("\n---", 1)[0][4:])


SITE_NAMES = ("hugo", "jekyll", "eleventy", "astro")
SITE_FILES = sorted(p for site in SITE_NAMES for p in (SITES / site).rglob("*") if p.suffix in (".md", ".markdown"))


def test_every_site_has_records():
    for site in SITE_NAMES:
        assert 5 <= sum(1 for p in SITE_FILES if p.relative_to(SITES).parts[0] == site) <= 8, site


@pytest.mark.parametrize("path", SITE_FILES, ids=lambda p: str(p.relative_to(SITES)))
def test_every_fixture_site_file_is_read_as_written(path):
    data = path.read_bytes()
    ex = extract(data, f"sites/{path.relative_to(SITES)}")
    assert ex.error is None
    assert ex.record == _expected(data)
    assert ex.issues == []


def test_the_hugo_site_holds_toml_yaml_and_json():
    formats = {extract(p.read_bytes()).format for p in SITE_FILES if p.relative_to(SITES).parts[0] == "hugo"}
    assert formats == {"toml", "yaml", "json"}


def test_the_sites_load_with_no_rejection(tmp_path):
    from .helpers.cli import newsetl_cli

    wh = tmp_path / "wh"
    inputs = [f"{site}={SITES / site}" for site in SITE_NAMES]
    proc = newsetl_cli("run", *inputs, "--warehouse", str(wh), "--no-prefect", "-q")
    assert proc.returncode == 0, proc.stderr
    got = rows(wh, "SELECT source_path, status, error FROM source_files WHERE status <> 'loaded'")
    assert got == []
    assert rows(wh, "SELECT count(*) FROM source_files")[0][0] == len(SITE_FILES)


# -- a TOML or JSON record near the size cap stays within memory ---------------------------------

MEMORY_CASES = {  # each about 40 MB: a scan with a backtracking state per character took 2.5-4.8 GB
    "json-escapes": "b'{\"x\": \"' + b'\\\\n' * 20_000_000 + b'\"}'",
    "toml-string": "b'+++\\nx = \"' + b'a' * 40_000_000 + b'\"\\n+++\\n'",
    "toml-escapes": "b'+++\\nx = \"' + b'\\\\n' * 20_000_000 + b'\"\\n+++\\n'",
}


@pytest.mark.slow
@pytest.mark.parametrize("name", MEMORY_CASES)
def test_a_40_mb_toml_or_json_record_stays_under_700_mb(name):
    import subprocess
    import sys

    code = ("import resource; from newsetl.frontmatter import extract_all; "
            f"data = {MEMORY_CASES[name]}; "
            "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
            "ex = extract_all([('f', data)])[0]; assert ex.error is None, ex.error; "
            "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) < 700, f"{name}: {proc.stdout.strip()} MB more than the data"


def test_each_format_names_its_parser_and_only_fast_yaml_counts_as_fast_parsed(tmp_path):
    """Staging names what read each record (fast YAML, toml, json); runs.fast_parsed counts the first only."""
    from newsetl import pipeline

    site = tmp_path / "site"
    site.mkdir()
    (site / "a.md").write_bytes(HUGO_TOML)
    (site / "b.md").write_bytes(b'{"title": "J", "date": "2024-01-02"}\nbody\n')
    (site / "c.md").write_bytes(b"---\ntitle: Y\ndate: 2024-01-03\n---\nbody\n")
    files = sorted(site.iterdir())
    got = flatten_files("r", extract_all([(_file(f"site/{f.name}"), f.read_bytes()) for f in files], split_related=True))
    assert got["stg_files"].column("parser").to_pylist() == ["toml", "json", "fast"]
    result = pipeline.run([site], tmp_path / "wh", workers=1)
    assert (result.run["files_parsed"], result.run["fast_parsed"]) == (3, 1)
