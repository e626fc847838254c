-- Child table {table}: keep the Parquet parts of the last snapshot whose
-- articles all kept the same child rows, and rebuild only the others.
-- Expects: winners, live staging views, prev_parts (part, article_id,
-- digest) of this table in the last snapshot, and stale_targets (articles
-- whose links' related_article_id may have changed). {digest} is the digest
-- of the article's raw list ({table}) computed when its file was parsed.

CREATE OR REPLACE TEMP TABLE cur AS
SELECT w.article_id, w.source_path, w.batch_id, f.{digest} AS digest
FROM winners w JOIN stg_files f USING (source_path);

-- an article's old rows are still right if its child list is the same
CREATE OR REPLACE TEMP TABLE valid AS
SELECT p.part, p.article_id, p.digest
FROM prev_parts p
JOIN cur c ON c.article_id = p.article_id AND c.digest IS NOT DISTINCT FROM p.digest
WHERE p.article_id NOT IN (SELECT article_id FROM stale_targets);

-- a part is kept only if every article in it is still right
CREATE OR REPLACE TEMP TABLE part_state AS
SELECT p.part, count(*) AS articles, count(v.article_id) AS still_valid
FROM prev_parts p
LEFT JOIN valid v ON v.part = p.part AND v.article_id = p.article_id
WHERE p.part IS NOT NULL
GROUP BY p.part;
