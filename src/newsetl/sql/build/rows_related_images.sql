SELECT s.article_id, s.related_position, s.position, s.url, s.width, s.height, s.is_cached, s.title
FROM stg_related_images s
SEMI JOIN winners w USING (source_path, batch_id)
WHERE s.article_id IN (SELECT article_id FROM rewrite_related)
