-- History: one row per article per distinct state of the tracked fields.
-- Expects prev_versions (the last snapshot's article_versions), wh_articles
-- (this run's articles) and the variables as_of and run_id. An article whose
-- tracked fields are unchanged keeps its open version; `secured` and other
-- untracked fields never open one.

CREATE OR REPLACE TABLE open_prev AS
SELECT * FROM prev_versions WHERE valid_to IS NULL;

CREATE OR REPLACE TABLE current_state AS
SELECT article_id, title, excerpt, quality, heat, is_published, provider_domain, provider_name,
       topics, image_count, related_count, source_path
FROM wh_articles;

-- articles whose state differs from their open version, or that have none
CREATE OR REPLACE TABLE opened AS
SELECT c.article_id
FROM current_state c
LEFT JOIN open_prev p USING (article_id)
WHERE p.article_id IS NULL
   OR c.title IS DISTINCT FROM p.title
   OR c.excerpt IS DISTINCT FROM p.excerpt
   OR c.quality IS DISTINCT FROM p.quality
   OR c.heat IS DISTINCT FROM p.heat
   OR c.is_published IS DISTINCT FROM p.is_published
   OR c.provider_domain IS DISTINCT FROM p.provider_domain
   OR c.provider_name IS DISTINCT FROM p.provider_name
   OR c.topics IS DISTINCT FROM p.topics
   OR c.image_count IS DISTINCT FROM p.image_count
   OR c.related_count IS DISTINCT FROM p.related_count;

-- open versions that end now: their article changed or is gone
CREATE OR REPLACE TABLE closed AS
SELECT p.article_id FROM open_prev p
WHERE p.article_id IN (SELECT article_id FROM opened)
   OR p.article_id NOT IN (SELECT article_id FROM current_state);

CREATE OR REPLACE TEMP VIEW wh_article_versions AS
SELECT p.article_id, p.version, p.valid_from,
       CASE WHEN p.valid_to IS NULL AND p.article_id IN (SELECT article_id FROM closed)
            THEN getvariable('as_of') ELSE p.valid_to END AS valid_to,
       p.title, p.excerpt, p.quality, p.heat, p.is_published, p.provider_domain, p.provider_name,
       p.topics, p.image_count, p.related_count, p.source_path, p.run_id,
       CASE WHEN p.valid_to IS NULL AND p.article_id IN (SELECT article_id FROM closed)
            THEN getvariable('run_id') ELSE p.closed_run_id END AS closed_run_id
FROM prev_versions p
UNION ALL
SELECT c.article_id, CAST(coalesce(m.max_version, 0) + 1 AS INTEGER), getvariable('as_of'),
       CAST(NULL AS TIMESTAMPTZ),
       c.title, c.excerpt, c.quality, c.heat, c.is_published, c.provider_domain, c.provider_name,
       c.topics, c.image_count, c.related_count, c.source_path, getvariable('run_id'),
       CAST(NULL AS VARCHAR)
FROM current_state c
SEMI JOIN opened o USING (article_id)
LEFT JOIN (SELECT article_id, max(version) AS max_version FROM prev_versions GROUP BY ALL) m USING (article_id);
