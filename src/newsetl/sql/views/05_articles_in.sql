-- articles_in: the articles a report (or an analyst) is looking at.
-- One definition of "in scope" shared by every analytics view and report:
--   since, until  inclusive bounds on published_at, compared in UTC whatever the
--                 session's TimeZone. Pass UTC wall-clock TIMESTAMPs, e.g.
--                 since := TIMESTAMP '2021-01-01', until := TIMESTAMP '2021-03-31 23:59:59.999999'.
--                 An article without published_at is out of scope as soon as a bound is given.
--   provider      a provider_domain as stored: compared after lower(trim(provider)), which
--                 leaves a stored domain unchanged and folds case as newsetl does (İ -> i).
--                 Punycode (xn--), a trailing dot and NFKC are not undone here: pass the
--                 stored form (Unicode labels); newsetl report --provider normalises for you.
--   topic         one whole topic of the article, compared case-insensitively (lower() of
--                 both sides, after trim(topic)); any character may be in a topic, none splits it
-- Every parameter defaults to NULL, meaning "no filter":
--   SELECT count(*) FROM articles_in(since := TIMESTAMP '2021-06-01', topic := 'AI');
-- Macro parameters shadow column names inside a macro body, so no view macro
-- refers to a column called since, until, provider or topic.
-- Topics are matched whole, without a lambda (list_transform) so that the catalog
-- also opens in an older DuckDB shell: the list goes to JSON text, lower() runs on
-- that text (it changes letters only: JSON's quotes, commas and backslashes stay, an
-- escape stays an escape) and the text is read back as the list of lower-cased topics.
-- (Joining the topics with a separator and splitting again split a topic that held
-- it; a correlated EXISTS over unnest(topics) is about ten times slower; the NOCASE
-- collation in list_contains is ignored by older shells.)
CREATE OR REPLACE MACRO articles_in(since := NULL, until := NULL, provider := NULL, topic := NULL) AS TABLE
SELECT *
FROM articles
WHERE (since IS NULL OR timezone('UTC', published_at) >= CAST(since AS TIMESTAMP))
  AND (until IS NULL OR timezone('UTC', published_at) <= CAST(until AS TIMESTAMP))
  AND (provider IS NULL OR provider_domain = lower(trim(CAST(provider AS VARCHAR))))
  AND (topic IS NULL
       OR list_contains(CAST(CAST(lower(CAST(to_json(topics) AS VARCHAR)) AS JSON) AS VARCHAR[]),
                        lower(trim(CAST(topic AS VARCHAR)))));


-- The quality and heat figures that several views report, defined once, here
-- beside the scope they share (provider_stats, quality_by_month).
-- Aggregate macros: use them in a SELECT with GROUP BY, like avg().
-- quality runs 0 to about 190; averages and quantiles ignore NULLs.
-- heat = -1 means "not rated" and is left out of every heat figure.
CREATE OR REPLACE MACRO avg_quality(q) AS round(avg(q), 2);
CREATE OR REPLACE MACRO median_quality(q) AS round(median(q), 2);
CREATE OR REPLACE MACRO p90_quality(q) AS round(quantile_cont(q, 0.9), 2);
CREATE OR REPLACE MACRO articles_heat_rated(h) AS count(h) FILTER (WHERE h <> -1);
CREATE OR REPLACE MACRO avg_heat_rated(h) AS round(avg(h) FILTER (WHERE h <> -1), 2);
CREATE OR REPLACE MACRO published_pct(p) AS round(100.0 * count(*) FILTER (WHERE p) / count(*), 1);
