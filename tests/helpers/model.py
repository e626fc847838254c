"""An independent model of the fixture records in tests/fixtures/reports: the figures the
views and reports must give, computed with PyYAML and plain Python, never with
newsetl's own SQL."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "reports"
UTC = dt.timezone.utc


def sha16(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()[:16]


def _int(v):
    return v if isinstance(v, int) and not isinstance(v, bool) else None


@dataclass
class Art:
    name: str
    url: str
    domain: str | None
    provider_name: str | None
    published: dt.datetime | None
    quality: int | None
    heat: int | None
    is_published: bool
    topics: list
    images: int
    related: list = field(default_factory=list)  # (domain, url)

    @property
    def article_id(self) -> str:
        return sha16(self.url)

    @property
    def rated_heat(self):
        return None if self.heat is None or self.heat == -1 else self.heat


def _front_matter(path: Path) -> dict:
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[0] == "---"
    return yaml.safe_load("\n".join(lines[1:lines.index("---", 1)]))


def _art(name: str, d: dict) -> Art:
    prov = d.get("provider") or {}
    when = d.get("publishedDateTime")
    if isinstance(when, dt.datetime) and when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return Art(
        name=name, url=d["webUrl"].strip(),
        domain=prov["domain"].lower() if prov.get("domain") else None, provider_name=prov.get("name"),
        published=when if isinstance(when, dt.datetime) else None,
        quality=_int(d.get("quality")), heat=_int(d.get("heat")), is_published=d.get("published") is True,
        topics=list(d.get("topics") or []), images=len(d.get("images") or []),
        related=[((r.get("provider") or {}).get("domain", "").lower() or None, r.get("webUrl"))
                 for r in d.get("related") or []],
    )


class Corpus:
    def __init__(self, folder: Path = FIXTURE):
        self.rejected, parsed = [], []
        for p in sorted(folder.glob("*.md")):
            try:
                parsed.append(_art(p.name, _front_matter(p)))
            except yaml.YAMLError:
                self.rejected.append(p.name)
        groups = defaultdict(list)
        for a in parsed:
            groups[a.url].append(a)
        self.articles, self.duplicates = [], {}
        low = dt.datetime.min.replace(tzinfo=UTC)
        for url, group in groups.items():
            group.sort(key=lambda a: (a.published or low, a.name))
            self.articles.append(group[-1])
            if len(group) > 1:
                self.duplicates[url] = (group[-1], group[:-1])
        self.files = len(parsed) + len(self.rejected)

    def where(self, since=None, until=None, provider=None, topic=None) -> list[Art]:
        out = []
        for a in self.articles:
            if (since or until) and a.published is None:
                continue
            if since and a.published < since:
                continue
            if until and a.published > until:
                continue
            if provider and a.domain != provider.lower():
                continue
            if topic and topic.lower() not in [t.lower() for t in a.topics]:
                continue
            out.append(a)
        return out


def quantile_cont(values, q):
    s = sorted(values)
    if not s:
        return None
    pos = (len(s) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def mean(values):
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def pct(part, whole):
    return 100.0 * part / whole if whole else None


def expected_provider_stats(scope: list[Art]) -> dict:
    by = defaultdict(list)
    for a in scope:
        by[a.domain].append(a)
    cites = Counter(d for a in scope for d, _ in a.related if d)
    citing = Counter(d for a in scope for d in {d for d, _ in a.related if d})
    out = {}
    for dom, arts in by.items():
        qs = [a.quality for a in arts if a.quality is not None]
        heats = [a.rated_heat for a in arts if a.rated_heat is not None]
        dates = [a.published for a in arts if a.published]
        out[dom] = dict(
            articles=len(arts), articles_share_pct=pct(len(arts), len(scope)), articles_with_quality=len(qs),
            avg_quality=mean(qs), median_quality=quantile_cont(qs, 0.5), p90_quality=quantile_cont(qs, 0.9),
            articles_heat_rated=len(heats), avg_heat_rated=mean(heats),
            published_pct=pct(sum(a.is_published for a in arts), len(arts)),
            with_image_pct=pct(sum(a.images > 0 for a in arts), len(arts)),
            citations_received=cites.get(dom, 0), citing_articles=citing.get(dom, 0),
            first_published_at=min(dates, default=None), last_published_at=max(dates, default=None))
    return out


def close(got, want, digits):
    """Rounded by the view to `digits` decimals."""
    if want is None or got is None:
        return got is None and want is None
    if isinstance(want, dt.datetime) or isinstance(want, str):
        return got == want
    return abs(got - want) <= 0.5 * 10 ** -digits + 1e-9


def assert_rows_match(got: dict, want: dict, digits: dict[str, int]):
    for col, w in want.items():
        g = got[col]
        assert close(g, w, digits.get(col, 0)), (col, g, w)


DIGITS = {"articles_share_pct": 1, "avg_quality": 2, "median_quality": 2, "p90_quality": 2, "avg_heat_rated": 2,
          "published_pct": 1, "with_image_pct": 1, "articles_pct": 1, "cumulative_pct": 1, "growth_pct": 1,
          "files_pct": 1}
