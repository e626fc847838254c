-- Every provider over the articles in scope, most articles first.
SELECT *
FROM provider_stats_for(since := $since, until := $until, provider := $provider, topic := $topic)
WHERE ($min_articles IS NULL OR articles >= $min_articles)
ORDER BY articles DESC, avg_quality DESC NULLS LAST, provider_domain NULLS LAST
LIMIT $limit;
