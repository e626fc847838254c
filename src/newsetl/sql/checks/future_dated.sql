-- future_dated: articles this run loaded whose publish time is more than future_hours after the
-- run's as_of, per provider and overall.
SELECT CASE WHEN grouping(provider_domain) = 0 THEN provider_domain END AS segment,
       NULL AS detail,
       count(*) FILTER (WHERE published_at > $as_of + to_hours(CAST($future_hours AS BIGINT))) AS future,
       count(*) AS sample_size,
       min(source_path) FILTER (WHERE published_at > $as_of + to_hours(CAST($future_hours AS BIGINT))) AS evidence,
       max(published_at) AS latest
FROM articles
WHERE run_id = $run_id AND published_at IS NOT NULL
GROUP BY GROUPING SETS ((provider_domain), ())
HAVING grouping(provider_domain) = 1 OR provider_domain IS NOT NULL
