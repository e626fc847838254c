"""Flatten: records -> staging tables, column-wise, with explicit schemas.

A `BatchBuilder` takes extracted files one at a time and appends to one list
per column; `frames()` turns the lists into pandas DataFrames backed by Arrow
with the types of `schema.STAGING_TABLES`, so the types never depend on the
values of a batch. Identity (`article_id`) is computed here; choosing the
winner among files with the same id is the build stage's job, since it needs
every batch.
"""

from __future__ import annotations

import hashlib

import pandas as pd
import pyarrow as pa

from . import schema as S
from .clean import (
    as_bool,
    as_domain,
    as_int,
    as_list,
    as_mapping,
    as_name,
    as_str,
    as_text,
    as_timestamp,
    raw_text,
    to_json,
)
from .extract import Extracted

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


def article_id_for(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


class _Cols(dict):
    """Column name -> list of values, for one table."""

    def __init__(self, table: S.Table):
        super().__init__((n, []) for n in table.names)
        self.table = table


def _unknown(mapping: dict, known: frozenset, prefix: str, extra: dict) -> None:
    if len(mapping) > len(known) or not mapping.keys() <= known:
        for k, v in mapping.items():
            if k not in known:
                extra[f"{prefix}{k}"] = v


class BatchBuilder:
    """Accumulates the staging rows of a batch of files."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.files = _Cols(S.STG_FILES)
        self.articles = _Cols(S.STG_ARTICLES)
        self.images = _Cols(S.STG_IMAGES)
        self.related_links = _Cols(S.STG_RELATED_LINKS)
        self.related_images = _Cols(S.STG_RELATED_IMAGES)
        self.data_issues = _Cols(S.STG_DATA_ISSUES)

    # -- one file -------------------------------------------------------------

    def add(self, ex: Extracted) -> None:
        f = self.files
        sp = ex.file.source_path
        f["source_path"].append(sp)
        f["sha256"].append(ex.sha256)
        f["bytes"].append(ex.size)
        f["mtime_ns"].append(ex.file.mtime_ns)
        f["run_id"].append(self.run_id)
        if ex.record is None:
            f["status"].append("rejected")
            f["error"].append(ex.error)
            f["article_id"].append(None)
            f["published_at"].append(None)
            f["issue_count"].append(0)
            f["parser"].append("none")
            return
        article_id, published_at, n_issues = self._record(ex)
        f["status"].append("parsed")
        f["error"].append(None)
        f["article_id"].append(article_id)
        f["published_at"].append(published_at)
        f["issue_count"].append(n_issues)
        f["parser"].append("fast" if ex.fast else "pyyaml")

    def _record(self, ex: Extracted):
        rec = ex.record
        sp = ex.file.source_path
        issues: list = []
        extra: dict = {}
        _unknown(rec, KNOWN, "", extra)
        get = rec.get

        web_url = as_str(get("webUrl"), issues, "webUrl")
        original_url = as_str(get("originalUrl"), issues, "originalUrl")
        url = web_url or original_url
        article_id = article_id_for(url if url is not None else ex.file.rel_path)
        published_at = as_timestamp(get("publishedDateTime"), issues, "publishedDateTime")

        provider = as_mapping(get("provider"), issues, "provider")
        if provider:
            _unknown(provider, KNOWN_PROVIDER, "provider.", extra)
        logo = None
        for i, img in enumerate(as_list(provider.get("images"), issues, "provider.images")):
            img = as_mapping(img, issues, f"provider.images[{i}]")
            _unknown(img, KNOWN_IMAGE, f"provider.images[{i}].", extra)
            if logo is None:
                logo = as_str(img.get("url"), issues, f"provider.images[{i}].url")

        topics = []
        for i, t in enumerate(as_list(get("topics"), issues, "topics")):
            t = as_text(t, issues, f"topics[{i}]")
            if t is not None:
                topics.append(t)

        image_count = self._images(article_id, sp, as_list(get("images"), issues, "images"), issues, extra)
        related_count = self._related(article_id, sp, as_list(get("related"), issues, "related"), issues, extra)

        a = self.articles
        a["article_id"].append(article_id)
        a["url"].append(url)
        a["web_url"].append(web_url)
        a["original_url"].append(original_url)
        a["amp_url"].append(as_str(get("ampWebUrl"), issues, "ampWebUrl"))
        a["cdn_amp_url"].append(as_str(get("cdnAmpWebUrl"), issues, "cdnAmpWebUrl"))
        a["title"].append(as_text(get("title"), issues, "title"))
        a["excerpt"].append(as_text(get("excerpt"), issues, "excerpt"))
        a["category"].append(as_str(get("category"), issues, "category"))
        a["type"].append(as_str(get("type"), issues, "type"))
        a["published_at"].append(published_at)
        a["quality"].append(as_int(get("quality"), issues, "quality"))
        a["heat"].append(as_int(get("heat"), issues, "heat"))
        a["is_published"].append(as_bool(get("published"), issues, "published"))
        a["provider_domain"].append(as_domain(provider.get("domain"), issues, "provider.domain"))
        a["provider_name"].append(as_name(provider.get("name"), issues, "provider.name"))
        a["provider_logo_url"].append(logo)
        a["topics"].append(topics)
        a["image_count"].append(image_count)
        a["related_count"].append(related_count)
        a["featured_content"].append(as_str(get("featuredContent"), issues, "featuredContent"))
        a["secured"].append(as_str(get("secured"), issues, "secured"))
        a["extra"].append(to_json(extra) if extra else None)
        a["body"].append(ex.body if ex.body and ex.body.strip() else None)
        a["source_path"].append(sp)
        a["source_sha256"].append(ex.sha256)
        a["run_id"].append(self.run_id)

        if issues:
            d = self.data_issues
            for field, raw, problem in issues:
                d["source_path"].append(sp)
                d["article_id"].append(article_id)
                d["field"].append(field)
                d["raw_value"].append(raw)
                d["problem"].append(problem)
                d["run_id"].append(self.run_id)
        return article_id, published_at, len(issues)

    def _image_rows(self, cols: _Cols, images: list, prefix: str, issues: list, extra: dict, key: dict) -> int:
        n = 0
        for i, img in enumerate(images):
            f = f"{prefix}[{i}]"
            if type(img) is not dict:
                as_mapping(img, issues, f)
                continue
            if not img.keys() <= KNOWN_IMAGE:
                _unknown(img, KNOWN_IMAGE, f + ".", extra)
            g = img.get
            for name, value in key.items():
                cols[name].append(value)
            cols["position"].append(i)
            cols["url"].append(as_str(g("url"), issues, f, ".url"))
            cols["width"].append(as_int(g("width"), issues, f, ".width"))
            cols["height"].append(as_int(g("height"), issues, f, ".height"))
            cols["is_cached"].append(as_bool(g("isCached"), issues, f, ".isCached"))
            cols["title"].append(as_text(g("title"), issues, f, ".title"))
            n += 1
        return n

    def _images(self, article_id, sp, images, issues, extra) -> int:
        key = {"article_id": article_id, "source_path": sp}
        return self._image_rows(self.images, images, "images", issues, extra, key)

    def _related(self, article_id, sp, related, issues, extra) -> int:
        r = self.related_links
        n = 0
        for i, link in enumerate(related):
            f = f"related[{i}]"
            if type(link) is not dict:
                as_mapping(link, issues, f)
                continue
            if not link.keys() <= KNOWN_RELATED:
                _unknown(link, KNOWN_RELATED, f + ".", extra)
            g = link.get
            url = as_str(g("webUrl"), issues, f, ".webUrl")
            if url is None and not isinstance(g("webUrl"), (list, dict, bool)):
                issues.append((f + ".webUrl", raw_text(g("webUrl") or ""), "missing: the related link has no webUrl"))
            prov = as_mapping(g("provider"), issues, f, ".provider")
            if prov and not prov.keys() <= KNOWN_LINK_PROVIDER:
                _unknown(prov, KNOWN_LINK_PROVIDER, f + ".provider.", extra)
            n_img = self._image_rows(
                self.related_images, as_list(g("images"), issues, f, ".images"), f + ".images",
                issues, extra, {"article_id": article_id, "related_position": i, "source_path": sp},
            )
            r["article_id"].append(article_id)
            r["position"].append(i)
            r["url"].append(url)
            r["title"].append(as_text(g("title"), issues, f, ".title"))
            r["excerpt"].append(as_text(g("excerpt"), issues, f, ".excerpt"))
            r["published_at"].append(as_timestamp(g("publishedDateTime"), issues, f, ".publishedDateTime"))
            r["type"].append(as_str(g("type"), issues, f, ".type"))
            r["provider_domain"].append(as_domain(prov.get("domain"), issues, f, ".provider.domain"))
            r["provider_name"].append(as_name(prov.get("name"), issues, f, ".provider.name"))
            r["quality"].append(as_int(g("quality"), issues, f, ".quality"))
            r["amp_url"].append(as_str(g("ampWebUrl"), issues, f, ".ampWebUrl"))
            r["cdn_amp_url"].append(as_str(g("cdnAmpWebUrl"), issues, f, ".cdnAmpWebUrl"))
            r["image_count"].append(n_img)
            r["source_path"].append(sp)
            n += 1
        return n

    # -- output ---------------------------------------------------------------

    def tables(self) -> dict[str, pa.Table]:
        """Arrow tables with the staging schemas, keyed by table name."""
        out = {}
        for cols in (self.files, self.articles, self.images, self.related_links,
                     self.related_images, self.data_issues):
            out[cols.table.name] = pa.Table.from_pydict(dict(cols), schema=cols.table.schema)
        return out

    def frames(self) -> dict[str, pd.DataFrame]:
        """The same tables as pandas DataFrames, Arrow-backed so the types stay exact."""
        return {name: t.to_pandas(types_mapper=pd.ArrowDtype) for name, t in self.tables().items()}


def flatten(extracted) -> dict[str, pd.DataFrame]:
    """Extracted files -> staging DataFrames (a convenience over BatchBuilder)."""
    b = BatchBuilder(run_id="adhoc")
    for ex in extracted:
        b.add(ex)
    return b.frames()
