-- provider_stats: one row per provider domain of the articles.
-- quality averages ignore NULLs; heat = -1 means "not rated" and is left out.
CREATE OR REPLACE VIEW provider_stats AS
WITH a AS (
    SELECT provider_domain,
           count(*)                                               AS articles,
           count(quality)                                         AS articles_with_quality,
           round(avg(quality), 2)                                 AS avg_quality,
           median(quality)                                        AS median_quality,
           quantile_cont(quality, 0.9)                            AS p90_quality,
           count(heat) FILTER (WHERE heat <> -1)                  AS articles_heat_rated,
           round(avg(heat) FILTER (WHERE heat <> -1), 2)          AS avg_heat_rated,
           round(100.0 * count(*) FILTER (WHERE is_published) / count(*), 1) AS published_pct,
           round(100.0 * count(*) FILTER (WHERE image_count > 0) / count(*), 1) AS with_image_pct,
           min(published_at)                                      AS first_published_at,
           max(published_at)                                      AS last_published_at
    FROM articles
    WHERE provider_domain IS NOT NULL
    GROUP BY provider_domain
), c AS (
    SELECT provider_domain, count(*) AS citations
    FROM related_links
    WHERE provider_domain IS NOT NULL
    GROUP BY provider_domain
)
SELECT a.provider_domain,
       p.provider_name,
       a.articles,
       a.articles_with_quality,
       a.avg_quality,
       a.median_quality,
       a.p90_quality,
       a.articles_heat_rated,
       a.avg_heat_rated,
       a.published_pct,
       a.with_image_pct,
       coalesce(c.citations, 0) AS related_citations,
       a.first_published_at,
       a.last_published_at
FROM a
LEFT JOIN providers p USING (provider_domain)
LEFT JOIN c USING (provider_domain);
