-- What article_id hashes: the URL, else the file's path below its input
-- folder (source_path is `<input folder name>/<that path>`).
CREATE OR REPLACE TEMP MACRO article_identity(url, source_path) AS
    coalesce(url, substr(source_path, strpos(source_path, '/') + 1));
