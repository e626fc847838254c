-- duplicate_urls: articles whose URL is carried by more than one input file (status loaded +
-- duplicate in source_files). The winning file is the articles row's source_path (greatest
-- published_at, then source_path); the others are listed, alphabetically.
-- url is NULL when the identity came from the file path (a record without webUrl/originalUrl).
-- duplicate_urls_for(since, until, provider, topic): winners in scope.
CREATE OR REPLACE MACRO duplicate_urls_for(since := NULL, until := NULL, provider := NULL, topic := NULL) AS TABLE
WITH f AS (
    SELECT article_id,
           count(*) AS file_count,
           list(source_path ORDER BY source_path) FILTER (WHERE status = 'duplicate') AS other_source_paths
    FROM source_files
    WHERE status IN ('loaded', 'duplicate') AND article_id IS NOT NULL
    GROUP BY article_id
    HAVING count(*) > 1
)
SELECT a.url,
       a.article_id,
       f.file_count,
       a.source_path AS winning_source_path,
       f.other_source_paths,
       a.title,
       a.provider_domain,
       a.published_at
FROM f
JOIN articles_in(since := since, until := until, provider := provider, topic := topic) a
  ON a.article_id = f.article_id
ORDER BY f.file_count DESC, a.url;

CREATE OR REPLACE VIEW duplicate_urls AS
SELECT * FROM duplicate_urls_for();
