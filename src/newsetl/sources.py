"""Sources: find the record files under the input folders, and read one safely.

Listing rules (the README says them to users):
- every `*.md` / `*.markdown` under an input folder; hidden entries (`.git`) are skipped;
- a symbolic link, to a file or a folder alike, is followed when its target lies
  inside the same input folder, and listed as not read otherwise (outside,
  dangling, or a loop); a folder reached twice is read once;
- an entry with a record's name that is not a regular file (a FIFO, a socket, a
  device), and a folder that cannot be listed, are listed as not read;
- at any depth: folders are listed, and files opened, relative to their parent
  folder's descriptor, so a path longer than PATH_MAX loses nothing;
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
    """A file that cannot be loaded as a record; the message says why. `size` is its size in
    bytes where that is known (a file past the cap), for its `source_files` row."""

    def __init__(self, message: str, size: int | None = None):
        super().__init__(message)
        self.size = size


@dataclass(frozen=True, slots=True)  # slots: a first run holds one per file until its batch is parsed
class SourceFile:
    """One input entry. `source_path` is `<input folder name>/<path inside it>`
    (a folder's ends with `/`), in `display_name` form."""

    source_path: str
    path: str  # absolute path on disk (the link's target for a followed link)
    rel_path: str  # path relative to its input root (POSIX), used for identity
    size: int
    mtime_ns: int
    problem: str | None = None  # why this entry cannot be read as a file: listed, never read
    # an object's ETag or version id (objectstore; mtime_ns then holds a stamp of it); None for a file
    version: str | None = None


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


_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def open_path(path: str, flags: int) -> int:
    """`os.open(path, flags)` for a path of any length: one longer than the OS takes (PATH_MAX,
    4,096 bytes on Linux: a record 1,300 folders deep) is opened a folder at a time, each
    relative to the one before, so its length never matters."""
    try:
        return os.open(path, flags)
    except OSError as e:
        if e.errno != errno.ENAMETOOLONG:
            raise
    head, _, last = path.rpartition(os.sep)
    fd = os.open(os.sep if os.path.isabs(path) else ".", _DIR_FLAGS)
    try:
        for part in head.split(os.sep):
            if part:
                inner = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = inner
        return os.open(last, flags, dir_fd=fd)
    finally:
        os.close(fd)


class _Folder:
    """An open folder whose subfolders are still to be listed: each is opened relative to it
    (`dir_fd`), so no path the walk opens is longer than one name. Closed when the last is."""

    __slots__ = ("fd", "waiting")

    def __init__(self, fd: int):
        self.fd, self.waiting = fd, 0

    def release(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            os.close(self.fd)


def _walk(root: str, plain: "Listing | None" = None):
    """(relative path, OS path to read, stat result or None, problem or None) of every
    record entry under `root` (a resolved folder), by the listing rules above.

    With `plain`, every regular file reached without a link is appended to it instead of
    being yielded (`Listing.add`): no tuple, no path, per file (a steady-state run lists
    every file and reads almost none).

    Every folder is listed through its descriptor and every entry looked at relative to it,
    so depth never matters; an entry that cannot be looked at is yielded with its problem
    when it is a record's or a folder (the records under it would be lost): no error is
    dropped unseen."""
    # os.scandir is several times cheaper than Path.rglob on large folders
    seen: set[tuple[int, int]] = set()
    inside = os.path.join(root, "")
    # (open parent or None, name in it, OS path, relative path): a folder still to list
    stack: list[tuple[_Folder | None, str, str, str]] = [(None, root, root, "")]
    linked: list[tuple[_Folder | None, str, str, str]] = []  # reached by a link: after the real ones, so a folder keeps its own path
    try:
        while stack or linked:
            parent, name, d, rel_dir = stack.pop() if stack else linked.pop()
            try:
                fd = open_path(d, _DIR_FLAGS) if parent is None else \
                    os.open(name, _DIR_FLAGS | _NOFOLLOW, dir_fd=parent.fd)
            except OSError as e:
                yield rel_dir, d, None, f"cannot list folder: {e.strerror or e}"
                continue
            finally:
                if parent is not None:
                    parent.release()
            try:
                st = os.fstat(fd)
                again = (st.st_dev, st.st_ino) in seen  # a folder reached twice is read once
                seen.add((st.st_dev, st.st_ino))
                if not again:
                    with os.scandir(fd) as it:
                        entries = list(it)
            except OSError as e:
                os.close(fd)
                yield rel_dir, d, None, f"cannot list folder: {e.strerror or e}"
                continue
            if again:
                os.close(fd)
                continue
            folder = _Folder(fd)
            try:
                yield from _entries(folder, entries, d, rel_dir, inside, stack, linked, plain)
            finally:
                if folder.waiting == 0:  # no subfolder to open relative to it
                    os.close(fd)
    finally:  # a walk left half-way: close the folders still open
        for parent, *_ in stack:
            if parent is not None:
                parent.release()


def _entries(folder: _Folder, entries, d: str, rel_dir: str, inside: str, stack: list, linked: list,
             plain: "Listing | None" = None):
    """The record entries of one listed folder (see `_walk`); its subfolders go on `stack`
    (relative to `folder`) or, reached by a link, on `linked`."""
    if plain is not None:
        where = plain.folder(d, rel_dir)
        add_rel, add_size, add_mtime, add_where = (plain.rel.append, plain.size.append, plain.mtime_ns.append,
                                                   plain.where.append)
    entries.reverse()
    while entries:
        # each entry let go of once looked at: its cached stat costs more than what is kept of it
        e = entries.pop()
        name = e.name
        if name[0] == ".":
            continue  # .git, editor swap folders: never records
        is_dir = False
        try:
            # the common case first, with as little per file as can be: a regular file (d_type from
            # the listing, no stat) with a record's name, one stat relative to the folder's descriptor
            if plain is not None and e.is_file(follow_symlinks=False) and (
                    name.endswith(".md") or name.lower().endswith(SUFFIXES)):
                st = e.stat(follow_symlinks=False)
                if stat.S_ISREG(st.st_mode):
                    add_rel(rel_dir + name)
                    add_size(st.st_size)
                    add_mtime(st.st_mtime_ns)
                    add_where(where)
                    continue
            if e.is_symlink():
                rel, path = rel_dir + name, os.path.join(d, name)
                try:
                    target = os.path.realpath(path, strict=True)
                except OSError as err:
                    if err.errno in (errno.ELOOP, errno.ENOENT):
                        if _is_record(name):
                            why = "a loop" if err.errno == errno.ELOOP else "dangling"
                            yield rel, path, None, f"symbolic link not followed: {why}"
                    else:  # it may be a folder of records: never dropped unseen
                        yield rel, path, None, f"symbolic link not followed: {err.strerror or err}"
                    continue
                if not (target + os.sep).startswith(inside):
                    yield rel + ("/" if os.path.isdir(target) else ""), path, None, \
                        "symbolic link not followed: its target is outside the input folder"
                    continue
                st = os.stat(target)
                if stat.S_ISDIR(st.st_mode):
                    linked.append((None, target, target, rel + "/"))
                    continue
                if _is_record(name):
                    problem = None if stat.S_ISREG(st.st_mode) else f"not a regular file: {_kind(st.st_mode)}"
                    yield rel, target, st, problem
                continue
            # d_type from the listing: no stat for a folder or a file that is not a record's
            is_dir = e.is_dir(follow_symlinks=False)
            if is_dir:
                folder.waiting += 1
                stack.append((folder, name, os.path.join(d, name), rel_dir + name + "/"))
                continue
            if not _is_record(name):
                continue
            st = e.stat(follow_symlinks=False)  # relative to the folder's descriptor
            mode = st.st_mode
            if stat.S_ISREG(mode):
                if plain is not None:
                    plain.add(where, rel_dir + name, st.st_size, st.st_mtime_ns)
                else:
                    yield rel_dir + name, os.path.join(d, name), st, None
            elif stat.S_ISDIR(mode):  # it became a folder since it was listed
                folder.waiting += 1
                stack.append((folder, name, os.path.join(d, name), rel_dir + name + "/"))
            else:
                yield rel_dir + name, os.path.join(d, name), st, f"not a regular file: {_kind(mode)}"
        except FileNotFoundError:
            continue  # gone since the folder was listed: not an input any more
        except OSError as err:
            if is_dir:
                yield rel_dir + name + "/", os.path.join(d, name), None, f"cannot list folder: {err.strerror or err}"
            elif _is_record(name):
                yield rel_dir + name, os.path.join(d, name), None, f"cannot read file: {err.strerror or err}"


def _is_url(x) -> bool:
    return isinstance(x, str) and "://" in x and not x.lower().startswith("file://")


def _split_named(given: str) -> tuple[str | None, str]:
    """NAME=PATH -> (NAME, PATH); a PATH that exists as written is a path, even with a `=`,
    and so is a URL whose own path holds one (s3://b/date=2021)."""
    if "=" in given and not os.path.exists(given):
        name, path = given.split("=", 1)
        if "://" not in name:
            name = name.strip("/")
            if not name or any(part in ("", ".", "..") for part in name.split("/")):
                raise InputError(f"input {given!r}: the name before '=' must be a folder-like name, "
                                 "e.g. blog=site/_posts")
            return name, path
    return None, given


def _segments(root: Path | str) -> tuple[str, ...]:
    if isinstance(root, str):  # a URL: its bucket and key prefix, as a folder's parts
        return tuple(root.split("://", 1)[1].strip("/").split("/"))
    return root.parts[1:] or ("root",)


def _clashes(names: dict) -> list[tuple]:
    """The pairs (owner, name, other owner, other name) of `names` (owner -> name) whose source_paths
    could meet: the same name, or one name a folder of the other (`p` and `p/in`: `p`'s file
    `in/a.md` is `p/in/a.md`). Names without either relation can never give the same source_path."""
    by_name: dict[str, list] = {}
    for owner, name in names.items():
        by_name.setdefault(name, []).append(owner)
    out = []
    for name, owners in by_name.items():
        out.extend((owners[0], name, other, name) for other in owners[1:])
        parts = name.split("/")
        for i in range(1, len(parts)):
            for other in by_name.get("/".join(parts[:i]), ()):
                out.extend((owner, name, other, "/".join(parts[:i])) for owner in owners)
    return out


def input_names(roots, taken=()) -> dict:
    """Each input's name, the first part of its files' source_path: its folder's own name (a
    URL's last segment). Where two names are the same, or one is a folder of the other (`p` and
    `p/in`), or meet a name in `taken` so, each of those is named by as many of its parents as
    make them apart (site-a/_posts, site-b/_posts): no two inputs' files can then share a
    source_path. Raises InputError when no length of name tells them apart."""
    roots = list(dict.fromkeys(roots))
    depth = {root: 1 for root in roots}
    fixed = {("taken", name): name for name in taken}

    def auto(root) -> str:
        return "/".join(_segments(root)[-depth[root]:])

    while True:  # lengthen the names that collide, by one parent at a time
        clash = _clashes({**fixed, **{root: auto(root) for root in roots}})
        if not clash:
            return {root: auto(root) for root in roots}
        grown = False
        for root in dict.fromkeys(r for a, _, b, _ in clash for r in (a, b)):
            if root in depth and depth[root] < len(_segments(root)):
                depth[root] += 1
                grown = True
        if not grown:
            a, name, b, other = clash[0]
            first = "a named input" if a in fixed else str(a)
            second = "a named input" if b in fixed else str(b)
            if name == other:
                raise InputError(f"two inputs would both be named {name!r} ({second} and {first}): "
                                 "give each a name of its own (NAME=PATH)")
            raise InputError(f"two inputs would be named {other!r} and {name!r} ({second} and {first}), one "
                             "inside the other, so their files could share a source_path: give each a name "
                             "of its own (NAME=PATH)")


def _location(root: Path | str) -> tuple[str, ...]:
    """Where an input is, as parts: one input is inside another when its parts start with the other's."""
    if isinstance(root, str):
        return (root.split("://", 1)[0], *_segments(root))
    return ("", *root.parts)


def _check_apart(given: list[tuple[str | None, Path | str]]) -> None:
    """One line when two inputs would read the same files: the same folder under two names, or one
    input inside another (`site` and `site/sub`). Their files would be read twice, under two
    source_paths, and their articles counted twice (each copy `duplicate` of the other at best);
    no name can fix that, so the run does not start."""
    names: dict = {}
    for name, root in given:
        names.setdefault(root, set()).add(name)
    for root, of in names.items():
        named = sorted(n for n in of if n is not None)
        if len(named) > 1:
            raise InputError(f"input {root} is given twice, as {named[0]!r} and {named[1]!r}: its files would "
                             "be read twice; give it once")
    where = {_location(root): root for root in names}
    for loc, root in where.items():
        for i in range(1, len(loc)):
            outer = where.get(loc[:i])
            if outer is not None:
                raise InputError(f"input {root} is inside input {outer}: its files would be read twice, "
                                 "once for each; give only one of them")


def _check_root(path: str) -> Path | str:
    """The input, absolute, or normalized if a URL; InputError if it cannot be read."""
    if _is_url(path):
        from .objectstore import normalize

        url = normalize(path)
        check_url_input(url)
        return url
    if path.lower().startswith("file://"):
        path = path[7:] or "/"
    root = Path(path).expanduser()
    if not root.exists():
        raise InputError(f"input folder not found: {path}")
    if not root.is_dir():
        raise InputError(f"input is not a folder: {path}")
    if not os.access(root, os.R_OK | os.X_OK):
        raise InputError(f"input folder is not readable: {path}")
    return root.resolve()


def resolve_inputs(inputs) -> dict[str, Path | str]:
    """Input folders (or URLs: s3://bucket/prefix) by name, in the order given, absolute. An
    input is PATH, or NAME=PATH to choose the name its files' source_path starts with.

    Without a NAME, an input is named as `input_names` says: by its own name, and by as many
    parents as make it distinct where two would share one (every Jekyll site keeps its
    records in `_posts`). The names depend only on the inputs given, so the same command
    gives the same source_path run after run; name inputs (NAME=PATH) to keep them when the
    set of inputs changes. No two inputs' files can share a source_path: no name is another's,
    nor a folder of it (`p` and `p/in`). Raises InputError for a missing or unreadable input,
    given names that overlap, automatic names that stay the same, and inputs that would read
    the same files twice (one folder under two names, or one inside another)."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    inputs = [os.fspath(i) for i in inputs]
    if not inputs:
        raise InputError("no input folder given")
    given: list[tuple[str | None, Path | str]] = []
    named: dict[str, Path | str] = {}
    for text in inputs:
        name, path = _split_named(text)
        root = _check_root(path)
        if name is not None:
            if named.get(name, root) != root:
                raise InputError(f"two inputs are both named {name!r} ({named[name]} and {root}): "
                                 "give each a name of its own (NAME=PATH)")
            named[name] = root
        given.append((name, root))
    for (_a, name, _b, other) in _clashes({n: n for n in named})[:1]:
        raise InputError(f"input names {other!r} and {name!r} overlap: {name!r} is a folder inside "
                         f"{other!r}, so their files could share a source_path; give names neither of "
                         "which is inside the other")
    _check_apart(given)
    # an input given twice, or both named and not, is read once
    unnamed = [root for name, root in given if name is None and root not in named.values()]
    auto = input_names(unnamed, taken=set(named))
    out: dict[str, Path | str] = {}
    for name, root in given:
        if name is not None or root in auto:
            out.setdefault(name if name is not None else auto[root], root)
    return out


class Listing:
    """The record entries of the inputs as columns, in the order they were listed: a plain
    file is its relative path, size and mtime and the folder it is in, never an object of its
    own (a run that finds no change reads none of them, and compares them with the manifest
    in Arrow: plan.plan); an entry with a problem, a followed link and an object in storage
    keep their SourceFile (`extra`). `file(i)` makes the SourceFile of any row."""

    __slots__ = ("rel", "size", "mtime_ns", "where", "dirs", "inputs", "extra", "roots")

    def __init__(self):
        self.rel: list[str] = []  # path inside its input, as the OS gives it
        self.size: list[int] = []
        self.mtime_ns: list[int] = []
        self.where: list[int] = []  # index in `dirs` of the folder it is in (-1: in `extra`)
        self.dirs: list[tuple[str, int]] = []  # (OS path of a listed folder, length of its relative path)
        self.inputs: list[tuple[int, str]] = []  # (first row, input name as in source_path)
        self.extra: dict[int, SourceFile] = {}
        self.roots: dict[str, str] = {}  # input name -> its folder or URL (list_inputs)

    def __len__(self) -> int:
        return len(self.rel)

    def start_input(self, name: str) -> None:
        self.inputs.append((len(self.rel), name))

    def folder(self, d: str, rel_dir: str) -> int:
        self.dirs.append((d, len(rel_dir)))
        return len(self.dirs) - 1

    def add(self, where: int, rel: str, size: int, mtime_ns: int) -> None:
        self.rel.append(rel)
        self.size.append(size)
        self.mtime_ns.append(mtime_ns)
        self.where.append(where)

    def add_file(self, f: SourceFile) -> None:
        self.extra[len(self.rel)] = f
        self.add(-1, f.rel_path, f.size, f.mtime_ns)

    def source_paths(self) -> list[str]:
        """Each row's source_path (`<input name>/<path inside it>`, in `display_name` form)."""
        out: list[str] = []
        bounds = [first for first, _ in self.inputs[1:]] + [len(self.rel)]
        for (first, name), end in zip(self.inputs, bounds):
            prefix = name + "/"
            out.extend(prefix + (r if r.isascii() and "\\" not in r else display_name(r))
                       for r in self.rel[first:end])
        for i, f in self.extra.items():
            out[i] = f.source_path
        return out

    def file(self, i: int, source_path: str) -> SourceFile:
        """Row `i` (whose source_path is `source_path`) as a SourceFile."""
        f = self.extra.get(i)
        if f is not None:
            return f
        d, cut = self.dirs[self.where[i]]
        rel = self.rel[i]
        return SourceFile(source_path, os.path.join(d, rel[cut:]), display_name(rel), self.size[i], self.mtime_ns[i])


def list_inputs(inputs) -> Listing:
    """Every record entry under the input folders (and prefixes of object storage), as a
    Listing: files to read, and the entries that cannot be read as files, with their problem."""
    roots = resolve_inputs(inputs)
    listing = Listing()
    listing.roots = {name: str(root) for name, root in roots.items()}
    for name, root in roots.items():
        first = len(listing)
        listing.start_input(display_name(name))
        if isinstance(root, str):
            for f in list_records(root, display_name(name)):
                listing.add_file(f)
        else:
            name = display_name(name)
            for rel, path, st, problem in _walk(str(root), listing):
                if os.sep != "/":
                    rel = rel.replace(os.sep, "/")
                rel = display_name(rel)
                size, mtime = (st.st_size, st.st_mtime_ns) if st is not None and problem is None else (0, 0)
                listing.add_file(SourceFile(f"{name}/{rel}", path, rel, size, mtime, problem))
        if len(listing) == first:
            raise InputError(no_records(root))
    return listing


def no_records(root: Path | str) -> str:
    """The error of an input that holds no record: an unmounted share, a typo or an emptied
    prefix must not read as 'every record deleted' (a run would publish an empty warehouse)."""
    if isinstance(root, str):
        return f"input holds no record object (*.md, *.markdown) under {root}"
    return f"input folder holds no record file (*.md, *.markdown): {root}"


def discover(inputs) -> list[SourceFile]:
    """Every record entry under the input folders, sorted by source_path: files to
    read, and the entries that cannot be read as files, with their problem."""
    listing = list_inputs(inputs)
    paths = listing.source_paths()
    return [listing.file(i, paths[i]) for i in sorted(range(len(paths)), key=paths.__getitem__)]


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
        fd = open_path(file.path, _OPEN_FLAGS)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise RejectedFile("cannot read file: it became a symbolic link after it was listed") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise RejectedFile(f"not a regular file: {_kind(st.st_mode)}")
        if st.st_size > cap:
            raise RejectedFile(f"file too large: {st.st_size:,} bytes, the cap per record is {cap:,}", st.st_size)
        # one read of the size it has (one allocation); it may grow meanwhile:
        # read on, but never hold more than the cap
        chunks = [os.read(fd, st.st_size + 1)]
        size = len(chunks[0])
        while size <= cap and chunks[-1]:
            chunks.append(os.read(fd, min(cap + 1 - size, 1 << 20)))
            size += len(chunks[-1])
        if size > cap:  # it grew while read: its size now, at least what was read
            raise RejectedFile(f"file too large: more than {cap:,} bytes, the cap per record",
                               max(size, os.fstat(fd).st_size))
        return chunks[0] if len(chunks) <= 2 and not chunks[-1] else b"".join(chunks)
    finally:
        os.close(fd)


def read_bytes(path: str) -> bytes:
    """The bytes of a regular file by its path (see `read_file`)."""
    return read_file(SourceFile(path, path, path, 0, 0))


EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def rejected_size(file: SourceFile, e: BaseException) -> int | None:
    """The size to record for a file rejected before its bytes were read: the size it was refused
    for (past the cap), else the listed size of a regular file that could not be read, else
    None (not a file, or not known). Never 0 for a file that was not empty."""
    if isinstance(e, RejectedFile):
        return e.size
    if isinstance(e, OSError) and file.problem is None and file.version is None:
        return file.size
    return None


def rejection_key(size: int | None, error: str) -> str:
    """What stands for a rejected file's content in the manifest's place of a hash: the plan
    hands it back for a file rejected last run, and a file rejected again for the same reason
    at the same size is `unchanged`, not `changed` (parse.parse_batch)."""
    return f"rejected\0{size}\0{error}"


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


# -- inputs in object storage (URLs) ------------------------------------------------------

def check_url_input(url: str) -> None:
    """An input prefix must hold objects: a misspelled prefix must not read as 'every record deleted'."""
    from .objectstore import check_bucket, errors_as, filesystem, fs_path

    fs = filesystem(url)
    check_bucket(fs, url, InputError)
    with errors_as(InputError, url):
        try:
            fs.info(fs_path(fs, url))
        except FileNotFoundError:
            raise InputError(f"input not found: no object under {url}") from None



def list_records(url: str, name: str) -> list[SourceFile]:
    """Every record object under `url` (a prefix), as SourceFiles named `<name>/<key below the prefix>`.

    The listing rules of folders: *.md and *.markdown, any segment starting with
    a dot (.git/) skipped."""
    from .objectstore import errors_as, filesystem, find_all, fs_path, protocol, stamp, version_of

    fs = filesystem(url)
    prefix = fs_path(fs, url).rstrip("/") + "/"
    proto = protocol(url)
    with errors_as(InputError, url):
        found = find_all(fs, prefix)
    files = []
    for key, info in found.items():
        if info.get("type") == "directory" or not key.startswith(prefix):
            continue
        rel = key[len(prefix):]
        if not rel.lower().endswith((".md", ".markdown")) or any(s.startswith(".") for s in rel.split("/")):
            continue
        size = int(info.get("size") or 0)
        version = version_of(info)
        files.append(SourceFile(f"{name}/{display_name(rel)}", f"{proto}://{key}", display_name(rel), size,
                                stamp(version, size), version=version))
    return files



def fetch_objects(files: list[SourceFile], cap: int = limits.RECORD.file_bytes) -> dict[str, bytes | Exception]:
    """The bytes of each object (concurrent GETs), or the RejectedFile that says why it is not a record.

    Only what is about one object rejects it: gone since the listing, or past the cap.
    Anything else (no credentials on this worker, the bucket gone, the store unreachable,
    access denied) raises: the batch fails and is retried, and the run publishes nothing,
    rather than every file of the batch turning `rejected` and its articles vanishing."""
    from .objectstore import cat_literal, describe, filesystem, fs_path

    out: dict[str, bytes | Exception] = {}
    todo = []
    for f in files:
        if f.problem is not None:
            out[f.path] = RejectedFile(f.problem)
        elif f.size > cap:  # known from the listing: never downloaded
            out[f.path] = RejectedFile(f"file too large: {f.size:,} bytes, the cap per record is {cap:,}", f.size)
        else:
            todo.append(f.path)
    if not todo:
        return out
    fs = filesystem(todo[0])
    keys = {fs_path(fs, p): p for p in todo}
    # one GET each, by the key as written: fs.cat would take `[abc].md` for a pattern, and
    # ask each object's size first (a HEAD) to split a large one into ranges
    got = cat_literal(fs, list(keys))
    for key, url in keys.items():
        data = got.get(key, FileNotFoundError(key))
        if isinstance(data, Exception):
            systemic = describe(data, url)
            if systemic is not None:
                raise InputError(systemic) from data
            if not isinstance(data, FileNotFoundError):
                raise data
            data = RejectedFile("cannot read file: the object is gone (deleted after it was listed)")
        elif len(data) > cap:
            data = RejectedFile(f"file too large: more than {cap:,} bytes, the cap per record", len(data))
        out[url] = data
    return out
