-- authors: one row per author the articles name, a dimension beside the providers, from
-- article_authors (44_article_authors.sql: where the names come from and how they are normalised).
-- authors_for(since, until, provider, topic): one row per author_key over the articles in
-- scope; quality and heat figures as provider_stats has them (05_articles_in.sql).
CREATE OR REPLACE MACRO authors_for(since := NULL, until := NULL, provider := NULL, topic := NULL) AS TABLE
WITH links AS (
    SELECT DISTINCT article_id, author_key, author_name
    FROM article_authors_for(since := since, until := until, provider := provider, topic := topic)
), spelling AS (
    SELECT author_key, author_name,
           row_number() OVER (PARTITION BY author_key ORDER BY count(*) DESC, author_name) AS rank
    FROM links
    GROUP BY author_key, author_name
), per AS (
    SELECT DISTINCT article_id, author_key FROM links
)
SELECT s.author_key,
       s.author_name,
       (SELECT list(DISTINCT l.author_name ORDER BY l.author_name) FROM links l
        WHERE l.author_key = s.author_key) AS name_variants,
       count(*)                                  AS articles,
       count(DISTINCT a.provider_domain)         AS provider_count,
       count(a.quality)                          AS articles_with_quality,
       avg_quality(a.quality)                    AS avg_quality,
       median_quality(a.quality)                 AS median_quality,
       avg_heat_rated(a.heat)                    AS avg_heat_rated,
       published_pct(a.is_published)             AS published_pct,
       min(a.published_at)                       AS first_published_at,
       max(a.published_at)                       AS last_published_at
FROM per p
JOIN articles a USING (article_id)
JOIN spelling s ON s.author_key = p.author_key AND s.rank = 1
GROUP BY s.author_key, s.author_name;

CREATE OR REPLACE VIEW authors AS
SELECT * FROM authors_for()
ORDER BY articles DESC, author_key;
