-- volume: articles first seen by this run (their version 1 opened by it), per provider and overall.
-- Providers with no new article get their zero from the checks' history (newsetl.checks).
SELECT CASE WHEN grouping(provider_domain) = 0 THEN provider_domain END AS segment,
       NULL AS detail,
       count(*) AS observed,
       count(*) AS sample_size,
       min(source_path) AS evidence
FROM article_versions
WHERE run_id = $run_id AND version = 1
GROUP BY GROUPING SETS ((provider_domain), ())
HAVING grouping(provider_domain) = 1 OR provider_domain IS NOT NULL
