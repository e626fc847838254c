"""TOML (`+++`) and JSON (`{ ... }`) front matter, as Hugo writes them.

A file whose first line is `+++` has TOML front matter up to the next line
`+++` (parsed by the standard library's tomllib); a file that starts with `{`
has a JSON object as front matter, and its body starts after the object ends.
Both are parsed one file at a time, never by the YAML parsers, and give the rest
of the pipeline the values the YAML path gives (frontmatter._parse):

- TOML dates and date-times are PyYAML's timestamp types (a `date`; a
  `datetime`, aware when an offset is written); a TOML local time (`12:30:00`),
  which YAML has no type for, is its text, as a quoted YAML time is. JSON dates
  are strings, as quoted YAML dates are (flatten reads both as times).
- What the warehouse cannot hold loads as NULL with a data issue, as in YAML
  (safeyaml.Unrepresentable): an integer beyond 64 bits, a TOML `nan` or `inf`
  or a JSON number too large for a float, a date-time whose UTC value leaves
  the years 1-9999. A key given twice in a JSON object: the last value wins and
  the others are data issues (safeyaml.Duplicates); TOML refuses the file.
- The caps of `limits.RECORD` hold: nesting depth, keys and items, characters
  of text. JSON is scanned for its end, nesting and size before it is parsed,
  and TOML's size is bounded from its text, so that neither parser (both are
  recursive) meets a deep or huge record; the parsed value is then counted
  exactly, without recursion.
- Everything else is a one-line rejection with line and column where the
  parser gives them: `invalid TOML at line 3, column 7: ...`, `invalid JSON ...`,
  NaN or Infinity in JSON (not JSON), front matter that is not closed.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import tomllib

from . import limits, safeyaml
from .sources import RejectedFile

NO_FRONT_MATTER = "no front matter: the first line is not '---' (YAML) or '+++' (TOML), nor a '{' (JSON)"

_TOML_OPEN = re.compile(r"\+\+\+[ \t]*(\r?\n|\Z)")
_TOML_CLOSE = re.compile(r"\n\+\+\+[ \t]*+(?:\r?\n|\r?\Z)")
# what cannot hold a key, an item or a table in TOML text: strings and comments
# (possessive: a repeated alternation would keep a backtracking state per character)
_TOML_TEXT = re.compile(r'"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:[^"\\\n]++|\\.)*+"|\'[^\'\n]*+\'|#[^\n]*+')
_TOML_POS = re.compile(r"\s*\(at line (\d+), column (\d+)\)$|\s*\(at end of document\)$")
# a JSON string (skipped whole), or a character of the JSON object's structure
_JSON_TOKEN = re.compile(r'"(?:[^"\\]++|\\.)*+"|([\[\]{},])')
_UTC = dt.timezone.utc


def too_deep(cap: limits.Limits = limits.RECORD) -> str:
    return f"nesting deeper than {cap.depth} levels (the cap per record)"


def _too_many(cap: limits.Limits) -> str:
    return f"record too large: more than {cap.nodes:,} keys and items (the cap per record)"


def _too_long(cap: limits.Limits) -> str:
    return f"record too large: more than {cap.expanded_bytes:,} characters of text (the cap per record)"


# -- splitting ---------------------------------------------------------------------------

def split_toml(text: str) -> tuple[str, str]:
    """The text of a file that starts with `+++` (no BOM) -> (TOML front matter, body)."""
    m = _TOML_OPEN.match(text)
    if not m:
        raise RejectedFile(NO_FRONT_MATTER)
    close = _TOML_CLOSE.search(text, m.end() - 1) if m.group(1) else None
    if close is None:
        raise RejectedFile("front matter is not closed: no line '+++' after the opening '+++'")
    fm = text[m.end():close.start() + 1]
    if "\r" in fm:
        fm = fm.replace("\r\n", "\n")
    return fm, text[close.end():]


def split_json(text: str, cap: limits.Limits = limits.RECORD) -> tuple[str, str]:
    """The text of a file that starts with `{` (no BOM) -> (JSON object, body).

    The object's end is found by a scan that also holds it to the depth and
    size caps, so the parser never meets a record past them."""
    end = _json_end(text, cap)
    if end is None:
        try:
            _, end = json.JSONDecoder().raw_decode(text)
        except json.JSONDecodeError as e:
            raise RejectedFile("front matter is not closed: the JSON object that starts the file never ends "
                               f"({_json_error(e)})") from None
        except (RecursionError, ValueError):
            raise RejectedFile("front matter is not closed: the JSON object that starts the file never ends") from None
    body = text[end:]
    if body.startswith("\r\n"):
        body = body[2:]
    elif body.startswith("\n"):
        body = body[1:]
    return text[:end], body


def _json_end(text: str, cap: limits.Limits) -> int | None:
    """Where the JSON object starting `text` ends (after its `}`), or None if it never does.
    Raises RejectedFile past the depth or size cap."""
    depth = nodes = tokens = 0
    limit = 4 * cap.nodes + 16  # a valid object has at most three tokens a node
    for m in _JSON_TOKEN.finditer(text):
        tokens += 1
        c = m.group(1)
        if c is None:
            if tokens > limit:
                raise RejectedFile(_too_many(cap))
            continue
        if c == "," :
            nodes += 1
        elif c == "[" or c == "{":
            depth += 1
            nodes += 1
            if depth > cap.depth:
                raise RejectedFile(f"{too_deep(cap)}, at line {text.count(chr(10), 0, m.start()) + 1}")
        else:
            depth -= 1
            if depth <= 0:
                return m.end()
        if nodes > cap.nodes or tokens > limit:
            raise RejectedFile(_too_many(cap))
    return None


# -- parsing -----------------------------------------------------------------------------

def load(fmt: str, fm: str, cap: limits.Limits = limits.RECORD) -> tuple[dict, list]:
    """TOML or JSON front matter -> (the record, its issues: (field path, raw text, problem)).
    Raises RejectedFile."""
    value = _load_toml(fm, cap) if fmt == "toml" else _load_json(fm)
    if not isinstance(value, dict):
        raise RejectedFile("front matter is not a mapping")
    if not value:
        raise RejectedFile("front matter is empty")
    issues: list = []
    if _settle(value, cap):
        value = safeyaml.settle(value, issues)
    return value, issues


def _float(text: str):
    v = float(text)
    return v if math.isfinite(v) else safeyaml.Unrepresentable(safeyaml.FLOAT, text, "not a finite number")


def _load_toml(fm: str, cap: limits.Limits) -> dict:
    # bound the parse from the text: every key, item and table has a `=`, `,` or `[`/`{`
    bare = _TOML_TEXT.sub("", fm)
    if bare.count("=") + bare.count(",") + bare.count("[") + bare.count("{") > cap.nodes:
        raise RejectedFile(_too_many(cap))
    try:
        return tomllib.loads(fm, parse_float=_float)
    except tomllib.TOMLDecodeError as e:
        text = str(e)
        m = _TOML_POS.search(text)
        where = ""
        if m:
            text = text[:m.start()]
            if m.group(1):  # the front matter starts on the file's second line
                where = f" at line {int(m.group(1)) + 1}, column {m.group(2)}"
        raise RejectedFile(f"invalid TOML{where}: {' '.join(text.split())}") from None
    except RecursionError:
        raise RejectedFile(too_deep(cap)) from None
    except ValueError as e:  # an integer of more digits than Python converts
        raise RejectedFile(f"invalid TOML: {' '.join(str(e).split())[:200]}") from None


class _NotJSON(Exception):
    pass


def _constant(name: str):
    raise _NotJSON(name)


def _int(text: str):
    if len(text) > 20 or not safeyaml.INT64_MIN <= (v := int(text)) <= safeyaml.INT64_MAX:
        return safeyaml.Unrepresentable(safeyaml.INT, text, "integer beyond 64 bits")
    return v


def _pairs(pairs: list) -> dict:
    out = dict(pairs)
    if len(out) == len(pairs):
        return out
    seen: dict = {}
    dropped = []
    for k, v in pairs:
        if k in seen:
            dropped.append((k, seen[k]))
        seen[k] = v
    dup = safeyaml.Duplicates(out)
    dup.dropped = dropped
    return dup


def _json_error(e: json.JSONDecodeError) -> str:
    return f"invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}"


def _load_json(fm: str):
    try:
        return json.loads(fm, object_pairs_hook=_pairs, parse_constant=_constant, parse_int=_int,
                          parse_float=_float)
    except json.JSONDecodeError as e:
        raise RejectedFile(_json_error(e)) from None
    except _NotJSON as e:
        raise RejectedFile(f"invalid JSON: {e} is not a JSON value (JSON numbers are finite)") from None
    except RecursionError:
        raise RejectedFile(too_deep()) from None


def _settle(root: dict, cap: limits.Limits) -> bool:
    """Count `root` against the caps, without recursion, and make its values the YAML
    path's in place: a local time becomes its text, a date-time outside the years 1-9999
    in UTC and an integer beyond 64 bits an Unrepresentable. True if it holds an
    Unrepresentable or a Duplicates (to settle)."""
    nodes = nbytes = 0
    dirty = False
    stack = [(root, 1)]
    while stack:
        container, depth = stack.pop()
        if depth > cap.depth:
            raise RejectedFile(too_deep(cap))
        nodes += 1
        if container.__class__ is safeyaml.Duplicates:
            dirty = True
        items = container.items() if isinstance(container, dict) else enumerate(container)
        for k, v in items:
            if k.__class__ is str:
                nbytes += len(k)
            c = v.__class__
            if c is dict or c is list or c is safeyaml.Duplicates:
                stack.append((v, depth + 1))
                continue
            nodes += 1
            if c is str:
                nbytes += len(v)
            elif c is int:
                if not safeyaml.INT64_MIN <= v <= safeyaml.INT64_MAX:
                    container[k] = safeyaml.Unrepresentable(safeyaml.INT, str(v), "integer beyond 64 bits")
                    dirty = True
            elif c is dt.time:
                container[k] = v.isoformat()
            elif c is dt.datetime and v.tzinfo is not None:
                try:
                    v.astimezone(_UTC)
                except OverflowError:
                    container[k] = safeyaml.Unrepresentable(safeyaml.TIMESTAMP, v.isoformat(),
                                                            "date outside the years 1-9999 in UTC")
                    dirty = True
            elif c is safeyaml.Unrepresentable:
                dirty = True
        if nodes > cap.nodes:
            raise RejectedFile(_too_many(cap))
        if nbytes > cap.expanded_bytes:
            raise RejectedFile(_too_long(cap))
    return dirty
