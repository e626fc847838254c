-- quality_by_month: one row per calendar month (UTC) from the first to the last month with
-- an article in scope; a month without articles is listed with 0 articles and NULL figures.
-- Articles without published_at have no month and are not counted here.
-- Same metric definitions as provider_stats (NULL quality ignored, heat -1 = not rated).
-- quality_by_month_for(since, until, provider, topic): the same over the articles in scope.
CREATE OR REPLACE MACRO quality_by_month_for(since := NULL, until := NULL, provider := NULL, topic := NULL) AS TABLE
WITH scope AS (
    SELECT CAST(date_trunc('month', timezone('UTC', published_at)) AS DATE) AS month_start,
           quality, heat, is_published
    FROM articles_in(since := since, until := until, provider := provider, topic := topic)
    WHERE published_at IS NOT NULL
), months AS (
    SELECT CAST(g.generate_series AS DATE) AS month_start
    FROM (SELECT min(month_start) AS lo, max(month_start) AS hi FROM scope) r,
         generate_series(CAST(r.lo AS TIMESTAMP), CAST(r.hi AS TIMESTAMP), INTERVAL 1 MONTH) AS g
    WHERE r.lo IS NOT NULL
), m AS (
    SELECT month_start,
           count(*)                                                        AS articles,
           count(quality)               AS articles_with_quality,
           avg_quality(quality)         AS avg_quality,
           median_quality(quality)      AS median_quality,
           p90_quality(quality)         AS p90_quality,
           articles_heat_rated(heat)    AS articles_heat_rated,
           avg_heat_rated(heat)         AS avg_heat_rated,
           published_pct(is_published)  AS published_pct
    FROM scope
    GROUP BY month_start
)
SELECT months.month_start AS month,
       coalesce(m.articles, 0)              AS articles,
       coalesce(m.articles_with_quality, 0) AS articles_with_quality,
       m.avg_quality,
       m.median_quality,
       m.p90_quality,
       coalesce(m.articles_heat_rated, 0)   AS articles_heat_rated,
       m.avg_heat_rated,
       m.published_pct
FROM months
LEFT JOIN m ON m.month_start = months.month_start
ORDER BY month;

CREATE OR REPLACE VIEW quality_by_month AS
SELECT * FROM quality_by_month_for();
