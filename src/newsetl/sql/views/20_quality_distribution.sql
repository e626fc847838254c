-- quality_distribution: how many articles fall in each 10-point quality bucket.
-- Buckets are [bucket_start, bucket_end): fixed width 10, every bucket from the lowest to the
-- highest quality in scope is listed (empty ones with 0 articles), then one row for the
-- articles without a quality (bucket 'no quality', bucket_start NULL), always present.
-- articles_pct is over all articles in scope, NULL quality included; cumulative_pct runs in
-- row order (buckets ascending, 'no quality' last) and ends at 100.
-- quality_distribution_for(since, until, provider, topic): the same over the articles in scope.
CREATE OR REPLACE MACRO quality_distribution_for(since := NULL, until := NULL, provider := NULL, topic := NULL) AS TABLE
WITH scope AS (
    SELECT quality FROM articles_in(since := since, until := until, provider := provider, topic := topic)
), total AS (
    SELECT count(*) AS n FROM scope
), rng AS (
    SELECT CAST(floor(min(quality) / 10.0) * 10 AS INTEGER) AS lo,
           CAST(floor(max(quality) / 10.0) * 10 AS INTEGER) AS hi
    FROM scope
), buckets AS (
    SELECT CAST(g.generate_series AS INTEGER) AS bucket_start
    FROM rng, generate_series(rng.lo, rng.hi, 10) AS g
    WHERE rng.lo IS NOT NULL
), counts AS (
    SELECT CAST(floor(quality / 10.0) * 10 AS INTEGER) AS bucket_start, count(*) AS articles
    FROM scope
    WHERE quality IS NOT NULL
    GROUP BY 1
), rows_ AS (
    SELECT 0 AS sort_key,
           b.bucket_start,
           b.bucket_start + 10 AS bucket_end,
           coalesce(c.articles, 0) AS articles
    FROM buckets b
    LEFT JOIN counts c ON c.bucket_start = b.bucket_start
    UNION ALL
    SELECT 1, NULL, NULL, (SELECT count(*) FROM scope WHERE quality IS NULL)
)
SELECT CASE WHEN bucket_start IS NULL THEN 'no quality'
            ELSE '[' || bucket_start || ', ' || bucket_end || ')' END AS bucket,
       bucket_start,
       bucket_end,
       articles,
       round(100.0 * articles / nullif(total.n, 0), 1) AS articles_pct,
       round(100.0 * sum(articles) OVER (ORDER BY sort_key, bucket_start
                                         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
             / nullif(total.n, 0), 1) AS cumulative_pct
FROM rows_
CROSS JOIN total
ORDER BY sort_key, bucket_start;

CREATE OR REPLACE VIEW quality_distribution AS
SELECT * FROM quality_distribution_for();
