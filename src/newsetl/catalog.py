"""The DuckDB catalog: a view per table over a snapshot, plus the analytics views.

Two ways in, built by the same function:
- `warehouse/news.duckdb`, for the DuckDB shell and any tool that opens a file;
- `connect(warehouse)`, an in-memory connection with the same views, which
  never takes the catalog file's lock (a shell left open does not block it).

Every view reads the files its snapshot names (store.table_files), never a
folder's listing. `connect(..., sealed=True)`, what `newsetl sql` and
`newsetl.query` use, can read those files and nothing else, and write nothing.
The catalog file is checked against the snapshot (`inspect_catalog`): read
commands rewrite one that a run left stale or that was changed by hand.

The catalog file moves with its warehouse (`cp -a`, `mv`, `rsync -a`): its views
name the snapshot's files relative to the warehouse folder, which the macro
`newsetl_root()` gives when a query runs. DuckDB cannot pass a subquery (such as
the path column of `duckdb_databases()`) to a table function, nor say which file
a view was read from, but it names a database's spill folder after the file the
session opened (`temp_directory` is `<path>.tmp` unless set), and that setting
can be read in a table function's arguments. So a shell that opens
`WAREHOUSE/news.duckdb`, from any folder, reads `WAREHOUSE/snapshots/...`. Where
that does not tell (the file ATTACHed to another session, or a spill folder
set by hand), the macro falls back to the folder the catalog was written in; a
newsetl command on a moved warehouse rewrites that (`heal_catalog`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import tempfile
import uuid
from importlib import resources
from pathlib import Path

from .catalogfile import as_written, catalog_snapshot, moved_from, sha256, shown
from .duck import Lazy, database_objects, engine_version, glob_escaped, objects_in, read_list, sql_literal
from .parts import view_sql
from .schema import BY_NAME, VIEWS, VIEWS_BY_NAME, WAREHOUSE_TABLES
from .remote import open_warehouse
from .store import CATALOG as CATALOG_NAME
from .store import (MARKER, ROOT_MACRO, Warehouse, WarehouseError, catalog_object_names, read_info, read_marker,
                    recorded_counts, table_files)

duckdb = Lazy("duckdb")  # read commands answered from the snapshot's records never import it

# Oldest storage format that holds what the catalog needs (views only), so a
# DuckDB shell older than the Python package still opens it.
STORAGE_VERSION = "v1.0.0"


def view_sql_files() -> list[tuple[str, str]]:
    """(view name, SQL) of every analytics view, in file-name order (prefix NN_ sets it)."""
    folder = resources.files("newsetl") / "sql" / "views"
    out = []
    for f in sorted(folder.iterdir(), key=lambda p: p.name):
        if f.name.endswith(".sql"):
            name = f.name[:-4].split("_", 1)[1] if f.name[:2].isdigit() else f.name[:-4]
            out.append((name, f.read_text(encoding="utf-8")))
    return out


def root_macro_sql(root: Path) -> str:
    """CREATE MACRO newsetl_root(): the warehouse folder, as the prefix of a path DuckDB reads
    (glob-escaped, ending in `/`; empty for the working folder), when a query runs.

    A session names its spill folder after the path of the database it opened, relative if
    that path was: `<path>.tmp`, or, for a path with a `?`, `.tmp` put before the first `?`
    (`a?b/news.duckdb` -> `a.tmp?b/news.duckdb`). The catalog opened as the session's database
    finds its folder there. Otherwise (ATTACHed, or temp_directory set) it is `root`, the
    folder the catalog was written in. Functions an older DuckDB shell has too (no lambda)."""
    s = "current_setting('temp_directory')"
    q = f"strpos({s}, '?')"
    spilled = f"(CASE WHEN {q} > 0 THEN substr({s}, {q} - 4, 4) = '.tmp' ELSE suffix({s}, '.tmp') END)"
    path = f"(CASE WHEN {q} > 0 THEN left({s}, {q} - 5) || substr({s}, {q}) ELSE left({s}, length({s}) - 4) END)"
    name = f"/{CATALOG_NAME}"
    # as duck.read_list escapes: each glob character read as itself
    folder = f"replace(replace(replace(left({path}, length({path}) - {len(name) - 1}), '[', '[[]'), '*', '[*]'), '?', '[?]')"
    fallback = sql_literal(glob_escaped(root) + "/")
    return (f"CREATE OR REPLACE MACRO {ROOT_MACRO}() AS CASE\n"
            f"  WHEN NOT {spilled} THEN {fallback}\n"
            f"  WHEN {path} = {sql_literal(name[1:])} THEN ''\n"
            f"  WHEN suffix({path}, {sql_literal(name)}) THEN {folder}\n"
            f"  ELSE {fallback} END")


def warehouse_root(snapshot: Path) -> Path:
    """The real path of the warehouse folder that holds `snapshot` (snapshots/<run id>)."""
    return Path(os.path.realpath(snapshot.parent.parent))


def create_views(con: duckdb.DuckDBPyConnection, snapshot: Path | None, files: dict | None = None,
                 analytics: bool | str = True, movable: bool = False) -> None:
    """Views over the tables of `snapshot` (or over `files`: each table's file URLs) and every
    analytics view (unless `analytics` is false: they are there already; a string: the ones
    that SQL text can use, `views_for`), in `con`'s current schema.
    `movable` (the catalog file): the files are named relative to the warehouse folder, which
    the macro newsetl_root() gives when a query runs (root_macro_sql)."""
    if files is None:
        files = table_files(snapshot)  # the files the snapshot names: a stray one in its folders is not data
    prefix = None
    if movable:
        top = snapshot.parent.parent
        con.execute(root_macro_sql(warehouse_root(snapshot)))
        prefix = f"{ROOT_MACRO}()"
        files = {t: [Path(p).relative_to(top).as_posix() for p in paths] for t, paths in files.items()}
    # the catalog file's views are bound when read, not when written (binding opens a footer
    # per part, and binds every analytics view: most of a run's catalog write); DuckDB binds a
    # view again at each query anyway, and readers see the same views and columns
    can_defer = _can_defer_binding(con)
    deferred = " WITH (DEFER_BINDING)" if movable and can_defer else ""
    if analytics and deferred:
        # DuckDB binds a table macro when it is created (the analytics files' `*_for` macros), and
        # binding reads the footers of the files the tables' views name: against views of no rows
        # with the tables' columns, the same macros cost a third. Nothing bound is kept, deferred
        # views keep no types: the views over the files, made next, are what every query binds
        for table in WAREHOUSE_TABLES:
            con.execute(f"CREATE OR REPLACE VIEW {table.name}{deferred} AS {view_sql(table.name, [])}")
        _analytics(con, analytics, deferred)
    for table in WAREHOUSE_TABLES:
        # the files by name, not a pattern: a snapshot never changes, and a
        # warehouse path may hold glob characters; each part less its deletes (newsetl.parts)
        con.execute(f"CREATE OR REPLACE VIEW {table.name}{deferred} AS "
                    f"{view_sql(table.name, files[table.name], prefix)}")
    if analytics and not deferred:
        # a connection's (connect()): the tables' views are bound as they are made, so a file missing
        # is found here; the analytics views, when a query names them (a third of connect's time)
        _analytics(con, analytics, " WITH (DEFER_BINDING)" if can_defer else "")


def _analytics(con: duckdb.DuckDBPyConnection, analytics: bool | str, deferred: str) -> None:
    for _name, sql in (views_for(analytics) if isinstance(analytics, str) else view_sql_files()):
        con.execute(_CREATE_VIEW.sub(rf"\1{deferred} AS", sql) if deferred else sql)


_CREATE_VIEW = re.compile(r"^(CREATE\s+OR\s+REPLACE\s+VIEW\s+\w+)\s+AS\b", re.IGNORECASE | re.MULTILINE)


_DEFERS: list[bool] = []  # the probe's answer, once a process
_DEFER_PROBE = "CREATE TEMP VIEW newsetl_defer_probe WITH (DEFER_BINDING) AS SELECT * FROM newsetl_no_such_table"


def _can_defer_binding(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether this DuckDB takes CREATE VIEW ... WITH (DEFER_BINDING) (2.0 does; older ones bind
    views as they are made). Asked on a cursor of `con`'s database (a database of its own to ask
    in cost 20-35 ms): its own transaction and temporary schema, so a refusal never aborts one
    `con` has open (the catalog file's write) and the probe leaves nothing behind."""
    if not _DEFERS:
        with con.cursor() as cur:
            try:
                cur.execute(_DEFER_PROBE)
                _DEFERS.append(True)
            except duckdb.Error:
                _DEFERS.append(False)
    return _DEFERS[0]


_DEFINES = re.compile(r"CREATE\s+OR\s+REPLACE\s+(?:VIEW|MACRO)\s+(\w+)", re.IGNORECASE)
# a query that can list the catalog's objects sees every view, as in news.duckdb
_INTROSPECTION = re.compile(r"\b(?:duckdb_\w+|information_schema|pg_catalog|sqlite_master|show|describe|"
                            r"summarize|pragma)\b", re.IGNORECASE)


def views_for(sql: str, files: list[tuple[str, str]] | None = None) -> list[tuple[str, str]]:
    """The analytics views' files (as view_sql_files) that `sql` can use: those defining a view or
    macro whose name it holds as a word, and what they use in turn; every one for a query that
    lists the catalog (SHOW, DESCRIBE, duckdb_views() ...). Binding a view costs DuckDB some
    milliseconds, all of them most of `newsetl sql "select 1"`; a name in a comment or a string
    only makes one view more. `files`: view_sql_files(), read already."""
    files = view_sql_files() if files is None else files
    if _INTROSPECTION.search(sql):
        return files
    words = set(re.findall(r"\w+", sql.lower()))
    # and the views a mistyped name is close to, for DuckDB's "Did you mean" (it suggests what exists)
    from difflib import get_close_matches

    defined = sorted(set().union(*(_defines(text) for _, text in files)))
    words |= {m for w in words if len(w) > 3 for m in get_close_matches(w, defined, n=3, cutoff=0.85)}
    needed: set[str] = set()
    grew = True
    while grew:
        grew = False
        for name, text in files:
            if name not in needed and not _defines(text).isdisjoint(words):
                needed.add(name)
                words |= sql_words(text)
                grew = True
    return [(n, t) for n, t in files if n in needed]


@functools.lru_cache(maxsize=64)
def _defines(text: str) -> frozenset[str]:
    """The views and macros a file of analytics views defines, lower-case."""
    return frozenset(d.lower() for d in _DEFINES.findall(text))


_COMMENT_OR_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/", re.DOTALL)


@functools.lru_cache(maxsize=64)
def sql_words(sql: str) -> frozenset[str]:
    """The words of SQL text, lower-case, but for those in its comments (quoted text is kept:
    `query_table('runs')` names a table)."""
    code = _COMMENT_OR_QUOTED.sub(lambda m: " " if m.group().startswith(("--", "/*")) else m.group(), sql)
    return frozenset(re.findall(r"\w+", code.lower()))


def views_digest() -> str:
    """What the analytics views of this newsetl are (their SQL and the storage format): a catalog
    file written with the same digest needs only its table views replaced for a new snapshot."""
    h = hashlib.sha256(STORAGE_VERSION.encode())
    for name, sql in view_sql_files():
        h.update(f"\0{name}\0{sql}".encode())
    return h.hexdigest()[:16]


def write_catalog(wh: Warehouse, snapshot: Path, con: duckdb.DuckDBPyConnection | None = None) -> None:
    """Write the catalog file for `snapshot` next to it, replacing the old one atomically.

    The old file is never opened for writing: an analyst's shell may hold it. A file there that
    newsetl did not write (a user's own database) is never replaced. `con`: an in-memory DuckDB
    connection to write it with (a run's, which its checks used: a new database costs 25 ms).
    """
    theirs = wh.foreign_catalog()
    if theirs:
        raise WarehouseError(f"{wh.catalog} is {theirs}: newsetl leaves it as it is and cannot write its catalog "
                             "there (move that file away; the next newsetl command writes the catalog)")
    tmp = wh.root / f"{wh.catalog.name}.{snapshot.name}.tmp"
    for p in (tmp, Path(str(tmp) + ".wal")):
        p.unlink(missing_ok=True)
    digest = views_digest()
    # the file as newsetl last wrote it, with these analytics views: copied, its table views
    # replaced (the analytics views are what takes time to write: DuckDB binds each)
    base = wh.catalog if wh.catalog_untouched() and read_marker(wh).get("views") == digest else None
    try:
        _write_views_file(tmp, snapshot, base, con=con)
        # the marker first, naming the new file by inode: whenever this is
        # killed, the marker still tells which snapshot the catalog file shows
        _write_marker(wh, {"snapshot": snapshot.name, **_stamp(tmp), "views": digest, "sha256": sha256(tmp),
                           "root": str(warehouse_root(snapshot)), "previous": shown(wh)})
        os.replace(tmp, wh.catalog)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_views_file(path: Path, snapshot: Path, base: Path | None = None,
                      read_back: bool = False, con: duckdb.DuckDBPyConnection | None = None) -> list[tuple] | None:
    """Write the catalog file of `snapshot` at `path`; with `read_back`, its objects as DuckDB
    reads them back (duck.objects_in), on the connection that wrote them (a run does not: `status`
    tells its file by the digest in the marker, and lists the objects only of one changed since)."""
    # DuckDB names a database's WAL by cutting its real path at the first `?`
    # (`w?x/news.duckdb` -> `w.wal?x/news.duckdb`): there, build the file
    # elsewhere and copy it in (it holds views only, a few hundred KB)
    detour = None
    target = path
    if "?" in os.path.realpath(path.parent):
        detour = Path(tempfile.mkdtemp(prefix="newsetl-catalog-"))
        if "?" in os.path.realpath(detour):
            shutil.rmtree(detour, ignore_errors=True)
            raise WarehouseError(f"cannot write the DuckDB catalog in {path.parent}: its path and the temporary "
                                 f"folder {detour.parent} both hold a '?' (set TMPDIR to a folder without one)")
        target = detour / "catalog.duckdb"
    try:
        if base is not None:
            shutil.copyfile(base, target)
        own = con is None
        con = duckdb.connect() if own else con
        try:
            con.execute(f"ATTACH {sql_literal(str(target))} AS cat (STORAGE_VERSION {sql_literal(STORAGE_VERSION)})")
            con.execute("USE cat")
            # one transaction: one write of the file's log, not one (and a sync) per view
            con.execute("BEGIN TRANSACTION")
            create_views(con, snapshot, analytics=base is None, movable=True)
            con.execute("COMMIT")
            con.execute("USE memory")
            con.execute("DETACH cat")
            objects = None
            if read_back:
                con.execute(f"ATTACH {sql_literal(str(target))} AS inspected (READ_ONLY)")  # as stored
                objects = objects_in(con, "inspected")
                con.execute("DETACH inspected")
        finally:
            if own:
                con.close()
        if detour is not None:
            shutil.copyfile(target, path)
    finally:
        if detour is not None:
            shutil.rmtree(detour, ignore_errors=True)
    return objects


def _stamp(path: Path) -> dict:
    """What tells a file newsetl wrote from one changed since: its inode, size and mtime."""
    st = os.stat(path)
    return {"inode": st.st_ino, "stamp": [st.st_size, st.st_mtime_ns]}


def _write_marker(wh: Warehouse, marker: dict) -> None:
    tmp = wh.root / f"{MARKER}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(marker) + "\n")
    os.replace(tmp, wh.root / MARKER)


def ensure_catalog(wh: Warehouse) -> None:
    """Rewrite the catalog if it does not show the current snapshot (a run killed after its commit),
    or was written where the warehouse was before it moved."""
    if wh.remote:
        return
    cur = wh.current()
    if cur is None:
        return
    if catalog_snapshot(wh) != cur.name or (wh.catalog.exists() and moved_from(wh) is not None
                                            and not wh.foreign_catalog()):
        write_catalog(wh, cur)


def expected_objects(snapshot: Path) -> dict[tuple[str, str], str | None]:
    """What the catalog file of `snapshot` holds, as DuckDB lists it once read back: written to
    a file of its own as write_catalog writes it (the storage format rewrites some definitions,
    TIMESTAMP as TIMESTAMP_US: a catalog built in memory would not compare equal). Kept in the
    user's cache (`_cached`, by the snapshot's path too, which the views name): writing it binds
    every view, most of a second of `newsetl status`."""
    cache = _cached("catalog-objects", snapshot, str(snapshot))
    kept = _read_json(cache) if cache else None
    if isinstance(kept, list):
        return {(k, n): d for k, n, d in kept}
    folder = Path(tempfile.mkdtemp(prefix="newsetl-check-"))
    try:
        objects = _write_views_file(folder / "expected.duckdb", snapshot, read_back=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if cache:
        _write_json(cache, [list(o) for o in objects])
    return {(k, n): d for k, n, d in objects}


def inspect_catalog(wh: Warehouse, snapshot: Path) -> tuple[str, list[str]]:
    """Whether news.duckdb shows `snapshot` exactly: (state, details).

    state: "ok"; "missing"; "moved" (written where the warehouse was before a copy or move:
    details has that folder, "" for an older newsetl's catalog); "stale" (it shows another
    snapshot: details has its name, or nothing if unknown); "changed" (views or macros newsetl writes are missing or differ:
    details name them); "foreign" (it holds objects newsetl does not write, or is not a
    catalog of newsetl's: details say what); "unreadable" (it cannot be opened: why)."""
    if not wh.catalog.exists():
        return "missing", []
    theirs = wh.foreign_catalog()
    if theirs:
        return "foreign", [theirs]
    before = moved_from(wh)
    if before is not None:
        return "moved", [before]
    shown = catalog_snapshot(wh)
    if shown != snapshot.name:
        return "stale", [shown] if shown else []
    if as_written(wh):
        return "ok", []
    try:
        actual = {(k, n): d for k, n, d in database_objects(wh.catalog, sql=True)}
    except duckdb.Error as e:
        if wh.catalog_untouched():  # open for writing in a shell, and unchanged so far
            return "ok", []
        return "unreadable", [" ".join(str(e).split())[:200]]
    expected = expected_objects(snapshot)
    own = catalog_object_names()
    extra = [k for k in actual if k not in expected]
    if any(kind not in ("view", "macro") or name not in own for kind, name in extra):
        return "foreign", [f"it holds {', '.join(f'{k} {n}' for k, n in extra)}, which newsetl did not write"]
    details = [f"{k} {n} is missing" for k, n in expected if (k, n) not in actual]
    details += [f"{k} {n} differs from the snapshot's" for k, n in expected
                if (k, n) in actual and actual[(k, n)] != expected[(k, n)]]
    details += [f"{k} {n} is not in this version's catalog" for k, n in extra]
    return ("changed", details) if details else ("ok", [])


def repair_catalog(wh: Warehouse, snapshot: Path, state: str) -> bool:
    """Rewrite the catalog file in a state `inspect_catalog` found (moved, stale, missing, changed) if
    the run lock is free right now and the folder writable; mark an intact one as checked.
    Returns whether the catalog file now shows `snapshot` as newsetl writes it."""
    with wh.try_lock() as held:
        if not held:
            return False
        cur = wh.current()
        if cur != snapshot:
            return False  # a run published meanwhile, and wrote its own catalog
        if state == "ok":  # the file changed, but not its objects (a shell opened it): remember it as checked
            _write_marker(wh, {**read_marker(wh), **_stamp(wh.catalog)})
        else:
            write_catalog(wh, snapshot)
        return True


def moved_note(wh: Warehouse, before: str) -> str:
    """What is said when a catalog written elsewhere was rewritten for this folder."""
    if before:
        return f"the warehouse was at {before} when {wh.catalog.name} was written; rewritten for {wh.root}"
    return (f"{wh.catalog.name} named its files by absolute paths (an older newsetl wrote it); rewritten so that "
            "it reads them wherever the warehouse is moved")


def heal_catalog(warehouse, say=None) -> bool:
    """What read commands do first: rewrite a catalog file that shows another snapshot than
    `current` (a run killed after publishing), that was written where the warehouse was before
    it was copied or moved, or whose views were changed by hand, if that needs no waiting. A run holding the lock writes it itself when it publishes; a folder this
    user may not write is left as it is, and so is a file holding objects newsetl did not
    write (`status` says so). Never raises: the reader reads `current` anyway. Returns
    whether it rewrote it; `say` hears a line when what it rewrote had been changed by hand,
    or moved."""
    try:
        wh = open_warehouse(warehouse)
        if wh.remote:  # no catalog file there
            return False
        cur = wh.current()
        if cur is None or (catalog_snapshot(wh) == cur.name and wh.catalog_untouched() and moved_from(wh) is None):
            return False  # the usual case: a stat and the marker, no DuckDB
        state, details = inspect_catalog(wh, cur)
        if state in ("ok", "moved", "stale", "missing", "changed"):
            done = repair_catalog(wh, cur, state) and state != "ok"
            if done and state == "changed" and say:
                say(f"{wh.catalog} had been changed outside newsetl ({'; '.join(details)}): rewritten for "
                    f"snapshot {cur.name}")
            elif done and state == "moved" and say:
                say(moved_note(wh, details[0]))
            return done
    except (OSError, duckdb.Error, WarehouseError):
        pass
    return False


def unresolved_views(wh: Warehouse) -> list[tuple[str, str]] | None:
    """(view, the first line of DuckDB's error) for every view of news.duckdb that does not
    resolve when the file is opened as the DuckDB shell opens it (as the session's database,
    read-only), each queried with LIMIT 0: DuckDB finds every file a view names, and reads
    their schemas, but no rows. None if the file cannot be opened (it is open for writing in a
    shell: inspect_catalog says so)."""
    try:
        con = duckdb.connect(str(wh.catalog), read_only=True)
    except duckdb.Error:
        return None
    def failing(names):
        out = []
        for name in names:
            try:
                con.execute(f'SELECT * FROM "{name.replace(chr(34), chr(34) * 2)}" LIMIT 0').fetchall()
            except duckdb.Error as e:
                out.append((name, (str(e).splitlines() or [""])[0]))
        return out

    try:
        names = [n for (n,) in con.execute("SELECT view_name FROM duckdb_views() WHERE database_name = "
                                           "current_database() AND NOT internal ORDER BY view_name").fetchall()]
        tables = {t.name for t in WAREHOUSE_TABLES}
        # the views that name files first: when they all resolve, so do the analytics views over
        # them, whose definitions inspect_catalog compares with the snapshot's (binding each of
        # them is most of `newsetl status`); when one does not, or is gone, every view is tried, to
        # name them all
        bad = failing([n for n in names if n in tables])
        if bad or not tables <= set(names):  # a table's view dropped: the views over it do not resolve
            bad = failing(names)
    finally:
        con.close()
    return bad


# -- ad-hoc SQL: the snapshot's files can be read, nothing can be written ----------------------

class ReadOnlySQL(ValueError):
    """A statement that `newsetl sql` does not run: it could write (COPY, ATTACH, SET ...)."""


# statements that only read: a query, DESCRIBE/SHOW/SUMMARIZE (parsed as queries), PIVOT
# (several statements in one); EXPLAIN only of a query (EXPLAIN ANALYZE runs what it explains)
_READ_ONLY = {"SELECT", "MULTI"}
_EXPLAIN = re.compile(r"\s*EXPLAIN\s+(?:ANALY[SZ]E\s+|\([^)]*\)\s*)?", re.IGNORECASE)


def check_read_only(con: duckdb.DuckDBPyConnection, query: str) -> None:
    """Raise ReadOnlySQL, one line, unless every statement of `query` only reads."""
    for st in con.extract_statements(query):
        kind = st.type.name
        if kind == "EXPLAIN":
            inner = _EXPLAIN.sub("", st.query, count=1)
            kinds = {s.type.name for s in con.extract_statements(inner)} if inner != st.query else {"?"}
            if kinds <= _READ_ONLY:
                continue
        elif kind in _READ_ONLY:
            continue
        words = " ".join(st.query.split()[:2]) or kind
        raise ReadOnlySQL(f"{words} ...: newsetl sql runs queries only (SELECT, WITH, DESCRIBE, SUMMARIZE, "
                          "EXPLAIN, PIVOT) and leaves the warehouse and its catalog as they are; "
                          "save a result with --out FILE")


def sql_error_lines(con: duckdb.DuckDBPyConnection, query: str, error: Exception) -> list[str]:
    """DuckDB's whole message for `error`, which `con.sql(query)` raised, as lines: its hint
    (`Did you mean "articles"?`, `Candidate bindings: ...`) and, where DuckDB places the error in
    the query, the `LINE n:` and the caret under it, as the DuckDB shell prints them.

    DuckDB's relational API (con.sql) leaves the place out of a catalog or binder error; the same
    single statement given to con.execute fails at the same place (at binding, before anything
    runs) with it in. A query of several statements keeps the message as con.sql gave it."""
    text = str(error)
    if (isinstance(error, (duckdb.CatalogException, duckdb.BinderException)) and "\nLINE " not in text
            and len(con.extract_statements(query)) == 1):
        try:
            con.execute(query)  # the same statement: the same error, placed
        except duckdb.Error as again:
            if type(again) is type(error) and str(again).startswith(text):
                text = str(again)
    return text.split("\n")


def _seal(con: duckdb.DuckDBPyConnection, files: dict) -> None:
    """After the views are made: DuckDB may open the snapshot's files (as the views name them,
    and as themselves) and its own spill folder, nothing else; and no setting can be changed
    back. DuckDB cannot tell reading from writing in this list (an allowed file can be
    overwritten by COPY ... TO): check_read_only refuses the statements that write."""
    allowed = set()
    for paths in files.values():
        for p in paths:
            allowed.update((str(p), glob_escaped(p)))
    spill = Path(tempfile.gettempdir()) / f"newsetl-sql-{uuid.uuid4().hex}"  # DuckDB makes and removes it
    con.execute(f"SET temp_directory = {sql_literal(str(spill))}")
    con.execute(f"SET allowed_directories = [{sql_literal(str(spill) + os.sep)}]")
    con.execute(f"SET allowed_paths = [{', '.join(sql_literal(a) for a in sorted(allowed))}]")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


class UnreadableSnapshot(WarehouseError):
    """A file the snapshot names is missing or damaged (the warehouse was copied in part)."""


def connect(warehouse="warehouse", *, snapshot=None, sealed: bool = False,
            for_sql: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with every view of the warehouse's current snapshot
    (a folder, or a URL: s3://bucket/prefix), or of the kept snapshot named `snapshot` (its
    id, as `newsetl rollback --list` shows it; store.NoSuchSnapshot names the kept ones).

    `sealed`: for SQL that someone typed (newsetl sql): in UTC, and able to read the
    snapshot's files only, write no file, attach no database and change no setting.
    `for_sql`: only the analytics views that this SQL text can use (`views_for`); every
    table's view all the same."""
    wh = open_warehouse(warehouse)
    con = duckdb.connect()
    try:
        if snapshot is None or isinstance(snapshot, str):
            snapshot = wh.snapshot(snapshot)  # a folder, or in object storage the pointer's document
        if wh.remote:  # the pointer names the files: on S3 read from this machine's cache of them
            files = wh.local_files(snapshot)
            if files is None:  # another store, or no cache here: DuckDB reads them through fsspec, no extension
                files = wh.reader_files(snapshot)
                wh.register(con, files)
        else:
            files = table_files(snapshot)
        try:
            create_views(con, None, files, analytics=True if for_sql is None else for_sql)
        except (duckdb.IOException, duckdb.InvalidInputException) as e:  # a file missing or damaged
            raise UnreadableSnapshot(
                f"the warehouse's snapshot cannot be read: {(str(e).splitlines() or [''])[0]} "
                f"(`newsetl status --warehouse {warehouse}` says what is wrong and how to fix it)") from e
        if sealed:
            con.execute("SET TimeZone = 'UTC'")
            _seal(con, files)
    except BaseException:
        con.close()
        raise
    return con


def write_url_catalog(warehouse, path) -> Path:
    """A DuckDB file at `path` (local) whose views read the warehouse's current snapshot by its
    URLs, for the DuckDB shell. The shell reads s3:// with its httpfs extension, which it
    installs itself when online, and credentials from a secret (docs/scaling.md)."""
    wh = open_warehouse(warehouse)
    if not wh.remote:
        raise ValueError(f"--catalog is for a warehouse in object storage; {wh.root} has its own {CATALOG_NAME}")
    files = wh.reader_files()
    path = Path(path).expanduser().absolute()
    if path.exists():  # replaced only if it is such a catalog: never a database or file of the user's
        try:
            theirs = [f"{k} {n}" for k, n in database_objects(path)
                      if k not in ("view", "macro") or n not in catalog_object_names()]
        except duckdb.Error:
            theirs = ["something that is not a DuckDB database newsetl wrote"]
        if theirs:
            raise WarehouseError(f"--catalog {path}: that file holds {', '.join(theirs[:3])}, which newsetl does "
                                 "not write; it was left as it is (give a new file name)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect()
    try:
        wh.register(con, files)  # the views are checked as they are made: read through fsspec here
        con.execute(f"ATTACH {sql_literal(str(tmp))} AS cat (STORAGE_VERSION {sql_literal(STORAGE_VERSION)})")
        con.execute("USE cat")
        create_views(con, None, files)
        con.execute("USE memory")
        con.execute("DETACH cat")
    finally:
        con.close()
    os.replace(tmp, path)
    return path


# -- finding one's way: what the warehouse holds, and what a column means ------------------

def _first_sentence(text: str) -> str:
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


def tables(warehouse, snapshot: str | None = None):
    """Every table and analytics view: its kind, its row count and what a row is (export.Rows).
    A table's count is the one its snapshot recorded (store.recorded_counts); a view's is kept
    in the user's cache (`_view_keys`): counting runs the view. When both tell, DuckDB is not
    started."""
    from .export import Rows

    wh = open_warehouse(warehouse)
    snapshot = wh.snapshot(snapshot)  # one snapshot for the keys and the counts (in a bucket: the pointer's)
    keys = {} if wh.remote else _view_keys(table_files(snapshot))
    base = _cache_dir("view-rows")
    view_rows = {name: _read_json(base / f"{key}.json") for name, key in keys.items()}
    table_rows = None if wh.remote else recorded_counts(snapshot)
    if table_rows is not None:  # the checks' views, as the run's check stage counted them
        view_rows.update({n: c for n, c in _recorded_view_counts(snapshot).items()
                          if not isinstance(view_rows.get(n), int)})
    missing = [v.name for v in VIEWS if not isinstance(view_rows.get(v.name), int)]
    if missing or table_rows is None:
        con = connect(warehouse, snapshot=snapshot, for_sql=" ".join(missing))  # the views to count, what they use
        try:
            def count(name):
                (n,), = con.execute(f'SELECT count(*) FROM "{name}"').fetchall()
                return n

            for name in missing:
                view_rows[name] = count(name)
                if name in keys:
                    _write_json(base / f"{keys[name]}.json", view_rows[name])
            table_rows = {t.name: count(t.name) for t in WAREHOUSE_TABLES}
        finally:
            con.close()
    rows = [(t.name, "table", table_rows[t.name], t.grain) for t in WAREHOUSE_TABLES]
    rows += [(v.name, "view", view_rows[v.name], _first_sentence(v.about)) for v in VIEWS]
    return Rows(["name", "kind", "rows", "about"], ["VARCHAR", "VARCHAR", "BIGINT", "VARCHAR"], rows)


def _recorded_view_counts(snapshot: Path) -> dict[str, int]:
    """The views' rows its check stage recorded in snapshot.json (checks._check_view_counts),
    if counted with these views' SQL and this DuckDB; else nothing."""
    try:
        rec = read_info(snapshot).get("view_counts") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    if not isinstance(rec, dict) or rec.get("views") != views_digest() or rec.get("engine") != engine_version():
        return {}
    counts = rec.get("counts")
    return {n: c for n, c in counts.items() if isinstance(c, int)} if isinstance(counts, dict) else {}


def _view_keys(files: dict, tables: bool = False) -> dict[str, str]:
    """Per analytics view, a digest of all its rows depend on: the SQL of the views' files it
    needs (views_for), DuckDB's version, and the files of the tables that SQL names, each by
    inode, size and modification time (newsetl never changes a file it wrote, and a run that
    changes nothing links the last snapshot's files into its own: after it, only the views of
    the runs and the checks are counted again). A file that cannot be read leaves its views out.
    With `tables`, each table too: its files and DuckDB's version."""
    every = view_sql_files()
    stamps: dict = {}
    out = {}
    if tables:
        for t in WAREHOUSE_TABLES:
            try:
                deps = [_file_stamp(p) for p in files.get(t.name, [])]
            except OSError:
                continue
            out[t.name] = hashlib.sha256(json.dumps([t.name, deps, engine_version()]).encode()).hexdigest()[:32]
    for v in VIEWS:
        texts = views_for(v.name, every)
        words = set().union(*(sql_words(t) for _, t in texts))
        try:
            deps = [(t, [stamps.get(p) or stamps.setdefault(p, _file_stamp(p)) for p in files[t]])
                    for t in sorted(files) if t in words]
        except OSError:
            continue
        out[v.name] = hashlib.sha256(json.dumps([v.name, [t for _, t in texts], deps, engine_version()])
                                     .encode()).hexdigest()[:32]
    return out


def _file_stamp(path: Path) -> list:
    st = os.stat(path)
    return [path.name, st.st_ino, st.st_size, st.st_mtime_ns]


def _cache_dir(kind: str) -> Path:
    """Where read commands keep what they computed from a snapshot, in the user's cache folder."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "newsetl" / kind


def _cached(kind: str, snapshot: Path, *more: str) -> Path | None:
    """Where something computed from `snapshot` alone is kept (`status`: the catalog objects its
    views are, which binding every view gives): it changes only with the snapshot (never
    changed once published), the views' SQL and DuckDB, and `more`; the file is named by a
    digest of them all, so a warehouse that is rebuilt, or a newsetl upgraded, does not find
    what was kept for another. None: the snapshot has no snapshot.json to tell it by."""
    try:
        info = (snapshot / "_state" / "snapshot.json").read_bytes()
    except OSError:
        return None
    key = hashlib.sha256(b"\0".join([info, views_digest().encode(), engine_version().encode(),
                                      *(m.encode() for m in more)])).hexdigest()
    return _cache_dir(kind) / f"{key[:32]}.json"


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, value) -> None:
    """Best effort: a cache that cannot be written is computed again next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(value))
        os.replace(tmp, path)
    except OSError:
        pass


def describe(warehouse, name: str, snapshot: str | None = None):
    """The columns of a table or view: name, DuckDB type, and the data dictionary's meaning (export.Rows)."""
    from .export import Rows

    docs = {c.name: c.doc for c in (BY_NAME[name].columns if name in BY_NAME else
                                     VIEWS_BY_NAME[name].columns if name in VIEWS_BY_NAME else ())}
    if not docs:
        from .words import close_match

        known = [t.name for t in WAREHOUSE_TABLES] + [v.name for v in VIEWS]
        raise ValueError(f"no table or view {name!r}{close_match(name, known)}: the warehouse has {', '.join(known)}")
    wh = open_warehouse(warehouse)
    snapshot = wh.snapshot(snapshot)
    # DuckDB's types are kept in the user's cache as a view's count is (`_view_keys`)
    key = None if wh.remote else _view_keys(table_files(snapshot), tables=True).get(name)
    cols = _read_json(_cache_dir("describe") / f"{key}.json") if key else None
    if not isinstance(cols, list):
        con = connect(warehouse, snapshot=snapshot, for_sql=f'"{name}"')
        try:
            cols = [list(c[:2]) for c in con.execute(f'DESCRIBE "{name}"').fetchall()]
        finally:
            con.close()
        if key:
            _write_json(_cache_dir("describe") / f"{key}.json", cols)
    return Rows(["column", "type", "meaning"], ["VARCHAR", "VARCHAR", "VARCHAR"],
                [(c[0], c[1].replace("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"), docs.get(c[0])) for c in cols])
