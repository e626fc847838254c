"""Sources: find the record files under the input folders, and read one safely.

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

A file is opened without blocking and its type and size are checked on the
open descriptor, so no entry can make a run wait or read past the size cap.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from . import limits

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


def _split_named(given: str) -> tuple[str | None, str]:
    """NAME=PATH -> (NAME, PATH); a PATH that exists as written is a path, even with a `=`."""
    if "=" in given and not os.path.exists(given):
        name, path = given.split("=", 1)
        name = name.strip("/")
        if not name or any(part in ("", ".", "..") for part in name.split("/")):
            raise InputError(f"input {given!r}: the name before '=' must be a folder-like name, e.g. blog=site/_posts")
        return name, path
    return None, given


def resolve_inputs(inputs) -> dict[str, Path]:
    """Input folders by name, absolute. An input is PATH, or NAME=PATH to choose the
    name its files' source_path starts with.

    Without a NAME, a folder is named by its own name; where two would share one
    (every Jekyll site keeps its records in `_posts`), each of those is named by
    as many of its parent folders as make the names distinct: `site-a/_posts`
    and `site-b/_posts`. The names depend only on the inputs given, so the same
    command gives the same source_path run after run; name inputs (NAME=PATH)
    to keep them when the set of inputs changes. Raises InputError for a
    missing or unreadable folder, or names that stay the same."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    inputs = [os.fspath(i) for i in inputs]
    if not inputs:
        raise InputError("no input folder given")
    named: dict[str, Path] = {}
    unnamed: list[Path] = []
    for given in inputs:
        name, path = _split_named(given)
        root = Path(path).expanduser()
        if not root.exists():
            raise InputError(f"input folder not found: {path}")
        if not root.is_dir():
            raise InputError(f"input is not a folder: {path}")
        if not os.access(root, os.R_OK | os.X_OK):
            raise InputError(f"input folder is not readable: {path}")
        root = root.resolve()
        if name is None:
            if root not in unnamed and root not in named.values():
                unnamed.append(root)
        elif named.get(name, root) != root:
            raise InputError(f"two input folders are both named {name!r} ({named[name]} and {root}): "
                             "give each a name of its own (NAME=PATH)")
        else:
            named[name] = root
    depth = {root: 1 for root in unnamed}

    def auto(root: Path) -> str:
        parts = root.parts[1:] or ("root",)
        return "/".join(parts[-depth[root]:])

    while True:  # lengthen the names that collide, by one parent at a time
        by_name: dict[str, list[Path]] = {}
        for root in unnamed:
            by_name.setdefault(auto(root), []).append(root)
        clash = [roots for name, roots in by_name.items() if len(roots) > 1 or name in named]
        if not clash:
            break
        grown = False
        for roots in clash:
            for root in roots:
                if depth[root] < max(len(root.parts) - 1, 1):
                    depth[root] += 1
                    grown = True
        if not grown:
            name = auto(clash[0][0])
            other = named.get(name) or clash[0][-1]
            raise InputError(f"two input folders would both be named {name!r} ({other} and {clash[0][0]}): "
                             "give each a name of its own (NAME=PATH)")
    return {**named, **{auto(root): root for root in unnamed}}


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
