-- The articles of {table} to write into this run's new part: new, changed,
-- or in a part that is not kept. Expects kept_parts (part) from Python.
CREATE OR REPLACE TEMP TABLE rewrite AS
SELECT c.* FROM cur c
WHERE c.article_id NOT IN (
    SELECT article_id FROM valid WHERE part IS NULL OR part IN (SELECT part FROM kept_parts)
);
