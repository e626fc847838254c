-- duplicate_rate: files this run read whose article (URL) is carried by more than one file,
-- per provider and overall.
WITH f AS (
    SELECT s.source_path, s.article_id, a.provider_domain
    FROM source_files s LEFT JOIN articles a USING (article_id)
    WHERE s.run_id = $run_id AND s.status IN ('loaded', 'duplicate')
), shared AS (
    SELECT article_id FROM source_files
    WHERE status IN ('loaded', 'duplicate') AND article_id IN (SELECT article_id FROM f)
    GROUP BY article_id HAVING count(*) > 1
)
SELECT CASE WHEN grouping(provider_domain) = 0 THEN provider_domain END AS segment,
       NULL AS detail,
       count(*) FILTER (WHERE article_id IN (SELECT article_id FROM shared)) AS duplicates,
       count(*) AS sample_size,
       min(source_path) FILTER (WHERE article_id IN (SELECT article_id FROM shared)) AS evidence
FROM f
GROUP BY GROUPING SETS ((provider_domain), ())
HAVING grouping(provider_domain) = 1 OR provider_domain IS NOT NULL
