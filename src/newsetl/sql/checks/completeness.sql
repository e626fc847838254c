-- completeness: of the articles this run loaded, per provider and overall, how many have each
-- field filled. The detail is the front-matter key.
WITH a AS (
    SELECT provider_domain,
           quality IS NOT NULL AS "quality",
           heat IS NOT NULL AS "heat",
           coalesce(image_count, 0) > 0 AS "images",
           coalesce(trim(excerpt), '') <> '' AS "excerpt",
           published_at IS NOT NULL AS "publishedDateTime",
           coalesce(len(topics), 0) > 0 AS "topics",
           coalesce(related_count, 0) > 0 AS "related",
           source_path
    FROM articles WHERE run_id = $run_id
), long AS (
    UNPIVOT a ON "quality", "heat", "images", "excerpt", "publishedDateTime", "topics", "related"
    INTO NAME detail VALUE filled
)
SELECT CASE WHEN grouping(provider_domain) = 0 THEN provider_domain END AS segment,
       detail,
       count(*) FILTER (WHERE filled) AS filled,
       count(*) AS sample_size,
       min(source_path) FILTER (WHERE NOT filled) AS evidence
FROM long
GROUP BY GROUPING SETS ((provider_domain, detail), (detail))
HAVING grouping(provider_domain) = 1 OR provider_domain IS NOT NULL
