-- Articles in scope whose quality or heat differs between the state valid at $at (the version
-- with valid_from <= $at < valid_to) and their current state (valid_to NULL), from
-- article_versions. Articles new since $at have no state then and are not listed.
-- heat_delta is NULL when either side is -1 (not rated), as in quality_changes.
WITH scope AS (
    SELECT article_id, title, provider_domain, provider_name, url
    FROM articles_in(since := $since, until := $until, provider := $provider, topic := $topic)
), was AS (
    SELECT article_id, quality, heat
    FROM article_versions
    WHERE valid_from <= $at AND (valid_to IS NULL OR valid_to > $at)
), now_ AS (
    SELECT article_id, quality, heat, valid_from
    FROM article_versions
    WHERE valid_to IS NULL
)
SELECT s.article_id,
       s.title,
       s.url,
       s.provider_domain,
       s.provider_name,
       w.quality                  AS quality_before,
       n.quality                  AS quality_after,
       n.quality - w.quality      AS quality_delta,
       w.heat                     AS heat_before,
       n.heat                     AS heat_after,
       CASE WHEN w.heat <> -1 AND n.heat <> -1 THEN n.heat - w.heat END AS heat_delta,
       n.valid_from               AS changed_at
FROM scope s
JOIN was w ON w.article_id = s.article_id
JOIN now_ n ON n.article_id = s.article_id
WHERE w.quality IS DISTINCT FROM n.quality OR w.heat IS DISTINCT FROM n.heat
ORDER BY abs(n.quality - w.quality) DESC NULLS LAST, s.article_id;
