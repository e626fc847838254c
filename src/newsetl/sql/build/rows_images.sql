SELECT s.article_id, s.position, s.url, s.width, s.height, s.is_cached, s.title
FROM stg_images s
SEMI JOIN rewrite r USING (source_path, batch_id)
