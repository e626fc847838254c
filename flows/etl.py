"""Entry point of the `news-etl` flow for `prefect deploy` (prefect.yaml): the flow itself
lives in the library, newsetl.flows.

    prefect deploy --all
    python flows/etl.py data/demo        # one run, into ./warehouse
"""

from newsetl.flows import news_etl

if __name__ == "__main__":
    import sys

    news_etl(sys.argv[1:] or ["data/demo"])
