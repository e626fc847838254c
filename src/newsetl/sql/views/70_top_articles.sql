-- top_articles: every article ranked by quality (highest first, no quality last), then by rated
-- heat (highest first; heat -1 = not rated sorts below every rated heat, negative ones included),
-- then newest first, then article_id. rank 1 is the best.
-- heat is raw (-1 kept); is_heat_rated says whether it is a rating.
-- top_articles_for(since, until, provider, topic): the ranking over the articles in scope.
CREATE OR REPLACE MACRO top_articles_for(since := NULL, until := NULL, provider := NULL, topic := NULL) AS TABLE
SELECT row_number() OVER (ORDER BY quality DESC NULLS LAST,
                                   CASE WHEN heat = -1 THEN NULL ELSE heat END DESC NULLS LAST,
                                   published_at DESC NULLS LAST,
                                   article_id) AS rank,
       article_id,
       title,
       provider_domain,
       provider_name,
       published_at,
       quality,
       heat,
       heat IS NOT NULL AND heat <> -1 AS is_heat_rated,
       is_published,
       topics,
       url
FROM articles_in(since := since, until := until, provider := provider, topic := topic)
ORDER BY rank;

CREATE OR REPLACE VIEW top_articles AS
SELECT * FROM top_articles_for();
