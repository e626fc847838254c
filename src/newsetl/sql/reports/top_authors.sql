-- The authors with the most articles, with their quality (records name them under `author` or
-- `authors`: authors_for in 45_authors.sql; articles that name nobody are left out).
SELECT author_name, articles, provider_count, avg_quality, median_quality, avg_heat_rated, published_pct,
       first_published_at, last_published_at
FROM authors_for(since := $since, until := $until, provider := $provider, topic := $topic)
WHERE ($min_articles IS NULL OR articles >= $min_articles)
ORDER BY articles DESC, avg_quality DESC NULLS LAST, author_key
LIMIT $limit;
