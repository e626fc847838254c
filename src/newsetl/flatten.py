"""Flatten: records -> staging tables, column-wise, with explicit schemas.

Two passes, so the per-value work runs in Arrow's C++ rather than in Python:

1. `BatchBuilder.add` walks each record's structure (lists, mappings, unknown
   keys, identity) and appends the *raw* values to one list per column.
2. `BatchBuilder.tables` types each column at once (`columns.type_column`);
   each value that cannot be typed becomes NULL plus a data_issues row whose
   field path is rebuilt from the row's positions.

A record's `related` list, most of its bytes, can skip Python altogether: when
the fast parser left it as JSON (`Extracted.related_json`), pass 2 flattens
the whole batch's lists with Arrow (`related_json`); a list that path cannot
vouch for goes through pass 1's Python walk after all.

`frames()` gives the same tables as pandas DataFrames (Arrow-backed, so the
declared types hold). Choosing the winner among files with one article_id is
the build stage's job, since it needs every batch.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import NamedTuple

import pyarrow as pa

from . import fastyaml, mapping, related_json, safeyaml
from . import schema as S
from .clean import as_list, as_mapping, as_str, as_text, json_bytes, to_json
from .columns import (ARTICLE_RAW, IMAGE_RAW, KNOWN, KNOWN_IMAGE, KNOWN_LINK_PROVIDER, KNOWN_PROVIDER, KNOWN_RELATED,
                      LINK_RAW, Columns)
from .frontmatter import Extracted
from .related_json import NO_WEB_URL, NULL_ITEM
from .sources import unexpected

def article_id_for(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def _digest(value) -> str | None:
    """A short digest of a raw list: equal lists give equal child rows.

    sha256, not blake2b: OpenSSL's sha256 uses the CPU's SHA instructions and
    is the faster of the two here, and this runs on 20 KB per record."""
    if value is None:
        return None
    return hashlib.sha256(json_bytes(value)).hexdigest()[:24]


def _json_digest(part: bytes) -> str:
    """The digest of a list the fast parser left as JSON (see `_digest`)."""
    return hashlib.sha256(part).hexdigest()[:24]


class _Deferred(NamedTuple):
    """A record whose related list is still JSON, and where its counts go."""

    file_row: int
    row: int  # in articles
    article_id: str
    extra: "_Extra"  # its unknown keys so far: the Python path may add some
    ex: Extracted


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


def _item(value, issues: list, field: str) -> dict | None:
    """A list item that should be a mapping; None (and an issue) when it is not."""
    if value.__class__ is dict:
        return value
    if value is None:
        issues.append((field, "null", NULL_ITEM))
    else:
        as_mapping(value, issues, field)
    return None


class BatchBuilder:
    """Accumulates the staging rows of a batch of files."""

    def __init__(self, run_id: str, keys: mapping.Mapping = mapping.NEWS):
        self.run_id = run_id
        self.mapping = keys  # generator keys -> the news format's (newsetl.mapping); NEWS maps nothing
        self.files = Columns(S.STG_FILES, {})
        self.articles = Columns(S.STG_ARTICLES, ARTICLE_RAW)
        self.images = Columns(S.STG_IMAGES, IMAGE_RAW)
        self.related_links = Columns(S.STG_RELATED_LINKS, LINK_RAW)
        self.related_images = Columns(S.STG_RELATED_IMAGES, IMAGE_RAW)
        # structural issues found in pass 1: (source_path, article_id, field, raw, problem)
        self.issues: list[tuple[str, str, str, str, str]] = []
        self._deferred: list[_Deferred] = []
        self._json_tables: dict[str, list[pa.Table]] = {"stg_related_links": [], "stg_related_images": []}
        # (list.append, key) per raw column, bound once: these loops run for every link and image
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
        # between records every column of a table has one value per row: one length says them all
        return ([len(next(iter(t.cols.values()))) for t in self._all_tables()],
                len(self.issues), len(self._deferred))

    def _rollback(self, marks: tuple) -> None:
        sizes, issues, deferred = marks
        for t, size in zip(self._all_tables(), sizes):
            for c in t.cols.values():
                del c[size:]
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
        moved = None
        if self.mapping is not mapping.NEWS:  # both parsers' records alike: after the parse, before the walk
            record, moved, found = mapping.apply(ex.record, self.mapping, ex.file.rel_path)
            ex = dataclasses.replace(ex, record=record, issues=[*(ex.issues or ()), *found])
        f["article_id"].append(self._record(ex, moved))
        f["images_digest"].append(_digest(ex.record.get("images")))
        if ex.related_json is None:
            f["related_digest"].append(_digest(ex.record.get("related")))
        else:
            f["related_digest"].append(_json_digest(ex.related_json))
        # TOML and JSON front matter have a parser of their own: named, not taken for PyYAML's
        f["parser"].append("fast" if ex.fast else ex.format if ex.format in ("toml", "json") else "pyyaml")

    def _record(self, ex: Extracted, moved: dict | None = None) -> str:
        rec = ex.record
        sp = ex.file.source_path
        issues: list = list(ex.issues)  # (field, raw, problem), for this record
        extra = _Extra()
        if not rec.keys() <= KNOWN:
            extra.add(rec, KNOWN)
        if moved:  # generator keys named like news keys that a news key overrode (mapping.apply)
            extra.add(moved, frozenset())
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
                issues.append((f"topics[{i}]", "null", NULL_ITEM))
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
        cols = self.images.cols
        fixed = ((cols["article_id"].append, article_id), (cols["source_path"].append, sp))
        return self._image_rows(images, issues, extra, "images", ("images",), fixed, cols["position"].append,
                                self._image_appends)

    def _image_rows(self, images, issues: list, extra: _Extra, field: str, where: tuple, fixed: tuple,
                    position, appends) -> int:
        """The rows of an images list (an article's or a related link's) into its table:
        `fixed` (append, value) pairs for the columns every row shares, `position` the
        append of the image's position. Returns how many images made rows."""
        n = 0
        for j, img in enumerate(as_list(images, issues, field)):
            if type(img) is not dict:
                _item(img, issues, f"{field}[{j}]")
                continue
            if not img.keys() <= KNOWN_IMAGE:
                extra.add(img, KNOWN_IMAGE, (*where, j))
            for app, value in fixed:
                app(value)
            position(j)
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
        i_rpos = ric["related_position"].append
        i_fixed = ((ric["article_id"].append, article_id), (ric["source_path"].append, sp))
        i_pos = ric["position"].append
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
                issues.append((f"related[{i}].webUrl", web or "", NO_WEB_URL))
            prov = g("provider")
            if type(prov) is not dict:
                prov = as_mapping(prov, issues, f"related[{i}].provider")
            elif not prov.keys() <= KNOWN_LINK_PROVIDER:
                extra.add(prov, KNOWN_LINK_PROVIDER, ("related", i, "provider"))
            n_img = 0
            imgs = g("images")
            if imgs is not None:
                n_img = self._image_rows(imgs, issues, extra, f"related[{i}].images", ("related", i, "images"),
                                         (*i_fixed, (i_rpos, i)), i_pos, img_appends)
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
        """Rows of the related lists left as JSON, a batch at once (related_json)."""
        deferred, self._deferred = self._deferred, []
        if not deferred:
            return
        got = related_json.flatten_lists([d.ex.related_json for d in deferred], [d.article_id for d in deferred],
                                         [d.ex.file.source_path for d in deferred])
        for i, count in got.counts.items():
            self.articles["related_count"][deferred[i].row] = count
        self._json_tables["stg_related_links"].append(got.links)
        self._json_tables["stg_related_images"].append(got.images)
        self.issues.extend((deferred[i].ex.file.source_path, deferred[i].article_id, field, raw, problem)
                           for i, field, raw, problem in got.issues)
        for i in got.fallback:
            self._related_from_python(deferred[i])

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

        def typed(t: Columns, field_path):
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


def flatten(extracted, keys: mapping.Mapping = mapping.NEWS) -> dict:
    """Extracted files -> staging DataFrames (a convenience over BatchBuilder)."""
    b = BatchBuilder(run_id="adhoc", keys=keys)
    for ex in extracted:
        b.add(ex)
    return b.frames()
