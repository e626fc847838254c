-- Build: live staging rows -> the warehouse tables (the contract: docs/warehouse-contract.md).
-- Expects views stg_files, stg_articles, stg_images, stg_related_links,
-- stg_related_images and stg_data_issues holding only the rows of the files
-- in this run's manifest (one current version per source_path).

-- What article_id hashes: the URL, else the file's path below its input
-- folder (source_path is `<input folder name>/<that path>`).
CREATE OR REPLACE TEMP MACRO article_identity(url, source_path) AS
    coalesce(url, substr(source_path, strpos(source_path, '/') + 1));

-- Several files with one article_id are one article: the greatest
-- (published_at, source_path) wins; a missing date sorts lowest.
CREATE OR REPLACE TEMP TABLE winners AS
SELECT article_id, identity, source_path, batch_id, duplicate_files
FROM (
    SELECT article_id, article_identity(url, source_path) AS identity, source_path, batch_id,
           row_number() OVER (PARTITION BY article_id
                              ORDER BY published_at DESC NULLS LAST, source_path DESC) AS rank,
           count(*) OVER (PARTITION BY article_id) - 1 AS duplicate_files
    FROM stg_articles
)
WHERE rank = 1;

CREATE OR REPLACE TEMP VIEW wh_articles AS
SELECT a.article_id, a.url, a.web_url, a.original_url, a.amp_url, a.cdn_amp_url,
       a.title, a.excerpt, a.category, a.type, a.published_at,
       a.quality, a.heat, a.is_published, a.provider_domain, a.provider_name,
       a.provider_logo_url, a.topics, a.image_count, a.related_count,
       a.featured_content, a.secured, a.extra, a.body,
       a.source_path, a.source_sha256, CAST(w.duplicate_files AS INTEGER) AS duplicate_files, a.run_id
FROM stg_articles a
JOIN winners w USING (source_path);

-- Child rows (images, related links and their images) are not rebuilt here:
-- children.sql reuses the Parquet parts of the last snapshot whose articles
-- did not change and writes only the rest.

-- Provider names are counted over articles and related links together.
CREATE OR REPLACE TEMP TABLE provider_mentions AS
SELECT provider_domain, provider_name, provider_logo_url AS logo_url, 1 AS is_article
FROM wh_articles WHERE provider_domain IS NOT NULL
UNION ALL
SELECT r.provider_domain, r.provider_name, NULL, 0
FROM stg_related_links r SEMI JOIN winners USING (source_path)
WHERE r.provider_domain IS NOT NULL;

CREATE OR REPLACE TEMP VIEW wh_providers AS
WITH names AS (
    SELECT provider_domain, provider_name, count(*) AS n
    FROM provider_mentions WHERE provider_name IS NOT NULL
    GROUP BY ALL
), best_name AS (
    SELECT provider_domain, provider_name,
           row_number() OVER (PARTITION BY provider_domain ORDER BY n DESC, provider_name) AS rank
    FROM names
), logo_counts AS (
    SELECT provider_domain, logo_url, count(*) AS n
    FROM provider_mentions WHERE logo_url IS NOT NULL
    GROUP BY ALL
), logos AS (
    SELECT provider_domain, logo_url,
           row_number() OVER (PARTITION BY provider_domain ORDER BY n DESC, logo_url) AS rank
    FROM logo_counts
), counts AS (
    SELECT provider_domain,
           CAST(sum(is_article) AS BIGINT) AS article_count,
           CAST(count(*) - sum(is_article) AS BIGINT) AS citation_count
    FROM provider_mentions GROUP BY ALL
), variants AS (
    SELECT provider_domain, list(provider_name ORDER BY provider_name) AS name_variants
    FROM names GROUP BY ALL
)
SELECT c.provider_domain, b.provider_name,
       coalesce(v.name_variants, CAST([] AS VARCHAR[])) AS name_variants,
       l.logo_url, c.article_count, c.citation_count
FROM counts c
LEFT JOIN best_name b ON b.provider_domain = c.provider_domain AND b.rank = 1
LEFT JOIN variants v ON v.provider_domain = c.provider_domain
LEFT JOIN logos l ON l.provider_domain = c.provider_domain AND l.rank = 1;

CREATE OR REPLACE TEMP VIEW wh_source_files AS
SELECT f.source_path, f.sha256, f.bytes,
       CASE WHEN f.status = 'rejected' THEN 'rejected'
            WHEN w.source_path IS NOT NULL THEN 'loaded'
            ELSE 'duplicate' END AS status,
       f.error, f.article_id, f.issue_count, f.run_id
FROM stg_files f
LEFT JOIN winners w USING (source_path);

CREATE OR REPLACE TEMP VIEW wh_data_issues AS
SELECT source_path, article_id, field, raw_value, problem, run_id
FROM stg_data_issues;
