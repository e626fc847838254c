-- quality_changes: every move of quality or heat of an article, from its history.
-- One row per version whose quality or heat differs from the version before.
CREATE OR REPLACE VIEW quality_changes AS
WITH v AS (
    SELECT article_id, version, valid_from, title, provider_domain, run_id,
           quality, heat,
           lag(quality) OVER w AS quality_before,
           lag(heat) OVER w AS heat_before,
           lag(version) OVER w AS previous_version
    FROM article_versions
    WINDOW w AS (PARTITION BY article_id ORDER BY version)
)
SELECT article_id,
       title,
       provider_domain,
       valid_from AS changed_at,
       previous_version,
       version,
       quality_before,
       quality AS quality_after,
       quality - quality_before AS quality_delta,
       heat_before,
       heat AS heat_after,
       -- -1 means "not rated": a move from or to it has no meaningful delta
       CASE WHEN heat_before <> -1 AND heat <> -1 THEN heat - heat_before END AS heat_delta,
       run_id
FROM v
WHERE previous_version IS NOT NULL
  AND (quality IS DISTINCT FROM quality_before OR heat IS DISTINCT FROM heat_before);
