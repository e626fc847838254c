"""General YAML with bounded resources: PyYAML's meaning, built from libyaml's events.

`yaml.load(text, Loader=CSafeLoader)` builds a node graph of the whole text
(with two position marks per node) and then the Python values: a 30 MB record
takes 900 MB, a nesting of a few hundred levels breaks whoever walks the result,
and aliases can make a 1 MB file expand to gigabytes in whoever serialises it.
This module reads the same libyaml event stream and builds the values directly,
with an explicit stack (no recursion), counting as it goes. It stops, with
`YAMLLimit`, as soon as a record goes past a cap in `limits`: nodes and bytes
with every alias expanded, and nesting depth.

Meaning: tags are resolved by PyYAML's own `Resolver` and scalars are built by
PyYAML's `SafeConstructor`, so a value is exactly what the safe loader gives,
except where the safe loader's value cannot go into the warehouse, which is
written down here once:

- an integer beyond 64 bits, a float that is NaN or infinite, a timestamp that
  is not a calendar date (2021-02-30, hour 24) or whose UTC value leaves the
  years 1-9999: an `Unrepresentable(tag, raw text, problem)` in its place
  (flatten turns it into NULL and a data issue keeping the raw text);
- `!!set`: a list of its members, sorted by their text (`sort_key`);
- `!!binary`: its base64 text, white space removed (not decoded);
- `!!omap` and `!!pairs`: a list of [key, value] lists;
- a key given twice in one mapping: the last value wins, as in PyYAML, and the
  mapping is a `Duplicates` (a dict) listing the dropped values;
- a boolean or float key is a `Key` (Python would take `1`, `1.0` and `true`
  for one key: YAML has three);
- merge keys (`<<`) follow the YAML 1.1 merge spec: explicit keys win over
  merged ones, and an earlier mapping in a merge list wins over a later one;
- an alias to the node that contains it (`&a [*a]`) is refused: a cycle.

Everything else that PyYAML refuses is refused here with PyYAML's message and
position (`YAMLProblem`).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import NamedTuple

import yaml
import yaml.constructor
import yaml.events as E
import yaml.nodes
import yaml.resolver

from . import limits
from .clean import item_path, json_key, key_path, raw_text

try:
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - PyYAML without libyaml: the pure parser, slower
    from yaml.parser import Parser as _PyParser
    from yaml.reader import Reader as _Reader
    from yaml.scanner import Scanner as _Scanner

    class _Parser(_Reader, _Scanner, _PyParser):  # type: ignore[no-redef]
        def __init__(self, stream):
            _Reader.__init__(self, stream)
            _Scanner.__init__(self)
            _PyParser.__init__(self)

__all__ = ["Duplicates", "Key", "Unrepresentable", "YAMLLimit", "YAMLProblem", "load", "load_record", "settle", "sort_key"]

_T = "tag:yaml.org,2002:"
STR, NULL, BOOL, INT, FLOAT, TIMESTAMP, BINARY = (_T + t for t in ("str", "null", "bool", "int", "float",
                                                                    "timestamp", "binary"))
SEQ, MAP, SET, OMAP, PAIRS, MERGE, VALUE = (_T + t for t in ("seq", "map", "set", "omap", "pairs", "merge", "value"))
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_UTC = dt.timezone.utc


class Unrepresentable(NamedTuple):
    """A scalar whose value the warehouse cannot hold: its tag, its text as written, why."""

    tag: str
    raw: str
    problem: str


class Key(NamedTuple):
    """A mapping key of a type Python would confuse with another (True == 1 == 1.0)."""

    tag: str
    value: object


def _key(value):
    c = value.__class__
    return Key(BOOL if c is bool else FLOAT, value) if c is bool or c is float else value


def _unkey(value):
    return value.value if value.__class__ is Key else value


class Duplicates(dict):
    """A mapping in which some key was given more than once; `dropped` holds
    (key, value) of every value that a later one replaced."""

    __slots__ = ("dropped",)

    def __init__(self, *args):
        super().__init__(*args)
        self.dropped: list[tuple[object, object]] = []


class YAMLProblem(yaml.YAMLError):
    """Text that is not YAML the safe loader accepts. `line` and `column` are
    0-based in the text, or None."""

    def __init__(self, problem: str, line: int | None = None, column: int | None = None):
        super().__init__(problem)
        self.problem, self.line, self.column = problem, line, column


class YAMLLimit(YAMLProblem):
    """A record past one of the caps in `limits`."""


_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_SCALAR_NODE = yaml.nodes.ScalarNode
_SCALARS = {tag: fn for tag, fn in yaml.constructor.SafeConstructor.yaml_constructors.items()
            if tag in (NULL, BOOL, INT, FLOAT, TIMESTAMP, STR)}


def _scalar(tag: str, value: str, mark):
    """The value of a resolved scalar (PyYAML's), or an Unrepresentable."""
    if tag == STR:
        return value
    if tag == BINARY:
        return "".join(value.split())
    fn = _SCALARS.get(tag)
    if fn is None:
        raise _problem(f"could not determine a constructor for the tag {tag!r}", mark)
    node = _SCALAR_NODE(tag, value)
    try:
        out = fn(_CONSTRUCTOR, node)
    except yaml.MarkedYAMLError as e:
        raise _problem(e.problem or str(e), mark) from None
    except (ValueError, OverflowError) as e:  # a date that does not exist; an int of too many digits
        return Unrepresentable(tag, value, f"{'not a valid date' if tag == TIMESTAMP else 'not a number'}: {e}")
    except Exception:  # noqa: BLE001 - an explicit tag on text it does not fit (`!!bool maybe`): PyYAML raises anything
        return Unrepresentable(tag, value, f"not a valid {tag[len(_T):]}")
    t = type(out)
    if t is int:
        if not INT64_MIN <= out <= INT64_MAX:
            return Unrepresentable(tag, value, "integer beyond 64 bits")
    elif t is float:
        if not math.isfinite(out):
            return Unrepresentable(tag, value, "not a finite number")
    elif t is dt.datetime and out.tzinfo is not None:
        try:
            out.astimezone(_UTC)
        except OverflowError:
            return Unrepresentable(tag, value, "date outside the years 1-9999 in UTC")
    return out


def sort_key(value) -> str:
    """How a set's members are ordered: by their text, types apart."""
    return json_key(value)


def _problem(text: str, mark) -> YAMLProblem:
    return YAMLProblem(text, getattr(mark, "line", None), getattr(mark, "column", None))


def _limit(text: str, mark) -> YAMLLimit:
    return YAMLLimit(text, getattr(mark, "line", None), getattr(mark, "column", None))


class _Frame:
    """A collection being built: its children so far and their expanded size."""

    __slots__ = ("kind", "tag", "anchor", "mark", "items", "key", "has_key", "merge_next", "merges",
                 "nodes", "nbytes", "height", "duplicates")

    def __init__(self, kind: str, tag: str, anchor, mark):
        self.kind, self.tag, self.anchor, self.mark = kind, tag, anchor, mark
        self.items: list = []  # a sequence's values; a mapping's (key, value) pairs
        self.key = None
        self.has_key = False
        self.merge_next = False  # the value being read is a merge source
        self.merges: list = []  # merge sources, in order
        self.nodes, self.nbytes, self.height = 1, 0, 1
        self.duplicates: list | None = None


def load(text: str, cap: limits.Limits = limits.RECORD):
    """The value of a one-document YAML text (None for an empty one), with
    Unrepresentable and Duplicates where the module docstring says.

    Raises YAMLProblem for text the safe loader refuses, YAMLLimit past a cap."""
    return _load(text, cap)[0]


def load_record(text: str, cap: limits.Limits = limits.RECORD) -> tuple[object, list[tuple[str, str, str]]]:
    """`load`, then `settle`: (a value the warehouse can hold, its issues)."""
    value, dirty = _load(text, cap)
    issues: list = []
    return (settle(value, issues) if dirty else value), issues


def settle(value, issues: list, path: str = ""):
    """`value` with every Unrepresentable made None and every Duplicates a dict,
    each noted in `issues` as (field path, raw text, problem)."""
    c = value.__class__
    if c is Unrepresentable:
        issues.append((path, value.raw, value.problem))
        return None
    if c is list:
        return [settle(v, issues, item_path(path, i)) for i, v in enumerate(value)]
    if c is dict or c is Duplicates:
        out = {}
        for k, v in value.items():
            p = key_path(path, k)
            if k.__class__ is Unrepresentable:
                issues.append((p, k.raw, f"key: {k.problem}"))
            out[k] = settle(v, issues, p)
        if c is Duplicates:
            for k, v in value.dropped:
                issues.append((key_path(path, k), raw_text(settle(v, [], path)),
                               "duplicate key: this value is dropped, a later one is kept"))
        return out
    return value


def _load(text: str, cap: limits.Limits) -> tuple[object, bool]:
    """(the value, whether it holds an Unrepresentable or a Duplicates)."""
    parser = _Parser(text)
    dirty = False
    anchors: dict[str, tuple[object, int, int, int]] = {}  # name -> (value, nodes, bytes, height)
    open_anchors: set[str] = set()
    stack: list[_Frame] = []
    total_nodes = total_bytes = 0
    documents = 0
    root = None
    try:
        while True:
            event = parser.get_event()
            cls = event.__class__
            if cls is E.ScalarEvent or cls is E.AliasEvent:
                is_key = bool(stack) and stack[-1].kind == "map" and not stack[-1].has_key
                if cls is E.ScalarEvent:
                    tag = event.tag
                    if tag is None or tag == "!":
                        tag = _RESOLVER.resolve(_SCALAR_NODE, event.value, event.implicit)
                    if tag in (SEQ, MAP, SET, OMAP, PAIRS):
                        raise _problem(f"expected a {'mapping' if tag in (MAP, SET) else 'sequence'} node, "
                                       "but found scalar", event.start_mark)
                    if tag == MERGE and is_key:
                        value = _MERGE_KEY  # a merge key: never constructed
                    elif tag == VALUE and is_key:
                        value = event.value  # `=` as a key is the string "=" (PyYAML)
                    else:
                        value = _scalar(tag, event.value, event.start_mark)
                        if value.__class__ is Unrepresentable:
                            dirty = True
                    nodes, nbytes, height = 1, len(event.value), 0  # depth counts lists and mappings
                    if event.anchor is not None:
                        if event.anchor in open_anchors:
                            raise _problem(f"found duplicate anchor {event.anchor!r}", event.start_mark)
                        _define(anchors, event.anchor, (value, nodes, nbytes, height), event.start_mark)
                else:
                    name = event.anchor
                    if name in open_anchors:
                        raise _problem(f"the alias *{name} refers to a node that contains it (a cycle)",
                                       event.start_mark)
                    if name not in anchors:
                        raise _problem(f"found undefined alias {name!r}", event.start_mark)
                    value, nodes, nbytes, height = anchors[name]
                if is_key:  # a mapping entry counts once, as its value (as rapidyaml counts)
                    nodes = 0
                total_nodes += nodes
                total_bytes += nbytes
                _check(total_nodes, total_bytes, len(stack) + height, cap, event.start_mark, cls is E.AliasEvent)
                if not stack:
                    root = value
                else:
                    _add(stack[-1], value, nodes, nbytes, height, event.start_mark)
            elif cls is E.SequenceStartEvent or cls is E.MappingStartEvent:
                kind = "seq" if cls is E.SequenceStartEvent else "map"
                tag = event.tag
                if tag is None or tag == "!":
                    tag = SEQ if kind == "seq" else MAP
                frame = _Frame(kind, tag, event.anchor, event.start_mark)
                if event.anchor is not None:
                    if event.anchor in anchors or event.anchor in open_anchors:
                        raise _problem(f"found duplicate anchor {event.anchor!r}", event.start_mark)
                    open_anchors.add(event.anchor)
                stack.append(frame)
                total_nodes += 1
                _check(total_nodes, total_bytes, len(stack), cap, event.start_mark)
            elif cls is E.SequenceEndEvent or cls is E.MappingEndEvent:
                frame = stack.pop()
                value = _finish(frame)
                if value.__class__ is Duplicates:
                    dirty = True
                if frame.anchor is not None:
                    open_anchors.discard(frame.anchor)
                    anchors[frame.anchor] = (value, frame.nodes, frame.nbytes, frame.height)
                if not stack:
                    root = value
                else:
                    _add(stack[-1], value, frame.nodes, frame.nbytes, frame.height, frame.mark)
            elif cls is E.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _problem("expected a single document in the stream, but found another document",
                                   event.start_mark)
                anchors.clear()
            elif cls is E.StreamEndEvent:
                return root, dirty
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = e.problem or e.context or "invalid YAML"
        if e.context and e.problem:
            problem = f"{e.problem} ({e.context})"
        raise _problem(problem, mark) from None
    except yaml.reader.ReaderError as e:
        # libyaml counts the position in bytes of the UTF-8 text
        before = text.encode("utf-8", "surrogatepass")[:e.position].decode("utf-8", "replace")
        line = before.count("\n")
        column = len(before) - (before.rfind("\n") + 1)
        if isinstance(e.character, int):
            problem = f"unacceptable character #x{e.character:04x}: {e.reason}"
        else:
            problem = f"cannot decode: {e.reason}"
        raise YAMLProblem(problem, line, column) from None
    finally:
        if hasattr(parser, "dispose"):
            parser.dispose()


_MERGE_KEY = object()


def _define(anchors: dict, name: str, entry: tuple, mark) -> None:
    if name in anchors:
        raise _problem(f"found duplicate anchor {name!r}", mark)
    anchors[name] = entry


def _check(nodes: int, nbytes: int, depth: int, cap: limits.Limits, mark, alias: bool = False) -> None:
    what = "alias bomb: with its aliases expanded, the record has" if alias else "record too large:"
    if nodes > cap.nodes:
        raise _limit(f"{what} more than {cap.nodes:,} keys and items (the cap per record)", mark)
    if nbytes > cap.expanded_bytes:
        raise _limit(f"{what} more than {cap.expanded_bytes:,} characters of text (the cap per record)", mark)
    if depth > cap.depth:
        raise _limit(f"nesting deeper than {cap.depth} levels (the cap per record)", mark)


def _add(frame: _Frame, value, nodes: int, nbytes: int, height: int, mark) -> None:
    frame.nodes += nodes
    frame.nbytes += nbytes
    if height + 1 > frame.height:
        frame.height = height + 1
    if frame.kind == "seq":
        frame.items.append(value)
        return
    if not frame.has_key:
        if value.__class__ in (list, dict, Duplicates):
            raise _problem("found unhashable key (while constructing a mapping)", mark)
        frame.key, frame.has_key = _key(value), True
        return
    key = frame.key
    frame.key, frame.has_key = None, False
    if key is _MERGE_KEY:
        if value.__class__ in (dict, Duplicates):
            frame.merges.append(value)
        elif value.__class__ is list and all(v.__class__ in (dict, Duplicates) for v in value):
            frame.merges.extend(value)
        else:
            raise _problem("expected a mapping or list of mappings for merging (while constructing a mapping)",
                           mark)
        return
    frame.items.append((key, value))


def _finish(frame: _Frame):
    tag = frame.tag
    if frame.kind == "seq":
        if tag == SEQ:
            return frame.items
        if tag in (OMAP, PAIRS):
            out = []
            for item in frame.items:
                if item.__class__ not in (dict, Duplicates) or len(item) != 1:
                    raise _problem(f"expected a mapping of length 1 in !!{tag[len(_T):]}", frame.mark)
                key, value = next(iter(item.items()))
                out.append([_unkey(key), value])
            return out
        raise _problem(_no_constructor(tag, "sequence"), frame.mark)
    if tag not in (MAP, SET):
        raise _problem(_no_constructor(tag, "mapping"), frame.mark)
    out: dict = {}
    for source in reversed(frame.merges):  # earlier sources win: applied last
        out.update(source)
    seen: set = set()
    dropped = None
    for key, value in frame.items:
        if key in seen:
            if dropped is None:
                dropped = []
            dropped.append((key, out[key]))
        seen.add(key)
        out[key] = value
    if tag == SET:
        return sorted(map(_unkey, out), key=sort_key)
    if dropped:
        dup = Duplicates(out)
        dup.dropped = dropped
        return dup
    return out


def _no_constructor(tag: str, kind: str) -> str:
    if tag.startswith(_T) and tag[len(_T):] in ("str", "int", "float", "bool", "null", "timestamp", "binary"):
        return f"expected a scalar node, but found {kind}"
    return f"could not determine a constructor for the tag {tag!r}"
