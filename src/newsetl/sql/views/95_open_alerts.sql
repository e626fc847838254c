-- open_alerts: the alerts of the checks that are open now, failures first, then the longest open.
CREATE OR REPLACE VIEW open_alerts AS
SELECT level,
       check_name,
       segment,
       detail,
       message,
       runs,
       opened_at,
       last_at,
       observed,
       expected
FROM check_alerts
WHERE state = 'open'
ORDER BY level = 'fail' DESC, opened_at, check_name, segment NULLS FIRST, detail NULLS FIRST;
