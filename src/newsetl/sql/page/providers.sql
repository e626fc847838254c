-- Every provider of the scope (provider_stats_for), with its two ranks:
--   rank          by articles, most first;
--   quality_rank  by average quality, highest first, among the providers with at least
--                 $min_articles articles that have a quality score (NULL for the others),
--                 so that one lucky article cannot top the list.
-- Both are competition ranks: ties share a rank and the next rank skips.
-- Articles without a provider are not ranked (the page says how many there are).
WITH p AS (
    SELECT *, articles_with_quality >= $min_articles AS enough
    FROM provider_stats_for(since := $since, until := $until, provider := $provider, topic := $topic)
    WHERE provider_domain IS NOT NULL
)
SELECT rank() OVER (ORDER BY articles DESC) AS rank,
       CASE WHEN enough THEN rank() OVER (PARTITION BY enough ORDER BY avg_quality DESC) END AS quality_rank,
       * EXCLUDE (enough)
FROM p
ORDER BY articles DESC, avg_quality DESC NULLS LAST, provider_domain;
