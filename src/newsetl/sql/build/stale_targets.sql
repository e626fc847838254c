-- Articles whose related links point at an article in id_delta: their
-- related_article_id values must be recomputed.
CREATE OR REPLACE TEMP TABLE stale_targets AS
SELECT DISTINCT s.article_id
FROM stg_related_links s
SEMI JOIN winners USING (source_path)
WHERE substr(sha256(s.url), 1, 16) IN (SELECT article_id FROM id_delta);
