-- stg_* child views hold the winning files' rows only (build._staging_views)
SELECT s.article_id, s.position, s.url, s.width, s.height, s.is_cached, s.title
FROM stg_images s
WHERE s.article_id IN (SELECT article_id FROM rewrite_images)
