-- topic_stats: one row per topic (as written; blank topics are skipped), over articles in scope.
-- Growth compares two 90-day windows ending at as_of, the newest published_at in scope
-- (not now(), so the figures do not change while the data does not):
--   articles_last_90d  published in (as_of - 90 days, as_of]
--   articles_prev_90d  published in (as_of - 180 days, as_of - 90 days]
--   growth_pct         100 * (last - prev) / prev, NULL when prev is 0
-- topic_stats_for(since, until, provider, topic): the same over the articles in scope
-- (with topic given, the one topic; matched case-insensitively).
CREATE OR REPLACE MACRO topic_stats_for(since := NULL, until := NULL, provider := NULL, topic := NULL) AS TABLE
WITH scope AS (
    SELECT * FROM articles_in(since := since, until := until, provider := provider, topic := topic)
), ref AS (
    SELECT max(published_at) AS as_of FROM scope
), t AS (
    -- DISTINCT: a topic listed twice in one record counts once
    SELECT DISTINCT u.topic_name, s.article_id, s.provider_domain, s.quality, s.published_at
    FROM scope s, unnest(s.topics) AS u(topic_name)
    WHERE u.topic_name IS NOT NULL AND trim(u.topic_name) <> ''
      AND (topic IS NULL OR lower(u.topic_name) = lower(trim(CAST(topic AS VARCHAR))))
), agg AS (
    SELECT t.topic_name,
           count(DISTINCT t.article_id)              AS articles,
           count(DISTINCT t.provider_domain)         AS provider_count,
           count(t.quality)                          AS articles_with_quality,
           round(avg(t.quality), 2)                  AS avg_quality,
           min(t.published_at)                       AS first_published_at,
           max(t.published_at)                       AS last_published_at,
           count(DISTINCT t.article_id) FILTER (WHERE t.published_at > ref.as_of - INTERVAL 90 DAY)
                                                     AS articles_last_90d,
           count(DISTINCT t.article_id) FILTER (WHERE t.published_at <= ref.as_of - INTERVAL 90 DAY
                                                  AND t.published_at > ref.as_of - INTERVAL 180 DAY)
                                                     AS articles_prev_90d,
           any_value(ref.as_of)                      AS as_of
    FROM t CROSS JOIN ref
    GROUP BY t.topic_name
)
SELECT topic_name AS topic,
       articles,
       provider_count,
       articles_with_quality,
       avg_quality,
       first_published_at,
       last_published_at,
       articles_last_90d,
       articles_prev_90d,
       round(100.0 * (articles_last_90d - articles_prev_90d) / nullif(articles_prev_90d, 0), 1) AS growth_pct,
       as_of
FROM agg
ORDER BY articles DESC, topic_name;

CREATE OR REPLACE VIEW topic_stats AS
SELECT * FROM topic_stats_for();
