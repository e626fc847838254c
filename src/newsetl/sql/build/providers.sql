-- Providers: each domain's names, logos and counts, over articles and related
-- links together. Kept as mention counts per (domain, name, logo, kind) in the
-- snapshot's state and updated from what changed: plus the new rows of the
-- affected articles and of the rewritten related lists, minus their old rows.
-- Expects prev_mentions, wh_articles, old_rows, rewrite_related,
-- stg_related_links (the winners' links), old_related_links.

CREATE OR REPLACE TABLE mentions AS
SELECT provider_domain, provider_name, logo_url, is_article, CAST(sum(n) AS BIGINT) AS n
FROM (
    SELECT provider_domain, provider_name, logo_url, is_article, n FROM prev_mentions
    UNION ALL
    SELECT provider_domain, provider_name, provider_logo_url, 1, 1
    FROM wh_articles WHERE provider_domain IS NOT NULL
    UNION ALL
    SELECT provider_domain, provider_name, provider_logo_url, 1, -1
    FROM old_rows WHERE provider_domain IS NOT NULL
    UNION ALL
    SELECT s.provider_domain, s.provider_name, NULL, 0, 1
    FROM stg_related_links s
    WHERE s.provider_domain IS NOT NULL AND s.article_id IN (SELECT article_id FROM rewrite_related)
    UNION ALL
    SELECT o.provider_domain, o.provider_name, NULL, 0, -1
    FROM old_related_links o SEMI JOIN rewrite_related USING (article_id)
    WHERE o.provider_domain IS NOT NULL
)
GROUP BY ALL
HAVING sum(n) <> 0;

CREATE OR REPLACE TEMP VIEW wh_providers AS
WITH names AS (
    SELECT provider_domain, provider_name, sum(n) AS n
    FROM mentions WHERE provider_name IS NOT NULL
    GROUP BY ALL
), best_name AS (
    SELECT provider_domain, provider_name,
           row_number() OVER (PARTITION BY provider_domain ORDER BY n DESC, provider_name) AS rank
    FROM names
), logo_counts AS (
    SELECT provider_domain, logo_url, sum(n) AS n
    FROM mentions WHERE logo_url IS NOT NULL
    GROUP BY ALL
), logos AS (
    SELECT provider_domain, logo_url,
           row_number() OVER (PARTITION BY provider_domain ORDER BY n DESC, logo_url) AS rank
    FROM logo_counts
), counts AS (
    SELECT provider_domain,
           CAST(coalesce(sum(n) FILTER (WHERE is_article = 1), 0) AS BIGINT) AS article_count,
           CAST(coalesce(sum(n) FILTER (WHERE is_article = 0), 0) AS BIGINT) AS citation_count
    FROM mentions GROUP BY ALL
), variants AS (
    SELECT provider_domain, list(provider_name ORDER BY provider_name) AS name_variants
    FROM names GROUP BY ALL
)
SELECT c.provider_domain, b.provider_name,
       coalesce(v.name_variants, CAST([] AS VARCHAR[])) AS name_variants,
       l.logo_url, c.article_count, c.citation_count
FROM counts c
LEFT JOIN best_name b ON b.provider_domain = c.provider_domain AND b.rank = 1
LEFT JOIN variants v ON v.provider_domain = c.provider_domain
LEFT JOIN logos l ON l.provider_domain = c.provider_domain AND l.rank = 1;
