-- The checks' alerts for the page: the open ones first (failures, then the longest open), then
-- the most recent that resolved. Whole warehouse, whatever the filters.
SELECT state, level, check_name, segment, detail, message, runs, opened_at, last_at, resolved_at
FROM check_alerts
ORDER BY state = 'open' DESC, CASE WHEN state = 'open' THEN level = 'fail' END DESC,
         CASE WHEN state = 'open' THEN opened_at END, resolved_at DESC, check_name, segment, detail
LIMIT $limit
