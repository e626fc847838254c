-- The best articles: quality, then rated heat (heat -1 = not rated, ranked below rated ones).
SELECT *
FROM top_articles_for(since := $since, until := $until, provider := $provider, topic := $topic)
ORDER BY rank
LIMIT $limit;
