"""Entry point of the `news-reports` flow (newsetl.flows) for `prefect deploy`.

    python flows/reports.py warehouse out/reports
"""

from newsetl.flows import news_reports

if __name__ == "__main__":
    import sys

    news_reports(*sys.argv[1:3])
