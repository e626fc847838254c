-- What the page says about the warehouse as a whole, whatever the filters: the span of
-- publication dates (the default period), the input files' state and the last two runs.
WITH done AS (
    SELECT run_id, finished_at, as_of,
           row_number() OVER (ORDER BY as_of DESC, finished_at DESC, run_id DESC) AS n
    FROM runs
    WHERE status = 'completed'
)
SELECT (SELECT min(published_at) FROM articles)                               AS first_published_at,
       (SELECT max(published_at) FROM articles)                               AS last_published_at,
       (SELECT count(*) FROM articles)                                        AS articles,
       (SELECT count(*) FROM source_files)                                    AS files,
       (SELECT count(*) FROM source_files WHERE status = 'loaded')            AS loaded_files,
       (SELECT count(*) FROM source_files WHERE status = 'duplicate')         AS duplicate_files,
       (SELECT count(*) FROM source_files WHERE status = 'rejected')          AS rejected_files,
       (SELECT count(*) FROM data_issues)                                     AS issues,
       (SELECT count(DISTINCT source_path) FROM data_issues)                  AS files_with_issues,
       (SELECT count(*) FROM duplicate_urls)                                  AS duplicate_urls,
       (SELECT count(*) FROM article_versions)                                AS versions,
       (SELECT count(*) FROM quality_changes)                                 AS quality_moves,
       (SELECT min(changed_at) FROM quality_changes)                          AS first_change_at,
       (SELECT max(changed_at) FROM quality_changes)                          AS last_change_at,
       (SELECT count(*) FROM done)                                            AS runs,
       (SELECT run_id FROM done WHERE n = 1)                                  AS run_id,
       (SELECT finished_at FROM done WHERE n = 1)                             AS run_finished_at,
       (SELECT as_of FROM done WHERE n = 1)                                   AS run_as_of,
       (SELECT as_of FROM done WHERE n = 2)                                   AS previous_run_as_of;
