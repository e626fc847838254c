-- Articles that appeared or went away since the last snapshot (prev_ids).
CREATE OR REPLACE TEMP TABLE id_delta AS
(SELECT article_id FROM winners EXCEPT SELECT article_id FROM prev_ids)
UNION ALL
(SELECT article_id FROM prev_ids EXCEPT SELECT article_id FROM winners);
