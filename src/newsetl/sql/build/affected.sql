-- What this run changes. Expects `live` (this run's manifest: one row per
-- live file), `old_live` (the last run's), `touched` (source_path of every
-- file parsed again with new bytes, or gone) and `old_articles` (the last
-- snapshot's articles). Everything after this reads only the rows of these
-- articles and files: a run costs what changed, not what the warehouse holds.

-- articles whose rows may change: those of a touched file, before and after
CREATE OR REPLACE TEMP TABLE affected_ids AS
SELECT article_id FROM old_live SEMI JOIN touched USING (source_path) WHERE article_id IS NOT NULL
UNION
SELECT article_id FROM live SEMI JOIN touched USING (source_path) WHERE article_id IS NOT NULL;

-- files whose rows may change: the touched ones, and every live file of an
-- affected article (which of them wins may change)
CREATE OR REPLACE TEMP TABLE affected_files AS
SELECT source_path, batch_id FROM live SEMI JOIN touched USING (source_path)
UNION
SELECT source_path, batch_id FROM live SEMI JOIN affected_ids USING (article_id);

-- their source_files and data_issues rows are replaced; a gone file's just go
CREATE OR REPLACE TEMP TABLE affected_paths AS
SELECT source_path FROM affected_files
UNION
SELECT source_path FROM touched;

-- the affected articles as the last snapshot holds them
CREATE OR REPLACE TEMP TABLE old_rows AS
SELECT article_id, source_path, article_identity(url, source_path) AS identity,
       provider_domain, provider_name, provider_logo_url
FROM old_articles SEMI JOIN affected_ids USING (article_id);
