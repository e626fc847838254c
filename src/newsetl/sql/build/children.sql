-- Child tables (images, related links and their images): an affected article's
-- child rows are rewritten only if its list changed (another digest of the raw
-- list), it appeared or went away; and its related links' related_article_id
-- is recomputed when an article they point at appeared or went away.
-- Expects winners, old_rows, old_live, stg_files, live_ids, old_related_links.

CREATE OR REPLACE TABLE digests AS
SELECT w.article_id, f.images_digest AS images_new, f.related_digest AS related_new,
       o.images_digest AS images_old, o.related_digest AS related_old, o.source_path IS NOT NULL AS was_there
FROM winners w
JOIN stg_files f ON f.source_path = w.source_path AND f.batch_id = w.batch_id
LEFT JOIN (SELECT r.article_id, m.source_path, m.images_digest, m.related_digest
           FROM old_rows r JOIN old_live m USING (source_path)) o ON o.article_id = w.article_id;

-- new, gone, or another list
CREATE OR REPLACE TABLE rewrite_images AS
SELECT article_id FROM digests WHERE NOT was_there OR images_new IS DISTINCT FROM images_old
UNION
SELECT article_id FROM old_rows ANTI JOIN winners USING (article_id);

CREATE OR REPLACE TABLE rewrite_related AS
SELECT article_id FROM digests WHERE NOT was_there OR related_new IS DISTINCT FROM related_old
UNION
SELECT article_id FROM old_rows ANTI JOIN winners USING (article_id);

-- what an article that appeared or went away was identified by (a link's URL names it)
CREATE OR REPLACE TABLE delta_identities AS
SELECT identity FROM winners ANTI JOIN old_rows USING (article_id)
UNION
SELECT identity FROM old_rows ANTI JOIN winners USING (article_id);
