-- frontmatter_drift: which top-level front-matter keys the records this run loaded have, per
-- provider: the known keys (filled, or present with a value that could not be typed) and the
-- unknown ones (in `extra`), each with its JSON type; one sample file per key.
WITH a AS (
    SELECT article_id, provider_domain, source_path, extra,
           [s.k FOR s IN [
               {'k': 'title', 'p': title IS NOT NULL},
               {'k': 'excerpt', 'p': excerpt IS NOT NULL},
               {'k': 'category', 'p': category IS NOT NULL},
               {'k': 'type', 'p': "type" IS NOT NULL},
               {'k': 'publishedDateTime', 'p': published_at IS NOT NULL},
               {'k': 'webUrl', 'p': web_url IS NOT NULL},
               {'k': 'originalUrl', 'p': original_url IS NOT NULL},
               {'k': 'ampWebUrl', 'p': amp_url IS NOT NULL},
               {'k': 'cdnAmpWebUrl', 'p': cdn_amp_url IS NOT NULL},
               {'k': 'quality', 'p': quality IS NOT NULL},
               {'k': 'heat', 'p': heat IS NOT NULL},
               {'k': 'published', 'p': is_published IS NOT NULL},
               {'k': 'provider', 'p': provider_domain IS NOT NULL OR provider_name IS NOT NULL},
               {'k': 'topics', 'p': coalesce(len(topics), 0) > 0},
               {'k': 'images', 'p': coalesce(image_count, 0) > 0},
               {'k': 'related', 'p': coalesce(related_count, 0) > 0},
               {'k': 'featuredContent', 'p': featured_content IS NOT NULL}
           ] IF s.p] AS known
    FROM articles WHERE run_id = $run_id AND provider_domain IS NOT NULL
), typed AS (  -- a known key whose value could not be typed: present, of another type
    SELECT DISTINCT a.article_id, d.field AS key, 'untyped' AS type
    FROM data_issues d JOIN a ON a.source_path = d.source_path
    WHERE d.run_id = $run_id AND NOT regexp_matches(d.field, '[.\[]') AND d.problem NOT LIKE '%given twice%'
), keys AS (
    SELECT article_id, unnest(known) AS key, NULL AS type FROM a
    UNION
    SELECT article_id, key, NULL FROM typed
    UNION ALL
    SELECT article_id, key, type FROM typed
    UNION ALL
    SELECT a.article_id, k.key, NULL FROM a, unnest(json_keys(a.extra)) AS k(key) WHERE a.extra IS NOT NULL
    UNION ALL
    SELECT a.article_id, k.key, json_type(a.extra, '$."' || replace(k.key, '"', '\"') || '"')
    FROM a, unnest(json_keys(a.extra)) AS k(key) WHERE a.extra IS NOT NULL
), per AS (SELECT provider_domain, count(*) AS n FROM a GROUP BY 1)
SELECT a.provider_domain AS segment,
       CASE WHEN k.type IS NULL THEN k.key ELSE k.key || ':' || lower(k.type) END AS detail,
       count(DISTINCT k.article_id) AS present,
       any_value(per.n) AS sample_size,
       min(a.source_path) AS evidence
FROM keys k JOIN a USING (article_id) JOIN per USING (provider_domain)
GROUP BY a.provider_domain, detail
UNION ALL  -- every provider checked this run, with no key (so a key gone from all its records is seen)
SELECT provider_domain, NULL, 0, n, NULL FROM per
