-- provider_stats: one row per provider_domain of the articles (NULL: articles without a provider).
-- Metric definitions used by every provider figure (view, reports, HTML page):
--   quality averages and quantiles ignore NULL quality;
--   heat = -1 means "not rated": heat figures use rated heat only (heat <> -1, not NULL);
--   published_pct counts is_published = true (false or NULL is not published);
--   citations_received counts related links, made by articles in scope, that point to the domain.
-- provider_stats_for(since, until, provider, topic) is the same over the articles in scope
-- (see articles_in); the view is it over all articles.
CREATE OR REPLACE MACRO provider_stats_for(since := NULL, until := NULL, provider := NULL, topic := NULL) AS TABLE
WITH scope AS (
    SELECT * FROM articles_in(since := since, until := until, topic := topic)
), total AS (
    SELECT count(*) AS n FROM scope
), a AS (
    SELECT provider_domain,
           count(*)                                                         AS articles,
           count(quality)               AS articles_with_quality,
           avg_quality(quality)         AS avg_quality,
           median_quality(quality)      AS median_quality,
           p90_quality(quality)         AS p90_quality,
           articles_heat_rated(heat)    AS articles_heat_rated,
           avg_heat_rated(heat)         AS avg_heat_rated,
           published_pct(is_published)  AS published_pct,
           round(100.0 * count(*) FILTER (WHERE image_count > 0) / count(*), 1)  AS with_image_pct,
           min(published_at)                                                AS first_published_at,
           max(published_at)                                                AS last_published_at
    FROM articles_in(since := since, until := until, provider := provider, topic := topic)
    GROUP BY provider_domain
), c AS (
    SELECT r.provider_domain,
           count(*)                     AS citations_received,
           count(DISTINCT r.article_id) AS citing_articles
    FROM related_links r
    JOIN scope s ON s.article_id = r.article_id
    WHERE r.provider_domain IS NOT NULL
    GROUP BY r.provider_domain
)
SELECT a.provider_domain,
       p.provider_name,
       a.articles,
       round(100.0 * a.articles / total.n, 1) AS articles_share_pct,
       a.articles_with_quality,
       a.avg_quality,
       a.median_quality,
       a.p90_quality,
       a.articles_heat_rated,
       a.avg_heat_rated,
       a.published_pct,
       a.with_image_pct,
       coalesce(c.citations_received, 0) AS citations_received,
       coalesce(c.citing_articles, 0)    AS citing_articles,
       a.first_published_at,
       a.last_published_at
FROM a
CROSS JOIN total
LEFT JOIN providers p ON p.provider_domain = a.provider_domain
LEFT JOIN c ON c.provider_domain = a.provider_domain
ORDER BY a.articles DESC, a.provider_domain NULLS LAST;

CREATE OR REPLACE VIEW provider_stats AS
SELECT * FROM provider_stats_for();
