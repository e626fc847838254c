-- quality_shift: the median quality of the articles this run loaded, per provider, and their spread
-- (median absolute deviation).
SELECT provider_domain AS segment,
       NULL AS detail,
       median(quality) AS observed,
       mad(quality) AS spread,
       count(*) AS sample_size,
       min(source_path) AS evidence
FROM articles
WHERE run_id = $run_id AND quality IS NOT NULL AND provider_domain IS NOT NULL
GROUP BY provider_domain
