-- version_churn: articles that got a new version in this run, per provider; how many of them got
-- one in each of the runs before it too ($runs: this run and the ones before, newest first); the
-- tracked fields that changed, and a sample file.
WITH v AS (
    SELECT article_id, provider_domain, run_id, source_path
    FROM article_versions
    WHERE run_id IN (SELECT unnest($runs)) AND version > 1
), churning AS (
    SELECT article_id FROM v GROUP BY article_id HAVING count(DISTINCT run_id) = len($runs)
), now AS (
    SELECT cur.article_id, cur.provider_domain, cur.source_path,
           [s.k FOR s IN [
               {'k': 'title', 'p': cur.title IS DISTINCT FROM prev.title},
               {'k': 'excerpt', 'p': cur.excerpt IS DISTINCT FROM prev.excerpt},
               {'k': 'quality', 'p': cur.quality IS DISTINCT FROM prev.quality},
               {'k': 'heat', 'p': cur.heat IS DISTINCT FROM prev.heat},
               {'k': 'published', 'p': cur.is_published IS DISTINCT FROM prev.is_published},
               {'k': 'provider', 'p': cur.provider_domain IS DISTINCT FROM prev.provider_domain OR cur.provider_name IS DISTINCT FROM prev.provider_name},
               {'k': 'topics', 'p': cur.topics IS DISTINCT FROM prev.topics},
               {'k': 'images', 'p': cur.image_count IS DISTINCT FROM prev.image_count},
               {'k': 'related', 'p': cur.related_count IS DISTINCT FROM prev.related_count}
           ] IF s.p] AS fields,
           cur.article_id IN (SELECT article_id FROM churning) AS churns
    FROM article_versions cur
    JOIN article_versions prev ON prev.article_id = cur.article_id AND prev.version = cur.version - 1
    WHERE cur.run_id = $run_id AND cur.version > 1 AND cur.provider_domain IS NOT NULL
),
-- every provider this run loaded articles of, so that its zeros are history too
prov AS (
    SELECT DISTINCT provider_domain FROM articles WHERE run_id = $run_id AND provider_domain IS NOT NULL
    UNION
    SELECT DISTINCT provider_domain FROM now
)
SELECT p.provider_domain AS segment,
       NULL AS detail,
       count(n.article_id) AS observed,
       count(n.article_id) FILTER (WHERE n.churns) AS every_run,
       min(n.source_path) AS evidence,
       list_sort(list_distinct(flatten(list(n.fields) FILTER (WHERE n.fields IS NOT NULL)))) AS fields
FROM prov p LEFT JOIN now n USING (provider_domain)
GROUP BY p.provider_domain
