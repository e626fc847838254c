-- Topic growth from topic_stats_for: the 90 days up to the newest article (as_of) against the
-- 90 days before. The windows end at --until (or the newest article) and are not cut by
-- --since, so the earlier window is never emptied by the page's own period.
-- change: articles_last_90d - articles_prev_90d; the page ranks rising and falling topics by it.
SELECT topic,
       articles_prev_90d,
       articles_last_90d,
       articles_last_90d - articles_prev_90d AS change,
       growth_pct,
       as_of
FROM topic_stats_for(until := $until, provider := $provider, topic := $topic)
ORDER BY change DESC, articles_last_90d DESC, topic;
