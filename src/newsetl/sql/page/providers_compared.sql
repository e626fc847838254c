-- Each provider of the current period against the previous one: articles, average quality
-- and rank by articles (competition ranking among the providers of each period; articles
-- without a provider are not ranked). $since/$until bound the current period,
-- $prev_since/$prev_until the previous one; both get the same provider and topic filters.
WITH cur AS (
    SELECT provider_domain, provider_name, articles, avg_quality,
           rank() OVER (ORDER BY articles DESC) AS rank
    FROM provider_stats_for(since := $since, until := $until, provider := $provider, topic := $topic)
    WHERE provider_domain IS NOT NULL
), prev AS (
    SELECT provider_domain, articles, avg_quality,
           rank() OVER (ORDER BY articles DESC) AS rank
    FROM provider_stats_for(since := $prev_since, until := $prev_until, provider := $provider, topic := $topic)
    WHERE provider_domain IS NOT NULL
)
SELECT c.provider_domain,
       c.provider_name,
       coalesce(p.articles, 0) AS articles_before,
       c.articles              AS articles_now,
       p.avg_quality           AS avg_quality_before,
       c.avg_quality           AS avg_quality_now,
       p.rank                  AS rank_before,
       c.rank                  AS rank_now
FROM cur c
LEFT JOIN prev p ON p.provider_domain = c.provider_domain
ORDER BY c.rank, c.avg_quality DESC NULLS LAST, c.provider_domain
LIMIT $limit;
