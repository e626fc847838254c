-- snapshot_shrink: articles now against the last completed run before this one, and the
-- providers of the articles this run removed.
WITH prev AS (
    SELECT articles_rows FROM runs
    WHERE status = 'completed' AND run_id < $run_id ORDER BY run_id DESC LIMIT 1
), gone AS (
    SELECT provider_domain, count(*) AS n FROM article_versions
    WHERE closed_run_id = $run_id AND valid_to IS NOT NULL
      AND article_id NOT IN (SELECT article_id FROM articles)
    GROUP BY provider_domain
)
SELECT NULL AS segment,
       NULL AS detail,
       (SELECT count(*) FROM articles) AS now,
       (SELECT articles_rows FROM prev) AS before,
       (SELECT string_agg(coalesce(provider_domain, '(none)') || ' ' || n, ', ' ORDER BY n DESC, provider_domain)
        FROM (SELECT * FROM gone ORDER BY n DESC, provider_domain LIMIT 3)) AS evidence
