-- rejection_rate: files this run read that were rejected, over all files it read; the folder
-- holding most of the rejected ones, and one of them with its error.
WITH f AS (
    SELECT source_path, status, error,
           CASE WHEN contains(source_path, '/') THEN regexp_replace(source_path, '/[^/]*$', '') ELSE '' END AS folder
    FROM source_files WHERE run_id = $run_id
), top AS (
    SELECT folder, count(*) AS n FROM f WHERE status = 'rejected' GROUP BY folder ORDER BY n DESC, folder LIMIT 1
)
SELECT NULL AS segment,
       NULL AS detail,
       count(*) FILTER (WHERE status = 'rejected') AS rejected,
       count(*) AS sample_size,
       (SELECT folder FROM top) AS folder,
       (SELECT n FROM top) AS in_folder,
       min(source_path) FILTER (WHERE status = 'rejected') AS evidence,
       arg_min(error, source_path) FILTER (WHERE status = 'rejected') AS error
FROM f
