-- The page's headline figures over the articles in scope (articles_in), one row.
-- Run for the page's period and for each of the two periods it compares.
-- Same metric definitions as the views (05_articles_in.sql): NULL quality ignored,
-- heat -1 = not rated.
WITH s AS (
    SELECT * FROM articles_in(since := $since, until := $until, provider := $provider, topic := $topic)
)
SELECT count(*)                                        AS articles,
       count(published_at)                             AS dated_articles,
       count(DISTINCT provider_domain)                 AS providers,
       count(*) FILTER (WHERE provider_domain IS NULL) AS articles_without_provider,
       count(quality)                                  AS articles_with_quality,
       avg_quality(quality)                            AS avg_quality,
       median_quality(quality)                         AS median_quality,
       p90_quality(quality)                            AS p90_quality,
       articles_heat_rated(heat)                       AS articles_heat_rated,
       avg_heat_rated(heat)                            AS avg_heat_rated,
       count(*) FILTER (WHERE heat = -1)               AS articles_heat_not_rated,
       min(heat) FILTER (WHERE heat <> -1)             AS min_heat_rated,
       max(heat) FILTER (WHERE heat <> -1)             AS max_heat_rated,
       count(*) FILTER (WHERE is_published)            AS articles_published,
       min(published_at)                               AS first_published_at,
       max(published_at)                               AS last_published_at
FROM s;
