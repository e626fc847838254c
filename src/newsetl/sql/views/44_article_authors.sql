-- article_authors: who wrote the articles, one row per author an article names.
-- The records name them under `author` or `authors` (Hugo, Jekyll, Eleventy, Astro; the
-- news format has no such key): a name, a list of names, or mappings with `name`
-- (`author: {name: Sam, email: ...}`). newsetl keeps those keys in articles.extra as
-- written, so these views read them from there, at query time: no table to carry over
-- between runs, and an incremental warehouse and a rebuild agree because their articles do.
-- A name is normalised: white space collapsed and trimmed; `author_key` is it lower-cased,
-- the one row per author of `authors` (spellings differing in case are one author).
-- An item that is neither text nor a mapping with a text `name` is left out.
-- article_authors_for(since, until, provider, topic): over the articles in scope (articles_in).
CREATE OR REPLACE MACRO article_authors_for(since := NULL, until := NULL, provider := NULL, topic := NULL) AS TABLE
WITH raw AS (
    SELECT article_id, coalesce(json_extract(extra, '$.authors'), json_extract(extra, '$.author')) AS a
    FROM articles_in(since := since, until := until, provider := provider, topic := topic)
    WHERE extra IS NOT NULL AND (json_exists(extra, '$.authors') OR json_exists(extra, '$.author'))
), items AS (
    SELECT article_id,
           unnest(CASE WHEN json_type(a) = 'ARRAY' THEN json_extract(a, '$[*]') ELSE [a] END) AS item,
           generate_subscripts(CASE WHEN json_type(a) = 'ARRAY' THEN json_extract(a, '$[*]') ELSE [a] END, 1) - 1
               AS position
    FROM raw
), named AS (
    SELECT article_id, CAST(position AS INTEGER) AS position,
           nullif(trim(regexp_replace(CASE json_type(item) WHEN 'VARCHAR' THEN item ->> '$'
                                                           WHEN 'OBJECT' THEN item ->> '$.name' END,
                                      '\s+', ' ', 'g')), '') AS author_name
    FROM items
)
SELECT article_id, position, author_name, lower(author_name) AS author_key
FROM named
WHERE author_name IS NOT NULL;

CREATE OR REPLACE VIEW article_authors AS
SELECT * FROM article_authors_for();
