"""A simulated news site: one folder of Markdown records growing day by day, deterministic,
with faults injected where a test asks. It drives the tests of data-quality checks.

    site = Site(tmp_path / "site", default_providers(), dt.date(2021, 3, 1), seed=1,
                faults=[Fault("stop", "wiredaily.example", day=5, until=7)])
    for i in range(10):
        r = site.day(i)                   # days run in order: 0, 1, 2, ...
        run(site.folder, as_of=site.as_of(i))

API
    Provider(domain, name, per_day, weekend_factor=1.0, every_days=1, start_day=0,
             quality_mean=100, quality_sd=20)
    Fault(kind, provider, day, until=None, field=None, share=1.0, value=None)
    Site(folder, providers, start, seed=0, faults=())   (at most one fault of a kind per provider and day)
        .day(i) -> DayResult       writes day i's files (i must be the next day); returns what it did
        .date(i) -> date           the simulated day's date: start + i days
        .as_of(i) -> datetime      the run time for day i: that date at 23:59:59+00:00
        .files: dict[Path, SimFile] the files on disk now: provider, day, webUrl, record, faults
    DayResult(day, date, as_of, providers: {domain: ProviderDay}); .written .rewritten .deleted (all providers)
    ProviderDay(planned, written, rewritten, deleted, faulted: {fault kind: [paths]})
    default_providers() -> list[Provider]    twelve providers of varied volume, rhythm and quality

as_of(i) is the end of day i, 23:59:59 UTC, so its date is the simulated day's. Every clean
publishedDateTime of day i falls on a whole minute of that date (at most 23:59:00), before it.

Files: `<folder>/<domain, dots as dashes>/<YYYY-MM-DD>-<slug>.md`, webUrl `https://<domain>/<slug>`,
unique per article. Front matter keys, in this order: title, excerpt, publishedDateTime (UTC),
webUrl, type, quality (0..190), heat (-1 for about two thirds, else 0..500), published, provider
{name, domain}, topics (1-3), images (1-3 {url, width, height}), related (0-4, `[]` when none;
each {title, webUrl, publishedDateTime, provider, quality, images}). Every string but a lowercase
word (`type: article`) is written double-quoted (JSON's escapes, which YAML reads alike), so a
clean record always parses with PyYAML's safe loader. File mtimes are the real ones of the writes.

Determinism: each draw comes from a random.Random seeded with a string of (seed, domain, day,
and the article's number or the fault's kind), so a fault never changes a draw anything else
makes: a faulted site's clean files are byte-identical to the same site's without faults, and a
fault in one provider leaves every other provider's files as they were.

Faults, on the provider's days in [day, until] (`until=None`: forever; for `shrink`, day only).
"Chosen" files are round(share * n) of the n files the provider writes that day.
    stop           the provider writes (and rewrites) nothing
    spike          10 times the day's planned count (10 on a day it planned none); the first
                   `planned` files are the clean ones
    empty_field    `field` left out of the chosen records
    new_key        the chosen records gain top-level `field` (default `sponsor`) = `value`
    rename_key     `field` (default `excerpt`) written as `value` (default from RENAMES)
    type_change    `field` (default `quality`) written as `value` (default from TYPE_CHANGES: a
                   string where a number is, a number where a string is)
    reject         the chosen files are broken YAML: a tab-indented line or an unclosed double
                   quote, always after the provider block (its `domain:` stays readable)
    duplicates     the chosen files reuse the webUrl of one of the provider's existing files
                   (an earlier one of the same day when it has none); own path, own title
    quality_shift  quality drawn around quality_mean - 70 (same draw, clipped to 0..190)
    churn          each day, the same min(10, n) of the provider's n files from before the
                   fault's first day rewritten in place (same path, same webUrl) with a new
                   heat: articles that get a new version on every run (files rejected or
                   without heat are not)
    future         publishedDateTime 30 days after the simulated one
    shrink         before the day's writes, round(share * n) of the n files the provider has
                   deleted (provider None: each provider loses that share of its own)
`DayResult.providers[domain].faulted[kind]` lists the files each active fault shaped (deleted,
for shrink; the spike's extra files; empty when it touched none, as stop).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

UTC = dt.timezone.utc

KINDS = {"stop", "spike", "empty_field", "new_key", "rename_key", "type_change", "reject", "duplicates",
         "quality_shift", "churn", "future", "shrink"}
# the faults that pick `share` of the day's files
PER_FILE = ("quality_shift", "future", "duplicates", "type_change", "rename_key", "empty_field", "new_key",
            "reject")
RENAMES = {"excerpt": "summary", "title": "headline", "publishedDateTime": "published_at", "quality": "score",
           "heat": "hotness", "images": "media", "topics": "tags", "webUrl": "url", "related": "see_also"}
TYPE_CHANGES = {"quality": "high", "heat": "hot", "published": "yes", "publishedDateTime": "last Monday",
                "topics": "AI, Cloud", "images": "none", "related": "none", "provider": "Wire Daily",
                "title": 2021, "excerpt": 0, "webUrl": 404, "type": 1}


@dataclass
class Provider:
    domain: str
    name: str
    per_day: float  # mean articles on a publishing day
    weekend_factor: float = 1.0  # rate multiplier on Saturdays and Sundays
    every_days: int = 1  # publishes on days start_day, start_day + every_days, ...
    start_day: int = 0
    quality_mean: float = 100
    quality_sd: float = 20

    @property
    def slug(self) -> str:
        return self.domain.replace(".", "-")

    def rate(self, i: int, date: dt.date) -> float:
        if i < self.start_day or (i - self.start_day) % self.every_days:
            return 0.0
        return self.per_day * (self.weekend_factor if date.weekday() >= 5 else 1.0)


@dataclass
class Fault:
    kind: str
    provider: str | None  # a domain; None: every provider
    day: int
    until: int | None = None  # last day, inclusive
    field: str | None = None
    share: float = 1.0
    value: object = None  # new_key's value, rename_key's new name, type_change's value

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {sorted(KINDS)}")
        if self.kind == "empty_field" and not self.field:
            raise ValueError("empty_field needs a field")
        self.field = self.field or {"new_key": "sponsor", "rename_key": "excerpt", "type_change": "quality"}.get(
            self.kind)
        if self.value is None:
            self.value = {"new_key": "Acme Cloud", "rename_key": RENAMES.get(self.field, f"{self.field}_v2"),
                          "type_change": TYPE_CHANGES.get(self.field, "high")}.get(self.kind)

    @property
    def last(self) -> float:
        return self.until if self.until is not None else (self.day if self.kind == "shrink" else math.inf)

    def applies(self, domain: str, i: int) -> bool:
        return self.provider in (None, domain) and self.day <= i <= self.last


@dataclass
class SimFile:
    domain: str
    day: int
    url: str
    record: dict | None  # as written; None when broken (reject)
    body: str
    faults: tuple[str, ...] = ()


@dataclass
class ProviderDay:
    planned: int = 0  # the files the clean site writes that day
    written: list[Path] = field(default_factory=list)  # new files
    rewritten: list[Path] = field(default_factory=list)  # existing files given a new version (churn)
    deleted: list[Path] = field(default_factory=list)
    faulted: dict[str, list[Path]] = field(default_factory=dict)


@dataclass
class DayResult:
    day: int
    date: dt.date
    as_of: dt.datetime
    providers: dict[str, ProviderDay]

    @property
    def written(self) -> list[Path]:
        return [p for d in self.providers.values() for p in d.written]

    @property
    def rewritten(self) -> list[Path]:
        return [p for d in self.providers.values() for p in d.rewritten]

    @property
    def deleted(self) -> list[Path]:
        return [p for d in self.providers.values() for p in d.deleted]


class Site:
    def __init__(self, folder: Path, providers: list[Provider], start: dt.date, seed: int = 0,
                 faults: list[Fault] | tuple = ()):
        self.folder, self.providers, self.start, self.seed = Path(folder), list(providers), start, seed
        self.faults = list(faults)
        domains = {p.domain for p in self.providers}
        if len(domains) != len(self.providers):
            raise ValueError("two providers share a domain")
        for f in self.faults:
            if f.provider is not None and f.provider not in domains:
                raise ValueError(f"fault {f.kind} names no provider of the site: {f.provider!r}")
        for a, b in itertools.combinations(self.faults, 2):
            same_provider = None in (a.provider, b.provider) or a.provider == b.provider
            if a.kind == b.kind and same_provider and max(a.day, b.day) <= min(a.last, b.last):
                raise ValueError(f"two {a.kind} faults on one provider's day: one of a kind at a time")
        self.files: dict[Path, SimFile] = {}
        self.next_day = 0

    def date(self, i: int) -> dt.date:
        return self.start + dt.timedelta(days=i)

    def as_of(self, i: int) -> dt.datetime:
        return dt.datetime.combine(self.date(i), dt.time(23, 59, 59), UTC)

    def day(self, i: int) -> DayResult:
        # each day builds on the files the days before left (churn, duplicates, shrink)
        if i != self.next_day:
            raise ValueError(f"days run in order: the next is day {self.next_day}, not {i}")
        self.next_day += 1
        return DayResult(i, self.date(i), self.as_of(i), {p.domain: self._provider_day(p, i) for p in self.providers})

    def _rng(self, p: Provider, i: int, *what) -> random.Random:
        # a string seed is hashed with SHA-512: the same on every run, whatever PYTHONHASHSEED
        return random.Random("|".join(map(str, (self.seed, p.domain, i, *what))))

    def _provider_day(self, p: Provider, i: int) -> ProviderDay:
        date, out = self.date(i), ProviderDay()
        on = {f.kind: f for f in self.faults if f.applies(p.domain, i)}  # one of a kind (__init__)
        for kind in on:
            out.faulted[kind] = []
        if "shrink" in on:
            mine = sorted(path for path, sf in self.files.items() if sf.domain == p.domain)
            gone = sorted(self._rng(p, i, "shrink").sample(mine, round(on["shrink"].share * len(mine))))
            for path in gone:
                path.unlink()
                del self.files[path]
            out.deleted = out.faulted["shrink"] = gone
        out.planned = _poisson(self._rng(p, i), p.rate(i, date))
        if "stop" in on:
            return out
        n = 10 * max(out.planned, 1) if "spike" in on else out.planned
        chosen = {k: set(self._rng(p, i, k).sample(range(n), round(on[k].share * n))) for k in PER_FILE if k in on}
        older = sorted(path for path, sf in self.files.items() if sf.domain == p.domain and sf.record is not None)
        today: list[str] = []  # the webUrls written so far today
        for j in range(n):
            rng = self._rng(p, i, j)
            slug, record, body, z = _article(rng, p, date, i, j)
            kinds = [k for k in PER_FILE if j in chosen.get(k, ())] + (["spike"] if j >= out.planned else [])
            if "quality_shift" in kinds:
                record["quality"] = _clip(round(p.quality_mean - 70 + p.quality_sd * z))
            if "future" in kinds:
                record["publishedDateTime"] += dt.timedelta(days=30)
            if "duplicates" in kinds:
                pool = sorted({self.files[o].url for o in older}) or today
                if pool:
                    record["webUrl"] = self._rng(p, i, "duplicates", j).choice(pool)
                else:
                    kinds.remove("duplicates")  # the provider's first file: nothing to repeat
            url = record["webUrl"]
            today.append(url)
            if "type_change" in kinds and on["type_change"].field in record:
                record[on["type_change"].field] = on["type_change"].value
            if "rename_key" in kinds:
                record = {(on["rename_key"].value if k == on["rename_key"].field else k): v for k, v in record.items()}
            if "empty_field" in kinds:
                record.pop(on["empty_field"].field, None)
            if "new_key" in kinds:
                record[on["new_key"].field] = on["new_key"].value
            text = render(record, body)
            if "reject" in kinds:
                text = _break(text, self._rng(p, i, "reject", j).choice(["tab", "quote"]))
            path = self.folder / p.slug / f"{date.isoformat()}-{slug}.md"
            _write(path, text)
            self.files[path] = SimFile(p.domain, i, url, None if "reject" in kinds else record, body, tuple(kinds))
            out.written.append(path)
            for k in kinds:
                out.faulted[k].append(path)
        if "churn" in on:
            start = on["churn"].day
            # the same articles every day: the ones chosen among the files of the days before the
            # fault (a record without heat, from empty_field, keeps its shape: it is not rewritten)
            hot = [path for path in older if "heat" in self.files[path].record]
            first = min((self.files[path].day for path in hot), default=start)
            hot = [path for path in hot if self.files[path].day < max(start, first + 1)]
            for path in sorted(self._rng(p, start, "churn").sample(hot, min(10, len(hot)))):
                rng = self._rng(p, i, "churn", path.name)
                sf = self.files[path]
                heat = sf.record["heat"]
                while heat == sf.record["heat"]:
                    heat = -1 if rng.random() < 0.5 else rng.randint(0, 500)
                sf.record = {**sf.record, "heat": heat}
                sf.faults = (*sf.faults, "churn")
                _write(path, render(sf.record, sf.body))
                out.rewritten.append(path)
                out.faulted["churn"].append(path)
        return out


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 50:  # Knuth's product underflows for large means; a normal is close enough there
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    k, prod, limit = 0, rng.random(), math.exp(-lam)
    while prod > limit:
        k += 1
        prod *= rng.random()
    return k


def _clip(q: int) -> int:
    return min(190, max(0, q))


# -- the articles ------------------------------------------------------------------------------------

SUBJECTS = ["Microsoft", "Google", "OpenAI", "Nvidia", "AWS", "IBM", "Intel", "Meta", "Apple", "Red Hat",
            "Databricks", "Snowflake", "The EU", "Minneapolis"]
VERBS = ["launches", "previews", "expands", "retires", "opens", "doubles down on", "rethinks", "ships",
         "bans", "patches", "prices"]
THINGS = ["a new AI model", "cloud regions", "its quantum roadmap", "GPU instances", "a security update",
          "edge computing tools", "the data platform", "speech recognition", "facial recognition",
          "serverless pricing", "5G networks", "developer tools"]
# the odd characters real titles carry: entities, quotes, colons, mojibake
TAILS = ["", "", "", " for developers", " in Europe", ": what it means", " &amp; more", ' after "record" quarter',
         " - report", " (updated)", " #AI", "&nbsp;today", " at cityâ€™s request", ": 99.99% uptime"]
SENTENCES = ["Analysts expect more announcements this year.", "The change rolls out over the coming weeks.",
             "Customers get the preview at no extra cost.", "Critics say the move comes late.",
             "Full details here", "It is available in most regions today.", "The company did not comment."]
TOPICS = ["AI", "Cloud", "Azure", "Security", "Computer Vision", "Data", "DevOps", "Quantum", "Mobile",
          "5G", "Robotics", "Privacy"]
SIZES = [(640, 360), (1200, 630), (1120, 630), (600, 337), (1920, 1080), (300, 300), (760, 428)]
OUTSIDE = [("The Guardian", "theguardian.example"), ("Neowin", "neowin.example"), ("IT Pro", "itpro.example"),
           ("Biometric Companies", "biometricupdate.example"), ("tech", "techstory.example")]


def _title(rng: random.Random) -> str:
    return f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(THINGS)}{rng.choice(TAILS)}"


def _slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60].rstrip("-")


def _article(rng: random.Random, p: Provider, date: dt.date, i: int, j: int) -> tuple[str, dict, str, float]:
    """Article j of provider p on day i: its slug, record, body and the quality's normal draw."""
    title = _title(rng)
    slug = f"{_slugify(title)}-{i}-{j}"  # the numbers make it unique within the provider
    published = dt.datetime.combine(date, dt.time(), UTC) + dt.timedelta(minutes=rng.randrange(1440))
    z = rng.gauss(0, 1)
    record = {
        "title": title,
        "excerpt": f"{title}. {rng.choice(SENTENCES)}",
        "publishedDateTime": published,
        "webUrl": f"https://{p.domain}/{slug}",
        "type": "article",
        "quality": _clip(round(p.quality_mean + p.quality_sd * z)),
        "heat": -1 if rng.random() < 2 / 3 else rng.randint(0, 500),
        "published": True,
        "provider": {"name": p.name, "domain": p.domain},
        "topics": rng.sample(TOPICS, rng.randint(1, 3)),
        "images": [_image(rng, f"https://img.example/{p.slug}/{slug}-{k}.jpg") for k in range(rng.randint(1, 3))],
        "related": [],
    }
    for _ in range(rng.randint(0, 4)):
        name, domain = rng.choice(OUTSIDE)
        other = _title(rng)
        record["related"].append({
            "title": other,
            "webUrl": f"https://{domain}/{_slugify(other)}-{rng.randrange(10**6)}",
            "publishedDateTime": published - dt.timedelta(minutes=rng.randrange(30, 3 * 1440)),
            "provider": {"name": name, "domain": domain},
            "quality": rng.randint(0, 190),
            "images": [_image(rng, f"https://img.example/{domain}/{rng.randrange(10**6)}.jpg")],
        })
    return slug, record, f"{title}\n\n{rng.choice(SENTENCES)}\n", z


def _image(rng: random.Random, url: str) -> dict:
    width, height = rng.choice(SIZES)
    return {"url": url, "width": width, "height": height}


# -- the text ------------------------------------------------------------------------------------------

def render(record: dict, body: str) -> str:
    """The file of a record, laid out as the real ones: blocks, a blank line before each
    top-level mapping or list."""
    lines = ["---"]
    for key, value in record.items():
        if isinstance(value, (dict, list)):
            lines.append("")
        lines += _block(key, value, 0)
    return "\n".join(lines + ["---", "", body])


YAML11_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}  # plain, these are not strings


def _scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, dt.datetime):
        return v.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if v is None:
        return "null"
    if isinstance(v, str) and re.fullmatch(r"[a-z]+", v) and v not in YAML11_WORDS:
        return v  # as real records write `type: article`
    # JSON's double-quoted string is one YAML reads alike (the text is printable, no U+2028 or NEL)
    return json.dumps(str(v), ensure_ascii=False)


def _block(key: str, value, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(value, dict):
        return [f"{pad}{key}:"] + [line for k, v in value.items() for line in _block(k, v, indent + 2)]
    if isinstance(value, list) and value:
        lines = [f"{pad}{key}:"]
        for item in value:
            if isinstance(item, dict):
                inner = [line for k, v in item.items() for line in _block(k, v, indent + 4)]
                lines += [f"{pad}  - {inner[0].lstrip()}"] + inner[1:]
            else:
                lines.append(f"{pad}  - {_scalar(item)}")
        return lines
    return [f"{pad}{key}: {'[]' if value == [] else _scalar(value)}"]


def _break(text: str, how: str) -> str:
    """Broken YAML past the provider block, so a salvage can still read the provider's domain."""
    head, rest = text[4:].split("\n---\n", 1)  # past the opening '---\n'
    lines = head.split("\n")
    at = next((n for n, line in enumerate(lines) if line == "provider:"), -1) + 1
    while at and at < len(lines) and lines[at].startswith(" "):
        at += 1  # past the block
    if how == "tab":  # YAML forbids tabs in indentation
        lines.insert(at, "\tsection: news")
    else:  # the last quoted value loses its closing quote: no later quote can close it
        quoted = [n for n in range(at, len(lines)) if lines[n].endswith('"')]
        if quoted:
            lines[quoted[-1]] = lines[quoted[-1]][:-1]
        else:
            lines.append('note: "unterminated')
    return "---\n" + "\n".join(lines) + "\n---\n" + rest


def default_providers() -> list[Provider]:
    """Twelve providers: three high-volume, medium ones, a quiet-weekend one, a weekly one,
    one that appears on day 15; quality means from 40 to 150."""
    return [
        Provider("wiredaily.example", "Wire Daily", 28, weekend_factor=0.6, quality_mean=110),
        Provider("cloudbeat.example", "CloudBeat", 22, quality_mean=95, quality_sd=25),
        Provider("news.bytepost.example", "The Byte Post", 16, quality_mean=130),
        Provider("securewire.example", "Secure Wire", 10, quality_mean=105),
        Provider("officehours.example", "Office Hours", 9, weekend_factor=0.15, quality_mean=100),
        Provider("redmondreport.example", "Redmond Report", 8, quality_mean=120, quality_sd=15),
        Provider("gadgetloop.example", "Gadget Loop", 7, quality_mean=60),
        Provider("tomskit.example", "Tom's Kit", 6, quality_mean=80),
        Provider("quantfolk.example", "Quantfolk%2c Inc.", 5, quality_mean=150, quality_sd=10),
        Provider("edgenotes.example", "Edge Notes", 4, quality_mean=40, quality_sd=15),
        Provider("aiweekly.example", "AI Weekly Digest", 3, every_days=7, quality_mean=140),
        Provider("startupradar.example", "Startup Radar", 6, start_day=15, quality_mean=90),
    ]
