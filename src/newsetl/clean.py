"""Typing and cleaning of field values.

Each `as_*` function returns the typed value, or None after noting an issue
(field, raw value, problem): a value of the wrong type loads as NULL and is
listed in data_issues, it never stops the record. Fast paths come first
because these run for every field of every record.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import re
import unicodedata
from urllib.parse import unquote

import orjson

UTC = dt.timezone.utc
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
_INT_TEXT = re.compile(r"[+-]?\d+")
_PCT = re.compile(r"%[0-9A-Fa-f]{2}")
_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}

Issues = list  # of (field, raw_value, problem)


def raw_text(value) -> str:
    """A raw value as text for data_issues: JSON for containers, str otherwise."""
    if isinstance(value, str):
        return value
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str).decode()
    except (TypeError, orjson.JSONEncodeError):
        return repr(value)


def _kind(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (dt.datetime, dt.date)):
        return "a date"
    return type(value).__name__


def as_int(value, issues: Issues, field: str, sub: str = ""):
    t = type(value)
    if t is int:
        if INT32_MIN <= value <= INT32_MAX:
            return value
        issues.append((field + sub, str(value), "integer out of range"))
        return None
    if value is None:
        return None
    if t is float and value.is_integer() and INT32_MIN <= value <= INT32_MAX:
        return int(value)
    if t is str and _INT_TEXT.fullmatch(value.strip()):
        n = int(value.strip())
        if INT32_MIN <= n <= INT32_MAX:
            return n
    issues.append((field + sub, raw_text(value), f"expected an integer, got {_kind(value)}"))
    return None


def as_bool(value, issues: Issues, field: str, sub: str = ""):
    if value is True or value is False or value is None:
        return value
    if type(value) is str:
        s = value.strip().lower()
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
    issues.append((field + sub, raw_text(value), f"expected true or false, got {_kind(value)}"))
    return None


def as_timestamp(value, issues: Issues, field: str, sub: str = ""):
    """A point in time, in UTC. Naive times are taken as UTC; a date is its midnight UTC."""
    t = type(value)
    if value is None:
        return None
    if t is dt.date:
        return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)
    parsed = value if t is dt.datetime else None
    if t is str and value.strip():
        try:
            parsed = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            pass
    if parsed is not None:
        try:
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        except OverflowError:
            issues.append((field + sub, raw_text(value), "date outside the years 1-9999 in UTC"))
            return None
    issues.append((field + sub, raw_text(value), f"expected a date and time, got {_kind(value)}" if t is not str else "not a date and time"))
    return None


def as_unstripped(value, issues: Issues, field: str, sub: str = ""):
    """Text as written: numbers and dates become their text, containers are an issue."""
    t = type(value)
    if t is str or value is None:
        return value
    if t is int or t is float:
        return str(value)
    if t is dt.datetime or t is dt.date:
        return value.isoformat()
    issues.append((field + sub, raw_text(value), f"expected text, got {_kind(value)}"))
    return None


def as_str(value, issues: Issues, field: str, sub: str = ""):
    """Plain text (URLs, tokens, names), stripped. Numbers become their text."""
    if type(value) is str:
        return value.strip() or None
    s = as_unstripped(value, issues, field, sub)
    return s.strip() or None if s is not None else None


def fix_mojibake(s: str) -> str:
    """Undo UTF-8 text that was decoded as Windows-1252 (`cityâ€™s` -> `city’s`).

    Only when the round trip is exact, so genuine accented text is left alone.
    """
    try:
        return s.encode("cp1252").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return s


def as_text(value, issues: Issues, field: str, sub: str = ""):
    """Human text (titles, excerpts): HTML entities unescaped, mojibake repaired, stripped."""
    s = as_str(value, issues, field, sub)
    if s is None:
        return None
    if "&" in s:
        s = html.unescape(s).strip()
    # mojibake needs non-ASCII text; isascii() is O(1) on CPython strings
    if not s.isascii() and ("â" in s or "Ã" in s or "Â" in s):
        s = fix_mojibake(s)
    return s or None


def as_name(value, issues: Issues, field: str, sub: str = ""):
    """A provider name: also percent-decoded (`Morningstar%2c Inc.` -> `Morningstar, Inc.`)."""
    s = as_text(value, issues, field, sub)
    if s is not None and "%" in s and _PCT.search(s):
        s = unquote(s).strip() or None
    return s


# -- provider domains --------------------------------------------------------------
#
# One definition of "the same domain", for stored domains (articles, related
# links, providers) and for the --provider filter; see normalize_domain.

# every white-space character (str.isspace) is below U+3001; plus the dot, for the right end
_BLANK_OR_DOT = "." + "".join(c for c in map(chr, range(0x3001)) if c.isspace())
# IDNA's label separators (RFC 3490 3.1); NFKC already turns U+FF0E into "." and U+FF61 into U+3002
_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
# characters that do not show as themselves: controls, format (bidi overrides, zero-width),
# unassigned, private use, surrogates, line and paragraph separators
_HIDDEN = frozenset(("Cc", "Cf", "Cn", "Co", "Cs", "Zl", "Zp"))
_MAX_LABEL = 63  # DNS: a longer label is no host name; not converted (and punycode stays cheap)


def _fold(s: str) -> str:
    """NFKC, then one-to-one lower-casing (Unicode's simple case mapping, which Arrow's
    utf8_lower and DuckDB's lower() use): str.lower() but İ -> i and Σ -> σ wherever
    they stand (str.lower gives i + U+0307, and ς at the end of a word)."""
    s = unicodedata.normalize("NFKC", s).translate(_DOTS)
    s = s.replace("\u0130", "i").replace("\u03a3", "\u03c3").lower()
    return unicodedata.normalize("NFKC", s)


def _shows(label: str) -> bool:
    return not any(unicodedata.category(c) in _HIDDEN for c in label)


def _label(label: str) -> str:
    """A label of a folded domain in its stored form: Unicode, unless it has a character
    that does not show as itself, then its punycode A-label (xn--...)."""
    if label.isascii():
        if not label.startswith("xn--") or len(label) > _MAX_LABEL:
            return label
        try:
            u = _fold(label[4:].encode("ascii").decode("punycode"))
        except UnicodeError:
            return label  # not punycode after all: kept as written
        # a real A-label decodes to one non-ASCII label; anything else stays as written
        if not u.isascii() and "." not in u and u == u.strip() and _shows(u):
            return u
        return label
    if _shows(label):
        return label
    encoded = "xn--" + label.encode("punycode").decode("ascii")
    return encoded if len(encoded) <= _MAX_LABEL else label


@functools.lru_cache(maxsize=1 << 16)  # a batch repeats a few hundred domains thousands of times
def normalize_domain(text: str | None) -> str | None:
    """A provider domain in the one form newsetl stores and compares (None if nothing is left).

    - white space is stripped, then trailing dots (`example.com.` is `example.com`);
    - ASCII is lower-cased and otherwise kept byte for byte;
    - other text: NFKC (fullwidth `ｅｘａｍｐｌｅ．ｃｏｍ` is `example.com`), then simple
      lower-casing, one character to one, locale-free: `I` and `İ` become `i`, `ı` stays
      `ı` (a letter of its own), `ß` stays `ß` (IDNA 2008 keeps `faß.de` apart from
      `fass.de`), `Σ` becomes `σ` and `ς` stays;
    - a label written in punycode is stored as the Unicode it spells (`XN--BCHER-KVA.DE`
      is `bücher.de`, what an editor reads), when that is one label of characters that
      show; a label with a character that does not show (a control, a bidi override, a
      zero-width or unassigned one) is stored as its `xn--` form, so either spelling of a
      domain lands on one provider.

    Idempotent: a stored domain normalises to itself, and DuckDB's lower(trim()) leaves it
    unchanged, so the view macros may compare it with lower(trim(provider)).
    """
    if text is None:
        return None
    s = text.lower() if text.isascii() else _fold(text)
    s = s.strip().rstrip(_BLANK_OR_DOT)
    if not s.isascii() or "xn--" in s:
        s = ".".join(map(_label, s.split(".")))
    return s or None


def as_domain(value, issues: Issues, field: str, sub: str = ""):
    return normalize_domain(as_str(value, issues, field, sub))


def as_list(value, issues: Issues, field: str, sub: str = "") -> list:
    if type(value) is list:
        return value
    if value is None:
        return []
    issues.append((field + sub, raw_text(value), f"expected a list, got {_kind(value)}"))
    return []


def as_mapping(value, issues: Issues, field: str, sub: str = "") -> dict:
    if type(value) is dict:
        return value
    if value is None:
        return {}
    issues.append((field + sub, raw_text(value), f"expected a mapping, got {_kind(value)}"))
    return {}


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def key_path(parent: str, key) -> str:
    """The field path of `key` under `parent` in data_issues: `provider.name`, or, for
    a key that is not a plain word, the key as `json_key` writes it in brackets:
    `["provider.x"]`, `["!!int 1"]`."""
    if key.__class__ is str and _PLAIN_KEY.fullmatch(key):
        return f"{parent}.{key}" if parent else key
    return f"{parent}[{orjson.dumps(json_key(key)).decode()}]"


def item_path(parent: str, index: int) -> str:
    return f"{parent}[{index}]"


def json_key(key) -> str:
    """A YAML mapping key as a JSON object key, so that no two distinct keys collide.

    A string is itself, unless it starts with `!`: then it gets `!!str ` in
    front. Any other key is written with its YAML tag: `!!int 1`, `!!bool true`,
    `!!null`, `!!float 1.5`, `!!timestamp 2021-01-01`, and a value the warehouse
    cannot hold as `!!int 123...` with its text as written. (`1` and `"1"`,
    `true` and `"true"` stay two keys.)"""
    t = type(key)
    if t is str:
        return "!!str " + key if key.startswith("!") else key
    if key is None:
        return "!!null"
    if t is bool:
        return "!!bool true" if key else "!!bool false"
    if t is int:
        return f"!!int {key}"
    if t is float:
        return f"!!float {key!r}"
    if t is dt.datetime or t is dt.date:
        return f"!!timestamp {key.isoformat()}"
    tag = getattr(key, "tag", None)
    if isinstance(tag, str) and hasattr(key, "raw"):  # safeyaml.Unrepresentable
        return f"!!{tag.rsplit(':', 1)[-1]} {key.raw}"
    if isinstance(tag, str) and hasattr(key, "value"):  # safeyaml.Key
        return json_key(key.value)
    return f"!!{t.__name__} {key!r}"


def _plain_keys(value) -> bool:
    """Whether every mapping key in `value` is a string that `json_key` leaves as it is."""
    t = type(value)
    if t is list:
        return all(map(_plain_keys, value))
    if isinstance(value, dict):
        return all(type(k) is str and not k.startswith("!") for k in value) and all(map(_plain_keys, value.values()))
    return True


def _json_ready(value):
    """`value` with every mapping key made a string by `json_key`."""
    t = type(value)
    if t is list:
        return [_json_ready(v) for v in value]
    if isinstance(value, dict):
        return {json_key(k): _json_ready(v) for k, v in value.items()}
    return value


def json_bytes(value) -> bytes:
    """JSON of a value of a record (dates as ISO 8601, keys as `json_key` writes them: a key
    YAML read as a bool, a number or a date has no JSON form of its own)."""
    # copying a record's mappings to rewrite keys costs memory: only when a key needs it
    return orjson.dumps(value if _plain_keys(value) else _json_ready(value), default=str)


def to_json(value) -> str:
    """`json_bytes` as text."""
    return json_bytes(value).decode()
