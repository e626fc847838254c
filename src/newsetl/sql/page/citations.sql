-- Related links made by the articles in scope, in one row: how many resolve to an article of
-- this warehouse (related_article_id), how many point back to the citing article's own
-- provider (self-citation) and how many link two different known providers.
WITH l AS (
    SELECT r.article_id,
           r.related_article_id,
           s.provider_domain AS citing_domain,
           r.provider_domain AS cited_domain
    FROM related_links r
    JOIN articles_in(since := $since, until := $until, provider := $provider, topic := $topic) s
      ON s.article_id = r.article_id
)
SELECT count(*)                                                   AS links,
       count(DISTINCT article_id)                                 AS citing_articles,
       count(related_article_id)                                  AS links_in_warehouse,
       count(*) FILTER (WHERE cited_domain = citing_domain)       AS self_links,
       count(*) FILTER (WHERE cited_domain IS NULL OR citing_domain IS NULL) AS links_without_provider,
       count(*) FILTER (WHERE cited_domain <> citing_domain)      AS links_between_providers
FROM l;
