-- check_history: the values the checks measured, run after run, for a check and segment (and
-- detail) to be charted or compared: the history their baselines are computed from. A value that
-- warned or failed is not part of later baselines (in_baseline).
CREATE OR REPLACE VIEW check_history AS
SELECT check_name,
       segment,
       detail,
       run_id,
       as_of,
       observed,
       unit,
       sample_size,
       expected,
       status,
       verdict NOT IN ('warn', 'fail', 'error') AND observed IS NOT NULL AS in_baseline
FROM check_results
ORDER BY check_name, segment NULLS FIRST, detail NULLS FIRST, as_of;
