"""Columns: how YAML keys map to staging columns, and raw values become typed Arrow columns.

Flatten collects raw values per column (pass 1); `type_column` types a whole
column at once (pass 2). When every value already has the right Python type
(nearly always), one Arrow conversion does it and Arrow kernels strip,
lower-case and find the few strings that need HTML unescaping or repair;
otherwise the column is typed value by value with `clean.as_*`, and each value
that cannot be typed becomes NULL plus a data issue.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc

from . import schema as S
from .clean import as_bool, as_domain, as_int, as_name, as_str, as_text, as_timestamp, as_unstripped

KNOWN = frozenset(
    "category title excerpt publishedDateTime originalUrl webUrl ampWebUrl cdnAmpWebUrl type "
    "quality heat published featuredContent secured provider topics images related".split()
)


KNOWN_PROVIDER = frozenset(("name", "domain", "images"))


KNOWN_IMAGE = frozenset(("url", "width", "height", "isCached", "title"))


KNOWN_RELATED = frozenset(
    "title excerpt publishedDateTime webUrl ampWebUrl cdnAmpWebUrl type provider quality images".split()
)


KNOWN_LINK_PROVIDER = frozenset(("name", "domain"))


# column -> (kind, YAML key) of the columns typed in pass 2; the others are final already
ARTICLE_RAW = {
    "amp_url": ("str", "ampWebUrl"),
    "cdn_amp_url": ("str", "cdnAmpWebUrl"),
    "title": ("text", "title"),
    "excerpt": ("text", "excerpt"),
    "category": ("str", "category"),
    "type": ("str", "type"),
    "published_at": ("ts", "publishedDateTime"),
    "quality": ("int", "quality"),
    "heat": ("int", "heat"),
    "is_published": ("bool", "published"),
    "provider_domain": ("domain", "provider.domain"),
    "provider_name": ("name", "provider.name"),
    "featured_content": ("str", "featuredContent"),
    "secured": ("str", "secured"),
}


IMAGE_RAW = {
    "url": ("str", "url"),
    "width": ("int", "width"),
    "height": ("int", "height"),
    "is_cached": ("bool", "isCached"),
    "title": ("text", "title"),
}


LINK_RAW = {
    "url": ("str", "webUrl"),
    "title": ("text", "title"),
    "excerpt": ("text", "excerpt"),
    "published_at": ("ts", "publishedDateTime"),
    "type": ("str", "type"),
    "provider_domain": ("domain", "provider.domain"),
    "provider_name": ("name", "provider.name"),
    "quality": ("int", "quality"),
    "amp_url": ("str", "ampWebUrl"),
    "cdn_amp_url": ("str", "cdnAmpWebUrl"),
}


_NONE = type(None)


_SLOW = {"str": as_str, "text": as_text, "name": as_name, "domain": as_domain,
         "int": as_int, "bool": as_bool, "ts": as_timestamp}


_FAST_TYPES = {
    "str": ({str, _NONE}, pa.string()), "text": ({str, _NONE}, pa.string()),
    "name": ({str, _NONE}, pa.string()), "domain": ({str, _NONE}, pa.string()),
    "int": ({int, _NONE}, pa.int64()), "bool": ({bool, _NONE}, pa.bool_()),
    "ts": ({dt.datetime, _NONE}, S.arrow(S.TS)),
}


# strings that need Python after Arrow's strip: HTML entities, mojibake, percent-escapes
_NEEDS_PYTHON = {"text": "[&âÃÂ]", "name": "[&âÃÂ%]"}


# from an array, not pa.scalar: pyarrow's first scalar from a Python value imports pandas
# (most of a second) to look for a DataFrame, and every importer of this module would pay it
_NULL_STR = pa.nulls(1, pa.string())[0]


def type_column(values: list, kind: str) -> tuple[pa.Array, list[tuple[int, str, str]]]:
    """Raw values -> typed Arrow array, and (row, raw value, problem) for values set to NULL.

    A value's typed result depends on the value alone, never on the other
    values of its batch: text goes through the same Arrow cleaning either way.
    """
    types, arrow_type = _FAST_TYPES[kind]
    if arrow_type == pa.string():
        bad = []
        if not set(map(type, values)) <= types:
            issues: list = []
            converted = []
            for i, v in enumerate(values):
                n = len(issues)
                converted.append(as_unstripped(v, issues, ""))
                if len(issues) > n:
                    bad.append((i, issues[-1][1], issues[-1][2]))
            values = converted
        return clean_strings(pa.array(values, arrow_type), kind), bad
    if set(map(type, values)) <= types:
        arr = pa.array(values, arrow_type)
        if kind != "int":
            return arr, []
        lo, hi = pc.min_max(arr).values()
        if lo.as_py() is None or (-(2**31) <= lo.as_py() and hi.as_py() <= 2**31 - 1):
            return arr.cast(pa.int32()), []
    # some value has another type: type each value, noting the ones that fail
    fn, out, bad, issues = _SLOW[kind], [], [], []
    for i, v in enumerate(values):
        n = len(issues)
        out.append(fn(v, issues, ""))
        if len(issues) > n:
            bad.append((i, issues[-1][1], issues[-1][2]))
    target = pa.int32() if kind == "int" else arrow_type
    return pa.array(out, target), bad


def clean_strings(raw: pa.Array, kind: str) -> pa.Array:
    arr = pc.utf8_trim_whitespace(raw)
    if kind == "domain":
        arr = pc.utf8_lower(arr)
        # Arrow's lower-casing is clean.normalize_domain for plain ASCII only: the rest
        # (non-ASCII, punycode labels, a trailing dot) goes through the one definition
        odd = pc.or_(pc.or_(pc.invert(pc.string_is_ascii(arr)), pc.ends_with(arr, ".")),
                     pc.match_substring(arr, "xn--"))
        odd = pc.fill_null(odd, False)
        if pc.any(odd).as_py():
            from .clean import normalize_domain

            fixed = [normalize_domain(v) for v in raw.filter(odd).to_pylist()]
            arr = pc.replace_with_mask(arr, odd, pa.array(fixed, pa.string()))
    pattern = _NEEDS_PYTHON.get(kind)
    if pattern:
        mask = pc.fill_null(pc.match_substring_regex(arr, pattern), False)
        if pc.any(mask).as_py():
            fn = _SLOW[kind]
            fixed = [fn(v, [], "") for v in raw.filter(mask).to_pylist()]
            arr = pc.replace_with_mask(arr, mask, pa.array(fixed, pa.string()))
    empty = pc.fill_null(pc.equal(arr, ""), False)
    if pc.any(empty).as_py():
        arr = pc.if_else(empty, _NULL_STR, arr)
    return arr


class Columns:
    """Column lists of one staging table: final values, and raw ones typed later."""

    def __init__(self, table: S.Table, raw: dict[str, tuple[str, str]]):
        self.table = table
        self.raw = raw
        self.cols = {n: [] for n in table.names}

    def __getitem__(self, name: str) -> list:
        return self.cols[name]

    def typed(self, field_path) -> tuple[pa.Table, list[tuple[int, str, str, str]]]:
        """The Arrow table, and (row, field, raw, problem) for every value that could not be typed."""
        if not self.cols[self.table.names[0]]:  # nothing to type (the related lists went the JSON way)
            return self.table.schema.empty_table(), []
        arrays, problems = [], []
        for f in self.table.schema:
            values = self.cols[f.name]
            if f.name in self.raw:
                kind, key = self.raw[f.name]
                arr, bad = type_column(values, kind)
                problems.extend((row, field_path(row, key), raw, problem) for row, raw, problem in bad)
                arrays.append(arr)
            else:
                arrays.append(pa.array(values, f.type))
        return pa.Table.from_arrays(arrays, schema=self.table.schema), problems
