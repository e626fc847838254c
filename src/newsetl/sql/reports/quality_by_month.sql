-- Quality month by month (UTC calendar months).
SELECT *
FROM quality_by_month_for(since := $since, until := $until, provider := $provider, topic := $topic)
ORDER BY month;
