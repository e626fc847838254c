"""Front matter: split a file into its front matter and body, and parse it safely.

Front matter is YAML between `---` lines, TOML between `+++` lines (the
standard library's tomllib) or a JSON object that starts the file (`{ ... }`),
as Hugo writes them. TOML and JSON files are parsed one at a time by
`frontmatter_formats`, into the values YAML would give, within the same caps;
YAML files alone go to the batch below. Nothing here knows about tables. A
file either yields a mapping (the record) and its body, or an error in one line
that names the problem (with line and column of the file for YAML, TOML and
JSON errors): whatever happens to one file stays with that file. The fast parser (fastyaml) takes the records it can vouch for;
safeyaml, with PyYAML's meaning and bounded resources, takes the rest.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from . import fastyaml, frontmatter_formats, safeyaml
from .frontmatter_formats import NO_FRONT_MATTER
from .sources import RejectedFile, SourceFile, read_error, read_file, rejected_size, unexpected

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
    if not data or data.isspace():  # data.strip() would copy the whole file to say so
        raise RejectedFile("empty file")
    first = 3 if data.startswith(_BOM) else 0
    m = _OPEN.match(data, first)
    close = _closing_line(data, m.end()) if m and m.group(1) else None
    if close is None:
        text = _decode(data)  # a file that is not UTF-8 says so first
        if not m:
            if "\x00" in text[:4096]:
                raise RejectedFile("binary content (NUL bytes), not a text record")
            raise RejectedFile(NO_FRONT_MATTER)
        raise RejectedFile("front matter is not closed: no line '---' or '...' after the opening '---'")
    fm_bytes = data[m.end():close[0]]
    fm = _decode(fm_bytes, m.end())
    body = _decode(data[close[1]:], close[1])
    if "\r" in fm:
        fm = fm.replace("\r\n", "\n")
        fm_bytes = fm_bytes.replace(b"\r\n", b"\n")
    return fm, fm_bytes, body


def split_any(data: bytes) -> tuple[str, str, bytes | None, str]:
    """Bytes of a file -> (format, front matter text, its UTF-8 bytes or None, body). Raises RejectedFile.

    `format` is "yaml", "toml" or "json". A YAML file costs two `startswith` more
    than split_record."""
    first = 3 if data.startswith(_BOM) else 0
    if data.startswith(b"+++", first):
        fm, body = frontmatter_formats.split_toml(_decode(data[first:], first))
        return "toml", fm, None, body
    if data.startswith(b"{", first):
        fm, body = frontmatter_formats.split_json(_decode(data[first:], first))
        return "json", fm, None, body
    return ("yaml", *split_record(data))


def split_front_matter(data: bytes) -> tuple[str, str]:
    """Bytes of a file -> (front matter YAML, body). Raises RejectedFile."""
    fm, _fm_bytes, body = split_record(data)
    return fm, body


def parse_front_matter(fm: str, fast: bool = True, utf8: bytes | None = None) -> tuple[dict, bool]:
    """YAML text -> (mapping, parsed by the fast parser). Raises RejectedFile.

    `utf8`, if given, is `fm` encoded (the fast parser reads bytes).
    Only the safe loader runs: YAML tags never construct Python objects.
    """
    value, fast, _, _ = _parse(fm, fast, utf8, None)
    return value, fast


def _parse(fm: str, fast: bool, utf8: bytes | None, split: str | None,
           checked: bool = False) -> tuple[dict, bool, bytes | None, list]:
    """parse_front_matter, and with `split` the fast parser's JSON of that key (see
    fastyaml.load_split); `checked`: fastyaml.precheck passed `utf8`. Also returns
    the issues of values the warehouse cannot hold (safeyaml.settle)."""
    part, issues = None, []
    try:
        value = None
        if fast:
            try:
                if split:
                    value, part = fastyaml.load_fast_split(fm, utf8, split, checked)
                else:
                    value = fastyaml.load_fast(fm, utf8, checked)
            except fastyaml.NeedsFallback:
                fast = False
        if not fast:
            value, issues = safeyaml.load_record(fm)
    except safeyaml.YAMLProblem as e:
        where = f" at line {e.line + 2}, column {e.column + 1}" if e.line is not None else ""
        text = " ".join(e.problem.split())
        if isinstance(e, safeyaml.YAMLLimit):
            raise RejectedFile(f"{text}{where.replace(' at', ', at', 1) if where else ''}") from None
        raise RejectedFile(f"invalid YAML{where}: {text}") from None
    if value is None:
        raise RejectedFile("front matter is empty")
    if not isinstance(value, dict):
        raise RejectedFile(f"front matter is a {_value_kind(value)}, not a mapping")
    return value, fast, part, issues


def _value_kind(v) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(v), type(v).__name__)


@dataclass
class Extracted:
    """What reading one file gives: the record (or the error) and the file's facts."""

    file: SourceFile
    sha256: str | None  # None: never read (rejected before its bytes were)
    size: int | None  # None: not known (not a file)
    record: dict | None = None
    body: str | None = None
    error: str | None = None
    fast: bool = False
    # with extract(split_related=True): rapidyaml's JSON of the `related` key, left
    # out of `record` for flatten's Arrow path; `front_matter` is kept for its fallback
    related_json: bytes | None = None
    front_matter: str | None = None
    # (field path, raw text, problem) of values the warehouse cannot hold as written
    issues: list = None  # type: ignore[assignment]
    format: str | None = None  # of the front matter: "yaml", "toml" or "json"; None: not split

    def __post_init__(self):
        if self.issues is None:
            self.issues = []


def extract(file: SourceFile, data: bytes | None = None, fast: bool = True, split_related: bool = False) -> Extracted:
    """Read and parse one file; never raises for bad content.

    `fast=False` parses with safeyaml only (PyYAML's meaning: the reference the fast
    parser is tested against). `split_related=True` leaves a fast-parsed `related`
    list as JSON (`related_json`)."""
    if data is None:
        try:
            data = read_file(file)
        except Exception as e:  # noqa: BLE001 - one file must never stop its batch
            return Extracted(file, None, rejected_size(file, e), error=read_error(e))
    return extract_all([(file, data)], fast, split_related)[0]


def extract_all(items: list[tuple], fast: bool = True, split_related: bool = False) -> list[Extracted]:
    """`extract` for a batch of files already read, each `(file, bytes)` or `(file, bytes,
    its sha256 or None)`: the fast parser's subset test (fastyaml.precheck) runs once over
    all their front matter. Whatever goes wrong with one file becomes that file's error."""
    outs, split = [], []
    for file, data, *known in items:
        sha = known[0] if known and known[0] is not None else hashlib.sha256(data).hexdigest()
        out = Extracted(file, sha, len(data))
        try:
            out.format, fm, fm_bytes, body = split_any(data)
            if out.format == "yaml":
                split.append((out, fm, fm_bytes, body))
            else:  # TOML and JSON: parsed here, one file at a time, never by the YAML parsers
                out.record, out.issues = frontmatter_formats.load(out.format, fm)
                out.body = body
        except RejectedFile as e:
            out.error = str(e)
        except RecursionError:
            out.error = frontmatter_formats.too_deep()
        except Exception as e:  # noqa: BLE001 - one file must never stop its batch
            out.error = unexpected("split", e)
        outs.append(out)
    try:
        # even for one text: RE2 compiles its pattern in 4 ms, Python's regex (_doc) in 0.15-0.2 s
        checked = fastyaml.precheck([fm_bytes for _, _, fm_bytes, _ in split]) if fast and split else []
    except Exception:  # noqa: BLE001 - the batch test only saves time: each text is tested alone instead
        checked = []
    for i, (out, fm, fm_bytes, body) in enumerate(split):
        try:
            out.record, out.fast, out.related_json, out.issues = _parse(
                fm, fast, fm_bytes, "related" if split_related else None, i < len(checked) and checked[i])
            if out.related_json is not None:
                out.front_matter = fm
            out.body = body
        except RejectedFile as e:
            out.error = str(e)
        except RecursionError:
            out.error = "invalid YAML: nesting too deep"
        except Exception as e:  # noqa: BLE001 - one file must never stop its batch
            out.error = unexpected("parse", e)
    return outs
