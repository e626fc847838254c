"""Extract: find record files, split off the front matter, parse it safely.

Nothing here knows about tables. A file either yields a mapping (the record)
and its body, or a `RejectedFile` error that names the file and the problem.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import fastyaml

SUFFIXES = (".md", ".markdown")
# A record whose aliases expand past this many nodes is an alias bomb. The real
# records have a few thousand nodes at most and no aliases at all.
MAX_EXPANDED_NODES = 100_000


class InputError(Exception):
    """An input folder that cannot be read (the run cannot start)."""


class RejectedFile(Exception):
    """A file that cannot be loaded as a record; the message says why."""


@dataclass(frozen=True)
class SourceFile:
    """One input file. `source_path` is `<input folder name>/<path inside it>`."""

    source_path: str
    path: str  # absolute path on disk
    rel_path: str  # path relative to its input root (POSIX), used for identity
    size: int
    mtime_ns: int


def _walk(root: Path):
    # os.scandir is several times cheaper than Path.rglob on large folders
    stack = [root]
    while stack:
        d = stack.pop()
        with os.scandir(d) as it:
            for e in it:
                if e.name.startswith("."):
                    continue  # .git, editor swap folders: never records
                if e.is_dir(follow_symlinks=False):
                    stack.append(Path(e.path))
                elif e.is_file() and e.name.lower().endswith(SUFFIXES):
                    yield e


def resolve_inputs(inputs) -> dict[str, Path]:
    """Input folders by name, absolute. Raises InputError for a missing or
    unreadable folder, or when two folders share a name (their source paths
    would collide)."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    inputs = list(inputs)
    if not inputs:
        raise InputError("no input folder given")
    roots: dict[str, Path] = {}
    for given in inputs:
        root = Path(given).expanduser()
        if not root.exists():
            raise InputError(f"input folder not found: {given}")
        if not root.is_dir():
            raise InputError(f"input is not a folder: {given}")
        if not os.access(root, os.R_OK | os.X_OK):
            raise InputError(f"input folder is not readable: {given}")
        root = root.resolve()
        name = root.name or "root"
        if name in roots and roots[name] != root:
            raise InputError(
                f"two input folders are both named {name!r} ({roots[name]} and {root}); "
                "source paths would collide: give folders with distinct names"
            )
        roots[name] = root
    return roots


def discover(inputs) -> list[SourceFile]:
    """Every record file under the input folders, sorted by source_path."""
    roots = resolve_inputs(inputs)
    files = []
    for name, root in roots.items():
        cut = len(os.path.join(str(root), ""))  # e.path is root + separator + the relative path
        for e in _walk(root):
            st = e.stat()
            rel = e.path[cut:]
            if os.sep != "/":
                rel = rel.replace(os.sep, "/")
            files.append(SourceFile(f"{name}/{rel}", e.path, rel, st.st_size, st.st_mtime_ns))
    files.sort(key=lambda f: f.source_path)
    return files


_OPEN = re.compile(rb"---[ \t]*(\r?\n|$)")
_BOM = b"\xef\xbb\xbf"


# A closing line: `---` or `...`, maybe spaces or tabs, then a line break or the end.
_CLOSE = re.compile(rb"\n(?:---|\.\.\.)[ \t]*+(?:\n|\r\n|\r?\Z)")


def _closing_line(data: bytes, start: int) -> tuple[int, int] | None:
    """(start, end) of the first line `---` or `...` at or after `start`, or None.

    One regex search on the bytes: it scans for newlines in C, as fast as one
    bytes.find and twice as fast as looking for each marker in turn. (UTF-8
    never uses ASCII bytes inside a multi-byte character, so this finds what
    a search of the text would.)
    """
    m = _CLOSE.search(data, start - 1)  # data[start - 1] is the newline ending the opening line
    return (m.start() + 1, m.end()) if m else None


def _decode(data: bytes, offset: int = 0) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RejectedFile(f"not UTF-8: byte 0x{data[e.start]:02x} at offset {offset + e.start} cannot be decoded") from None


def split_record(data: bytes) -> tuple[str, bytes, str]:
    """Bytes of a file -> (front matter YAML, the same as UTF-8 bytes, body). Raises RejectedFile.

    Split on the bytes, so the fast parser gets the front matter's bytes
    without encoding the text again."""
    if not data.strip():
        raise RejectedFile("empty file")
    first = 3 if data.startswith(_BOM) else 0
    m = _OPEN.match(data, first)
    close = _closing_line(data, m.end()) if m and m.group(1) else None
    if close is None:
        text = _decode(data)  # a file that is not UTF-8 says so first
        if not m:
            if "\x00" in text[:4096]:
                raise RejectedFile("binary content (NUL bytes), not a text record")
            raise RejectedFile("no front matter: the first line is not '---'")
        raise RejectedFile("front matter is not closed: no line '---' or '...' after the opening '---'")
    fm_bytes = data[m.end():close[0]]
    fm = _decode(fm_bytes, m.end())
    body = _decode(data[close[1]:], close[1])
    if "\r" in fm:
        fm = fm.replace("\r\n", "\n")
        fm_bytes = fm_bytes.replace(b"\r\n", b"\n")
    return fm, fm_bytes, body


def split_front_matter(data: bytes) -> tuple[str, str]:
    """Bytes of a file -> (front matter YAML, body). Raises RejectedFile."""
    fm, _fm_bytes, body = split_record(data)
    return fm, body


def _expanded_size(value, limit: int) -> int:
    """Nodes the value has when every alias is expanded; stops past `limit`.

    PyYAML shares aliased objects instead of copying them, so the parse itself
    is cheap; the bomb goes off in whoever walks the result. Memoised by id so
    this is linear in the distinct objects; a cycle (`&a [*a]`) counts as over.
    """
    memo: dict[int, int] = {}
    active: set[int] = set()

    def size(v) -> int:
        if not isinstance(v, (dict, list)):
            return 1
        k = id(v)
        if k in memo:
            return memo[k]
        if k in active:
            return limit + 1
        active.add(k)
        n = 1
        items = v.items() if isinstance(v, dict) else enumerate(v)
        for _, child in items:
            n += size(child)
            if n > limit:
                break
        active.discard(k)
        memo[k] = n
        return n

    return size(value)


def parse_front_matter(fm: str, fast: bool = True, utf8: bytes | None = None) -> tuple[dict, bool]:
    """YAML text -> (mapping, parsed by the fast parser). Raises RejectedFile.

    `utf8`, if given, is `fm` encoded (the fast parser reads bytes).
    Only the safe loader runs: YAML tags never construct Python objects.
    """
    value, fast, _ = _parse(fm, fast, utf8, None)
    return value, fast


def _parse(fm: str, fast: bool, utf8: bytes | None, split: str | None,
           checked: bool = False) -> tuple[dict, bool, bytes | None]:
    """parse_front_matter, and with `split` the fast parser's JSON of that key (see
    fastyaml.load_split); `checked`: fastyaml.precheck passed `utf8`."""
    part = None
    try:
        if not fast:
            value, fast = fastyaml.load_reference(fm), False
        elif split:
            value, fast, part = fastyaml.load_split(fm, utf8, split, checked)
        else:
            value, fast = fastyaml.load(fm, utf8)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" at line {mark.line + 2}, column {mark.column + 1}" if mark else ""
        problem = e.problem or e.context or "invalid YAML"
        raise RejectedFile(f"invalid YAML{where}: {problem}") from None
    except yaml.YAMLError as e:
        raise RejectedFile(f"invalid YAML: {e}") from None
    except RecursionError:
        raise RejectedFile("invalid YAML: nesting too deep") from None
    if value is None:
        raise RejectedFile("front matter is empty")
    if not isinstance(value, dict):
        raise RejectedFile(f"front matter is a {_kind(value)}, not a mapping")
    if not fast and "*" in fm and _expanded_size(value, MAX_EXPANDED_NODES) > MAX_EXPANDED_NODES:
        raise RejectedFile(
            f"alias bomb: YAML aliases expand past {MAX_EXPANDED_NODES:,} nodes (or refer to themselves)"
        )
    return value, fast, part


def _kind(v) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(v), type(v).__name__)


@dataclass
class Extracted:
    """What reading one file gives: the record (or the error) and the file's facts."""

    file: SourceFile
    sha256: str
    size: int
    record: dict | None = None
    body: str | None = None
    error: str | None = None
    fast: bool = False
    # with extract(split_related=True): rapidyaml's JSON of the `related` key, left
    # out of `record` for flatten's Arrow path; `front_matter` is kept for its fallback
    related_json: bytes | None = None
    front_matter: str | None = None


def read_bytes(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def extract(file: SourceFile, data: bytes | None = None, fast: bool = True, split_related: bool = False) -> Extracted:
    """Read and parse one file; never raises for bad content.

    `fast=False` parses with PyYAML only (the reference the fast parser is tested against).
    `split_related=True` leaves a fast-parsed `related` list as JSON (`related_json`)."""
    if data is None:
        data = read_bytes(file.path)
    return extract_all([(file, data)], fast, split_related)[0]


def extract_all(items: list[tuple[SourceFile, bytes]], fast: bool = True, split_related: bool = False) -> list[Extracted]:
    """`extract` for a batch of files already read: the fast parser's subset test
    (fastyaml.precheck) runs once over all their front matter."""
    outs, split = [], []
    for file, data in items:
        out = Extracted(file, hashlib.sha256(data).hexdigest(), len(data))
        try:
            split.append((out, *split_record(data)))
        except RejectedFile as e:
            out.error = str(e)
        outs.append(out)
    checked = fastyaml.precheck([fm_bytes for _, _, fm_bytes, _ in split]) if fast and len(split) > 1 else []
    for i, (out, fm, fm_bytes, body) in enumerate(split):
        try:
            out.record, out.fast, out.related_json = _parse(fm, fast, fm_bytes, "related" if split_related else None,
                                                            i < len(checked) and checked[i])
            if out.related_json is not None:
                out.front_matter = fm
            out.body = body
        except RejectedFile as e:
            out.error = str(e)
    return outs
