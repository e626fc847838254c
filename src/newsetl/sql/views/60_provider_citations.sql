-- provider_citations: which providers' articles cite which providers through related links.
-- One row per (citing provider_domain, cited provider_domain); either may be NULL (an article or
-- a link without a provider). Only links of loaded (winning) records count.
--   links                        related links from the citing to the cited domain
--   citing_articles              distinct citing articles
--   cited_urls                   distinct link URLs (links without a URL are not counted)
--   cited_articles_in_warehouse  distinct link targets that are themselves articles here
--   is_self_citation             citing and cited domain are the same
-- Provider names are the providers table's (the most frequent name of the domain).
-- provider_citations_for(since, until, provider, topic): citing articles in scope by date and
-- topic; provider matches the citing OR the cited domain.
CREATE OR REPLACE MACRO provider_citations_for(since := NULL, until := NULL, provider := NULL, topic := NULL) AS TABLE
WITH c AS (
    SELECT s.provider_domain AS citing_provider_domain,
           r.provider_domain AS cited_provider_domain,
           count(*)                               AS links,
           count(DISTINCT r.article_id)           AS citing_articles,
           count(DISTINCT r.url)                  AS cited_urls,
           count(DISTINCT r.related_article_id)   AS cited_articles_in_warehouse
    FROM related_links r
    JOIN articles_in(since := since, until := until, topic := topic) s ON s.article_id = r.article_id
    GROUP BY ALL
)
SELECT c.citing_provider_domain,
       pc.provider_name AS citing_provider_name,
       c.cited_provider_domain,
       pd.provider_name AS cited_provider_name,
       c.links,
       c.citing_articles,
       c.cited_urls,
       c.cited_articles_in_warehouse,
       coalesce(c.citing_provider_domain = c.cited_provider_domain, false) AS is_self_citation
FROM c
LEFT JOIN providers pc ON pc.provider_domain = c.citing_provider_domain
LEFT JOIN providers pd ON pd.provider_domain = c.cited_provider_domain
WHERE provider IS NULL
   OR c.citing_provider_domain = lower(trim(CAST(provider AS VARCHAR)))
   OR c.cited_provider_domain = lower(trim(CAST(provider AS VARCHAR)))
ORDER BY c.links DESC, c.citing_provider_domain NULLS LAST, c.cited_provider_domain NULLS LAST;

CREATE OR REPLACE VIEW provider_citations AS
SELECT * FROM provider_citations_for();
