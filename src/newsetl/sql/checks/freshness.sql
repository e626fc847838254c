-- freshness: hours since each provider's (and the site's) last published article, and how many
-- articles the same hours brought in each of the 4 weeks before: (last - 7k days, now - 7k days].
-- "Now" is the run's as_of for the site; for a provider it is the median of the providers' last
-- articles, if earlier: a provider is late when the others go on without it, and one record
-- dated ahead, or a run long after the last records (a backfill, a replay), moves nothing.
-- Weeks before the provider's first article are not counted (a new provider warms up); an
-- article dated more than future_hours past as_of is not taken as the last one (future_dated
-- flags it). Only the 150 days before as_of are read: a site silent for longer is an archive,
-- with no row.
WITH dated AS (
    SELECT provider_domain, published_at FROM articles
    WHERE published_at IS NOT NULL AND published_at <= $as_of + to_hours(CAST($future_hours AS BIGINT))
      AND published_at > $as_of - INTERVAL 150 DAY
), last AS (
    SELECT max(published_at) AS last_at, count(*) AS n FROM dated
    WHERE provider_domain IS NOT NULL GROUP BY provider_domain
), site AS (
    SELECT least(coalesce(quantile_disc(last_at, 0.5) FILTER (WHERE n >= 3), max(last_at)), $as_of) AS site_now
    FROM last
), a AS (
    SELECT provider_domain AS segment, published_at FROM dated WHERE provider_domain IS NOT NULL
    UNION ALL
    SELECT '' AS segment, published_at FROM dated
), seg AS (
    SELECT segment, max(published_at) AS last_at, min(published_at) AS first_at,
           CASE WHEN segment = '' THEN $as_of ELSE any_value(site_now) END AS now_at
    FROM a, site GROUP BY segment
), weeks AS (
    SELECT s.segment, s.last_at, s.now_at, k FROM seg s, range(1, 5) t(k)
    WHERE s.first_at <= s.last_at - to_days(CAST(7 * k AS INTEGER))
), counted AS (
    SELECT w.segment, w.k, count(a.published_at) AS n
    FROM weeks w LEFT JOIN a ON a.segment = w.segment
        AND a.published_at > w.last_at - to_days(CAST(7 * w.k AS INTEGER))
        AND a.published_at <= w.now_at - to_days(CAST(7 * w.k AS INTEGER))
    GROUP BY w.segment, w.k
)
SELECT nullif(s.segment, '') AS segment,
       NULL AS detail,
       greatest(epoch(s.now_at - s.last_at) / 3600.0, 0) AS observed,
       count(c.k) AS sample_size,
       avg(c.n) AS expected,
       min(c.n) AS least,
       strftime(s.last_at, '%Y-%m-%d %H:%M UTC') AS evidence,
       s.segment = '' OR s.now_at = $as_of AS at_as_of
FROM seg s LEFT JOIN counted c USING (segment)
GROUP BY s.segment, s.last_at, s.now_at
