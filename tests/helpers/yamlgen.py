"""Hypothesis strategies: front matter from YAML's grammar, hostile scalars, random
bytes, mutations of real records, and file trees with odd names, links and special
files."""

from __future__ import annotations

import os
import string
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

# Scalars written as in a file, chosen where parsers and types disagree.
HOSTILE_PLAIN = [
    "2021-02-30", "2021-02-30T00:00:00Z", "2021-13-01", "2021-01-01T24:00:00Z", "2021-01-01T00:00:00+24",
    "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+01:00", "0000-01-01", "2024-02-29", "2023-02-29",
    "2021-02-12T20:25:00Z", "2021-02-12 20:25:00", "2021-2-1", "2021-02-12t20:25:00.5+01:00",
    "1180591620717411303424", "-9223372036854775809", "9223372036854775807", "18446744073709551616",
    "0x_FF", "0o17", "017", "0b101", "1:30:00", "1_000", "+1", "-0", "1" * 5000,
    ".nan", ".NaN", ".inf", "-.Inf", "1.0e+999", "-1.0e+999", "1e3", "1.5", "-0.0", "3.", ".5",
    "~", "null", "Null", "NULL", "yes", "No", "on", "OFF", "y", "n", "True", "false",
    "=", "<<", "abc", "Tom's Guide", "a#b", "é", "😀", "x]", "b, c", "-", "?", "%", "@x", "`x", "&", "*",
    "9to5Mac", "13newsnow.com", "5G", "3D printing", "2021 in review", "01net", "1:3x", "08", "00.5", "1_0.5",
    "190:20:30.15", "0b_", "0x1F", "1.", "1E5", "1.5e+3", "5#c", "1,000",
]
# the characters of numbers, and a few that end them: plain scalars led by a digit
DIGIT_LED = string.digits + "._:+-eExXbBoOaf" + "Gt ,%#"
TAGGED = [
    "!!set {b, a, c}", "!!set {1, true, 1.5, x}", "!!binary aGVsbG8=", "!!binary |\n  aGVs\n  bG8=",
    "!!omap [a: 1, b: 2]", "!!pairs [a: 1, a: 2]", "!!str 12", "!!int '12'", "!!float 1", "!!bool yes",
    "!!null ''", "!!timestamp 2021-02-30", "!foo bar", "!!python/object:os.system x", "!!map {a: 1}",
    "!!seq [1, 2]", "!<tag:yaml.org,2002:str> x", "!!set [a]", "!!binary 'not base64!'",
]
KEYS = ["title", "webUrl", "originalUrl", "publishedDateTime", "quality", "heat", "published", "topics", "images",
        "related", "provider", "name", "domain", "url", "width", "height", "isCached", "excerpt", "type",
        "a", "b", "x", "provider.x", "related[0]", "1", "true", "null", "2021-01-01", "1.0", '"1"', "'True'",
        '"!x"', "<<", "=", '"a b"', '"q\\"k"', "ключ"]
_PRINTABLE = st.characters(blacklist_categories=("Cs",))


def _double_quoted(text: str) -> str:
    out = []
    for ch in text:
        o = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif o < 0x20 or o == 0x7F or 0x80 <= o < 0xA0 or o in (0x2028, 0x2029, 0xFEFF):
            out.append(f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _single_quoted(text: str) -> str:
    return "'" + text.replace("'", "''").replace("\n", " ") + "'"


scalars = st.one_of(
    st.sampled_from(HOSTILE_PLAIN),
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(_PRINTABLE, max_size=40).map(_double_quoted),
    st.text(_PRINTABLE, max_size=40).map(_single_quoted),
    st.text(string.ascii_letters + string.digits + " -_.:/#", min_size=1, max_size=30)
      .filter(lambda t: t[0].isalpha() and not t.endswith((" ", ":")) and ": " not in t and " #" not in t),
    st.tuples(st.sampled_from(string.digits), st.text(DIGIT_LED, max_size=12)).map("".join)
      .filter(lambda t: not t.endswith((" ", ":")) and ": " not in t and " #" not in t),
)


@dataclass
class _Doc:
    """Builds a front matter text, handing out anchors as it goes."""

    anchors: list[str] = field(default_factory=list)


def _inline(node, doc: _Doc) -> str:
    kind = node[0]
    if kind == "scalar":
        return node[1]
    if kind == "tagged":
        return node[1]
    if kind == "alias":
        return f"*{doc.anchors[node[1] % len(doc.anchors)]}" if doc.anchors else "null"
    if kind == "anchor":
        name = f"a{len(doc.anchors)}"
        text = _inline(node[2], doc)
        doc.anchors.append(name)
        return f"&{name} {text}"
    if kind == "seq":
        return "[" + ", ".join(_inline(v, doc) for v in node[1]) + "]"
    return "{" + ", ".join(f"{k}: {_inline(v, doc)}" for k, v in node[1]) + "}"


def _block(node, indent: int, doc: _Doc, out: list[str], prefix: str) -> None:
    """`prefix` is `key:` or `-` at `indent`; the node goes after it or below it."""
    pad = " " * indent
    kind = node[0]
    if kind in ("map", "seq") and node[1] and node[2]:  # block style
        out.append(f"{pad}{prefix}")
        step = indent + 2
        if kind == "map":
            for k, v in node[1]:
                _block(v, step, doc, out, f"{k}:")
        else:
            for v in node[1]:
                _block(v, step, doc, out, "-")
        return
    text = _inline(node, doc)
    if "\n" in text:  # a block scalar or a multi-line tag body
        first, rest = text.split("\n", 1)
        out.append(f"{pad}{prefix} {first}")
        out.extend(pad + "  " + line for line in rest.split("\n"))
    else:
        out.append(f"{pad}{prefix} {text}")


def _nodes(leaves):
    return st.recursive(
        leaves,
        lambda kids: st.one_of(
            st.tuples(st.just("seq"), st.lists(kids, max_size=4), st.booleans()),
            st.tuples(st.just("map"), st.lists(st.tuples(st.sampled_from(KEYS), kids), max_size=4), st.booleans()),
            st.tuples(st.just("anchor"), st.just(None), kids),
        ),
        max_leaves=25,
    )


leaves = st.one_of(
    st.tuples(st.just("scalar"), scalars),
    st.tuples(st.just("tagged"), st.sampled_from(TAGGED)),
    st.tuples(st.just("alias"), st.integers(0, 5)),
)


@st.composite
def front_matter(draw) -> str:
    """A front matter text: a mapping of known and other keys, with hostile values,
    anchors, aliases, tags, flow and block collections, keys given twice, deep
    nesting; sometimes mutated line by line."""
    doc = _Doc()
    top = draw(st.lists(st.tuples(st.sampled_from(KEYS), _nodes(leaves)), max_size=8))
    out: list[str] = []
    for k, v in top:
        _block(v, 0, doc, out, f"{k}:")
    if draw(st.booleans()):  # a related list shaped like the real ones
        out.append("related:")
        for i in range(draw(st.integers(0, 3))):
            out.append(f"  - webUrl: https://r.example/{i}")
            for k, v in draw(st.lists(st.tuples(st.sampled_from(KEYS), _nodes(leaves)), max_size=3)):
                _block(v, 4, doc, out, f"{k}:")
    if draw(st.integers(0, 9)) == 0:  # deep nesting, around the cap
        depth = draw(st.sampled_from([99, 100, 101, 300, 999, 1001]))
        out.append("deep: " + "[" * depth + "]" * depth)
    for _ in range(draw(st.integers(0, 2))):  # line mutations: duplicate, drop, shift
        if not out:
            break
        i = draw(st.integers(0, len(out) - 1))
        op = draw(st.sampled_from(["dup", "drop", "shift", "char"]))
        if op == "dup":
            out.insert(i, out[i])
        elif op == "drop":
            del out[i]
        elif op == "shift":
            out[i] = " " + out[i]
        else:
            pos = draw(st.integers(0, len(out[i])))
            out[i] = out[i][:pos] + draw(st.sampled_from(list(":-[]{}&*!|>'\"#%@`,?\t\x00\x85\u2028\ufeff"))) + out[i][pos:]
    return "\n".join(out) + "\n"


def as_file(fm: str, title: str = "t") -> bytes:
    return f"---\n{fm}---\nbody {title}\n".encode("utf-8", "surrogatepass")


random_bytes = st.binary(max_size=400).map(lambda b: b"---\n" + b + b"\n---\n")
# TOML and JSON front matter (frontmatter_formats): random bytes, and text made of their syntax
_TOML_BITS = ['+++', '\n', '\r\n', '=', '"', "'", '"""', '[', ']', '[[', ']]', '{', '}', ',', '.', '#', 'a', 'title',
              '1', '-', ':', 'T', 'Z', '2021-02-30', '2024-01-02T03:04:05+02:00', '12:30:00', 'nan', 'inf', 'true',
              '0x', '\\', '\ufeff', '\x00', 'é', ' ']
_JSON_BITS = ['{', '}', '[', ']', ',', ':', '"', '\\', '"a"', '"title"', '1', '-', '1e400', 'NaN', '-Infinity',
              'true', 'null', '\n', '\r\n', ' ', '\x00', 'é', '99999999999999999999']
random_toml = st.one_of(
    st.binary(max_size=400).map(lambda b: b"+++\n" + b + b"\n+++\n"),
    st.lists(st.sampled_from(_TOML_BITS), max_size=60).map(lambda p: ("+++\n" + "".join(p) + "\n+++\nbody\n").encode()),
)
random_json = st.one_of(
    st.binary(max_size=400).map(lambda b: b"{" + b),
    st.lists(st.sampled_from(_JSON_BITS), max_size=60).map(lambda p: ("{" + "".join(p) + "\nbody\n").encode()),
)


@st.composite
def mutated(draw, data: bytes) -> bytes:
    """`data` with a few random byte edits: replace, insert, delete, truncate."""
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        if not buf:
            break
        i = draw(st.integers(0, len(buf) - 1))
        op = draw(st.sampled_from(["replace", "insert", "delete", "truncate"]))
        b = draw(st.sampled_from([0, 9, 10, 13, 32, 34, 35, 38, 39, 42, 45, 58, 91, 93, 123, 125, 0x80, 0xC3, 0xFF]))
        if op == "replace":
            buf[i] = b
        elif op == "insert":
            buf.insert(i, b)
        elif op == "delete":
            del buf[i]
        else:
            del buf[i:]
    return bytes(buf)


# -- file trees ---------------------------------------------------------------------------------

name_chars = st.sampled_from(list("abcxyz019 -_.[]?*'\"{}é日") + ["\\"])
names = st.text(name_chars, min_size=1, max_size=8).filter(lambda n: n not in (".", "..") and "/" not in n)
raw_names = st.one_of(names.map(os.fsencode), st.binary(min_size=1, max_size=6).filter(
    lambda b: b"/" not in b and b"\x00" not in b and b not in (b".", b"..")))


@st.composite
def file_tree(draw) -> list[tuple[str, bytes, object]]:
    """Entries to create, in order: (kind, relative path as bytes, detail)."""
    entries: list[tuple[str, bytes, object]] = []
    dirs = [b""]
    for _ in range(draw(st.integers(1, 10))):
        parent = draw(st.sampled_from(dirs))
        base = draw(raw_names)
        kind = draw(st.sampled_from(["record", "record", "record", "other", "dir", "link", "fifo"]))
        suffix = b"" if kind in ("dir", "other") else draw(st.sampled_from([b".md", b".markdown", b".MD"]))
        rel = (parent + b"/" if parent else b"") + base + suffix
        if kind == "dir":
            dirs.append(rel)
        detail = None
        if kind == "record":
            detail = draw(st.one_of(front_matter().map(as_file), random_bytes))
        elif kind == "link":
            detail = draw(st.sampled_from([b"self", b"..", b"/", b"dangling.md", b"../../outside.md", b"sibling"]))
        entries.append((kind, rel, detail))
    return entries


def build_tree(root: Path, entries, sibling: bytes = b"") -> None:
    broot = os.fsencode(root)
    for kind, rel, detail in entries:
        path = os.path.join(broot, rel)
        if os.path.lexists(path):
            continue
        try:
            if kind == "dir":
                os.makedirs(path, exist_ok=True)
            elif kind in ("record", "other"):
                with open(path, "wb") as fh:
                    fh.write(detail if kind == "record" else b"not a record")
            elif kind == "fifo":
                os.mkfifo(path)
            elif kind == "link":
                target = {b"self": os.path.basename(path), b"sibling": sibling or b"x.md"}.get(detail, detail)
                os.symlink(target, path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            pass  # a parent that is a file or a FIFO: Hypothesis drew an impossible tree
