-- related_article_id: the article the link's URL identifies, if we hold it.
-- article_id is the first 16 hex digits of SHA-256 of the identity, so a link
-- whose URL hashes to a live article_id names that article (live_ids: every
-- article after this run, from the manifest).
SELECT s.article_id, s.position, s.url, s.title, s.excerpt, s.published_at, s.type,
       s.provider_domain, s.provider_name, s.quality, s.amp_url, s.cdn_amp_url, s.image_count,
       t.article_id AS related_article_id
FROM stg_related_links s
SEMI JOIN winners w USING (source_path, batch_id)
LEFT JOIN live_ids t ON t.article_id = substr(sha256(s.url), 1, 16)
WHERE s.article_id IN (SELECT article_id FROM rewrite_related)
UNION ALL
SELECT o.article_id, o.position, o.url, o.title, o.excerpt, o.published_at, o.type,
       o.provider_domain, o.provider_name, o.quality, o.amp_url, o.cdn_amp_url, o.image_count,
       t.article_id AS related_article_id
FROM old_related_links o
SEMI JOIN stale USING (article_id)
LEFT JOIN live_ids t ON t.article_id = substr(sha256(o.url), 1, 16)
