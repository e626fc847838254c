-- Build: staging rows -> the warehouse rows of what changed (the contract: docs/warehouse-contract.md).
-- Expects views stg_files, stg_articles and stg_data_issues holding the rows
-- of the affected files (affected.sql: every live file of every affected
-- article, one current version per source_path), and the macro
-- article_identity. The child rows' views (stg_images, stg_related_links,
-- stg_related_images) are made after this, over the winners' files only.

-- Several files with one article_id are one article: the greatest
-- (published_at, source_path) wins; a missing date sorts lowest.
CREATE OR REPLACE TABLE winners AS
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

-- Child rows (children.sql) and providers (providers.sql) are built from what
-- changed, apart.

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
