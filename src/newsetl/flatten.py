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

        web_url = as_str(get("webUrl"), "webUrl", issues)
        original_url = as_str(get("originalUrl"), "originalUrl", issues)
        url = web_url or original_url
        article_id = article_id_for(url if url is not None else ex.file.rel_path)
        published_at = as_timestamp(get("publishedDateTime"), "publishedDateTime", issues)

        provider = as_mapping(get("provider"), "provider", issues)
        if provider:
            _unknown(provider, KNOWN_PROVIDER, "provider.", extra)
        logo = None
        for i, img in enumerate(as_list(provider.get("images"), "provider.images", issues)):
            img = as_mapping(img, f"provider.images[{i}]", issues)
            _unknown(img, KNOWN_IMAGE, f"provider.images[{i}].", extra)
            if logo is None:
                logo = as_str(img.get("url"), f"provider.images[{i}].url", issues)

        topics = []
        for i, t in enumerate(as_list(get("topics"), "topics", issues)):
            t = as_text(t, f"topics[{i}]", issues)
            if t is not None:
                topics.append(t)

        image_count = self._images(article_id, sp, as_list(get("images"), "images", issues), issues, extra)
        related_count = self._related(article_id, sp, as_list(get("related"), "related", issues), issues, extra)

        a = self.articles
        a["article_id"].append(article_id)
        a["url"].append(url)
        a["web_url"].append(web_url)
        a["original_url"].append(original_url)
        a["amp_url"].append(as_str(get("ampWebUrl"), "ampWebUrl", issues))
        a["cdn_amp_url"].append(as_str(get("cdnAmpWebUrl"), "cdnAmpWebUrl", issues))
        a["title"].append(as_text(get("title"), "title", issues))
        a["excerpt"].append(as_text(get("excerpt"), "excerpt", issues))
        a["category"].append(as_str(get("category"), "category", issues))
        a["type"].append(as_str(get("type"), "type", issues))
        a["published_at"].append(published_at)
        a["quality"].append(as_int(get("quality"), "quality", issues))
        a["heat"].append(as_int(get("heat"), "heat", issues))
        a["is_published"].append(as_bool(get("published"), "published", issues))
        a["provider_domain"].append(as_domain(provider.get("domain"), "provider.domain", issues))
        a["provider_name"].append(as_name(provider.get("name"), "provider.name", issues))
        a["provider_logo_url"].append(logo)
        a["topics"].append(topics)
        a["image_count"].append(image_count)
        a["related_count"].append(related_count)
        a["featured_content"].append(as_str(get("featuredContent"), "featuredContent", issues))
        a["secured"].append(as_str(get("secured"), "secured", issues))
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
                as_mapping(img, f, issues)
                continue
            if not img.keys() <= KNOWN_IMAGE:
                _unknown(img, KNOWN_IMAGE, f + ".", extra)
            g = img.get
            for name, value in key.items():
                cols[name].append(value)
            cols["position"].append(i)
            cols["url"].append(as_str(g("url"), f + ".url", issues))
            cols["width"].append(as_int(g("width"), f + ".width", issues))
            cols["height"].append(as_int(g("height"), f + ".height", issues))
            cols["is_cached"].append(as_bool(g("isCached"), f + ".isCached", issues))
            cols["title"].append(as_text(g("title"), f + ".title", issues))
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
                as_mapping(link, f, issues)
                continue
            if not link.keys() <= KNOWN_RELATED:
                _unknown(link, KNOWN_RELATED, f + ".", extra)
            g = link.get
            url = as_str(g("webUrl"), f + ".webUrl", issues)
            if url is None and not isinstance(g("webUrl"), (list, dict, bool)):
                issues.append((f + ".webUrl", raw_text(g("webUrl") or ""), "missing: the related link has no webUrl"))
            prov = as_mapping(g("provider"), f + ".provider", issues)
            if prov and not prov.keys() <= KNOWN_LINK_PROVIDER:
                _unknown(prov, KNOWN_LINK_PROVIDER, f + ".provider.", extra)
            n_img = self._image_rows(
                self.related_images, as_list(g("images"), f + ".images", issues), f + ".images",
                issues, extra, {"article_id": article_id, "related_position": i, "source_path": sp},
            )
            r["article_id"].append(article_id)
            r["position"].append(i)
            r["url"].append(url)
            r["title"].append(as_text(g("title"), f + ".title", issues))
            r["excerpt"].append(as_text(g("excerpt"), f + ".excerpt", issues))
            r["published_at"].append(as_timestamp(g("publishedDateTime"), f + ".publishedDateTime", issues))
            r["type"].append(as_str(g("type"), f + ".type", issues))
            r["provider_domain"].append(as_domain(prov.get("domain"), f + ".provider.domain", issues))
            r["provider_name"].append(as_name(prov.get("name"), f + ".provider.name", issues))
            r["quality"].append(as_int(g("quality"), f + ".quality", issues))
            r["amp_url"].append(as_str(g("ampWebUrl"), f + ".ampWebUrl", issues))
            r["cdn_amp_url"].append(as_str(g("cdnAmpWebUrl"), f + ".cdnAmpWebUrl", issues))
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
