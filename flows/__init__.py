"""Prefect flows of newsetl: `etl.news_etl` (news-etl) and `reports.news_reports` (news-reports)."""
