-- Who cites whom through related links, most links first.
-- min_articles: at least that many distinct citing articles.
SELECT *
FROM provider_citations_for(since := $since, until := $until, provider := $provider, topic := $topic)
WHERE ($min_articles IS NULL OR citing_articles >= $min_articles)
ORDER BY links DESC, citing_provider_domain NULLS LAST, cited_provider_domain NULLS LAST
LIMIT $limit;
