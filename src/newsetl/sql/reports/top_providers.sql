-- The providers that bring the most articles, with their average quality.
SELECT provider_domain, provider_name, articles, avg_quality, median_quality, avg_heat_rated, published_pct
FROM provider_stats
ORDER BY articles DESC, avg_quality DESC NULLS LAST, provider_domain
LIMIT $limit;
