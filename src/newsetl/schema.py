"""Explicit schemas between the stages, and the data dictionary.

Every table has one definition here: its columns, their Arrow types and what
they mean. The flatten stage builds staging tables with these types, the build
SQL casts to them, and docs/data-dictionary.md is generated from them (a test
checks it), so the three cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")
STR = pa.string()
I32 = pa.int32()
I64 = pa.int64()
BOOL = pa.bool_()
STRS = pa.list_(pa.string())


_SCHEMAS: dict[str, pa.Schema] = {}


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    doc: str


@dataclass(frozen=True)
class Table:
    name: str
    grain: str
    columns: tuple[Column, ...]

    @property
    def schema(self) -> pa.Schema:
        # built once per table: the flatten stage asks for it for every batch
        cached = _SCHEMAS.get(self.name)
        if cached is None:
            cached = _SCHEMAS[self.name] = pa.schema([pa.field(c.name, c.type) for c in self.columns])
        return cached

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


def _t(name: str, grain: str, *cols: tuple[str, pa.DataType, str]) -> Table:
    return Table(name, grain, tuple(Column(*c) for c in cols))


ARTICLES = _t(
    "articles",
    "one row per article_id (the winning record of its files)",
    ("article_id", STR, "first 16 hex digits of SHA-256 of the article URL (webUrl, else originalUrl, else the file's path relative to its input root)"),
    ("url", STR, "the URL the identity was computed from: webUrl, else originalUrl; NULL when the record has neither"),
    ("web_url", STR, "webUrl as written, stripped"),
    ("original_url", STR, "originalUrl"),
    ("amp_url", STR, "ampWebUrl"),
    ("cdn_amp_url", STR, "cdnAmpWebUrl"),
    ("title", STR, "title: HTML entities unescaped, mojibake (`cityâ€™s`) repaired, white space stripped"),
    ("excerpt", STR, "excerpt, cleaned like title"),
    ("category", STR, "category"),
    ("type", STR, "type (article, video, ...)"),
    ("published_at", TS, "publishedDateTime in UTC; NULL when missing or unparsable"),
    ("quality", I32, "quality score as written (0 to about 190); NULL when not an integer"),
    ("heat", I32, "heat score, raw: -1 (not rated) is kept"),
    ("is_published", BOOL, "published flag"),
    ("provider_domain", STR, "provider.domain, normalised: lower-case, NFKC, no trailing dot, punycode as Unicode"),
    ("provider_name", STR, "provider.name, percent-decoded and HTML-unescaped"),
    ("provider_logo_url", STR, "URL of the first provider.images entry"),
    ("topics", STRS, "topics, in record order"),
    ("image_count", I32, "number of rows in images for this article"),
    ("related_count", I32, "number of rows in related_links for this article"),
    ("featured_content", STR, "featuredContent (embedded HTML), as written"),
    ("secured", STR, "secured (an opaque token), as written"),
    ("extra", STR, "JSON of the keys newsetl does not know, at any depth, nested as in the record (keys of other YAML types tagged: `!!int 1`); NULL if none"),
    ("body", STR, "Markdown text after the front matter; NULL when empty"),
    ("source_path", STR, "the file this row came from: input folder name / path inside it"),
    ("source_sha256", STR, "SHA-256 of that file's bytes"),
    ("duplicate_files", I32, "how many other files carry the same article_id (status duplicate)"),
    ("run_id", STR, "the run that parsed this version of the file"),
)

IMAGES = _t(
    "images",
    "one row per image of an article",
    ("article_id", STR, "the article"),
    ("position", I32, "0-based position in the record's images list"),
    ("url", STR, "image URL"),
    ("width", I32, "width in pixels; NULL when not an integer"),
    ("height", I32, "height in pixels; NULL when not an integer"),
    ("is_cached", BOOL, "isCached"),
    ("title", STR, "image title, HTML-unescaped"),
)

RELATED_LINKS = _t(
    "related_links",
    "one row per related link of an article",
    ("article_id", STR, "the citing article"),
    ("position", I32, "0-based position in the record's related list"),
    ("url", STR, "webUrl of the link"),
    ("title", STR, "title, HTML-unescaped"),
    ("excerpt", STR, "excerpt, HTML-unescaped"),
    ("published_at", TS, "publishedDateTime of the link, UTC"),
    ("type", STR, "type"),
    ("provider_domain", STR, "provider.domain of the link, normalised like articles.provider_domain"),
    ("provider_name", STR, "provider.name of the link, decoded"),
    ("quality", I32, "quality of the link"),
    ("amp_url", STR, "ampWebUrl"),
    ("cdn_amp_url", STR, "cdnAmpWebUrl"),
    ("image_count", I32, "number of rows in related_images for this link"),
    ("related_article_id", STR, "article_id of the target when it is itself an article in the warehouse, else NULL"),
)

RELATED_IMAGES = _t(
    "related_images",
    "one row per image of a related link",
    ("article_id", STR, "the citing article"),
    ("related_position", I32, "position of the link in related_links"),
    ("position", I32, "0-based position in the link's images list"),
    ("url", STR, "image URL"),
    ("width", I32, "width in pixels"),
    ("height", I32, "height in pixels"),
    ("is_cached", BOOL, "isCached"),
    ("title", STR, "image title"),
)

PROVIDERS = _t(
    "providers",
    "one row per provider domain seen in articles or related links",
    ("provider_domain", STR, "domain, normalised like articles.provider_domain"),
    ("provider_name", STR, "most frequent name over articles and related links; ties: alphabetical"),
    ("name_variants", STRS, "every distinct name seen for the domain, alphabetical"),
    ("logo_url", STR, "most frequent provider.images URL of the domain's articles"),
    ("article_count", I64, "articles whose provider is this domain"),
    ("citation_count", I64, "related links that point to this domain"),
)

SOURCE_FILES = _t(
    "source_files",
    "one row per input file seen and still present",
    ("source_path", STR, "input folder name / path inside it"),
    ("sha256", STR, "SHA-256 of the file's bytes"),
    ("bytes", I64, "file size"),
    ("status", STR, "loaded, duplicate or rejected"),
    ("error", STR, "why the file was rejected (names the problem, with line and column for YAML errors)"),
    ("article_id", STR, "the article the file carries (NULL when rejected)"),
    ("issue_count", I32, "rows in data_issues for this file"),
    ("run_id", STR, "the run that parsed this version of the file"),
)

DATA_ISSUES = _t(
    "data_issues",
    "one row per field that could not be typed (loaded as NULL)",
    ("source_path", STR, "the file"),
    ("article_id", STR, "the article of that file"),
    ("field", STR, "dotted path, e.g. related[3].quality"),
    ("raw_value", STR, "the value as written (JSON text for lists and mappings)"),
    ("problem", STR, "what is wrong with it"),
    ("run_id", STR, "the run that parsed the file"),
)

ARTICLE_VERSIONS = _t(
    "article_versions",
    "one row per article per distinct state of its tracked fields",
    ("article_id", STR, "the article"),
    ("version", I32, "1 for the first state seen, then 2, 3, ..."),
    ("valid_from", TS, "when a run first saw this state (the run's as_of time)"),
    ("valid_to", TS, "when a run saw the next state or the article gone; NULL for the current state"),
    ("title", STR, "tracked: title"),
    ("excerpt", STR, "tracked: excerpt"),
    ("quality", I32, "tracked: quality"),
    ("heat", I32, "tracked: heat (raw, -1 = not rated)"),
    ("is_published", BOOL, "tracked: published flag"),
    ("provider_domain", STR, "tracked: provider domain"),
    ("provider_name", STR, "tracked: provider name"),
    ("topics", STRS, "tracked: topics"),
    ("image_count", I32, "tracked: number of images"),
    ("related_count", I32, "tracked: number of related links"),
    ("source_path", STR, "the file the state was read from"),
    ("run_id", STR, "the run that first saw this state"),
    ("closed_run_id", STR, "the run that saw it end; NULL for the current state"),
)

RUNS = _t(
    "runs",
    "one row per completed run",
    ("run_id", STR, "run identifier: UTC start time and a random suffix, sortable"),
    ("started_at", TS, "when the run started"),
    ("finished_at", TS, "when it published"),
    ("status", STR, "completed, or failed for a run that was killed or crashed before publishing"),
    ("as_of", TS, "the time the run observed the files (started_at unless given with --as-of); history's valid_from"),
    ("inputs", STR, "the input folders, JSON list"),
    ("flow_run_id", STR, "Prefect flow run id, NULL when run without Prefect"),
    ("files_seen", I64, "input files found"),
    ("files_new", I64, "files not seen by the previous run"),
    ("files_changed", I64, "files whose content changed"),
    ("files_unchanged", I64, "files with the same content as before"),
    ("files_deleted", I64, "files gone since the previous run"),
    ("files_rejected", I64, "files rejected in this run's state"),
    ("files_parsed", I64, "files read and parsed by this run"),
    ("fast_parsed", I64, "of those, parsed by the fast parser"),
    ("articles_rows", I64, "rows in articles"),
    ("images_rows", I64, "rows in images"),
    ("related_links_rows", I64, "rows in related_links"),
    ("related_images_rows", I64, "rows in related_images"),
    ("providers_rows", I64, "rows in providers"),
    ("source_files_rows", I64, "rows in source_files"),
    ("data_issues_rows", I64, "rows in data_issues"),
    ("article_versions_rows", I64, "rows in article_versions"),
    ("duration_s", pa.float64(), "wall time in seconds"),
    ("newsetl_version", STR, "version of newsetl that ran"),
)

WAREHOUSE_TABLES: tuple[Table, ...] = (
    ARTICLES,
    IMAGES,
    RELATED_LINKS,
    RELATED_IMAGES,
    PROVIDERS,
    SOURCE_FILES,
    DATA_ISSUES,
    ARTICLE_VERSIONS,
    RUNS,
)
BY_NAME = {t.name: t for t in WAREHOUSE_TABLES}


# --- staging: what one parse batch produces, per file, before identity is resolved.
# Child rows carry source_path so the build can keep only the winning file's rows.

def _staging(table: Table, drop: tuple[str, ...] = (), add: tuple[tuple[str, pa.DataType, str], ...] = ()) -> Table:
    cols = tuple(c for c in table.columns if c.name not in drop) + tuple(Column(*a) for a in add)
    return Table("stg_" + table.name, table.grain, cols)


_SP = ("source_path", STR, "the file the row came from")

STG_ARTICLES = _staging(ARTICLES, drop=("duplicate_files",))
STG_IMAGES = _staging(IMAGES, add=(_SP,))
STG_RELATED_LINKS = _staging(RELATED_LINKS, drop=("related_article_id",), add=(_SP,))
STG_RELATED_IMAGES = _staging(RELATED_IMAGES, add=(_SP,))
STG_DATA_ISSUES = _staging(DATA_ISSUES)
# one row per file the batch read: parsed or rejected
STG_FILES = _t(
    "stg_files",
    "one row per file read by a batch",
    ("source_path", STR, ""),
    ("sha256", STR, ""),
    ("bytes", I64, ""),
    ("mtime_ns", I64, ""),
    ("status", STR, "parsed or rejected"),
    ("error", STR, ""),
    ("article_id", STR, ""),
    ("issue_count", I32, ""),
    ("images_digest", STR, "digest of the raw images list: same digest, same images rows"),
    ("related_digest", STR, "digest of the raw related list: same digest, same related rows"),
    ("parser", STR, "fast, pyyaml or none"),
    ("run_id", STR, ""),
)

STAGING_TABLES: tuple[Table, ...] = (
    STG_FILES,
    STG_ARTICLES,
    STG_IMAGES,
    STG_RELATED_LINKS,
    STG_RELATED_IMAGES,
    STG_DATA_ISSUES,
)


# -- docs/data-dictionary.md is generated from the definitions above

_DUCK = {
    STR: "VARCHAR", I32: "INTEGER", I64: "BIGINT", BOOL: "BOOLEAN", TS: "TIMESTAMPTZ",
    STRS: "VARCHAR[]", pa.float64(): "DOUBLE",
}


def markdown() -> str:
    """The data dictionary of the warehouse tables, as Markdown (docs/data-dictionary.md embeds it)."""
    out = []
    for t in WAREHOUSE_TABLES:
        out += [f"### `{t.name}`", "", f"{t.grain[0].upper()}{t.grain[1:]}.", "",
                "| column | type | meaning |", "|---|---|---|"]
        out += [f"| `{c.name}` | {_DUCK[c.type]} | {c.doc} |" for c in t.columns]
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(markdown())
