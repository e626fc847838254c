-- The providers that bring the most articles, with their quality (articles without a provider
-- are left out of this leaderboard; provider_stats lists them).
SELECT provider_domain, provider_name, articles, avg_quality, median_quality, avg_heat_rated, published_pct
FROM provider_stats_for(since := $since, until := $until, topic := $topic)
WHERE provider_domain IS NOT NULL
  AND ($min_articles IS NULL OR articles >= $min_articles)
ORDER BY articles DESC, avg_quality DESC NULLS LAST, provider_domain
LIMIT $limit;
