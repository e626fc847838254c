"""Explicit schemas between the stages, and the data dictionary.

Every table has one definition here: its columns, their Arrow types and what
they mean. The flatten stage builds staging tables with these types, the build
SQL casts to them, and docs/data-dictionary.md is generated from them (a test
checks it), so the three cannot drift apart.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

# Column types by DuckDB's names (what the catalog's views show and the data dictionary
# says); the Arrow types the stages write are made from them on first use (`arrow`), so
# reading the definitions imports no pyarrow: a read command starts without it.
TS = "TIMESTAMPTZ"  # microseconds, UTC
STR = "VARCHAR"
I32 = "INTEGER"
I64 = "BIGINT"
BOOL = "BOOLEAN"
STRS = "VARCHAR[]"
F64 = "DOUBLE"


def arrow(duck: str):
    """The Arrow type of a column type (`arrow(TS)`: timestamp[us, tz=UTC])."""
    got = _ARROW.get(duck)
    if got is None:
        import pyarrow as pa

        got = _ARROW[duck] = {TS: lambda: pa.timestamp("us", tz="UTC"), STR: pa.string, I32: pa.int32,
                              I64: pa.int64, BOOL: pa.bool_, STRS: lambda: pa.list_(pa.string()),
                              F64: pa.float64}[duck]()
    return got


_ARROW: dict = {}
_SCHEMAS: dict = {}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # DuckDB's type name; `arrow(type)` for a table column's Arrow type
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
            import pyarrow as pa

            cached = _SCHEMAS[self.name] = pa.schema([pa.field(c.name, arrow(c.type)) for c in self.columns])
        return cached

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


def _t(name: str, grain: str, *cols: tuple[str, str, str]) -> Table:
    return Table(name, grain, tuple(Column(*c) for c in cols))


ARTICLES = _t(
    "articles",
    "one row per article_id (the winning record of its files)",
    ("article_id", STR, "first 16 hex digits of SHA-256 of the article URL (webUrl, else originalUrl, else the file's path relative to its input root)"),
    ("url", STR, "the URL the identity was computed from: webUrl, else originalUrl (a generator's `url`, ...: [generator front matter](#generator-front-matter)); NULL when the record has neither"),
    ("web_url", STR, "webUrl as written, stripped"),
    ("original_url", STR, "originalUrl"),
    ("amp_url", STR, "ampWebUrl"),
    ("cdn_amp_url", STR, "cdnAmpWebUrl"),
    ("title", STR, "title: HTML entities unescaped, mojibake (`cityâ€™s`) repaired, white space stripped"),
    ("excerpt", STR, "excerpt, cleaned like title"),
    ("category", STR, "category"),
    ("type", STR, "type (article, video, ...)"),
    ("published_at", TS, "publishedDateTime in UTC (a generator's `date`, ...: [generator front matter](#generator-front-matter)); NULL when missing or unparsable"),
    ("quality", I32, "quality score as written (0 to about 190); NULL when not an integer"),
    ("heat", I32, "heat score, raw: -1 (not rated) is kept"),
    ("is_published", BOOL, "published flag"),
    ("provider_domain", STR, "provider.domain, normalised: lower-case, NFKC, no trailing dot, punycode as Unicode"),
    ("provider_name", STR, "provider.name, percent-decoded and HTML-unescaped"),
    ("provider_logo_url", STR, "URL of the first provider.images entry"),
    ("topics", STRS, "topics, in record order (a generator's `tags`, `categories`, `keywords`: [generator front matter](#generator-front-matter))"),
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
    ("sha256", STR, "SHA-256 of the file's bytes; NULL when rejected before it was read (not a file, "
                    "unreadable, past the size cap)"),
    ("bytes", I64, "file size in bytes, also when rejected (past the size cap: its real size); "
                   "NULL for an entry that is not a file"),
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
    ("duration_s", F64, "wall time in seconds"),
    ("newsetl_version", STR, "version of newsetl that ran"),
    ("rows_compacted", I64, "rows of older parts that this run's compaction rewrote (NULL before it was counted)"),
)

CHECK_RESULTS = _t(
    "check_results",
    "one row per check, segment and detail per run: the verdict and the value it was measured on "
    "(the history baselines are computed from; newsetl.checks)",
    ("run_id", STR, "the run whose data was checked"),
    ("as_of", TS, "that run's as_of time: the time the checks looked from"),
    ("check_name", STR, "freshness, volume, rejection_rate, completeness, frontmatter_drift, duplicate_rate, "
                        "quality_shift, version_churn, future_dated or snapshot_shrink"),
    ("segment", STR, "the provider's domain; NULL for a check over the whole run"),
    ("detail", STR, "the front-matter field or key the row is about (completeness, frontmatter_drift); "
                    "NULL otherwise"),
    ("status", STR, "pass, warn, fail, error, insufficient_history or muted"),
    ("verdict", STR, "what the thresholds said before mutes (a muted row's warn or fail)"),
    ("observed", F64, "the measured value, in `unit`"),
    ("expected", F64, "the baseline from the history (a share over the earlier runs together, the mean new "
                      "articles per run, the median quality; freshness: the articles the same hours brought "
                      "in past weeks); NULL without history"),
    ("lower", F64, "below this the check warns (NULL: no lower limit)"),
    ("upper", F64, "above this the check warns (NULL: no upper limit)"),
    ("unit", STR, "what observed counts: articles, share, hours, files or points"),
    ("sample_size", I64, "the rows the value was measured on (articles, files)"),
    ("history_size", I32, "the earlier values the baseline was computed from"),
    ("message", STR, "one line: the provider, field or key, what was seen and what was expected"),
)

CHECK_ALERTS = _t(
    "check_alerts",
    "one row per alert: a check and segment that warned or failed, from the run it opened to the run "
    "it resolved",
    ("alert_id", STR, "the check, segment and detail, and the run that opened it"),
    ("check_name", STR, "the check"),
    ("segment", STR, "the provider's domain; NULL for a check over the whole run"),
    ("detail", STR, "the field or key; NULL when the check has none"),
    ("state", STR, "open, or resolved once the check passed again"),
    ("level", STR, "warn or fail: the worst seen while open"),
    ("opened_run_id", STR, "the run that opened it"),
    ("opened_at", TS, "that run's as_of"),
    ("last_run_id", STR, "the last run that saw the fault"),
    ("last_at", TS, "that run's as_of"),
    ("resolved_run_id", STR, "the run whose check passed again; NULL while open"),
    ("resolved_at", TS, "that run's as_of; NULL while open"),
    ("runs", I32, "how many runs saw the fault"),
    ("observed", F64, "the last value measured while open"),
    ("expected", F64, "the baseline then"),
    ("message", STR, "the last message"),
)

# what a run's build writes (newsetl.build), then what its checks stage adds (newsetl.checks)
BUILT_TABLES: tuple[Table, ...] = (
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
CHECK_TABLES: tuple[Table, ...] = (CHECK_RESULTS, CHECK_ALERTS)
WAREHOUSE_TABLES: tuple[Table, ...] = BUILT_TABLES + CHECK_TABLES
BY_NAME = {t.name: t for t in WAREHOUSE_TABLES}


# --- staging: what one parse batch produces, per file, before identity is resolved.
# Child rows carry source_path so the build can keep only the winning file's rows.

def _staging(table: Table, drop: tuple[str, ...] = (), add: tuple[tuple[str, str, str], ...] = ()) -> Table:
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
    ("parser", STR, "what read the front matter: fast (rapidyaml, with PyYAML's meaning), pyyaml, toml "
                    "(tomllib), json, or none (rejected)"),
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


# --- the analytics views (sql/views/): what each row is and each column means.
# The views' SQL is the truth about how a figure is computed; these words are
# checked against the views' real columns and types (tests/test_views.py).

@dataclass(frozen=True)
class View:
    name: str
    about: str
    columns: tuple[Column, ...]  # Column.type is DuckDB's type name here


def _v(name: str, about: str, *cols: tuple[str, str, str]) -> View:
    return View(name, about, tuple(Column(*c) for c in cols))


VIEWS: tuple[View, ...] = (
    _v(
        'provider_stats',
        'One row per `provider_domain` of the articles (a NULL row counts the articles without a provider). Macro: `provider_stats_for`. File: `10_provider_stats.sql`.',
        ('provider_domain', 'VARCHAR', 'provider domain, normalised; NULL for articles without a provider'),
        ('provider_name', 'VARCHAR', "the domain's most frequent name (`providers.provider_name`)"),
        ('articles', 'BIGINT', 'articles of the provider (count)'),
        ('articles_share_pct', 'DOUBLE', 'share of all articles in scope, % (with `provider` given: of the articles in scope without that filter)'),
        ('articles_with_quality', 'BIGINT', 'articles with a non-NULL quality (count)'),
        ('avg_quality', 'DOUBLE', 'mean quality (score 0 to about 190), NULLs ignored'),
        ('median_quality', 'DOUBLE', 'median quality (interpolated)'),
        ('p90_quality', 'DOUBLE', '90th percentile of quality (linear interpolation, `quantile_cont`)'),
        ('articles_heat_rated', 'BIGINT', 'articles with a heat rating: heat not NULL and not -1 (count)'),
        ('avg_heat_rated', 'DOUBLE', 'mean heat over rated articles only; NULL when none is rated'),
        ('published_pct', 'DOUBLE', 'share of articles with `is_published` true, % (false or NULL: not published)'),
        ('with_image_pct', 'DOUBLE', 'share of articles with at least one image, %'),
        ('citations_received', 'BIGINT', 'related links, made by articles in scope (any provider), that point to this domain (count)'),
        ('citing_articles', 'BIGINT', 'distinct articles in scope with at least one such link (count)'),
        ('first_published_at', 'TIMESTAMPTZ', "earliest `published_at` of the provider's articles"),
        ('last_published_at', 'TIMESTAMPTZ', "latest `published_at` of the provider's articles"),
    ),
    _v(
        'quality_distribution',
        'One row per 10-point quality bucket, from the lowest to the highest quality in scope (empty buckets listed with 0), then one row `no quality` for the articles with a NULL quality (always present). File: `20_quality_distribution.sql`.',
        ('bucket', 'VARCHAR', 'label: `[bucket_start, bucket_end)`, or `no quality`'),
        ('bucket_start', 'INTEGER', 'lowest quality in the bucket (inclusive); NULL for `no quality`'),
        ('bucket_end', 'INTEGER', 'bucket_start + 10 (exclusive); NULL for `no quality`'),
        ('articles', 'BIGINT', 'articles in the bucket (count)'),
        ('articles_pct', 'DOUBLE', 'share of all articles in scope (NULL quality included), %'),
        ('cumulative_pct', 'DOUBLE', 'running total of `articles_pct` in row order (buckets ascending, `no quality` last), %'),
    ),
    _v(
        'quality_by_month',
        'One row per UTC calendar month from the first to the last month with an article (months without articles listed with 0 and NULL figures). Articles without `published_at` are not placed. File: `30_quality_by_month.sql`.',
        ('month', 'DATE', 'first day of the month (UTC)'),
        ('articles', 'BIGINT', 'articles published in the month (count)'),
        ('articles_with_quality', 'BIGINT', 'of those, with a non-NULL quality (count)'),
        ('avg_quality', 'DOUBLE', 'mean quality, NULLs ignored'),
        ('median_quality', 'DOUBLE', 'median quality'),
        ('p90_quality', 'DOUBLE', '90th percentile of quality'),
        ('articles_heat_rated', 'BIGINT', 'articles with a heat rating (not -1) (count)'),
        ('avg_heat_rated', 'DOUBLE', 'mean heat over rated articles only'),
        ('published_pct', 'DOUBLE', "share of the month's articles with `is_published` true, %"),
    ),
    _v(
        'topic_stats',
        'One row per topic (as written; blank topics skipped; a topic listed twice in one record counts once). Growth compares two 90-day windows ending at `as_of`, the newest `published_at` in scope (not the clock, so figures are reproducible). File: `40_topic_stats.sql`.',
        ('topic', 'VARCHAR', 'the topic'),
        ('articles', 'BIGINT', 'articles with the topic (count)'),
        ('provider_count', 'BIGINT', 'distinct provider domains among them (count; NULL provider not counted)'),
        ('articles_with_quality', 'BIGINT', 'of those, with a non-NULL quality (count)'),
        ('avg_quality', 'DOUBLE', 'mean quality, NULLs ignored'),
        ('first_published_at', 'TIMESTAMPTZ', 'earliest `published_at` with the topic'),
        ('last_published_at', 'TIMESTAMPTZ', 'latest `published_at` with the topic'),
        ('articles_last_90d', 'BIGINT', 'articles published in (as_of - 90 days, as_of] (count)'),
        ('articles_prev_90d', 'BIGINT', 'articles published in (as_of - 180 days, as_of - 90 days] (count)'),
        ('growth_pct', 'DOUBLE', '100 * (last_90d - prev_90d) / prev_90d, %; NULL when prev_90d is 0'),
        ('as_of', 'TIMESTAMPTZ', 'the reference instant: newest `published_at` in scope'),
    ),
    _v(
        'article_authors',
        'One row per author an article names: the record\'s `author` or `authors` key (a name, a list of names, or mappings with `name`), kept in `articles.extra`; items that are not text nor a mapping with a text `name` are left out. Macro: `article_authors_for`. File: `44_article_authors.sql`.',
        ('article_id', 'VARCHAR', 'the article'),
        ('position', 'INTEGER', '0-based position in the record\'s list (0 for a single author)'),
        ('author_name', 'VARCHAR', 'the name as written, white space collapsed and trimmed'),
        ('author_key', 'VARCHAR', 'lower(author_name): the author\'s identity in `authors`'),
    ),
    _v(
        'authors',
        'One row per author (`author_key`) of the articles: a dimension beside `providers`, read at query time from `article_authors` (no table to carry over between runs). Articles that name nobody are not counted. Macro: `authors_for`. File: `45_authors.sql`.',
        ('author_key', 'VARCHAR', 'the author: the normalised name, lower-cased'),
        ('author_name', 'VARCHAR', 'the most frequent spelling; ties: alphabetical'),
        ('name_variants', 'VARCHAR[]', 'every distinct spelling seen, alphabetical'),
        ('articles', 'BIGINT', 'articles naming the author (count; once per article)'),
        ('provider_count', 'BIGINT', 'distinct provider domains among them (count)'),
        ('articles_with_quality', 'BIGINT', 'of those, with a non-NULL quality (count)'),
        ('avg_quality', 'DOUBLE', 'mean quality, NULLs ignored'),
        ('median_quality', 'DOUBLE', 'median quality'),
        ('avg_heat_rated', 'DOUBLE', 'mean heat over rated articles only'),
        ('published_pct', 'DOUBLE', 'share of the articles with `is_published` true, %'),
        ('first_published_at', 'TIMESTAMPTZ', 'earliest `published_at` of the author\'s articles'),
        ('last_published_at', 'TIMESTAMPTZ', 'latest `published_at` of the author\'s articles'),
    ),
    _v(
        'data_quality',
        'What in the input was broken, in one view; `kind` tells the three parts apart. Rows come ordered `file_status`, `rejection`, `field_issue`. File: `50_data_quality.sql` (also defines the scalar macro `rejection_reason(error)`).',
        ('kind', 'VARCHAR', '`file_status` (one row per status: loaded, duplicate, rejected; always all three), `rejection` (rejected files by reason), `field_issue` (data_issues by field and problem)'),
        ('item', 'VARCHAR', 'the status; the rejection reason (error up to its first `:`, without line/column, e.g. `invalid YAML`); or the field with list positions removed (`related[3].quality` -> `related[].quality`)'),
        ('problem', 'VARCHAR', 'for `field_issue`: what is wrong (e.g. `expected an integer, got text`); else NULL'),
        ('files', 'BIGINT', 'input files concerned (count)'),
        ('files_pct', 'DOUBLE', '`files` as a share of every input file in `source_files`, %'),
        ('issues', 'BIGINT', '`data_issues` rows: of the files with that status, or of that field and problem; NULL for `rejection`'),
        ('example_source_path', 'VARCHAR', 'first such file by path'),
        ('example_value', 'VARCHAR', "`rejection`: that file's full error; `field_issue`: its raw value; else NULL"),
    ),
    _v(
        'provider_citations',
        'One row per (citing provider, cited provider) pair over related links of loaded records; either side may be NULL (no provider). File: `60_provider_citations.sql`. In `provider_citations_for`, `provider` matches the citing or the cited domain.',
        ('citing_provider_domain', 'VARCHAR', 'provider domain of the article that carries the links'),
        ('citing_provider_name', 'VARCHAR', 'its most frequent name'),
        ('cited_provider_domain', 'VARCHAR', 'provider domain of the linked page'),
        ('cited_provider_name', 'VARCHAR', 'its most frequent name'),
        ('links', 'BIGINT', 'related links from citing to cited domain (count)'),
        ('citing_articles', 'BIGINT', 'distinct citing articles (count)'),
        ('cited_urls', 'BIGINT', 'distinct link URLs (count; links without URL not counted)'),
        ('cited_articles_in_warehouse', 'BIGINT', 'distinct link targets that are articles in this warehouse (count)'),
        ('is_self_citation', 'BOOLEAN', 'citing and cited domain are the same'),
    ),
    _v(
        'top_articles',
        'Every article ranked: quality (highest first, NULL last), then rated heat (highest first; heat -1 ranks below every rating, negative ratings included), then newest, then `article_id`. File: `70_top_articles.sql`.',
        ('rank', 'BIGINT', '1 = best'),
        ('article_id', 'VARCHAR', 'the article'),
        ('title', 'VARCHAR', 'title'),
        ('provider_domain', 'VARCHAR', 'provider domain'),
        ('provider_name', 'VARCHAR', 'provider name as the article writes it'),
        ('published_at', 'TIMESTAMPTZ', 'publication instant'),
        ('quality', 'INTEGER', 'quality score (0 to about 190)'),
        ('heat', 'INTEGER', 'heat, raw: -1 = not rated'),
        ('is_heat_rated', 'BOOLEAN', 'heat is a rating (not NULL, not -1)'),
        ('is_published', 'BOOLEAN', 'published flag'),
        ('topics', 'VARCHAR[]', 'topics (CSV: joined with `; `)'),
        ('url', 'VARCHAR', 'the article URL'),
    ),
    _v(
        'duplicate_urls',
        'Articles whose identity (URL) is carried by more than one input file (status `loaded` + `duplicate`). File: `80_duplicate_urls.sql`.',
        ('url', 'VARCHAR', 'the URL; NULL when the identity came from the file path'),
        ('article_id', 'VARCHAR', 'the article'),
        ('file_count', 'BIGINT', 'files carrying it (count, at least 2)'),
        ('winning_source_path', 'VARCHAR', 'the file whose record is in `articles` (greatest published_at, then source_path)'),
        ('other_source_paths', 'VARCHAR[]', 'the duplicate files, alphabetical'),
        ('title', 'VARCHAR', 'title of the winning record'),
        ('provider_domain', 'VARCHAR', 'provider of the winning record'),
        ('published_at', 'TIMESTAMPTZ', 'publication instant of the winning record'),
    ),
    _v(
        'quality_changes',
        'One row per version of an article whose quality or heat differs from the version before, from `article_versions`. File: `90_quality_changes.sql`.',
        ('article_id', 'VARCHAR', 'the article'),
        ('title', 'VARCHAR', 'title in the new version'),
        ('provider_domain', 'VARCHAR', 'provider in the new version'),
        ('changed_at', 'TIMESTAMPTZ', 'when a run first saw the new values (`valid_from` of the version)'),
        ('previous_version', 'INTEGER', 'the version before'),
        ('version', 'INTEGER', 'the version with the new values'),
        ('quality_before', 'INTEGER', 'quality in the version before'),
        ('quality_after', 'INTEGER', 'quality now'),
        ('quality_delta', 'INTEGER', 'quality_after - quality_before'),
        ('heat_before', 'INTEGER', 'heat in the version before (raw, -1 = not rated)'),
        ('heat_after', 'INTEGER', 'heat now (raw)'),
        ('heat_delta', 'INTEGER', 'heat_after - heat_before; NULL when either side is -1 (not rated)'),
        ('run_id', 'VARCHAR', 'the run that saw the change'),
    ),
    _v(
        'open_alerts',
        'One row per alert of the checks that is open now (`check_alerts`), failures first, then the longest open. File: `95_open_alerts.sql`.',
        ('level', 'VARCHAR', 'warn or fail: the worst seen while open'),
        ('check_name', 'VARCHAR', 'the check'),
        ('segment', 'VARCHAR', "the provider's domain; NULL for the whole run"),
        ('detail', 'VARCHAR', 'the field or key; NULL when the check has none'),
        ('message', 'VARCHAR', 'the last message: what was seen and what was expected'),
        ('runs', 'INTEGER', 'runs that saw the fault so far'),
        ('opened_at', 'TIMESTAMPTZ', 'as_of of the run that opened it'),
        ('last_at', 'TIMESTAMPTZ', 'as_of of the last run that saw it'),
        ('observed', 'DOUBLE', 'the last value measured'),
        ('expected', 'DOUBLE', 'the baseline then'),
    ),
    _v(
        'check_history',
        'One row per value a check measured, per run, segment and detail (`check_results`): the history baselines are computed from. File: `96_check_history.sql`.',
        ('check_name', 'VARCHAR', 'the check'),
        ('segment', 'VARCHAR', "the provider's domain; NULL for the whole run"),
        ('detail', 'VARCHAR', 'the field or key; NULL when the check has none'),
        ('run_id', 'VARCHAR', 'the run measured'),
        ('as_of', 'TIMESTAMPTZ', "that run's as_of"),
        ('observed', 'DOUBLE', 'the value'),
        ('unit', 'VARCHAR', 'articles, share, hours, files or points'),
        ('sample_size', 'BIGINT', 'the rows it was measured on'),
        ('expected', 'DOUBLE', 'the baseline it was judged against'),
        ('status', 'VARCHAR', 'the status it got'),
        ('in_baseline', 'BOOLEAN', 'whether later baselines use it (not a value that warned, failed or could not be measured)'),
    ),
)
VIEWS_BY_NAME = {v.name: v for v in VIEWS}


# --- generator front matter: the keys a Hugo, Jekyll, Eleventy or Astro record writes, mapped onto
# the columns (newsetl.mapping applies them; `python -m newsetl.schema mapping` documents them).
# (column, the news format's key, generator keys tried in order, the rule)

@dataclass(frozen=True)
class KeyRule:
    column: str
    news_key: str
    keys: tuple[str, ...]
    rule: str


KEY_RULES: tuple[KeyRule, ...] = (
    KeyRule("published_at", "publishedDateTime", ("date", "pubDate", "publishDate", "published"),
            "the first key present (`published` only when it holds a date, not true/false), ISO 8601 or in "
            "words (`Jul 08 2022`, `July 8, 2022`: midnight UTC); else the date of a "
            "Jekyll file name `YYYY-MM-DD-slug.md` (midnight UTC); else NULL and a data issue (field "
            "`published_at`). Text under the key that is no date (Eleventy's `Last Modified`): NULL, the text kept in "
            "`extra`, and a data issue naming that key. `lastmod` and `updatedDate` have no column: they stay in `extra`"),
    KeyRule("topics", "topics", ("tags", "categories", "keywords"),
            "merged in that order, each topic once (its first place kept); a string is split: `tags` and "
            "`categories` on white space (Jekyll's `categories: \"a b\"`), `keywords` on commas"),
    KeyRule("url", "webUrl", ("canonical", "url", "permalink"),
            "the first key present that is not a template (`{{ page.fileSlug }}`, `{% %}`: it stays in `extra`); "
            "a path (`/posts/a/`) is joined to the base URL when one is set, else kept "
            "as written. With none: the base URL plus the page's path built from the file (`content/`, "
            "`src/content/`, `src/`, `_posts/` dropped; then `folder/slug/`, Jekyll `YYYY/MM/DD/slug.html`; "
            "`slug` key, else the file name without a Jekyll date; `index.md`, `_index.md`: the folder), relative "
            "to the input folder; with no base URL, that path itself. The base URL: `--base-url`, else `[site] "
            "base_url`, else the site's own (Hugo `baseURL`, Jekyll `url` + `baseurl`, Astro `site`). "
            "`originalUrl` counts as a news URL too"),
    KeyRule("images", "images", ("images", "image", "cover", "heroImage", "featured_image"),
            "`images`, else the first other key present: a string is one image, a list several, a mapping one "
            "with its URL under `url`, `src`, `image` (Hugo's `cover.image`) or `path` (its other keys go to `extra`); "
            "relative image URLs are joined to the base URL when one is set"),
    KeyRule("excerpt", "excerpt", ("excerpt", "description", "summary"), "the first key present"),
    KeyRule("is_published", "published", ("draft",),
            "`published` when it is true/false; else `draft: true` is false and `draft: false` true; else NULL"),
)


def mapping_markdown() -> str:
    """The generator keys' mapping, as Markdown (docs/data-dictionary.md embeds it)."""
    out = ["| column | news key (wins) | generator keys, in order | rule |", "|---|---|---|---|"]
    for r in KEY_RULES:
        out.append(f"| `{r.column}` | `{r.news_key}` | {', '.join(f'`{k}`' for k in r.keys)} | {r.rule} |")
    return "\n".join(out) + "\n"


# -- docs/data-dictionary.md is generated from the definitions above

def markdown() -> str:
    """The data dictionary of the warehouse tables, as Markdown (docs/data-dictionary.md embeds it)."""
    out = []
    for t in WAREHOUSE_TABLES:
        out += [f"### `{t.name}`", "", f"{t.grain[0].upper()}{t.grain[1:]}.", "",
                "| column | type | meaning |", "|---|---|---|"]
        out += [f"| `{c.name}` | {c.type} | {c.doc} |" for c in t.columns]
        out.append("")
    return "\n".join(out)


def views_markdown() -> str:
    """The data dictionary of the analytics views, as Markdown (docs/data-dictionary.md embeds it)."""
    out = []
    for v in VIEWS:
        out += [f"### `{v.name}`", "", textwrap.fill(v.about, 80), "", "| column | type | meaning |", "|---|---|---|"]
        out += [f"| `{c.name}` | {c.type} | {c.doc} |" for c in v.columns]
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    # the generated parts of docs/data-dictionary.md: `python -m newsetl.schema [views|mapping]`
    import sys

    print({"views": views_markdown, "mapping": mapping_markdown}.get(sys.argv[1] if sys.argv[1:] else "",
                                                                     markdown)())
