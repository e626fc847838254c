-- Rated heat (heat <> -1, not NULL) of the articles in scope in buckets of $width:
-- [bucket_start, bucket_start + $width), every bucket from the lowest to the highest rating
-- (empty ones with 0). Articles not rated are counted by scope.sql, not here.
WITH s AS (
    SELECT heat
    FROM articles_in(since := $since, until := $until, provider := $provider, topic := $topic)
    WHERE heat IS NOT NULL AND heat <> -1
), r AS (
    SELECT CAST(floor(min(heat) / $width) * $width AS BIGINT) AS lo,
           CAST(floor(max(heat) / $width) * $width AS BIGINT) AS hi
    FROM s
), b AS (
    SELECT g.generate_series AS bucket_start
    FROM r, generate_series(r.lo, r.hi, CAST($width AS BIGINT)) AS g
    WHERE r.lo IS NOT NULL
), c AS (
    SELECT CAST(floor(heat / $width) * $width AS BIGINT) AS bucket_start, count(*) AS articles
    FROM s
    GROUP BY 1
)
SELECT b.bucket_start,
       b.bucket_start + $width AS bucket_end,
       coalesce(c.articles, 0) AS articles
FROM b
LEFT JOIN c ON c.bucket_start = b.bucket_start
ORDER BY b.bucket_start;
