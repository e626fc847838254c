-- Articles per 10-point quality bucket, then the articles without a quality.
SELECT *
FROM quality_distribution_for(since := $since, until := $until, provider := $provider, topic := $topic)
ORDER BY bucket_start NULLS LAST;
