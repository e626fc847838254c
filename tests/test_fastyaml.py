"""fastyaml must give exactly PyYAML's (CSafeLoader) values, or fall back.

Three kinds of evidence: every real record in the corpus, a table of tricky
scalars and structures, and a deterministic random fuzz of the risky forms.
"Identical" means equal *and* the same types all the way down (int/float/
bool/str/None/date/datetime, tzinfo included), with the same key order.
"""

from __future__ import annotations

import datetime
import math
import os
import random
import re
import threading
import time
import warnings
from pathlib import Path

import orjson
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from newsetl import fastyaml
from newsetl.fastyaml import NeedsFallback, load, load_fast, load_reference

# --- helpers ------------------------------------------------------------------


def assert_identical(got, want, path: str = "$") -> None:
    """Equal values with the same types recursively, same key order, same tz."""
    assert type(got) is type(want), f"{path}: {type(got).__name__} {got!r} != {type(want).__name__} {want!r}"
    if type(got) is dict:
        assert list(got) == list(want), f"{path}: keys {list(got)} != {list(want)}"
        for (k1, v1), (k2, v2) in zip(got.items(), want.items()):
            assert_identical(k1, k2, f"{path}.key({k1!r})")
            assert_identical(v1, v2, f"{path}[{k1!r}]")
    elif type(got) is list:
        assert len(got) == len(want), f"{path}: len {len(got)} != {len(want)}"
        for i, (a, b) in enumerate(zip(got, want)):
            assert_identical(a, b, f"{path}[{i}]")
    elif type(got) is datetime.datetime:
        assert got == want and got.tzinfo == want.tzinfo and got.utcoffset() == want.utcoffset(), f"{path}: {got!r} != {want!r}"
    elif type(got) is float:
        if math.isnan(want):
            assert math.isnan(got), f"{path}: {got!r} != nan"
        else:
            assert got == want and math.copysign(1, got) == math.copysign(1, want), f"{path}: {got!r} != {want!r}"
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"


def reference_or_error(text: str):
    """(value, None) from PyYAML, or (None, the exception it raised)."""
    try:
        return load_reference(text), None
    except Exception as e:  # noqa: BLE001 - any refusal counts
        return None, e


def check(text: str) -> bool:
    """Assert the fast path is right or falls back; True when it was used."""
    want, err = reference_or_error(text)
    try:
        got = load_fast(text)
    except NeedsFallback:
        return False
    assert err is None, f"fast path accepted {text!r}, PyYAML refuses it: {err!r}"
    assert_identical(got, want)
    check_split(text, want)
    return True


def check_split(text: str, want: dict) -> None:
    """load_fast_split on the last top-level key: the rest is PyYAML's, and that
    key's JSON decodes (plain timestamps converted) to PyYAML's value."""
    key = next(reversed(want), None) if type(want) is dict else None
    if type(key) is not str or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return
    try:
        rest, part = fastyaml.load_fast_split(text, key=key)
    except NeedsFallback:  # allowed (a key given twice): refusing is always safe
        return
    assert_identical(rest, {k: v for k, v in want.items() if k != key})
    split = orjson.loads(b"{" + part + b"}")
    fastyaml._convert_plain(split)
    assert_identical(split, {key: want[key]})


def split_front_matter(text: str) -> str | None:
    """The text between a first line `---` and the next line `---` or `...`."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip("\r\n") != "---":
        return None
    for i in range(1, len(lines)):
        if lines[i].rstrip("\r\n") in ("---", "..."):
            return "".join(lines[1:i])
    return None


# --- the real corpus --------------------------------------------------------------

CORPUS = Path(os.environ.get("NEWSETL_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "corpus"))


@pytest.fixture(scope="module")
def corpus_front_matter() -> dict[str, list[tuple[str, str]]]:
    """The front matter of every record (.md) in the corpus, per folder, read once."""
    if not CORPUS.is_dir():
        pytest.skip(f"real corpus not found at {CORPUS} (set NEWSETL_CORPUS): skipping the differential test over real records")
    found: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(CORPUS.rglob("*.md")):
        rel = path.relative_to(CORPUS)
        if len(rel.parts) == 1:
            continue  # README.md: about the corpus, not a record
        fm = split_front_matter(path.read_text(encoding="utf-8"))
        assert fm is not None, f"{path}: no front matter"
        folder = "/".join(rel.parts[:2]) if rel.parts[0] == "powerapps" else rel.parts[0]
        found.setdefault(folder, []).append((rel.as_posix(), fm))
    assert sum(map(len, found.values())) > 7000, f"corpus at {CORPUS} looks incomplete"
    return found


@pytest.mark.slow
def test_corpus_identical_and_fast(corpus_front_matter, capsys):
    """Every real record: same value as PyYAML; the fast path for nearly all."""
    report = []
    total = fallbacks = 0
    for folder, items in corpus_front_matter.items():
        slow = []
        for name, fm in items:
            want = load_reference(fm)
            got, fast = load(fm)
            assert_identical(got, want, name)
            if fast:
                assert type(got["publishedDateTime"]) is datetime.datetime, name
            else:
                slow.append(name)
        total += len(items)
        fallbacks += len(slow)
        report.append(f"{folder}: {len(items)} files, {len(slow)} fallbacks {slow[:3]}")
    share = fallbacks / total
    with capsys.disabled():
        print(f"\nfastyaml corpus: {total} files, fallback share {share:.3%}\n  " + "\n  ".join(report))
    assert share < 0.01, report


# --- tricky scalars and structures ---------------------------------------------------

FAST, SLOW, EITHER = "fast", "fallback", "either"
UTC = datetime.timezone.utc

TABLE = [
    # the real thing: plain timestamps, quoted ones stay strings
    ("publishedDateTime: 2021-02-12T20:25:00Z", FAST),
    ("d: 2021-02-12", FAST),
    ("d: 2021-02-12 20:25:00", FAST),
    ("d: 2021-02-12t20:25:00.5+01:00", FAST),
    ("d: 2021-02-12T20:25:00.123456789Z", FAST),
    ("d: 2021-02-12T20:25:00-05:30", FAST),
    ("d: 2021-02-12  20:25:00 +5  # comment", FAST),
    ("d: 2021-1-2T3:04:05", FAST),
    ("d: 2021-02-12T20:25:00.Z", FAST),
    ("d: 2024-02-29T00:00:00Z", FAST),
    ("d: 2021-2-1", FAST),  # a string for PyYAML (date-only needs two digits)
    ("d: 2021-02-30T00:00:00Z", SLOW),  # PyYAML raises
    ("d: 2021-13-01", SLOW),
    ("d: 2023-02-29", SLOW),
    ("d: 2021-01-01T24:00:00Z", SLOW),
    ("d: 2021-01-01T00:00:00+24", SLOW),
    ("d: 0000-01-01", SLOW),
    ('title: "2021-02-12T20:25:00Z"', SLOW),  # quoted: a str, see test_quoted_timestamp
    ("title: '2021-02-12'", SLOW),
    ('title: "2021-02-12 is a date"', SLOW),
    ('title: "\\x32021-01-01"', SLOW),
    ('title: "On 2021-02-12"', FAST),
    # numbers
    ("n: 39", FAST),
    ('n: "39"', FAST),
    ("n: '39'", FAST),
    ("n: -1", FAST),
    ("n: 0", FAST),
    ("n: -0", FAST),
    ("n: 123456789012345678", FAST),
    ("n: 1234567890123456789", SLOW),
    ("n: 12345678901234567890123", SLOW),  # orjson would give a float
    ("n: 1.0", FAST),
    ("n: -0.25", FAST),
    ("n: -0.0", FAST),
    ("n: 3.14159265358979323846", SLOW),
    ("n: +1", SLOW),
    # YAML 1.1's other ints and floats: rapidyaml writes them as strings, converted after decoding
    ("n: 00", FAST),
    ("n: 017", FAST),  # octal 15 for YAML 1.1
    ("n: 0o17", FAST),  # a string: YAML 1.1 has no 0o
    ("n: 0x1F", FAST),
    ("n: 0b101", FAST),
    ("n: 1_000", FAST),
    ("n: 1:20", FAST),  # sexagesimal 80
    ("n: 190:20:30.15", FAST),
    ("n: 1_0.5", FAST),
    ("n: 08", FAST),  # a string: not octal, not decimal
    ("n: 0b_", SLOW),  # PyYAML raises (int('', 2))
    ("n: 1e3", SLOW),  # a str for PyYAML, a float for JSON
    ("n: 1.0e+3", SLOW),
    ("n: .5", SLOW),
    ("n: -.5", SLOW),
    ("n: 5.", SLOW),
    ("n: .inf", SLOW),
    ("n: -.Inf", SLOW),
    ("n: .NaN", SLOW),
    ("n: inf", SLOW),  # rapidyaml writes ".inf"
    ("n: nan", SLOW),
    ("n: infinity", SLOW),
    ("n: NaN", SLOW),
    # plain strings that start with a digit, as news sites write provider names, domains, topics
    ("name: 9to5Mac", FAST),
    ("domain: 13newsnow.com", FAST),
    ("t: 5G", FAST),
    ("t: 3D printing", FAST),
    ("t: 2021 in review", FAST),
    ("t: 60 Minutes", FAST),
    ("t: 01net", FAST),
    ("t: 1,000 words", FAST),
    ("t: 10% off", FAST),
    ("t: 1.2.3", FAST),
    ("t: 2021-01-01 in review", FAST),
    ("t: 12:60", FAST),
    ("t: 5 # comment", FAST),
    ("t: 5#c", SLOW),  # a string, but 5 then `#` is refused with the JSON numbers
    ("t: 1.", SLOW),  # rapidyaml rewrites it as 1.0
    ("t: 1.5e+3", SLOW),
    ("t: 1E5", SLOW),
    ("d: 2021-02-30 in review", FAST),
    # quoted texts that would convert if plain stay strings: refused
    ('q: "0123"', SLOW),
    ("q: '1_000'", SLOW),
    ('q: "1:30"', SLOW),
    ('q: "5G"', FAST),
    ('q: "2021"', FAST),
    ('q: "1.5"', FAST),
    ("q: '00\"'", FAST),  # found by Hypothesis: _DOC took the `"` for the closing quote and refused it
    ('q: "00\'"', FAST),
    # bools and nulls (PyYAML 6 safe loader: y/n are strings)
    ("b: true", FAST),
    ("b: false", FAST),
    ("b: True", SLOW),
    ("b: TRUE", SLOW),
    ("b: yes", SLOW),
    ("b: No", SLOW),
    ("b: on", SLOW),
    ("b: OFF", SLOW),
    ("b: y", FAST),
    ("b: n", FAST),
    ("b: Y", FAST),
    ("b: N", FAST),
    ("b: On MSFT", FAST),
    ("b: Nope", FAST),
    ("z: null", FAST),
    ("z: Null", SLOW),
    ("z: NULL", SLOW),
    ("z: ~", SLOW),
    ("z:", FAST),
    ("z:   # nothing", FAST),
    ("z: =", SLOW),  # PyYAML: no constructor for tag:yaml.org,2002:value
    # strings
    ("s: plain text", FAST),
    ("s: a#b", FAST),
    ("s: a # comment", FAST),
    ("s: a:b", FAST),
    ("s: http://x.y/?a=1&b=2", FAST),
    ("s: Tom's Guide", FAST),
    ('s: say "hi"', FAST),
    ("s: b, c [d] {e}", FAST),
    ("s: trailing   ", FAST),
    ("s: cityâ€™s", FAST),
    ("s: émoji 😀", FAST),
    ("s: a\u00a0b", FAST),
    ('s: "\\u2019 \\xe9 \\U0001F600 \\/ \\" \\\\ \\n \\t \\r"', FAST),
    ('s: "\\N\\_\\b\\f\\ "', FAST),
    ('s: "\\L\\P"', SLOW),  # rapidyaml garbles strings that grow while unescaping:
    ('s: "\\\\t\\L\\P"', SLOW),  # it gives a TAB here, PyYAML a backslash and a t
    ('s: "\\x41"', SLOW),  # ASCII escapes are not whitelisted
    ('s: "\\u0041"', SLOW),
    ('s: "\\0"', SLOW),
    ('s: "\\e"', SLOW),
    ('s: "\\ud83d\\ude00"', SLOW),  # PyYAML refuses surrogate escapes
    ("s: 'single ''quoted'''", FAST),
    ("s: ''", FAST),
    ('s: ""', FAST),
    ("s: 'x' # c", FAST),
    ('s: "x"# c', SLOW),
    ('s: "x" y', SLOW),
    ("s: a: b", SLOW),
    ("s: @x", SLOW),
    ("s: `x", SLOW),
    ("s: %x", SLOW),
    ("s: x" + "y" * 100_000, FAST),  # very long line
    ('s: "' + "x" * 100_000 + '"', FAST),
    ("s: x\x85y", SLOW),  # NEL is a line break for PyYAML only
    ("s: x\u2028y", SLOW),
    ("s: x\x7fy", SLOW),  # PyYAML refuses control characters
    ("s: x\x01y", SLOW),
    ("s: x\ufeffy", SLOW),
    ("s: a\tb", SLOW),
    ("s:\ta", SLOW),
    # keys
    ("1: a", SLOW),
    ("true: b", SLOW),
    ("null: c", SLOW),
    ("~: d", SLOW),
    ("Yes: e", SLOW),
    ("2021-01-01: f", SLOW),
    ('"a b": 1', FAST),
    ("'q': 1", FAST),
    ('"1": 1', FAST),
    ('"<<": 1', FAST),
    ("k" * 200 + ": long key", SLOW),
    # a key given twice: PyYAML keeps the last value; safeyaml also records the dropped one
    ("a: 1\na: 2\nb: 3", SLOW),
    ("a:\n  x: 1\n  x: 2\n", SLOW),
    ("a:\n  - x: 1\n    y: 2\n    x: 3\n", SLOW),
    # a timestamp whose UTC value leaves the years 1-9999
    ("d: 9999-12-31T23:59:59-14:00", SLOW),
    ("d: 0001-01-01T00:00:00+01:00", SLOW),
    ("d: 9999-12-31T23:59:59+14:00", FAST),
    ("d: 0001-01-01T00:00:00-01:00", FAST),
    ("a: 1\nb: 2\na: 3", SLOW),
    ("a: 2021-02-30\na: 1", SLOW),  # PyYAML raises for the overwritten value too
    # anchors, aliases, tags, merge, documents
    ("a: &x 1\nb: *x", SLOW),
    ("a: !!str 1", SLOW),
    ("a: !foo 1", SLOW),
    ("<<: {a: 1}", SLOW),
    ("a:\n  <<: {b: 1}\n  c: 2", SLOW),
    ("---\na: 1", SLOW),
    ("a: 1\n---\nb: 2", SLOW),
    ("a: 1\n...\n", SLOW),
    ("%YAML 1.1\n---\na: 1", SLOW),
    ("? a\n: b", SLOW),
    # flow, block scalars, multi-line scalars
    ("a: [a, b]", SLOW),
    ("a: {x: 1}", SLOW),
    ("a: []", SLOW),
    ("a: |\n  x\n  y\n", SLOW),
    ("a: >-\n  x\n  y\n", SLOW),
    ("a: |+\n  x\n\n", SLOW),
    ('a: "x\n  y"', SLOW),
    ("a: x\n  y", SLOW),
    ("a: b\n  - c", FAST),  # a plain scalar continued on a `- ` line: "b - c"
    ("a: 1\n  - 2\n  - 3", FAST),
    ("a: b\n\n  - c", FAST),
    ("a: b # c\n  - d", SLOW),  # PyYAML error
    # structure
    ("a:\n  b: 1\n  c:\n    - x\n    - y: 2\n      z: 3\n  d: e", FAST),
    ("a:\n  - - x\n    - y\n  - z", FAST),
    ("  a: 1\n  b: 2", FAST),
    ("a:\n- x\n- y", SLOW),  # indentless sequence
    ("x:\n  c:\n  - 's'\n    a:", SLOW),  # rapidyaml mis-parses this one
    ("a:\n  b: 1\n c: 2", SLOW),
    ("a: 1\n  b: 2", SLOW),
    ("a:\n  b: 1\n   c: 2", SLOW),
    ("  a: 1\nb: 2", SLOW),
    ("- a\n- b", SLOW),  # not a mapping
    ("just a string", SLOW),
    ("a: 1\n- b", SLOW),
    ("a:\n  -\n  - x", SLOW),
    # text-level oddities
    ("", SLOW),
    ("\n\n", SLOW),
    ("# only\n# comments\n", SLOW),
    ("a: 1\r\nb: x\r\n", FAST),
    ("a: 1\rb: 2", SLOW),  # a lone CR is a line break for PyYAML only
    ("\ufeffa: 1", SLOW),
    ("a: 1\n\n\n# trailing comment", FAST),
    ("a: 1   \nb: 2", FAST),
    ("k:\n" + "".join(" " * i + "k:\n" for i in range(1, 70)), SLOW),  # too deep
]


@pytest.mark.parametrize("text,expect", TABLE, ids=[repr(t[:40]) for t, _ in TABLE])
def test_tricky(text: str, expect: str):
    fast = check(text)
    if expect == FAST:
        assert fast, f"expected the fast path for {text!r}"
    elif expect == SLOW:
        assert not fast, f"expected a fallback for {text!r}"


def test_plain_timestamp_values():
    """The exact objects PyYAML builds, fast."""
    got = load_fast("a: 2021-02-12T20:25:00Z\nb: 2021-02-12\nc: 2021-02-12 20:25:00.5 -05:30\nd:\n  - 2021-1-2T3:04:05")
    assert got["a"] == datetime.datetime(2021, 2, 12, 20, 25, tzinfo=UTC) and got["a"].tzinfo is UTC
    assert type(got["b"]) is datetime.date and got["b"] == datetime.date(2021, 2, 12)
    tz = datetime.timezone(-datetime.timedelta(hours=5, minutes=30))
    assert got["c"] == datetime.datetime(2021, 2, 12, 20, 25, 0, 500000, tzinfo=tz) and got["c"].tzinfo == tz
    assert got["d"] == [datetime.datetime(2021, 1, 2, 3, 4, 5)] and got["d"][0].tzinfo is None


def test_quoted_timestamp_stays_str():
    for text in ['t: "2021-02-12T20:25:00Z"', "t: '2021-02-12'", 't: "2021-02-12"\nu: 2021-02-12']:
        value, _fast = load(text)
        assert type(value["t"]) is str
    assert_identical(load('t: "2021-02-12"\nu: 2021-02-12')[0], {"t": "2021-02-12", "u": datetime.date(2021, 2, 12)})


def test_anchors_and_tags_fall_back():
    for text in ["a: &x 1\nb: *x", "a: !!int '3'", "a: !!python/object:os.system x", "<<: {a: 1}"]:
        with pytest.raises(NeedsFallback):
            load_fast(text)


def test_alias_bomb_is_not_expanded():
    """Billion laughs: refused before anything is parsed, in no time."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 12):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join(f"*{prev}" for _ in range(9)) + "]")
    bomb = "\n".join(lines)
    start = time.perf_counter()
    with pytest.raises(NeedsFallback):
        load_fast(bomb)
    assert time.perf_counter() - start < 0.1
    block = "a: &a\n  - lol\n  - lol\nb: &b\n  - *a\n  - *a\nc:\n  - *b\n  - *b\n"
    with pytest.raises(NeedsFallback):
        load_fast(block)


def test_parser_errors_become_fallback():
    """Texts in the subset's shape that rapidyaml rejects: NeedsFallback, never a crash."""
    too_deep = "".join(" " * i + "k:\n" for i in range(64)) + " " * 64 + "k: 1\n"  # rapidyaml's emitter stops at 64
    for text in ["a:\n  b: 1\n c: 2", "a: 1\n  b: 2", "  a: 1\nb: 2", "a: b\n  - c: d", too_deep]:
        assert fastyaml._DOC.fullmatch(text), "the regex lets it through: rapidyaml must refuse it"
        with pytest.raises(NeedsFallback, match="fast parser failed"):
            load_fast(text)
    assert load(too_deep)[0] == load_reference(too_deep)


def test_not_a_str():
    with pytest.raises(NeedsFallback):
        load_fast(b"a: 1")  # type: ignore[arg-type]


def test_large_json_buffer_retry():
    """Deep compact sequences make JSON much bigger than the YAML: the buffer grows."""
    text = "a:\n" + "  - - - - - - - - - - - - x\n" * 4000
    assert len(text) > 1 << 16
    assert check(text)


def test_threads():
    """Each thread has its own JSON buffer: concurrent loads stay correct."""
    texts = [f"a{i}: {i}\nb:\n  - {'x' * (1 + i * 37 % 5000)}\n  - 2021-02-12T20:25:{i % 60:02d}Z\n" for i in range(200)]
    want = [load_reference(t) for t in texts]
    errors = []

    def work(k: int) -> None:
        try:
            for _ in range(3):
                for i in range(k, len(texts), 4):
                    assert_identical(load_fast(texts[i]), want[i])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_load_api():
    assert load("a: 2021-02-12") == ({"a": datetime.date(2021, 2, 12)}, True)
    assert load("a: yes") == ({"a": True}, False)
    with pytest.raises(yaml.YAMLError):
        load("a: [1")
    with pytest.raises(yaml.YAMLError):
        load("a: *nope")


def test_reference_without_libyaml(monkeypatch):
    monkeypatch.setattr(fastyaml, "_CLOADER", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert load_reference("a: 1") == {"a": 1}
    assert any("libyaml" in str(w.message) for w in caught)


# --- random fuzz -------------------------------------------------------------------

SAFE_SCALARS = [
    "39", "-1", "0", "-0", "1.5", "-0.25", "10.0", "123456789012345678", "true", "false", "null", "", "y", "n",
    "abc", "IT Pro", "On MSFT", "Tom's Guide", "a:b", "a#b", "x - y", "b, c", "x]", "é", "😀 x",
    "2021-02-12T20:25:00Z", "2021-02-12", "2021-02-12 20:25:00", "2021-02-12t20:25:00.5+01:00",
    "2021-02-12T20:25:00-05:30", "2021-1-2T3:04:05", "2021-02-12  20:25:00 +5", "2024-02-29",
    '"x"', '"39"', '"true"', '"a: b"', '"a #b"', '"\\u2019"', '"\\"q\\""', '"\\n\\t"', '"\\xe9"', '" lead"',
    "'s'", "'it''s'", "''", '""',
]
RISKY_SCALARS = [
    "+1", "00", "017", "0o17", "0x1F", "1_000", "1:20", "1e3", "1.0e+3", ".5", "-.5", "5.", ".inf", "-.Inf",
    ".NaN", "inf", "nan", "Null", "NULL", "~", "True", "TRUE", "yes", "No", "on", "OFF", "=", "<<",
    "12345678901234567890123", "2021-2-1", "2021-02-30", "2021-13-01T00:00:00Z", "2021-01-01 24:00:00",
    '"2021-02-12T20:25:00Z"', "'2021-02-12'", '"\\x41"', '"\\0"', '"\\ud83d"', '"\\\\t\\L\\P"', "&a x", "*a", "!!str 1", "!x y",
    "[a, b]", "{a: 1}", "[]", "|", ">-", "@x", "`x", "%x", "? x", "a: b", "- x", "x\x85y", "x\ty", "x #", "a:",
]
KEYS = ["a", "b", "c", "title", "publishedDateTime", "k-1", "a.b", "y", "_", '"q k"', "'s'", '"1"']
RISKY_KEYS = ["1", "true", "null", "~", "On", "2021-01-01", "<<", "? a", "[a]", "&k a", "!t a", "k" * 1100]


def _scalar(r: random.Random) -> str:
    p = r.random()
    if p < 0.85:
        return r.choice(SAFE_SCALARS)
    if p < 0.95:
        return r.choice(RISKY_SCALARS)
    chars = "ab09 -+._:#\"'\\/&*!|>%@`?,[]{}~=eExZT\t\u00e9😀\x85"
    return "".join(r.choice(chars) for _ in range(r.randint(1, 6)))


def _key(r: random.Random) -> str:
    return r.choice(KEYS) if r.random() < 0.95 else r.choice(RISKY_KEYS)


def _node(r: random.Random, depth: int):
    p = r.random()
    if depth >= 4 or p < 0.45:
        return ("scalar", _scalar(r))
    if p < 0.75:
        return ("map", [(_key(r), _node(r, depth + 1)) for _ in range(r.randint(0, 4))])
    return ("seq", [_node(r, depth + 1) for _ in range(r.randint(0, 4))])


def _render(r: random.Random, node, col: int, out: list[str], step: int) -> None:
    """Block-style lines for a map or seq whose entries start at `col`."""
    kind, items = node
    tail = lambda: r.choice(["", "", "", " ", " # c"])  # noqa: E731
    for item in items:
        if r.random() < 0.05:
            out.append(r.choice(["", " " * r.randint(0, 6) + "# note"]))
        if kind == "map":
            key, child = item
            if child[0] == "scalar":
                out.append(" " * col + f"{key}:{' ' if child[1] else ''}{child[1]}{tail()}")
            else:
                out.append(" " * col + f"{key}:{tail()}")
                _render(r, child, col + r.choice([step, step, step, 1, 4]), out, step)
        elif item[0] == "scalar":
            out.append(" " * col + f"- {item[1] or 'x'}{tail()}")
        else:
            sub: list[str] = []
            _render(r, item, col + 2, sub, step)
            if sub and sub[0][col + 2 : col + 3] not in ("", " ", "#"):
                out.append(" " * col + "- " + sub[0][col + 2 :])  # compact `- key: v`
                out.extend(sub[1:])
            else:
                out.append(" " * col + "- x")


def _mutate(r: random.Random, lines: list[str]) -> list[str]:
    """Near misses: shifted indentation, duplicates, continuation and stray lines."""
    i = r.randrange(len(lines))
    m = r.random()
    if m < 0.35:
        lines[i] = " " * r.choice([1, 2]) + lines[i]
    elif m < 0.55:
        lines[i] = lines[i][1:]
    elif m < 0.65:
        lines.insert(i, lines[i])
    elif m < 0.85:
        extra = r.choice(["- x", "more words", "- 2", "k: v", '"q"', "- a: 1", "#c"])
        lines.insert(i + 1, " " * r.randint(0, 8) + extra)
    else:
        lines[i] += r.choice([":", " x", " - y", "#"])
    return lines


def _document(r: random.Random) -> str:
    root = ("map", [(_key(r), _node(r, 1)) for _ in range(r.randint(1, 5))])
    lines: list[str] = []
    _render(r, root, r.choice([0, 0, 0, 2]), lines, r.choice([1, 2, 2, 3, 4]))
    for _ in range(r.choice([0, 0, 0, 1, 2])):
        lines = _mutate(r, lines)
    text = "\n".join(lines) + r.choice(["\n", "", "\n\n"])
    return text.replace("\n", "\r\n") if r.random() < 0.03 else text


def test_fuzz():
    r = random.Random(20210212)
    n, fast = 4000, 0
    for _ in range(n):
        text = _document(r)
        try:
            fast += check(text)
        except AssertionError as e:
            raise AssertionError(f"{e}\ntext: {text!r}") from None
    # (a fifth of the documents repeat a key, which always falls back)
    assert fast > n // 6, f"only {fast} of {n} documents took the fast path: the fuzz tests little"


# --- plain scalars that start with a digit -------------------------------------------
#
# Provider names, domains, topics and titles of real news sites (9to5Mac, 13newsnow.com, 5G,
# 2021 in review): strings, YAML 1.1 ints and floats, timestamps or errors for PyYAML, each of
# which the fast path must give exactly or refuse. Every text of up to three characters of
# numbers' alphabet, and generated longer ones, as plain and as quoted scalars.

NUMBER_CHARS = "0159._:+-eExXbo#G "


def _digit_led(n: int) -> list[str]:
    texts = [""]
    out = []
    for _ in range(n):
        texts = [t + c for t in texts for c in NUMBER_CHARS]
        out += [t for t in texts if t[0].isdigit()]
    return out


def _as_documents(scalar: str) -> list[str]:
    return [f"k: {scalar}\n", f"k:\n  - {scalar}\n", f"a: 1\nk: {scalar} # c\n", f'k: "{scalar}"\n',
            f"k: '{scalar}'\n", f"- {scalar}\n"]


def test_digit_led_scalars_exhaustively():
    docs = [d for s in _digit_led(3) for d in _as_documents(s)]
    fast = 0
    for text in docs:
        try:
            fast += check(text)
        except AssertionError as e:
            raise AssertionError(f"{e}\ntext: {text!r}") from None
    assert_precheck_implies_doc(docs)
    assert fast > len(docs) // 2, f"only {fast} of {len(docs)} took the fast path"


@settings(max_examples=300, deadline=None)
@given(st.tuples(st.sampled_from("0123456789"), st.text(NUMBER_CHARS + "aAfFnNt%,'\"", max_size=16)).map("".join))
def test_digit_led_scalars_generated(scalar):
    docs = _as_documents(scalar)
    for text in docs:
        check(text)
    assert_precheck_implies_doc(docs)


def test_news_names_led_by_digits_stay_fast_in_a_batch():
    """Real sites' forms pass the batch test as well as _DOC: no per-record regex for them."""
    text = ("provider:\n  name: 9to5Mac\n  domain: 9to5mac.com\ntopics:\n  - 5G\n  - 3D printing\n"
            "title: \"5 things to know\"\nrelated:\n  - title: \"2021 in review\"\n    provider:\n"
            "      name: 60 Minutes\n      domain: 13newsnow.com\n    quality: 12\n")
    assert fastyaml.precheck([text.encode()]) == [True]
    assert check(text)


# --- the batch pre-check ----------------------------------------------------------
#
# fastyaml.precheck may say True only where the _DOC regex matches (the
# other way round costs speed, not meaning). Each test feeds it texts built
# around one of _DOC's lookaheads or bounds and checks that direction.


def assert_precheck_implies_doc(texts: list[str]) -> int:
    """precheck True => _DOC matches, for every text; returns how many precheck passed."""
    passed = fastyaml.precheck([t.encode("utf-8") for t in texts])
    assert len(passed) == len(texts)
    wrong = [t for t, ok in zip(texts, passed) if ok and not fastyaml._DOC.fullmatch(t)]
    assert not wrong, f"precheck passed {len(wrong)} texts _DOC refuses, e.g. {wrong[:3]!r}"
    return sum(passed)


def _spellings(word: str) -> list[str]:
    """Every upper/lower-case spelling of `word`."""
    out = [""]
    for c in word:
        out = [p + v for p in out for v in {c.lower(), c.upper()}]
    return out


WORDS = ["yes", "no", "null", "nan", "true", "false", "on", "off", "inf", "infinity"]


def test_precheck_words():
    """Keys and plain scalars that are YAML 1.1 bool/null words, or start like them."""
    texts = []
    for word in WORDS:
        for w in _spellings(word):
            for value in (w, w + "#x", w + " #c", w + "  ", w + "x", w + ":x", w + " x", w + "-", w[:-1], w + "é"):
                texts += [f"a: 1\nk: {value}\n", f"k:\n  - {value}\n", f"- - {value}"]
            for key in (w, w + "x", w[:-1] if len(w) > 1 else w + "_", w + ".b", w + "_1"):
                texts += [f"{key}: 1\n", f"- {key}: 1\n", f"{key}:\n  a: 1\n", f"- {key}:\n"]
    passed = assert_precheck_implies_doc(texts)
    # the plain words that are JSON's stay fast, and so do keys that only start like a word
    assert fastyaml.precheck([b"a: true\nb: false\nc: null\nnote: yesterday\ntruth: 1\n"]) == [True]
    assert passed > len(texts) // 3


def test_precheck_quoted_dates():
    """Quoted scalars that could read as timestamps (PyYAML keeps them strings)."""
    inner = ["2021-01-01", "2021-1-1", "2021-01-01T10:00:00Z", "2021-01-01 10:00", "2021-01", "2021-0", "2021-",
             "2021", "20211-01-01", "1999-12-31x", "2021-1-1\\t", "12:00", "2021-01 report", "2021 report", "7 ways",
             "0000-01-01", "2021-02-30"]
    texts = []
    for s in inner:
        for q in (f'"{s}"', f"'{s}'"):
            texts += [f"k: {q}\n", f"- {q}\n", f"k:\n  - t: {q}\n", f"{q}: 1\n"]
    assert_precheck_implies_doc(texts)
    assert fastyaml.precheck([b'k: "7 ways to go"\nd: "2021 report"\n']) == [True]


def test_precheck_indentless_sequences():
    """An empty key followed by `- ` at the key's column, at every indentation
    and with blank lines, comments or spaces in between."""
    texts = []
    for i in range(0, 70):
        pad = " " * i
        for gap in ("", "\n", f"{pad}# c\n", "   \n"):
            for after in ("", "  ", " # c"):
                for shift in (0, 1, 2, 4):
                    nxt = " " * (i + shift)
                    texts += [
                        f"a: 1\n{pad}k:{after}\n{gap}{nxt}- x\n",
                        f"a: 1\n{pad}- k:{after}\n{gap}{nxt}- x\n",
                        f"a: 1\n{pad}- k:{after}\n{gap}{nxt}  - x\n",
                        f"{pad}k:{after}\n{gap}{nxt}j: 1\n",
                        f"{pad}- k:{after}\n{gap}{nxt}j: 1",
                        f"{pad}k:{after}",
                    ]
    passed = assert_precheck_implies_doc(texts)
    assert passed > len(texts) // 10


def test_precheck_bounds():
    """Indentation past 64, more than 16 dashes, keys past 128 characters."""
    texts = []
    for n in range(58, 72):
        texts += [" " * n + "k: 1\n", "a:\n" + " " * n + "k: 1\n", " " * n + "- x\n", "a:\n" + " " * n + "k:\n"]
    for n in range(12, 20):
        texts += ["- " * n + "x\n", "- " * n + "k: 1\n", "a:\n  " + "- " * n + "x"]
    for n in range(100, 140):
        texts += ["k" * n + ": 1\n", "- " + "k" * n + ": 1\n", "k" * n + ":\n  a: 1\n", "a: " + "k" * n + "\n"]
    passed = assert_precheck_implies_doc(texts)
    assert passed > len(texts) // 3


def test_precheck_characters_and_escapes():
    """Characters PyYAML does not print or reads as line breaks, and escapes."""
    specials = ["\x85", "\u2028", "\u2029", "\ufeff", "\ufffe", "\uffff", "\x80", "\x9f", "\xa0", "\t", "\r", "\x7f",
                "\x00", "\x1b", "\ud7ff", "\ue000", "😀", "’", "é"]
    escapes = ["\\u0041", "\\u00e9", "\\ud83d", "\\udc00", "\\uD7FF", "\\uDBFF", "\\U0001F600", "\\U00110000",
               "\\x41", "\\x85", "\\xe9", "\\L", "\\P", "\\0", "\\a", "\\e", "\\/", "\\N", "\\_", "\\ ", "\\t"]
    texts = []
    for c in specials:
        texts += [f"k: a{c}b\n", f"k: '{c}'\n", f'k: "{c}"\n', f"k{c}: 1\n", f"k: 1 # {c}\n", f"# {c}\n", f"{c}: 1\n",
                  f"k: {c}\n", f"- {c}x\n"]
    for e in escapes:
        texts += [f'k: "a{e}b"\n', f'k: "{e}"\n', f'- "{e}"\n']
    passed = assert_precheck_implies_doc(texts)
    assert passed > len(texts) // 4


def test_precheck_fuzz_and_table():
    """The fuzz documents and the tricky table: precheck never passes what _DOC refuses.

    It passes about a third of what _DOC matches: the fuzz is full of what
    precheck leaves to _DOC and real records lack (quoted keys, comments
    after `key:`, comment lines before a nested block)."""
    r = random.Random(20261126)
    texts = [_document(r) for _ in range(6000)] + [t for t, _ in TABLE]
    passed = assert_precheck_implies_doc(texts)
    assert passed > 500, f"precheck passed only {passed} fuzz documents: the test says little"


def test_precheck_passes_every_real_record(corpus_front_matter):
    """On the real records precheck is as good as _DOC: all of them stay fast."""
    texts = [fm.replace("\r\n", "\n") for items in corpus_front_matter.values() for _, fm in items]
    passed = fastyaml.precheck([t.encode("utf-8") for t in texts])
    missed = [t[:80] for t, ok in zip(texts, passed) if not ok and fastyaml._DOC.fullmatch(t)]
    assert not missed, f"{len(missed)} records _DOC matches go the slow way, e.g. {missed[:2]!r}"


def test_precheck_empty_batch():
    assert fastyaml.precheck([]) == []


def test_precheck_off_when_re2_refuses(monkeypatch):
    """An Arrow whose RE2 cannot compile the pattern: nothing passes, with one warning."""
    monkeypatch.setattr(fastyaml, "_RE2_DOC", "(")
    monkeypatch.setattr(fastyaml, "_precheck_warned", False)
    with pytest.warns(RuntimeWarning, match="precheck is off"):
        assert fastyaml.precheck([b"a: 1\n", b"b: 2\n"]) == [False, False]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fastyaml.precheck([b"a: 1\n"]) == [False]
