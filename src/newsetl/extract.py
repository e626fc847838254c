"""Extract: find record files, split off the front matter, parse it safely.

Nothing here knows about tables. A file either yields a mapping (the record)
and its body, or an error in one line that names the problem: whatever happens
while one file is listed, read, split or parsed stays with that file.

Listing rules (the README says them to users):
- every `*.md` / `*.markdown` under an input folder; hidden entries (`.git`) are skipped;
- a symbolic link, to a file or a folder alike, is followed when its target lies
  inside the same input folder, and listed as not read otherwise (outside,
  dangling, or a loop); a folder reached twice is read once;
- an entry with a record's name that is not a regular file (a FIFO, a socket, a
  device), and a folder that cannot be listed, are listed as not read;
- a name that is not valid UTF-8 is written in `source_path` with each
  undecodable byte as `\\xHH` and each backslash doubled (`display_name`), which
  `os_name` reverses.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from . import fastyaml, limits, safeyaml

SUFFIXES = (".md", ".markdown")


class InputError(Exception):
    """An input folder that cannot be read (the run cannot start)."""


class RejectedFile(Exception):
    """A file that cannot be loaded as a record; the message says why."""


@dataclass(frozen=True)
class SourceFile:
    """One input entry. `source_path` is `<input folder name>/<path inside it>`
    (a folder's ends with `/`), in `display_name` form."""

    source_path: str
    path: str  # absolute path on disk (the link's target for a followed link)
    rel_path: str  # path relative to its input root (POSIX), used for identity
    size: int
    mtime_ns: int
    problem: str | None = None  # why this entry cannot be read as a file: listed, never read


_SURROGATE = re.compile("[\udc80-\udcff]")


def display_name(name: str) -> str:
    """A path from the OS as text that UTF-8 can hold: undecodable bytes (which Python
    keeps as surrogates) as `\\xHH`, backslashes doubled. Reversible: see `os_name`."""
    if name.isascii() and "\\" not in name:
        return name
    return _SURROGATE.sub(lambda m: f"\\x{ord(m.group()) - 0xDC00:02x}", name.replace("\\", "\\\\"))


def os_name(text: str) -> str:
    """The inverse of `display_name`."""
    return re.sub(r"\\(\\|x([0-9a-f]{2}))",
                  lambda m: "\\" if m.group(1) == "\\" else chr(0xDC00 + int(m.group(2), 16)), text)


_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _is_record(name: str) -> bool:
    return name.lower().endswith(SUFFIXES)


def _walk(root: str):
    """(relative path, OS path to read, stat result or None, problem or None) of every
    record entry under `root` (a resolved folder), by the listing rules above."""
    # os.scandir is several times cheaper than Path.rglob on large folders
    seen: set[tuple[int, int]] = set()
    inside = os.path.join(root, "")
    stack = [(root, "")]
    linked: list[tuple[str, str]] = []  # folders reached by a link: after the real ones, so a folder keeps its own path
    while stack or linked:
        d, rel_dir = stack.pop() if stack else linked.pop()
        try:
            st = os.stat(d)
        except OSError:
            st = None
        if st is not None:
            if (st.st_dev, st.st_ino) in seen:
                continue  # a folder reached twice is read once
            seen.add((st.st_dev, st.st_ino))
        try:
            with os.scandir(d) as it:
                entries = list(it)
        except OSError as e:
            yield rel_dir, d, None, f"cannot list folder: {e.strerror or e}"
            continue
        for e in entries:
            if e.name.startswith("."):
                continue  # .git, editor swap folders: never records
            rel = rel_dir + e.name
            try:
                if e.is_symlink():
                    try:
                        target = os.path.realpath(e.path, strict=True)
                    except OSError as err:
                        if _is_record(e.name):
                            why = "a loop" if err.errno == errno.ELOOP else "dangling"
                            yield rel, e.path, None, f"symbolic link not followed: {why}"
                        continue
                    if not (target + os.sep).startswith(inside):
                        yield rel + ("/" if os.path.isdir(target) else ""), e.path, None, \
                            "symbolic link not followed: its target is outside the input folder"
                        continue
                    st = os.stat(target)
                    path = target
                else:
                    st = e.stat(follow_symlinks=False)
                    path = e.path
                if stat.S_ISDIR(st.st_mode):
                    (linked if path is not e.path else stack).append((path, rel + "/"))
                elif _is_record(e.name):
                    problem = None if stat.S_ISREG(st.st_mode) else f"not a regular file: {_kind(st.st_mode)}"
                    yield rel, path, st, problem
            except FileNotFoundError:
                continue  # gone since the folder was listed: not an input any more
            except OSError as err:
                if _is_record(e.name):
                    yield rel, e.path, None, f"cannot read file: {err.strerror or err}"


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
    """Every record entry under the input folders, sorted by source_path: files to
    read, and the entries that cannot be read as files, with their problem."""
    roots = resolve_inputs(inputs)
    files = []
    for name, root in roots.items():
        name = display_name(name)
        for rel, path, st, problem in _walk(str(root)):
            if os.sep != "/":
                rel = rel.replace(os.sep, "/")
            rel = display_name(rel)
            size, mtime = (st.st_size, st.st_mtime_ns) if st is not None and problem is None else (0, 0)
            files.append(SourceFile(f"{name}/{rel}", path, rel, size, mtime, problem))
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
                    value = fastyaml.load_fast(fm, utf8)
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
    # (field path, raw text, problem) of values the warehouse cannot hold as written
    issues: list = None  # type: ignore[assignment]

    def __post_init__(self):
        if self.issues is None:
            self.issues = []


_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def read_file(file: SourceFile, cap: int = limits.RECORD.file_bytes) -> bytes:
    """The bytes of `file`. Raises RejectedFile when it is not a regular file or is
    larger than `cap` (checked on the open descriptor, before reading: the entry may
    have changed since it was listed), OSError when it cannot be read.

    Opened without blocking (a FIFO would wait for a writer forever) and without
    following a symbolic link that was not one when the folder was listed."""
    if file.problem is not None:
        raise RejectedFile(file.problem)
    try:
        fd = os.open(file.path, _OPEN_FLAGS)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise RejectedFile("cannot read file: it became a symbolic link after it was listed") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise RejectedFile(f"not a regular file: {_kind(st.st_mode)}")
        if st.st_size > cap:
            raise RejectedFile(f"file too large: {st.st_size:,} bytes, the cap per record is {cap:,}")
        # one read of the size it has (one allocation); it may grow meanwhile:
        # read on, but never hold more than the cap
        chunks = [os.read(fd, st.st_size + 1)]
        size = len(chunks[0])
        while size <= cap and chunks[-1]:
            chunks.append(os.read(fd, min(cap + 1 - size, 1 << 20)))
            size += len(chunks[-1])
        if size > cap:
            raise RejectedFile(f"file too large: more than {cap:,} bytes, the cap per record")
        return chunks[0] if len(chunks) <= 2 and not chunks[-1] else b"".join(chunks)
    finally:
        os.close(fd)


def read_bytes(path: str) -> bytes:
    """The bytes of a regular file by its path (see `read_file`)."""
    return read_file(SourceFile(path, path, path, 0, 0))


EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def read_error(e: BaseException) -> str:
    """The one-line error of a file that could not be read."""
    if isinstance(e, RejectedFile):
        return str(e)
    if isinstance(e, OSError):
        return f"cannot read file: {e.strerror or e}"
    return unexpected("read", e)


def unexpected(step: str, e: BaseException) -> str:
    """The one-line error of a file on which newsetl itself failed (a bug, reported
    with the file rather than stopping the run)."""
    text = " ".join(str(e).split())[:300]
    return f"could not {step} this file: {type(e).__name__}{': ' + text if text else ''}"


def extract(file: SourceFile, data: bytes | None = None, fast: bool = True, split_related: bool = False) -> Extracted:
    """Read and parse one file; never raises for bad content.

    `fast=False` parses with safeyaml only (PyYAML's meaning: the reference the fast
    parser is tested against). `split_related=True` leaves a fast-parsed `related`
    list as JSON (`related_json`)."""
    if data is None:
        try:
            data = read_file(file)
        except Exception as e:  # noqa: BLE001 - one file must never stop its batch
            return Extracted(file, EMPTY_SHA256, 0, error=read_error(e))
    return extract_all([(file, data)], fast, split_related)[0]


def extract_all(items: list[tuple[SourceFile, bytes]], fast: bool = True, split_related: bool = False) -> list[Extracted]:
    """`extract` for a batch of files already read: the fast parser's subset test
    (fastyaml.precheck) runs once over all their front matter. Whatever goes wrong
    with one file becomes that file's error."""
    outs, split = [], []
    for file, data in items:
        out = Extracted(file, hashlib.sha256(data).hexdigest(), len(data))
        try:
            split.append((out, *split_record(data)))
        except RejectedFile as e:
            out.error = str(e)
        except Exception as e:  # noqa: BLE001 - one file must never stop its batch
            out.error = unexpected("split", e)
        outs.append(out)
    try:
        checked = fastyaml.precheck([fm_bytes for _, _, fm_bytes, _ in split]) if fast and len(split) > 1 else []
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
