-- URLs carried by more than one input file, with the file that won.
SELECT *
FROM duplicate_urls_for(since := $since, until := $until, provider := $provider, topic := $topic)
ORDER BY file_count DESC, url NULLS LAST, article_id
LIMIT $limit;
