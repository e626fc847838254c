-- Kept articles whose related links point at an article that appeared or went
-- away: their rows stay, with related_article_id recomputed. The one scan of
-- every link's URL a run makes, and only when the set of articles changed.
CREATE OR REPLACE TABLE stale AS
SELECT DISTINCT article_id FROM old_related_links
WHERE url IN (SELECT identity FROM delta_identities)
  AND article_id NOT IN (SELECT article_id FROM rewrite_related)
  -- written by an earlier step of this run: with the run's final targets already
  AND article_id NOT IN (SELECT article_id FROM run_related)
  AND article_id IN (SELECT article_id FROM live_ids);
