"""Flatten: records -> staging tables, column-wise, with explicit schemas.

Two passes, so the per-value work runs in Arrow's C++ rather than in Python:

1. `BatchBuilder.add` walks each record's structure (lists, mappings, unknown
   keys, identity) and appends the *raw* values to one list per column.
2. `BatchBuilder.tables` types each column at once: when every value already
   has the right Python type (nearly always), one Arrow conversion does it and
   Arrow kernels strip, lower-case and find the few strings that need HTML
   unescaping or repair; otherwise the column is typed value by value with
   `clean.as_*`, and each value that cannot be typed becomes NULL plus a
   data_issues row whose field path is rebuilt from the row's positions.

A record's `related` list, most of its bytes, can skip Python altogether: when
the fast parser left it as JSON (`Extracted.related_json`), pass 2 reads the
whole batch's lists with Arrow's strict JSON reader and flattens them with
Arrow kernels (see "related lists from JSON" below); a list it cannot vouch
for goes through pass 1's Python walk after all.

`frames()` gives the same tables as pandas DataFrames (Arrow-backed, so the
declared types hold). Choosing the winner among files with one article_id is
the build stage's job, since it needs every batch.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import NamedTuple

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from . import fastyaml, safeyaml
from . import schema as S
from .clean import (
    INT32_MAX,
    INT32_MIN,
    as_bool,
    as_domain,
    as_int,
    as_list,
    as_mapping,
    as_name,
    as_str,
    as_text,
    as_timestamp,
    as_unstripped,
    to_json,
)
from .extract import Extracted, unexpected

KNOWN = frozenset(
    "category title excerpt publishedDateTime originalUrl webUrl ampWebUrl cdnAmpWebUrl type "
    "quality heat published featuredContent secured provider topics images related".split()
)
KNOWN_PROVIDER = frozenset(("name", "domain", "images"))
KNOWN_IMAGE = frozenset(("url", "width", "height", "isCached", "title"))
KNOWN_RELATED = frozenset(
    "title excerpt publishedDateTime webUrl ampWebUrl cdnAmpWebUrl type provider quality images".split()
)
KNOWN_LINK_PROVIDER = frozenset(("name", "domain"))

# column -> (kind, YAML key) of the columns typed in pass 2; the others are final already
ARTICLE_RAW = {
    "amp_url": ("str", "ampWebUrl"),
    "cdn_amp_url": ("str", "cdnAmpWebUrl"),
    "title": ("text", "title"),
    "excerpt": ("text", "excerpt"),
    "category": ("str", "category"),
    "type": ("str", "type"),
    "published_at": ("ts", "publishedDateTime"),
    "quality": ("int", "quality"),
    "heat": ("int", "heat"),
    "is_published": ("bool", "published"),
    "provider_domain": ("domain", "provider.domain"),
    "provider_name": ("name", "provider.name"),
    "featured_content": ("str", "featuredContent"),
    "secured": ("str", "secured"),
}
IMAGE_RAW = {
    "url": ("str", "url"),
    "width": ("int", "width"),
    "height": ("int", "height"),
    "is_cached": ("bool", "isCached"),
    "title": ("text", "title"),
}
LINK_RAW = {
    "url": ("str", "webUrl"),
    "title": ("text", "title"),
    "excerpt": ("text", "excerpt"),
    "published_at": ("ts", "publishedDateTime"),
    "type": ("str", "type"),
    "provider_domain": ("domain", "provider.domain"),
    "provider_name": ("name", "provider.name"),
    "quality": ("int", "quality"),
    "amp_url": ("str", "ampWebUrl"),
    "cdn_amp_url": ("str", "cdnAmpWebUrl"),
}

_NONE = type(None)
_SLOW = {"str": as_str, "text": as_text, "name": as_name, "domain": as_domain,
         "int": as_int, "bool": as_bool, "ts": as_timestamp}
_FAST_TYPES = {
    "str": ({str, _NONE}, pa.string()), "text": ({str, _NONE}, pa.string()),
    "name": ({str, _NONE}, pa.string()), "domain": ({str, _NONE}, pa.string()),
    "int": ({int, _NONE}, pa.int64()), "bool": ({bool, _NONE}, pa.bool_()),
    "ts": ({dt.datetime, _NONE}, S.TS),
}
# strings that need Python after Arrow's strip: HTML entities, mojibake, percent-escapes
_NEEDS_PYTHON = {"text": "[&âÃÂ]", "name": "[&âÃÂ%]"}
_NULL_STR = pa.scalar(None, pa.string())


def article_id_for(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def _digest(value) -> str | None:
    """A short digest of a raw list: equal lists give equal child rows.

    sha256, not blake2b: OpenSSL's sha256 uses the CPU's SHA instructions and
    is the faster of the two here, and this runs on 20 KB per record."""
    if value is None:
        return None
    data = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS, default=str)
    return hashlib.sha256(data).hexdigest()[:24]


def _json_digest(part: bytes) -> str:
    """The digest of a list the fast parser left as JSON (see `_digest`)."""
    return hashlib.sha256(part).hexdigest()[:24]


def type_column(values: list, kind: str) -> tuple[pa.Array, list[tuple[int, str, str]]]:
    """Raw values -> typed Arrow array, and (row, raw value, problem) for values set to NULL.

    A value's typed result depends on the value alone, never on the other
    values of its batch: text goes through the same Arrow cleaning either way.
    """
    types, arrow_type = _FAST_TYPES[kind]
    if arrow_type == pa.string():
        bad = []
        if not set(map(type, values)) <= types:
            issues: list = []
            converted = []
            for i, v in enumerate(values):
                n = len(issues)
                converted.append(as_unstripped(v, issues, ""))
                if len(issues) > n:
                    bad.append((i, issues[-1][1], issues[-1][2]))
            values = converted
        return _clean_strings(pa.array(values, arrow_type), kind), bad
    if set(map(type, values)) <= types:
        arr = pa.array(values, arrow_type)
        if kind != "int":
            return arr, []
        lo, hi = pc.min_max(arr).values()
        if lo.as_py() is None or (-(2**31) <= lo.as_py() and hi.as_py() <= 2**31 - 1):
            return arr.cast(pa.int32()), []
    # some value has another type: type each value, noting the ones that fail
    fn, out, bad, issues = _SLOW[kind], [], [], []
    for i, v in enumerate(values):
        n = len(issues)
        out.append(fn(v, issues, ""))
        if len(issues) > n:
            bad.append((i, issues[-1][1], issues[-1][2]))
    target = pa.int32() if kind == "int" else arrow_type
    return pa.array(out, target), bad


def _clean_strings(raw: pa.Array, kind: str) -> pa.Array:
    arr = pc.utf8_trim_whitespace(raw)
    if kind == "domain":
        arr = pc.utf8_lower(arr)
        # Arrow's lower-casing is clean.normalize_domain for plain ASCII only: the rest
        # (non-ASCII, punycode labels, a trailing dot) goes through the one definition
        odd = pc.or_(pc.or_(pc.invert(pc.string_is_ascii(arr)), pc.ends_with(arr, ".")),
                     pc.match_substring(arr, "xn--"))
        odd = pc.fill_null(odd, False)
        if pc.any(odd).as_py():
            from .clean import normalize_domain

            fixed = [normalize_domain(v) for v in raw.filter(odd).to_pylist()]
            arr = pc.replace_with_mask(arr, odd, pa.array(fixed, pa.string()))
    pattern = _NEEDS_PYTHON.get(kind)
    if pattern:
        mask = pc.fill_null(pc.match_substring_regex(arr, pattern), False)
        if pc.any(mask).as_py():
            fn = _SLOW[kind]
            fixed = [fn(v, [], "") for v in raw.filter(mask).to_pylist()]
            arr = pc.replace_with_mask(arr, mask, pa.array(fixed, pa.string()))
    empty = pc.fill_null(pc.equal(arr, ""), False)
    if pc.any(empty).as_py():
        arr = pc.if_else(empty, _NULL_STR, arr)
    return arr

# -- related lists from JSON -----------------------------------------------------
#
# The related links and their images are most of a record (about 30 links and
# 20 images in a 20 KB file): decoding them into Python objects and walking
# them cost more than parsing the YAML. For fast-parsed records the parser
# hands the list over as JSON (fastyaml.load_fast_split) and Arrow's JSON
# reader types a whole batch of them in C++.
#
# The rows are the Python path's: the reader is strict (explicit schema: an
# unknown key, a key given twice or a value of another JSON type is an error),
# and what it cannot vouch for is checked after reading: a timestamp not in the
# plain `2021-02-12T20:25:00Z` form, any other string that may have been a plain
# timestamp (PyYAML makes it a datetime), an integer past int32. A record that
# fails anything is parsed again by fastyaml.load and goes through `_related`.

_JSON_TYPE = {"str": pa.string(), "text": pa.string(), "name": pa.string(), "domain": pa.string(),
              "int": pa.int64(), "bool": pa.bool_(), "ts": pa.string()}
_JSON_IMAGE = pa.struct([(key, _JSON_TYPE[kind]) for kind, key in IMAGE_RAW.values()])
_JSON_LINK = pa.struct(
    [(key, _JSON_TYPE[kind]) for kind, key in LINK_RAW.values() if "." not in key]
    + [("provider", pa.struct([(key.split(".", 1)[1], _JSON_TYPE[kind]) for kind, key in LINK_RAW.values() if "." in key])),
       ("images", pa.list_(_JSON_IMAGE))]
)
assert {f.name for f in _JSON_LINK} == KNOWN_RELATED and {f.name for f in _JSON_IMAGE} == KNOWN_IMAGE
_JSON_PARSE = pj.ParseOptions(explicit_schema=pa.schema([("related", pa.list_(_JSON_LINK))]),
                              unexpected_field_behavior="error", newlines_in_values=True)
_PLAIN_TS = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"  # what PyYAML gives a UTC datetime
_MAYBE_TS = "^[0-9]{4}-"  # every plain timestamp starts so; a plain string starts with a letter
_NOT_BLANK = "[!-~]"  # a visible ASCII character: surely not blank for str.strip()


def _read_json_lists(parts: list[bytes]) -> tuple[pa.ListArray, list[int]]:
    """Arrow's strict reading of `"related": ...` JSON texts: (the lists it read, in
    order, and the indices of the parts it refused)."""

    def read(chunk: list[bytes]) -> pa.ListArray:
        data = b"\n".join([b"{" + p + b"}" for p in chunk])
        opts = pj.ReadOptions(use_threads=False, block_size=len(data) + 1)  # one block: one chunk
        return pj.read_json(pa.BufferReader(data), read_options=opts, parse_options=_JSON_PARSE).column(0).combine_chunks()

    try:
        return read(parts), []
    except (pa.ArrowException, OverflowError):
        pass  # some part is odd: find which, one by one
    arrays, refused = [], []
    for i, p in enumerate(parts):
        try:
            arrays.append(read([p]))
        except (pa.ArrowException, OverflowError):
            refused.append(i)
    return (pa.concat_arrays(arrays) if arrays else pa.array([], pa.list_(_JSON_LINK))), refused


def _children(lists: pa.ListArray) -> tuple[pa.Array, np.ndarray, np.ndarray, np.ndarray]:
    """Items of non-null lists: (items, the index of each item's list, its position
    in that list, whether the item is not null)."""
    items = pc.list_flatten(lists)
    parent = pc.list_parent_indices(lists).to_numpy()
    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy()
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    position = np.arange(len(items)) - starts[parent]
    return items, parent, position, items.is_valid().to_numpy(zero_copy_only=False)


def _suspect(struct: pa.StructArray, kinds: dict[str, str]) -> np.ndarray:
    """Rows of `struct` that the JSON path cannot vouch for (see above)."""
    bad = None
    for key, kind in kinds.items():
        arr = struct.field(key)
        if kind == "int":
            hit = pc.or_(pc.less(arr, INT32_MIN), pc.greater(arr, INT32_MAX))
        elif kind == "ts":
            hit = pc.invert(pc.match_substring_regex(arr, _PLAIN_TS))
        elif kind == "bool":
            continue
        else:
            hit = pc.match_substring_regex(arr, _MAYBE_TS)
        bad = hit if bad is None else pc.or_kleene(bad, hit)
    return pc.fill_null(bad, False).to_numpy(zero_copy_only=False)


def _typed_json(arr: pa.Array, kind: str) -> pa.Array:
    """A column read from JSON, typed as type_column types the same values."""
    if kind == "int":
        return arr.cast(pa.int32())  # in range: checked by _suspect
    if kind == "bool":
        return arr
    if kind == "ts":
        return pc.strptime(arr, format="%Y-%m-%dT%H:%M:%SZ", unit="us").cast(S.TS)
    return _clean_strings(arr, kind)


_LINK_KINDS = {key: kind for kind, key in LINK_RAW.values() if "." not in key}
_LINK_PROVIDER_KINDS = {key.split(".", 1)[1]: kind for kind, key in LINK_RAW.values() if "." in key}
_IMAGE_KINDS = {key: kind for kind, key in IMAGE_RAW.values()}


class _Deferred(NamedTuple):
    """A record whose related list is still JSON, and where its counts go."""

    file_row: int
    row: int  # in articles
    article_id: str
    extra: "_Extra"  # its unknown keys so far: the Python path may add some
    ex: Extracted


class _Table:
    """Column lists of one staging table: final values, and raw ones typed later."""

    def __init__(self, table: S.Table, raw: dict[str, tuple[str, str]]):
        self.table = table
        self.raw = raw
        self.cols = {n: [] for n in table.names}

    def __getitem__(self, name: str) -> list:
        return self.cols[name]

    def typed(self, field_path) -> tuple[pa.Table, list[tuple[int, str, str, str]]]:
        """The Arrow table, and (row, field, raw, problem) for every value that could not be typed."""
        if not self.cols[self.table.names[0]]:  # nothing to type (the related lists went the JSON way)
            return self.table.schema.empty_table(), []
        arrays, problems = [], []
        for f in self.table.schema:
            values = self.cols[f.name]
            if f.name in self.raw:
                kind, key = self.raw[f.name]
                arr, bad = type_column(values, kind)
                problems.extend((row, field_path(row, key), raw, problem) for row, raw, problem in bad)
                arrays.append(arr)
            else:
                arrays.append(pa.array(values, f.type))
        return pa.Table.from_arrays(arrays, schema=self.table.schema), problems


class _Extra:
    """The keys of one record that newsetl does not know, nested as in the record.

    `articles.extra` is the front matter with every known key taken out: an
    unknown top-level key is a key of it, an unknown key of the provider is under
    `provider`, one of the third image under `images` at position 2 of a list
    (null where an item has no unknown key), and so on down `related`. Keys are
    written by `clean.json_key`, so no two YAML keys collide."""

    __slots__ = ("root",)

    def __init__(self):
        self.root: dict = {}

    def add(self, mapping: dict, known: frozenset, where: tuple = ()) -> None:
        """Put the unknown keys of `mapping`, found at `where` (keys and list positions)."""
        node = None
        for k, v in mapping.items():
            if k not in known:
                if node is None:
                    node = self._at(where)
                node[k] = v

    def _at(self, where: tuple) -> dict:
        node = self.root
        for i, step in enumerate(where):
            if step.__class__ is int:
                while len(node) <= step:
                    node.append(None)
                if node[step] is None:
                    node[step] = {}
                node = node[step]
            else:
                node = node.setdefault(step, [] if i + 1 < len(where) and where[i + 1].__class__ is int else {})
        return node

    def json(self) -> str | None:
        return to_json(self.root) if self.root else None


_NULL_ITEM = "empty list item (null): skipped"


def _item(value, issues: list, field: str) -> dict | None:
    """A list item that should be a mapping; None (and an issue) when it is not."""
    if value.__class__ is dict:
        return value
    if value is None:
        issues.append((field, "null", _NULL_ITEM))
    else:
        as_mapping(value, issues, field)
    return None


class BatchBuilder:
    """Accumulates the staging rows of a batch of files."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.files = _Table(S.STG_FILES, {})
        self.articles = _Table(S.STG_ARTICLES, ARTICLE_RAW)
        self.images = _Table(S.STG_IMAGES, IMAGE_RAW)
        self.related_links = _Table(S.STG_RELATED_LINKS, LINK_RAW)
        self.related_images = _Table(S.STG_RELATED_IMAGES, IMAGE_RAW)
        # structural issues found in pass 1: (source_path, article_id, field, raw, problem)
        self.issues: list[tuple[str, str, str, str, str]] = []
        self._deferred: list[_Deferred] = []
        self._json_tables: dict[str, list[pa.Table]] = {"stg_related_links": [], "stg_related_images": []}
        # (list.append, key) per raw column, bound once: this loop runs for every link and image
        self._image_appends = [(self.images.cols[c].append, key) for c, (_k, key) in IMAGE_RAW.items()]
        self._related_image_appends = [(self.related_images.cols[c].append, key) for c, (_k, key) in IMAGE_RAW.items()]
        link = self.related_links.cols
        self._link_appends = [(link[c].append, key) for c, (_k, key) in LINK_RAW.items() if "." not in key]
        self._link_provider_appends = [(link[c].append, key.split(".", 1)[1])
                                       for c, (_k, key) in LINK_RAW.items() if "." in key]

    # -- pass 1: one file ---------------------------------------------------------

    def add(self, ex: Extracted) -> None:
        """Add one file's rows. Whatever goes wrong while flattening one record takes
        back that record's rows and rejects the file: it never fails the batch."""
        marks = self._marks()
        try:
            self._add(ex)
        except Exception as e:  # noqa: BLE001 - one file must never stop its batch
            self._rollback(marks)
            self._add(Extracted(ex.file, ex.sha256, ex.size, error=unexpected("flatten", e)))

    def _marks(self) -> tuple:
        return ([{n: len(c) for n, c in t.cols.items()} for t in self._all_tables()],
                len(self.issues), len(self._deferred))

    def _rollback(self, marks: tuple) -> None:
        sizes, issues, deferred = marks
        for t, size in zip(self._all_tables(), sizes):
            for n, c in t.cols.items():
                del c[size[n]:]
        del self.issues[issues:]
        del self._deferred[deferred:]

    def _all_tables(self) -> tuple:
        return self.files, self.articles, self.images, self.related_links, self.related_images

    def _add(self, ex: Extracted) -> None:
        f = self.files
        f["source_path"].append(ex.file.source_path)
        f["sha256"].append(ex.sha256)
        f["bytes"].append(ex.size)
        f["mtime_ns"].append(ex.file.mtime_ns)
        f["run_id"].append(self.run_id)
        if ex.record is None:
            f["status"].append("rejected")
            f["error"].append(ex.error)
            f["article_id"].append(None)
            f["images_digest"].append(None)
            f["related_digest"].append(None)
            f["parser"].append("none")
            return
        f["status"].append("parsed")
        f["error"].append(None)
        f["article_id"].append(self._record(ex))
        f["images_digest"].append(_digest(ex.record.get("images")))
        if ex.related_json is None:
            f["related_digest"].append(_digest(ex.record.get("related")))
        else:
            f["related_digest"].append(_json_digest(ex.related_json))
        f["parser"].append("fast" if ex.fast else "pyyaml")

    def _record(self, ex: Extracted) -> str:
        rec = ex.record
        sp = ex.file.source_path
        issues: list = list(ex.issues)  # (field, raw, problem), for this record
        extra = _Extra()
        if not rec.keys() <= KNOWN:
            extra.add(rec, KNOWN)
        get = rec.get

        # identity is needed now, so these two are typed here rather than in pass 2
        web_url = as_str(get("webUrl"), issues, "webUrl")
        original_url = as_str(get("originalUrl"), issues, "originalUrl")
        url = web_url or original_url
        article_id = article_id_for(url if url is not None else ex.file.rel_path)

        provider = get("provider")
        if type(provider) is not dict:
            provider = as_mapping(provider, issues, "provider")
        elif not provider.keys() <= KNOWN_PROVIDER:
            extra.add(provider, KNOWN_PROVIDER, ("provider",))
        logo = None
        if "images" in provider:
            for i, img in enumerate(as_list(provider["images"], issues, "provider.images")):
                img = _item(img, issues, f"provider.images[{i}]")
                if img is None:
                    continue
                if not img.keys() <= KNOWN_IMAGE:
                    extra.add(img, KNOWN_IMAGE, ("provider", "images", i))
                if logo is None:
                    logo = as_str(img.get("url"), issues, f"provider.images[{i}].url")

        topics = []
        for i, t in enumerate(as_list(get("topics"), issues, "topics")):
            if t is None:
                issues.append((f"topics[{i}]", "null", _NULL_ITEM))
                continue
            t = as_text(t, issues, f"topics[{i}]")
            if t is not None:
                topics.append(t)

        image_count = self._images(article_id, sp, get("images"), issues, extra)
        a = self.articles
        if ex.related_json is None:
            related_count = self._related(article_id, sp, get("related"), issues, extra)
        else:  # counted (and extra completed, if it must) by _related_from_json
            related_count = None
            self._deferred.append(_Deferred(len(self.files["source_path"]) - 1, len(a["article_id"]), article_id, extra, ex))

        a["article_id"].append(article_id)
        a["url"].append(url)
        a["web_url"].append(web_url)
        a["original_url"].append(original_url)
        a["provider_logo_url"].append(logo)
        a["topics"].append(topics)
        a["image_count"].append(image_count)
        a["related_count"].append(related_count)
        a["extra"].append(extra.json())
        body = ex.body
        a["body"].append(body if body and not body.isspace() else None)
        a["source_path"].append(sp)
        a["source_sha256"].append(ex.sha256)
        a["run_id"].append(self.run_id)
        for col, (_kind, key) in ARTICLE_RAW.items():
            if "." in key:  # provider.domain, provider.name
                a[col].append(provider.get(key.split(".", 1)[1]))
            else:
                a[col].append(get(key))

        for field, raw, problem in issues:
            self.issues.append((sp, article_id, field, raw, problem))
        return article_id

    def _images(self, article_id: str, sp: str, images, issues: list, extra: _Extra) -> int:
        if images is None:
            return 0
        images = as_list(images, issues, "images")
        cols = self.images.cols
        aid, spc, pos = cols["article_id"].append, cols["source_path"].append, cols["position"].append
        appends = self._image_appends
        n = 0
        for i, img in enumerate(images):
            if type(img) is not dict:
                _item(img, issues, f"images[{i}]")
                continue
            if not img.keys() <= KNOWN_IMAGE:
                extra.add(img, KNOWN_IMAGE, ("images", i))
            aid(article_id)
            spc(sp)
            pos(i)
            g = img.get
            for app, key in appends:
                app(g(key))
            n += 1
        return n

    def _related(self, article_id: str, sp: str, related, issues: list, extra: _Extra) -> int:
        if related is None:
            return 0
        related = as_list(related, issues, "related")
        rc, ric = self.related_links.cols, self.related_images.cols
        r_aid, r_sp, r_pos, r_nimg = (rc[c].append for c in ("article_id", "source_path", "position", "image_count"))
        i_aid, i_sp, i_rpos, i_pos = (ric[c].append for c in ("article_id", "source_path", "related_position", "position"))
        link_appends, prov_appends, img_appends = self._link_appends, self._link_provider_appends, self._related_image_appends
        n = 0
        for i, link in enumerate(related):
            if type(link) is not dict:
                _item(link, issues, f"related[{i}]")
                continue
            if not link.keys() <= KNOWN_RELATED:
                extra.add(link, KNOWN_RELATED, ("related", i))
            g = link.get
            web = g("webUrl")
            if web is None or (type(web) is str and not web.strip()):
                issues.append((f"related[{i}].webUrl", web or "", "missing: the related link has no webUrl"))
            prov = g("provider")
            if type(prov) is not dict:
                prov = as_mapping(prov, issues, f"related[{i}].provider")
            elif not prov.keys() <= KNOWN_LINK_PROVIDER:
                extra.add(prov, KNOWN_LINK_PROVIDER, ("related", i, "provider"))
            n_img = 0
            imgs = g("images")
            if imgs is not None:
                for j, img in enumerate(as_list(imgs, issues, f"related[{i}].images")):
                    if type(img) is not dict:
                        _item(img, issues, f"related[{i}].images[{j}]")
                        continue
                    if not img.keys() <= KNOWN_IMAGE:
                        extra.add(img, KNOWN_IMAGE, ("related", i, "images", j))
                    i_aid(article_id)
                    i_sp(sp)
                    i_rpos(i)
                    i_pos(j)
                    gi = img.get
                    for app, key in img_appends:
                        app(gi(key))
                    n_img += 1
            r_aid(article_id)
            r_sp(sp)
            r_pos(i)
            r_nimg(n_img)
            for app, key in link_appends:
                app(g(key))
            pg = prov.get
            for app, key in prov_appends:
                app(pg(key))
            n += 1
        return n

    # -- the related lists left as JSON ----------------------------------------------

    def _related_from_json(self) -> None:
        """Rows of the related lists left as JSON, a batch at once (see `_read_json_lists`)."""
        deferred, self._deferred = self._deferred, []
        if not deferred:
            return
        lists, refused = _read_json_lists([d.ex.related_json for d in deferred])
        refused_set = set(refused)
        read = [d for i, d in enumerate(deferred) if i not in refused_set]
        links, link_rec, link_pos, link_ok = _children(lists)
        provider = links.field("provider")
        image_lists = links.field("images")
        images, img_link, img_pos, img_ok = _children(image_lists)
        img_ok &= link_ok[img_link]  # the images of a null link are no images (never happens: belt and braces)

        # records with anything the JSON path cannot vouch for go the Python way
        suspect = np.zeros(len(read), dtype=bool)
        bad = (_suspect(links, _LINK_KINDS) | _suspect(provider, _LINK_PROVIDER_KINDS)) & link_ok
        suspect[link_rec[bad]] = True
        suspect[link_rec[img_link[_suspect(images, _IMAGE_KINDS) & img_ok]]] = True
        link_keep = link_ok & ~suspect[link_rec]
        img_keep = img_ok & ~suspect[link_rec[img_link]]

        # (a null item is skipped, as _related skips it, keeping the others' positions)
        a = self.articles
        for r, count in enumerate(np.bincount(link_rec[link_keep], minlength=len(read)).tolist()):
            if not suspect[r]:
                a["related_count"][read[r].row] = count
        image_count = np.bincount(img_link[img_keep], minlength=len(links))
        ids = pa.array([d.article_id for d in read], pa.string())
        paths = pa.array([d.ex.file.source_path for d in read], pa.string())

        keep = pa.array(link_keep)
        rec = pa.array(link_rec[link_keep])
        cols = {"article_id": ids.take(rec), "source_path": paths.take(rec),
                "position": pa.array(link_pos[link_keep], pa.int32()),
                "image_count": pa.array(image_count[link_keep], pa.int32())}
        for col, (kind, key) in LINK_RAW.items():
            src = provider.field(key.split(".", 1)[1]) if "." in key else links.field(key)
            cols[col] = _typed_json(src.filter(keep), kind)
        self._json_tables["stg_related_links"].append(
            pa.Table.from_arrays([cols[n] for n in S.STG_RELATED_LINKS.names], schema=S.STG_RELATED_LINKS.schema))

        keep = pa.array(img_keep)
        rec = pa.array(link_rec[img_link[img_keep]])
        cols = {"article_id": ids.take(rec), "source_path": paths.take(rec),
                "related_position": pa.array(link_pos[img_link[img_keep]], pa.int32()),
                "position": pa.array(img_pos[img_keep], pa.int32())}
        for col, (kind, key) in IMAGE_RAW.items():
            cols[col] = _typed_json(images.field(key).filter(keep), kind)
        self._json_tables["stg_related_images"].append(
            pa.Table.from_arrays([cols[n] for n in S.STG_RELATED_IMAGES.names], schema=S.STG_RELATED_IMAGES.schema))

        # a link without a webUrl is an issue, as in _related
        web = links.field("webUrl")
        visible = pc.fill_null(pc.match_substring_regex(web, _NOT_BLANK), False)
        maybe = pc.and_(pa.array(link_keep), pc.invert(visible))
        for i in pc.indices_nonzero(maybe).to_pylist():
            w = web[i].as_py()
            if w is None or not w.strip():
                d = read[link_rec[i]]
                self.issues.append((d.ex.file.source_path, d.article_id, f"related[{link_pos[i]}].webUrl", w or "",
                                    "missing: the related link has no webUrl"))

        # a null link or image is skipped, and an issue, as in _related
        for i in np.flatnonzero(~link_ok & ~suspect[link_rec]).tolist():
            d = read[link_rec[i]]
            self.issues.append((d.ex.file.source_path, d.article_id, f"related[{link_pos[i]}]", "null", _NULL_ITEM))
        null_img = ~images.is_valid().to_numpy(zero_copy_only=False) & link_ok[img_link] & ~suspect[link_rec[img_link]]
        for i in np.flatnonzero(null_img).tolist():
            link = img_link[i]
            d = read[link_rec[link]]
            self.issues.append((d.ex.file.source_path, d.article_id, f"related[{link_pos[link]}].images[{img_pos[i]}]",
                                "null", _NULL_ITEM))

        for d in [deferred[i] for i in refused] + [d for r, d in enumerate(read) if suspect[r]]:
            self._related_from_python(d)

    def _related_from_python(self, d: _Deferred) -> None:
        """A related list the JSON path refused: parsed again, the Python way."""
        sp = d.ex.file.source_path
        issues: list = []
        try:
            value, fast = fastyaml.load(d.ex.front_matter)
            if not fast:  # PyYAML's meaning had the last word on this record after all
                # (the rest of the record passed the fast path: every issue is in `related`)
                value = safeyaml.settle(value, issues)
        except Exception as e:  # noqa: BLE001 - PyYAML accepts what the fast path did; if not, one file must not stop the batch
            self.articles["related_count"][d.row] = 0
            self.issues.append((sp, d.article_id, "related", "", unexpected("read again the related list of", e)))
            return
        if not fast:
            self.files["parser"][d.file_row] = "pyyaml"
        self.articles["related_count"][d.row] = self._related(d.article_id, sp, value.get("related"), issues, d.extra)
        self.articles["extra"][d.row] = d.extra.json()
        self.issues.extend((sp, d.article_id, field, raw, problem) for field, raw, problem in issues)

    # -- pass 2: typed tables --------------------------------------------------------

    def tables(self) -> dict[str, pa.Table]:
        """Arrow tables with the staging schemas, keyed by table name."""
        self._related_from_json()
        out: dict[str, pa.Table] = {}
        issues = list(self.issues)

        def typed(t: _Table, field_path):
            table, problems = t.typed(field_path)
            if problems:
                sp = t["source_path"]
                aid = t["article_id"]
                issues.extend((sp[row], aid[row], field, raw, problem) for row, field, raw, problem in problems)
            out[t.table.name] = table

        typed(self.articles, lambda row, key: key)
        pos = self.images["position"]
        typed(self.images, lambda row, key: f"images[{pos[row]}].{key}")
        lpos = self.related_links["position"]
        typed(self.related_links, lambda row, key: f"related[{lpos[row]}].{key}")
        rpos, ipos = self.related_images["related_position"], self.related_images["position"]
        typed(self.related_images, lambda row, key: f"related[{rpos[row]}].images[{ipos[row]}].{key}")
        for name, parts in self._json_tables.items():
            if parts:
                out[name] = pa.concat_tables([out[name], *parts])

        cols = list(zip(*issues)) if issues else [[]] * 5
        out["stg_data_issues"] = pa.Table.from_arrays(
            [pa.array(c, pa.string()) for c in cols] + [pa.array([self.run_id] * len(issues), pa.string())],
            schema=S.STG_DATA_ISSUES.schema,
        )
        per_file: dict[str, int] = {}
        for sp, *_ in issues:
            per_file[sp] = per_file.get(sp, 0) + 1
        files = self.files
        files["issue_count"].clear()
        files["issue_count"].extend(per_file.get(sp, 0) for sp in files["source_path"])
        out["stg_files"] = files.typed(None)[0]
        return {name: out[name] for name in (t.name for t in S.STAGING_TABLES)}

    def frames(self):
        """The same tables as pandas DataFrames, Arrow-backed so the declared types hold."""
        import pandas as pd

        return {name: t.to_pandas(types_mapper=pd.ArrowDtype) for name, t in self.tables().items()}


def flatten(extracted) -> dict:
    """Extracted files -> staging DataFrames (a convenience over BatchBuilder)."""
    b = BatchBuilder(run_id="adhoc")
    for ex in extracted:
        b.add(ex)
    return b.frames()
