-- related_article_id: the article the link's URL identifies, if we hold it.
-- article_id is the first 16 hex digits of SHA-256 of the identity, so a link
-- whose URL hashes to a live article_id names that article (live_ids: every
-- article after this run, from the manifest).
--
-- The links are the join's hash table, the ids probe it (build.write_keyed runs
-- this with DuckDB's build_side_probe_side optimizer off, so the join runs as
-- written): the links come out grouped by target, 2,048 targets at a time, and
-- a row group of them repeats a target's url, title and excerpt often enough
-- for dictionary encoding. In the staging order (the ids as the hash table, the
-- links streamed) this table took 2.5x the bytes (7.3 MB rather than 2.9 MB at
-- 5,000 records) and scans of its text 2-3x the time, for a build 0.7 s and
-- 200 MB faster at 20,000 records (docs/scaling.md).
SELECT l.article_id, l.position, l.url, l.title, l.excerpt, l.published_at, l.type,
       l.provider_domain, l.provider_name, l.quality, l.amp_url, l.cdn_amp_url, l.image_count,
       t.article_id AS related_article_id
FROM live_ids t
RIGHT JOIN (
    SELECT s.article_id, s.position, s.url, s.title, s.excerpt, s.published_at, s.type,
           s.provider_domain, s.provider_name, s.quality, s.amp_url, s.cdn_amp_url, s.image_count,
           substr(sha256(s.url), 1, 16) AS target
    FROM stg_related_links s
    WHERE s.article_id IN (SELECT article_id FROM rewrite_related)
    UNION ALL
    SELECT o.article_id, o.position, o.url, o.title, o.excerpt, o.published_at, o.type,
           o.provider_domain, o.provider_name, o.quality, o.amp_url, o.cdn_amp_url, o.image_count,
           substr(sha256(o.url), 1, 16)
    FROM old_related_links o
    SEMI JOIN stale USING (article_id)
) l ON t.article_id = l.target
