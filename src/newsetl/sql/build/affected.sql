-- What this run changes. Expects `live` (this run's manifest: one row per
-- live file), `old_live` (the last run's), `touched` (source_path of every
-- file parsed again with new bytes, or gone) and `old_articles` (the last
-- snapshot's articles). Everything after this reads only the rows of these
-- articles and files: a run costs what changed, not what the warehouse holds.

-- A run that touches many files builds in steps (build.STEP_FILES): each step
-- takes the articles, and the files without one, that the macro in_step
-- gives it, so no article is built by two steps and memory stays that of a step.

-- articles whose rows may change: those of a touched file, before and after
CREATE OR REPLACE TABLE affected_ids AS
SELECT article_id FROM (
    SELECT article_id FROM old_live SEMI JOIN touched USING (source_path)
    UNION
    SELECT article_id FROM live SEMI JOIN touched USING (source_path)
) WHERE article_id IS NOT NULL AND in_step(article_id, NULL);

-- files whose rows may change: every live file of an affected article (which
-- of them wins may change), and the touched ones with no article (rejected)
CREATE OR REPLACE TABLE affected_files AS
SELECT source_path, batch_id FROM live SEMI JOIN affected_ids USING (article_id)
UNION
SELECT source_path, batch_id FROM live SEMI JOIN touched USING (source_path)
WHERE article_id IS NULL AND in_step(NULL, source_path);

-- their source_files and data_issues rows are replaced; a gone file's just go
CREATE OR REPLACE TABLE affected_paths AS
SELECT source_path FROM affected_files
UNION
SELECT t.source_path FROM touched t
ANTI JOIN live l ON l.source_path = t.source_path
LEFT JOIN old_live o ON o.source_path = t.source_path
WHERE in_step(o.article_id, t.source_path);

-- the affected articles as the last snapshot holds them
CREATE OR REPLACE TABLE old_rows AS
SELECT article_id, source_path, article_identity(url, source_path) AS identity,
       provider_domain, provider_name, provider_logo_url
FROM old_articles SEMI JOIN affected_ids USING (article_id);
