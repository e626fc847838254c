-- Articles whose related links point at an article in id_delta: their
-- related_article_id values must be recomputed.
CREATE OR REPLACE TEMP TABLE stale_targets AS
SELECT DISTINCT s.article_id
FROM stg_related_links s
SEMI JOIN winners USING (source_path)
WHERE s.url IN (
    SELECT identity FROM winners WHERE article_id IN (SELECT article_id FROM id_delta)
    UNION ALL
    SELECT identity FROM prev_ids WHERE article_id IN (SELECT article_id FROM id_delta)
);
