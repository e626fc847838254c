-- Topics over the articles in scope, most articles first, with 90-day growth.
SELECT *
FROM topic_stats_for(since := $since, until := $until, provider := $provider, topic := $topic)
WHERE ($min_articles IS NULL OR articles >= $min_articles)
ORDER BY articles DESC, topic
LIMIT $limit;
