"""The reports' filters (`--since DATE` ...): names and help, with no import of the engine, so the
command line is built without loading DuckDB."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Filter:
    """A filter of the reports, the HTML page and the CLI (`--since DATE` ...), defined here only."""

    name: str
    metavar: str
    help: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


FILTERS: tuple[Filter, ...] = (
    Filter("since", "DATE", "articles published on or after DATE (ISO date or date-time; UTC unless an offset is given)"),
    Filter("until", "DATE", "articles published on or before DATE (a date includes its whole day)"),
    Filter("provider", "DOMAIN", "one provider domain (case-insensitive; punycode and Unicode forms alike)"),
    Filter("topic", "TOPIC", "articles with this topic (the whole topic, case-insensitive)"),
    Filter("min_articles", "N", "rows with at least N articles (provider_stats, top_providers, topic_stats; "
                                "citing articles for provider_citations)"),
    Filter("limit", "N", "at most N rows"),
)
FILTER_NAMES = tuple(f.name for f in FILTERS)


class ReportError(ValueError):
    """A bad report name, filter or filter value: a one-line message for the user."""
