"""Hand-written records for tests."""

from __future__ import annotations


def record(name: str, lines: str, url: str | None = None) -> str:
    """A normal record (title, webUrl) with `lines` of YAML added to its front matter."""
    url = url or f"https://site.example/{name}"
    return f"---\ntitle: {name}\nwebUrl: {url}\n{lines}\n---\nbody of {name}\n"


GOOD = record("good", "publishedDateTime: 2021-03-01T10:00:00Z\nquality: 120\nheat: 7\nprovider:\n  name: Good News\n"
                      "  domain: good.example\ntopics: [AI]")
