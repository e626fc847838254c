-- related_article_id: the article the link's URL identifies, if we hold it.
-- (article_id is a hash of that identity: joining on the identity itself
-- saves hashing every link.)
SELECT s.article_id, s.position, s.url, s.title, s.excerpt, s.published_at, s.type,
       s.provider_domain, s.provider_name, s.quality, s.amp_url, s.cdn_amp_url, s.image_count,
       t.article_id AS related_article_id
FROM stg_related_links s
SEMI JOIN rewrite r USING (source_path, batch_id)
LEFT JOIN winners t ON t.identity = s.url
