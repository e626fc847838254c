"""Deterministic demo and benchmark corpus of front-matter news records.

``generate`` writes a flat folder of Markdown files shaped like the real
records in ``shared/corpus`` (same key order, quoting and blank-line groups),
plus a few deliberately broken files; ``edit`` rewrites some of them in place
the way a news site does, for incremental runs.

Everything is derived from ``random.Random(seed)`` and YAML is written with
plain string formatting: ``yaml.dump`` would be far slower and would not keep
the real files' style (benchmarks generate 100,000 files, about 1.8 GB).
"""

from __future__ import annotations

import base64
import bisect
import itertools
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from random import Random
from typing import Callable

__all__ = ["DemoSummary", "generate", "edit", "PROFILES"]

ProgressFn = Callable[[int, int], None]

PROFILES = ("demo", "azure", "bench")


@dataclass
class DemoSummary:
    """What ``generate`` wrote."""

    directory: Path
    files: int  # files written, all kinds
    records: int  # well-formed records among them
    malformed: int  # files written deliberately broken
    bytes: int  # total bytes written


# --------------------------------------------------------------------------
# Profiles
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Profile:
    # (cumulative weight, low, high) buckets for the number of related links
    related_buckets: tuple[tuple[float, int, int], ...]
    internal_share: float  # related links that point to generated articles
    image_counts: tuple[float, ...]  # cumulative weights for 0, 1, 2, 3 images
    related_image_counts: tuple[float, ...]  # cumulative weights for 0, 1, 2
    excerpt_len: tuple[int, int]  # target length of an article excerpt
    related_excerpt_len: tuple[int, int]  # same for external related links
    video_share: float
    only_original_share: float  # articles without webUrl
    amp_share: float  # providers that publish AMP pages
    body_share: float
    related_image_title_share: float


_PROFILES: dict[str, _Profile] = {
    # Realistic mix for `make run`: few related links for most records, dozens for some.
    "demo": _Profile(
        related_buckets=((0.50, 0, 4), (0.80, 5, 20), (1.0, 21, 60)),
        internal_share=0.76,
        image_counts=(0.22, 0.82, 0.94, 1.0),
        related_image_counts=(0.35, 0.93, 1.0),
        excerpt_len=(90, 260),
        related_excerpt_len=(60, 240),
        video_share=0.04,
        only_original_share=0.04,
        amp_share=0.25,
        body_share=0.03,
        related_image_title_share=0.03,
    ),
    # Shaped like shared/corpus/azure-2021-01 (measured: 17.6 KB/file,
    # 20.4 related links/file, 14.0 related images/file, 61% internal links;
    # related counts: half the files under 10, a cluster around 48, a tail to 180).
    "azure": _Profile(
        related_buckets=((0.55, 0, 9), (0.72, 10, 27), (0.975, 40, 56), (1.0, 90, 150)),
        internal_share=0.65,
        image_counts=(0.51, 1.0, 1.0, 1.0),
        related_image_counts=(0.345, 0.985, 1.0),
        excerpt_len=(100, 270),
        related_excerpt_len=(100, 290),
        video_share=0.0,
        only_original_share=0.0,
        amp_share=0.30,
        body_share=0.02,
        related_image_title_share=0.0,
    ),
    # The benchmark shape of issue 5: about 20 KB, 30 related links and 20
    # related images per file (a heavier cut of the azure profile).
    "bench": _Profile(
        related_buckets=((0.40, 5, 15), (0.70, 16, 35), (0.95, 40, 60), (1.0, 80, 120)),
        internal_share=0.65,
        image_counts=(0.51, 1.0, 1.0, 1.0),
        related_image_counts=(0.345, 0.985, 1.0),
        excerpt_len=(100, 270),
        related_excerpt_len=(60, 160),
        video_share=0.0,
        only_original_share=0.0,
        amp_share=0.30,
        body_share=0.02,
        related_image_title_share=0.0,
    ),
}

# --------------------------------------------------------------------------
# Vocabularies (invented or generic; no real record is reproduced)
# --------------------------------------------------------------------------

_TOPICS = (
    "AI", "Cloud", "Security", "Machine Learning", "Analytics", "DevOps", "Databases",
    "Computer Vision", "Storage", "Containers", "Privacy", "IoT", "Kubernetes",
    "Serverless", "Identity", "Networking", "Open Source", "Data Science", "Big Data",
    "Programming", "Edge Computing", "Ransomware", "Low-Code", "Python", "JavaScript",
    "Mobile", "Quantum Computing", "Robotics", "Blockchain", "5G", "Gaming",
    "Semiconductors", "Startups", "Regulation", "Remote Work", "Augmented Reality",
    "Autonomous Vehicles", "Healthcare IT", "Fintech", "Sustainability",
)

# Fictional companies (the classic sample-data names) used as the big providers
# and as subjects of the stories.
_COMPANIES = (
    "Contoso", "Fabrikam", "Northwind Traders", "Tailspin Toys", "Adventure Works",
    "Wide World Importers", "Woodgrove Bank", "Litware", "Proseware", "Lucerne Publishing",
    "Alpine Ski House", "Coho Winery", "Fourth Coffee", "Blue Yonder Airlines",
    "Trey Research", "Wingtip Toys", "Humongous Insurance", "Relecloud",
    "Consolidated Messenger", "VanArsdel", "Tailwind Traders", "Margie's Travel",
    "Lamna Healthcare", "Nod Publishers", "Southridge Video", "First Up Consultants",
    "Bellows College", "Datum Corporation", "Graphic Design Institute", "Olympia Systems",
)
_PRODUCT_NOUNS = (
    "Cloud Shield", "Data Studio", "Edge Gateway", "Insight Engine", "Vision API",
    "Speech Services", "Quantum SDK", "Identity Hub", "Secure Vault", "Stream Processor",
    "Log Explorer", "Container Registry", "Kubernetes Service", "Functions", "Object Storage",
    "Key Manager", "Bot Framework", "Low-Code Studio", "Threat Detector", "Backup Center",
    "Migration Assistant", "Network Watcher", "Event Router", "Digital Twins",
    "Form Reader", "Translator", "Sync Service", "Dev Box", "Notebooks", "Data Lake",
)
_INDUSTRIES = (
    "retail", "healthcare", "banking", "manufacturing", "education", "logistics",
    "energy", "insurance", "media", "government", "telecom", "automotive",
)
_FEATURES = (
    "single sign-on", "autoscaling", "GPU support", "private endpoints",
    "role-based access control", "zone redundancy", "real-time alerts",
    "customer-managed keys", "offline sync", "dark mode", "audit logs",
    "cross-region replication", "usage-based pricing", "a new command-line tool",
    "faster cold starts", "end-to-end encryption", "built-in monitoring",
)
_REGIONS = (
    "Europe", "Asia Pacific", "North America", "Brazil", "India", "the UK",
    "Australia", "Japan", "South Africa", "Canada",
)
_QUOTES = (
    "We are all in on AI", "Security is a team sport", "The cloud is just getting started",
    "Customers asked, we listened", "This changes everything for developers",
)
_TITLE_TEMPLATES = (
    "{c} announces {p} for {t}",
    "{c} launches {p} with {f}",
    "{p} is now generally available",
    "Public preview: {p} adds {f}",
    "How {t} is changing {ind}",
    "{n} ways to get more out of {p}",
    "Why {ind} companies are betting on {t}",
    "{c} to acquire {c2} in ${n} million deal",
    "{c} &amp; {c2} team up on {t}",
    "{c}&#39;s new {pn} brings {f} to {ind}",
    '{c} CEO: "{q}"',
    "Review: {p} {v}",
    "{p}&nbsp;{v} is here: what you need to know",
    "Week in review: {t}, {t2} &amp; more",
    "{c} reports {n}% growth in {t} revenue",
    "Attackers exploit flaw in {p}, {c} warns",
    "{t} in {ind}: lessons from {c}",
    "Getting started with {t} on {p}",
    "{c} updates {p} with {f} and {f2}",
    "The state of {t} in {y}",
    "{c} opens new {t} lab in {r}",
    "What &quot;{t}&quot; really means for {ind}",
)
_SENTENCES = (
    "{c} today announced {p}, a new service that helps {ind} teams adopt {t} faster.",
    "The update brings {f} and {f2} to customers in {r}.",
    "Analysts expect the {t} market to grow {n}% over the next {n2} years.",
    "In this post, we walk through how {c} uses {p} to cut costs by {n}%.",
    "{p} is now generally available in {n2} regions, including {r}.",
    "The company said the move would help customers &quot;modernize faster&quot;.",
    "According to {c}, more than {n},000 organizations already rely on the platform.",
    "Security researchers warned that attackers are exploiting a flaw in {p}.",
    "Here&#39;s what you need to know about {t} in {y}.",
    "Pricing starts at ${n2} per user per month.",
    "The preview is available today&nbsp;for {ind} customers in {r}.",
    "Customers can now use {f} with {p} at no extra cost.",
    "\u201cWe\u2019re excited to see what developers build,\u201d said a {c} spokesperson.",
    "Read the full announcement on the {c} blog &amp; share your feedback.",
    "Logs are written to C:\\ProgramData\\{pn}\\logs by default.",
    "The company\u2019s roadmap includes {f} later this year.",
    "{c} and {c2} will jointly offer {p} to {ind} customers.",
    "The feature was one of the most requested on the {c} feedback forum.",
    "Developers can try {p} for free for {n2} days.",
    "Regulators in {r} are still reviewing the deal.",
    "The outage affected {p} users for about {n2} hours on {wd}.",
    "It is {c}\u2019s third acquisition in the {t} space this year.",
)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
_NAME_A = (
    "Tech", "Cloud", "Data", "Digital", "Silicon", "Byte", "Code", "Net", "Cyber", "Future",
    "Open", "Smart", "Quantum", "Pixel", "Signal", "Metro", "Daily", "Global", "Northern",
    "Pacific", "Harbor", "Summit", "Valley", "River", "Capital", "Bright", "Core", "Vector",
)
_NAME_B = (
    "Wire", "Times", "Insider", "Review", "Journal", "Herald", "Post", "Report", "Weekly",
    "Today", "Observer", "Chronicle", "Gazette", "Monitor", "Digest", "Beat", "Pulse",
    "Hub", "Watch", "Radar",
)
# Names led by a digit, as real feeds have them (9to5Mac, 01net, 20 Minutes, 247 Wall St, 13newsnow.com):
# placed in the popularity tail, so that 1-3% of records name one (an article's provider or a
# related link's) as in real data, where they are plain scalars (see _scalar).
_DIGIT_LED = (("9to5 Cloud", 250, 330), ("24/7 Tech Wire", 330, 355))  # (name, article rank, related-link rank)
_TLDS = (".com", ".com", ".com", ".com", ".com", ".com", ".net", ".io", ".co.uk",
         ".com.au", ".org", ".news", ".in", ".de")
# Domains whose name is written several ways (as in real feeds, percent-encoded too).
_VARIANTS = {
    "fabrikam.com": ("Fabrikam, Inc.", "Fabrikam%2c Inc.", "Fabrikam"),
    "northwindtraders.com": ("Northwind Traders", "Northwind"),
    "litware.com": ("Litware%2c LLC", "Litware, LLC"),
    "proseware.com": ("Proseware", "Proseware Media", "proseware.com"),
    "woodgrovebank.com": ("Woodgrove Bank", "Woodgrove"),
}
_SECTIONS = ("technology", "business", "world", "science", "money")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_SIZES = (
    (1200, 630), (1280, 720), (1920, 1080), (1024, 576), (800, 450), (600, 360),
    (1600, 900), (1200, 1200), (2000, 1125), (640, 480), (1200, 800), (300, 200),
    (1024, 557), (1200, 675), (956, 330),
)
_IMAGE_TITLES = ("Illustration", "Screenshot of the new dashboard", "Photo: press handout",
                 "Architecture diagram", "Company logo")
_YT_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_LOGO_HOST = "https://assets.newsfeed-demo.dev/organizations"

_START = 1546300800  # 2019-01-01T00:00:00Z
_SPAN = 3 * 365 * 86400  # dates spread over three years

_ENTITY = re.compile(r"&#?\w+;")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_PLAIN_OK = re.compile(r"[A-Za-z0-9][A-Za-z0-9 .,'&%()/+-]*")
# What a plain scalar led by a digit must not look like, to stay a string: a YAML 1.1 int or
# float (octal, hex, sexagesimal), anything led like a date, or JSON's exponent form.
_NUMBER_OR_DATE = re.compile(r"[0-9]{4}-.*|[0-9][0-9_:.,+-]*(?:[eE][-+]?[0-9]+)?|[0-9]+[xXbB][0-9a-fA-F_]*")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "none"}


def _dq(s: str) -> str:
    """Escape text for a YAML double-quoted scalar (no newlines are ever generated)."""
    if "\\" in s:
        s = s.replace("\\", "\\\\")
    if '"' in s:
        s = s.replace('"', '\\"')
    return s


def _scalar(s: str) -> str:
    """Plain scalar when YAML reads it back as the same string, else double-quoted."""
    if (_PLAIN_OK.fullmatch(s) and s.lower() not in _YAML_WORDS
            and ": " not in s and " #" not in s and not s.endswith((" ", ":"))
            and (s[0].isalpha() or not _NUMBER_OR_DATE.fullmatch(s))):
        return s
    return f'"{_dq(s)}"'


def _slug(title: str, limit: int = 90) -> str:
    s = _NON_ALNUM.sub("-", _ENTITY.sub("", title).lower()).strip("-")
    if len(s) > limit:
        s = s[:limit].rsplit("-", 1)[0]
    return s or "untitled"


def _stamp(ts: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _cum(weights: list[float]) -> list[float]:
    return list(itertools.accumulate(weights))


# --------------------------------------------------------------------------
# World: providers, articles, external links
# --------------------------------------------------------------------------


class _Provider:
    __slots__ = ("domain", "host", "names", "name_cum", "url_style", "img_style",
                 "amp_style", "logo")

    def __init__(self, domain: str, names: tuple[str, ...], rng: Random, amp_share: float):
        self.domain = domain
        self.host = ("www." + domain) if rng.random() < 0.6 else domain
        self.names = tuple(_scalar(n) for n in names)
        # first spelling dominates, the others are occasional
        self.name_cum = _cum([0.6] + [0.4 / (len(names) - 1)] * (len(names) - 1)) if len(names) > 1 else [1.0]
        self.url_style = rng.randrange(6)
        self.img_style = rng.randrange(5)
        self.amp_style = rng.randrange(1, 5) if rng.random() < amp_share else 0
        # a stable logo per domain, for most providers
        self.logo = (
            f'  images:\n    - url: "{_LOGO_HOST}/{domain}-50x50.jpg"\n'
            "      width: 50\n      height: 50\n"
        ) if rng.random() < 0.85 else ""

    def name(self, rng: Random) -> str:
        if len(self.names) == 1:
            return self.names[0]
        return self.names[bisect.bisect(self.name_cum, rng.random() * self.name_cum[-1])]


class _Item:
    """An article of the corpus or an external page a related link points to."""

    __slots__ = ("ts", "date", "title", "title_q", "excerpt_q", "url", "web", "amp", "cdn",
                 "type", "provider", "pname", "quality", "images", "rel_images", "topic",
                 "vid", "slug", "snippet")

    def related_snippet(self) -> str:
        """The item as one entry of a `related` list (rendered once, then reused)."""
        s = self.snippet
        if s is None:
            amp = (f'    ampWebUrl: "{self.amp}"\n    cdnAmpWebUrl: "{self.cdn}"\n'
                   if self.amp else "")
            s = (f'  - title: "{self.title_q}"\n    excerpt: "{self.excerpt_q}"\n'
                 f"    publishedDateTime: {self.date}\n    webUrl: \"{self.url}\"\n{amp}"
                 f"    type: {self.type}\n    provider:\n      name: {self.pname}\n"
                 f"      domain: {self.provider.domain}\n    quality: {self.quality}\n")
            if self.rel_images:
                s += "    images:\n" + _images_text(self.rel_images, "      ")
            self.snippet = s
        return s


def _images_text(images: list[tuple], ind: str) -> str:
    out = []
    for url, w, h, cached, title in images:
        out.append(f'{ind}- url: "{url}"\n{ind}  width: {w}\n{ind}  height: {h}\n'
                   f"{ind}  isCached: {cached}\n")
        if title:
            out.append(f'{ind}  title: "{title}"\n')
    return "".join(out)


class _World:
    """Shared vocabulary state: providers, sentence pool, URL uniqueness."""

    def __init__(self, rng: Random, prof: _Profile, n_providers: int = 300, n_related_only: int = 60):
        self.rng = rng
        self.prof = prof
        self.used_urls: set[str] = set()
        self.topic_cum = _cum([1.0 / (r + 1) ** 0.9 for r in range(len(_TOPICS))])
        self.topics_q = [_scalar(t) for t in _TOPICS]
        self.products = [f"{c} {p}" for c in _COMPANIES for p in _PRODUCT_NOUNS]
        self.providers = self._providers(n_providers + n_related_only)
        # Zipf-like share: a handful of domains carry a big part of the articles.
        self.article_cum = _cum([1.0 / (r + 1) ** 1.05 for r in range(n_providers)])
        # Related links to external sites follow their own popularity order.
        order = list(range(len(self.providers)))
        rng.shuffle(order)
        for name, rank, related_rank in _DIGIT_LED:  # where real data has such names: see _DIGIT_LED
            if rank < len(order):
                order.remove(rank)
                order.insert(min(related_rank, len(order)), rank)
        self.related_order = order
        self.related_cum = _cum([1.0 / (r + 1) ** 0.9 for r in range(len(order))])
        self.sentences = [self._fill(rng.choice(_SENTENCES)) for _ in range(3000)]

    def _providers(self, n: int) -> list[_Provider]:
        rng = self.rng
        names: list[str] = list(_COMPANIES)
        combos = [a + " " + b for a in _NAME_A for b in _NAME_B]
        rng.shuffle(combos)
        names += combos
        out: list[_Provider] = []
        seen: set[str] = set()
        for name in names:
            if len(out) >= n:
                break
            base = re.sub(r"[^a-z0-9]", "", name.lower())
            domain = base + (".com" if name in _COMPANIES else rng.choice(_TLDS))
            if domain in seen:
                continue
            seen.add(domain)
            variants = _VARIANTS.get(domain)
            if variants is None:
                r = rng.random()
                # like real feeds: some providers are named by their domain, a few "The ..."
                variants = (domain,) if r < 0.05 else ("The " + name,) if r < 0.08 else (name,)
            out.append(_Provider(domain, variants, rng, self.prof.amp_share))
        # Keep the fictional companies at the top of the popularity ranking but
        # shuffle among them so that the top domains differ by seed.
        head = out[:8]
        rng.shuffle(head)
        out = head + out[8:]
        side = Random(n)  # not the world's generator: every other provider stays as it was
        for name, rank, _ in _DIGIT_LED:
            if rank < len(out):
                domain = re.sub(r"[^a-z0-9]", "", name.lower()) + ".com"
                out[rank] = _Provider(domain, (name, domain), side, self.prof.amp_share)
        return out

    def _fill(self, template: str, topic: str | None = None) -> str:
        rng = self.rng
        # real feeds carry entities in about 1-2% of titles and excerpts, not in every templated one
        if "&" in template and rng.random() < 0.99:
            template = template.replace("&amp;", "and").replace("&nbsp;", " ").replace("&#39;", "'") \
                               .replace("&quot;", '"')
        c, c2 = rng.sample(_COMPANIES, 2)
        t, t2 = rng.sample(_TOPICS, 2)
        if topic is not None and topic != t2:
            t = topic
        f, f2 = rng.sample(_FEATURES, 2)
        return template.format(
            c=c, c2=c2, p=rng.choice(self.products), pn=rng.choice(_PRODUCT_NOUNS), t=t, t2=t2,
            f=f, f2=f2, ind=rng.choice(_INDUSTRIES), r=rng.choice(_REGIONS),
            n=rng.randint(2, 99), n2=rng.randint(2, 40), y=rng.randint(2019, 2022),
            q=rng.choice(_QUOTES), v=f"{rng.randint(1, 12)}.{rng.randint(0, 9)}",
            wd=rng.choice(_WEEKDAYS),
        )

    def excerpt(self, lo: int, hi: int) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.01:
            return ""
        target = rng.randint(lo, hi)
        parts: list[str] = []
        size = 0
        sentences = self.sentences
        while size < target:
            s = sentences[int(rng.random() * len(sentences))]
            parts.append(s)
            size += len(s) + 1
        text = " ".join(parts)
        if r < 0.25 and len(text) > target + 20:
            # feeds cut excerpts mid-sentence
            text = text[:target].rstrip()
        if r > 0.985:
            text = text.replace("\u2019", "\u00e2\u20ac\u2122")  # mojibake, as in real feeds
        return text

    def unique_url(self, url: str) -> str:
        if url in self.used_urls:
            for i in itertools.count(2):
                alt = url.rstrip("/") + f"-{i}" + ("/" if url.endswith("/") else "")
                if alt not in self.used_urls:
                    url = alt
                    break
        self.used_urls.add(url)
        return url

    def image(self, p: _Provider, ts: int, slug: str, title_share: float) -> tuple:
        rng = self.rng
        w, h = _SIZES[int(rng.random() * len(_SIZES))]
        hx = "%032x" % rng.getrandbits(128)
        y, m = time.gmtime(ts)[:2]
        style = p.img_style
        if style == 0:
            url = f"https://{p.host}/wp-content/uploads/{y}/{m:02d}/{slug[:40]}-{w}x{h}.jpg"
        elif style == 1:
            url = f"https://cdn.{p.domain}/images/{hx}.jpg"
        elif style == 2:
            url = f"https://img.{p.domain}/{y}/{m:02d}/{hx[:16]}.png?width={w}&quality=80"
        elif style == 3:
            url = (f"https://media.{p.domain}/assets/{hx[:8]}-{hx[8:12]}-{hx[12:16]}-{hx[16:20]}-"
                   f"{hx[20:]}/{hx[:13]}.image.jpg?resize={w}%2C{h}")
        else:
            url = f"https://d{hx[:13]}.cloudfront.net/uploads/{y}/{m:02d}/{hx[13:23]}.jpeg"
        cached = "true" if rng.random() < 0.96 else "false"
        title = _dq(rng.choice(_IMAGE_TITLES)) if rng.random() < title_share else ""
        return (url, w, h, cached, title)

    def pick(self, cum: list[float]) -> int:
        return bisect.bisect(cum, self.rng.random() * cum[-1])

    def item(self, ts: int, provider: _Provider, *, video: bool, web: bool,
             excerpt_len: tuple[int, int], n_images: int) -> _Item:
        """A story: title, excerpt, URLs, images; enough for its file and for citing it."""
        rng = self.rng
        prof = self.prof
        it = _Item()
        it.ts = ts
        it.date = _stamp(ts)
        it.topic = self.pick(self.topic_cum)
        # the title speaks about the record's main topic
        it.title = self._fill(rng.choice(_TITLE_TEMPLATES), _TOPICS[it.topic])
        it.title_q = _dq(it.title)
        it.excerpt_q = _dq(self.excerpt(*excerpt_len))
        it.slug = _slug(it.title)
        it.provider = provider
        it.pname = provider.name(rng)
        it.quality = _quality(rng)
        it.snippet = None
        it.vid = ""
        if video:
            it.type = "video"
            it.vid = "".join(rng.choices(_YT_ALPHABET, k=11))
            it.url = self.unique_url(f"https://youtube.com/watch?v={it.vid}")
            it.web = False
            it.amp = it.cdn = ""
            it.images = [(f"https://i.ytimg.com/vi/{it.vid}/maxresdefault.jpg", 1280, 720, "true", "")]
        else:
            it.type = "article"
            it.url = self.unique_url(self._url(provider, ts, it.slug))
            it.web = web
            it.amp = it.cdn = ""
            if provider.amp_style and web and rng.random() < 0.9:
                it.amp, it.cdn = _amp(provider, it.url)
            it.images = [self.image(provider, ts, it.slug, 0.04) for _ in range(n_images)]
        # Image shown when another page cites this one: its own first image(s) or a scraped one.
        k = bisect.bisect(prof.related_image_counts, rng.random())
        rel = it.images[:k]
        while len(rel) < k:
            rel.append(self.image(provider, ts, it.slug, prof.related_image_title_share))
        it.rel_images = rel
        return it

    def _url(self, p: _Provider, ts: int, slug: str) -> str:
        rng = self.rng
        g = time.gmtime(ts)
        style = p.url_style
        if style == 0:
            return f"https://{p.host}/{g.tm_year}/{g.tm_mon:02d}/{g.tm_mday:02d}/{slug}/"
        if style == 1:
            return f"https://{p.host}/article/{slug}-{rng.randrange(10**6, 10**8)}"
        if style == 2:
            return f"https://{p.host}/news/{slug}.html"
        if style == 3:
            return f"https://{p.host}/blog/{slug}/"
        if style == 4:
            return (f"https://{p.host}/{rng.choice(_SECTIONS)}/{g.tm_year}/"
                    f"{_MONTHS[g.tm_mon - 1]}/{g.tm_mday:02d}/{slug}")
        return f"https://{p.host}/{rng.choice(_SECTIONS)}/{slug}-{rng.randrange(10**5, 10**7)}"


def _amp(p: _Provider, url: str) -> tuple[str, str]:
    path = url.split("/", 3)[3]
    style = p.amp_style
    if style == 1:
        amp = url + ("amp/" if url.endswith("/") else "/amp")
    elif style == 2:
        amp = f"https://{p.host}/amp/{path}"
    elif style == 3:
        amp = f"https://{p.host}/google-amp/{path}"
    else:
        amp = f"https://amp.{p.domain}/{path}"
    host = amp.split("/", 3)[2]
    cdn = f"https://{host.replace('-', '--').replace('.', '-')}.cdn.ampproject.org/c/s/{amp[8:]}"
    return amp, cdn


def _quality(rng: Random) -> int:
    """0-190, most between 20 and 120 (as measured on the real folders)."""
    r = rng.random()
    if r < 0.08:
        return rng.randint(0, 20)
    if r < 0.94:
        return min(190, max(0, int(rng.gauss(68, 27))))
    return rng.randint(120, 190)


def _secured(rng: Random) -> str:
    """Opaque base64-looking token: a long part, ';', a 16-byte part."""
    n = (272, 272, 272, 398, 355)[int(rng.random() * 5)]
    return (base64.b64encode(rng.randbytes(n)).decode("ascii") + ";"
            + base64.b64encode(rng.randbytes(16)).decode("ascii"))


def _heat(rng: Random, quality: int) -> int:
    if rng.random() < 0.67:  # about two thirds of real records carry heat -1
        return -1
    return max(1, int(quality * (0.5 + rng.random())) + rng.randint(1, 40))


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------

_IFRAME = ('<iframe width=\\"800\\" height=\\"500\\" frameborder=\\"0\\" '
           'src=\\"https://www.youtube.com/embed/{vid}\\" allow=\\"accelerometer; autoplay; '
           'encrypted-media; gyroscope; picture-in-picture\\" allowfullscreen></iframe>')


@dataclass
class _File:
    item: _Item
    ts: int  # publish time of this file (differs from the item's for re-posts)
    name: str
    repost: bool = False


def _render(f: _File, world: _World, related: str, rng: Random) -> str:
    """One well-formed record, in the real files' key order and blank-line groups."""
    it = f.item
    prof = world.prof
    date = it.date if not f.repost else _stamp(f.ts)
    title_q = it.title_q
    if f.repost and rng.random() < 0.3:
        title_q = "UPDATE: " + title_q
    quality = it.quality if not f.repost else max(0, min(190, it.quality + rng.randint(-5, 5)))
    heat = _heat(rng, quality)
    published = "true" if rng.random() < 0.45 else "false"
    out = [f'---\ncategory: news\ntitle: "{title_q}"\nexcerpt: "{it.excerpt_q}"\n'
           f"publishedDateTime: {date}\n"]
    if it.type == "video":
        out.append(f'originalUrl: "{it.url}"\n')
    else:
        # a few feeds hand out a tracking link as the original URL
        orig = it.url if rng.random() < 0.97 else it.url + ("&" if "?" in it.url else "?") + "utm_source=rss"
        out.append(f'originalUrl: "{orig}"\n')
        if it.web:
            out.append(f'webUrl: "{it.url}"\n')
            if it.amp:
                out.append(f'ampWebUrl: "{it.amp}"\ncdnAmpWebUrl: "{it.cdn}"\n')
    out.append(f"type: {it.type}\nquality: {quality}\nheat: {heat}\npublished: {published}\n\n")
    if it.type == "video":
        out.append(f'featuredContent: "{_IFRAME.format(vid=it.vid)}"\n\n')
    p = it.provider
    out.append(f"provider:\n  name: {it.pname}\n  domain: {p.domain}\n{p.logo}\n")
    topics = [it.topic]
    r = rng.random()
    for _ in range(0 if r < 0.45 else 1 if r < 0.85 else 2):
        t = world.pick(world.topic_cum)
        if t not in topics:
            topics.append(t)
    out.append("topics:\n" + "".join(f"  - {world.topics_q[t]}\n" for t in topics) + "\n")
    if it.images:
        out.append("images:\n" + _images_text(it.images, "  ") + "\n")
    if related:
        out.append("related:\n" + related + "\n")
    out.append(f'secured: "{_secured(rng)}"\n---\n\n')
    if rng.random() < prof.body_share:
        s = world.sentences
        out.append(f"## Highlights\n\n- {rng.choice(s)}\n- {rng.choice(s)}\n\n"
                   f"{rng.choice(s)} Read the [full story]({it.url}).\n")
    return "".join(out)


class _Builder:
    """Plans the corpus (phase 1) so that related links can cite any article."""

    def __init__(self, records: int, seed: int, prof: _Profile):
        self.rng = rng = Random(seed)
        self.prof = prof
        self.world = world = _World(rng, prof)
        n_repost = records // 100 if records >= 50 else 0
        n_items = records - n_repost
        stamps = sorted(_START + int(rng.random() * _SPAN) for _ in range(n_items))
        self.items: list[_Item] = []
        self.by_topic: list[list[_Item]] = [[] for _ in _TOPICS]
        self.citable: list[_Item] = []
        for ts in stamps:
            it = self.new_item(ts)
            self.items.append(it)
            if it.web:
                self.citable.append(it)
                self.by_topic[it.topic].append(it)
        # External pages cited by related links; a limited pool, so popular ones recur.
        n_ext = max(40, min(20_000, records // 2))
        self.external: list[_Item] = []
        for _ in range(n_ext):
            p = world.providers[world.related_order[world.pick(world.related_cum)]]
            ts = _START - 60 * 86400 + int(rng.random() * (_SPAN + 60 * 86400))
            self.external.append(world.item(
                ts, p, video=False, web=True, excerpt_len=prof.related_excerpt_len,
                n_images=0))
        self.names: set[str] = set()
        self.files: list[_File] = [_File(it, it.ts, self.file_name(it.ts, it.slug)) for it in self.items]
        # Re-posts: the same webUrl again, later, under another file name.
        originals = rng.sample(self.citable, min(n_repost, len(self.citable)))
        for it in originals:
            ts = it.ts + rng.randint(86400, 20 * 86400)
            self.files.append(_File(it, ts, self.file_name(ts, it.slug), repost=True))

    def new_item(self, ts: int) -> _Item:
        rng, prof, world = self.rng, self.prof, self.world
        p = world.providers[world.pick(world.article_cum)]
        r = rng.random()
        video = r < prof.video_share
        web = not video and r >= prof.video_share + prof.only_original_share
        n_images = bisect.bisect(prof.image_counts, rng.random())
        return world.item(ts, p, video=video, web=web, excerpt_len=prof.excerpt_len,
                          n_images=n_images)

    def file_name(self, ts: int, slug: str) -> str:
        base = time.strftime("%Y-%m-%d-", time.gmtime(ts)) + slug
        name = base + ".md"
        i = 2
        while name in self.names:
            name = f"{base}-{i}.md"
            i += 1
        self.names.add(name)
        return name

    def related(self, it: _Item) -> str:
        """Related list: mostly other corpus articles (same topic first), the rest external."""
        rng, prof = self.rng, self.prof
        r = rng.random()
        for cum, lo, hi in prof.related_buckets:
            if r < cum:
                k = rng.randint(lo, hi)
                break
        else:  # pragma: no cover - buckets end at 1.0
            k = 0
        if not k:
            return ""
        out: list[str] = []
        seen: set[int] = set()
        topic_pool = self.by_topic[it.topic]
        ext = self.external
        share = prof.internal_share
        for _ in range(k):
            target = None
            if rng.random() < share:
                pool = topic_pool if len(topic_pool) > 1 and rng.random() < 0.8 else self.citable
                for _try in range(4 if pool else 0):
                    if _try == 2:  # a small topic is exhausted: any article will do
                        pool = self.citable
                    cand = pool[int(rng.random() * len(pool))]
                    if cand.url != it.url and id(cand) not in seen:
                        target = cand
                        break
            if target is None:
                for _try in range(3):
                    # skewed towards the front of the pool: popular pages are cited again and again
                    cand = ext[int(len(ext) * rng.random() ** 2)]
                    if id(cand) not in seen:
                        target = cand
                        break
                else:
                    continue
            seen.add(id(target))
            out.append(target.related_snippet())
        return "".join(out)


# --------------------------------------------------------------------------
# Malformed files
# --------------------------------------------------------------------------

# Order matters: any 5 consecutive kinds mix rejected files and files that load with NULLs.
_MALFORMED_KINDS = (
    "no_front_matter", "quality_text", "bad_indent", "date_text", "images_mapping",
    "unclosed_quote", "width_text", "related_without_url",
)


def _malformed_count(records: int) -> int:
    return max(5 if records >= 100 else 1, round(records * 0.005))


def _break(kind: str, text: str, it: _Item) -> str:
    """Turn a well-formed record into one broken in the given way."""
    if kind == "no_front_matter":
        return f"# {it.title}\n\n{it.excerpt_q}\n\nSource: <{it.url}>\n"
    if kind == "quality_text":
        return re.sub(r"(?m)^quality: \d+$", 'quality: "high"', text, count=1)
    if kind == "date_text":
        return re.sub(r"(?m)^publishedDateTime: .*$", 'publishedDateTime: "yesterday"', text, count=1)
    if kind == "bad_indent":
        return re.sub(r"(?m)^  domain: ", "   domain: ", text, count=1)
    if kind == "unclosed_quote":
        return re.sub(r'(?m)^(title: ".*)"$', r"\1", text, count=1)
    if kind == "width_text":
        return re.sub(r"(?m)^    width: \d+$", '    width: "1200px"', text, count=1)
    if kind == "images_mapping":
        return re.sub(r"(?m)^images:\n  - url: (.*)\n((?:    .*\n)+)",
                      lambda m: "images:\n  url: " + m[1] + "\n" + m[2].replace("    ", "  "),
                      text, count=1)
    if kind == "related_without_url":
        return re.sub(r'(?m)^(related:\n(?:    .*\n|  - title: .*\n)*?)    webUrl: ".*"\n',
                      r"\1", text, count=1)
    raise ValueError(kind)


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def generate(directory: str | os.PathLike, records: int = 1000, seed: int = 42, *,
             profile: str = "demo", malformed: bool = True,
             progress: ProgressFn | None = None) -> DemoSummary:
    """Write ``records`` well-formed records (+ a few broken files) into ``directory``.

    Same arguments give byte-identical files. Only the generator's own file
    names are (over)written; other files in the folder are left alone.
    """
    if profile not in _PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    if records < 0:
        raise ValueError("records must be >= 0")
    prof = _PROFILES[profile]
    out_dir = Path(directory)
    out_dir.mkdir(parents=True, exist_ok=True)
    b = _Builder(records, seed, prof)
    n_bad = _malformed_count(records) if malformed else 0
    total = len(b.files) + n_bad
    written = 0
    size = 0
    rng = b.rng
    base = os.fspath(out_dir)
    for f in b.files:
        related = b.related(f.item) if f.item.type == "article" else ""
        data = _render(f, b.world, related, rng).encode("utf-8")
        with open(os.path.join(base, f.name), "wb") as fh:
            fh.write(data)
        size += len(data)
        written += 1
        if progress is not None and written % 500 == 0:
            progress(written, total)
    if n_bad:
        # Own random stream: the well-formed files do not depend on `malformed`.
        b.rng = b.world.rng = mrng = Random(f"{seed}/malformed")
        for i in range(n_bad):
            kind = _MALFORMED_KINDS[i % len(_MALFORMED_KINDS)]
            ts = _START + int(mrng.random() * _SPAN)
            it = b.world.item(ts, b.world.providers[b.world.pick(b.world.article_cum)],
                              video=False, web=True, excerpt_len=prof.excerpt_len, n_images=1)
            f = _File(it, ts, b.file_name(ts, it.slug))
            related = b.related(it) or b.external[0].related_snippet()
            data = _break(kind, _render(f, b.world, related, mrng), it).encode("utf-8")
            with open(os.path.join(base, f.name), "wb") as fh:
                fh.write(data)
            size += len(data)
            written += 1
            if progress is not None and written % 500 == 0:
                progress(written, total)
    if progress is not None and written % 500 != 0:
        progress(written, total)
    return DemoSummary(directory=out_dir, files=written, records=len(b.files),
                       malformed=n_bad, bytes=size)


# --------------------------------------------------------------------------
# Edits
# --------------------------------------------------------------------------

_LINE = re.compile(r"( *)(- )?(?:([A-Za-z][A-Za-z0-9]*):(?: (.*))?|(.+))")
_DQ = re.compile(r'"(?:[^"\\]|\\.)*"')
_INT = re.compile(r"-?\d+")
_TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


class _Stamp(str):
    """A timestamp scalar seen by the mini parser."""


def _value(raw: str):
    if raw.startswith('"'):
        if not _DQ.fullmatch(raw):
            raise ValueError("bad quoted scalar")
        return raw
    if _INT.fullmatch(raw):
        return int(raw)
    if raw in ("true", "false"):
        return raw == "true"
    if _TS.fullmatch(raw):
        return _Stamp(raw)
    if raw[:1] in "'[]{}&*!|>%@`#," or ": " in raw or " #" in raw:
        raise ValueError("unsupported plain scalar")
    return raw


def _parse_front(text: str):
    """Parse the generator's own YAML dialect (block style, 2-space indents).

    Deliberately strict: anything the generator would not write is an error, so
    ``edit`` never touches a broken or foreign file. Stdlib only on purpose.
    """
    if not text.startswith("---\n"):
        raise ValueError("no front matter")
    end = text.find("\n---\n", 3)
    if end < 0:
        raise ValueError("unclosed front matter")
    toks = []
    for line in text[4:end + 1].splitlines():
        if not line.strip():
            continue
        m = _LINE.fullmatch(line)
        if not m or len(m[1]) % 2:
            raise ValueError(f"bad line {line!r}")
        if m[2]:
            toks.append((len(m[1]), True, m[3], m[4] if m[3] else m[5]))
        elif m[3]:
            toks.append((len(m[1]), False, m[3], m[4]))
        else:
            raise ValueError(f"bad line {line!r}")
    obj, pos = _block(toks, 0, 0)
    if pos != len(toks):
        raise ValueError("trailing lines")
    return obj


def _block(toks, pos: int, ind: int):
    if pos >= len(toks) or toks[pos][0] != ind:
        raise ValueError("bad indentation")
    if toks[pos][1]:
        items = []
        while pos < len(toks) and toks[pos][0] == ind and toks[pos][1]:
            _, _, key, raw = toks[pos]
            if key is None:
                items.append(_value(raw))
                pos += 1
            else:
                m, pos = _mapping(toks, pos, ind + 2, first=True)
                items.append(m)
        return items, pos
    return _mapping(toks, pos, ind)


def _mapping(toks, pos: int, ind: int, first: bool = False):
    out: dict = {}
    while pos < len(toks):
        tind, item, key, raw = toks[pos]
        if first:
            first = False
        elif item or tind != ind:
            if tind > ind:
                raise ValueError("bad indentation")
            break
        if key in out:
            raise ValueError(f"duplicate key {key}")
        if raw is None:
            out[key], pos = _block(toks, pos + 1, ind + 2)
        else:
            out[key] = _value(raw)
            pos += 1
    return out, pos


def _image_ok(img) -> bool:
    return (isinstance(img, dict) and isinstance(img.get("url"), str)
            and type(img.get("width")) is int and type(img.get("height")) is int)


def _well_formed(doc) -> bool:
    """Typed the way the warehouse expects (what `edit` must preserve)."""
    if not isinstance(doc, dict):
        return False
    if not (type(doc.get("quality")) is int and type(doc.get("heat")) is int
            and isinstance(doc.get("published"), bool)
            and isinstance(doc.get("publishedDateTime"), _Stamp)
            and isinstance(doc.get("title"), str) and isinstance(doc.get("secured"), str)
            and isinstance(doc.get("provider"), dict)):
        return False
    images = doc.get("images", [])
    if not isinstance(images, list) or not all(_image_ok(i) for i in images):
        return False
    related = doc.get("related", [])
    if not isinstance(related, list):
        return False
    for r in related:
        if not (isinstance(r, dict) and isinstance(r.get("webUrl"), str)
                and isinstance(r.get("publishedDateTime"), _Stamp)
                and type(r.get("quality", 0)) is int):
            return False
        rimgs = r.get("images", [])
        if not isinstance(rimgs, list) or not all(_image_ok(i) for i in rimgs):
            return False
    return True


def _is_well_formed(text: str) -> bool:
    try:
        return _well_formed(_parse_front(text))
    except ValueError:
        return False


_TITLE_EDITS = (" (updated)", " \u2013 update", ": what changed", " &amp; more")


def _rewrite(text: str, rng: Random) -> str:
    """What a site's rewrite looks like: heat moves, sometimes quality/title, new token."""
    q = int(re.search(r"(?m)^quality: (-?\d+)$", text)[1])

    def new_heat(m: re.Match) -> str:
        old = int(m[1])
        r = rng.random()
        if old == -1:
            h = max(1, q + rng.randint(-20, 40))
        elif r < 0.2:
            h = -1
        else:
            h = max(1, old + rng.choice((-1, 1)) * rng.randint(1, 25))
        if h == old:
            h = old + 1
        return f"heat: {h}"

    text = re.sub(r"(?m)^heat: (-?\d+)$", new_heat, text, count=1)
    if rng.random() < 0.15:
        nq = max(0, min(190, q + rng.choice((-1, 1)) * rng.randint(1, 12)))
        text = re.sub(r"(?m)^quality: -?\d+$", f"quality: {nq}", text, count=1)
    if rng.random() < 0.05:
        suffix = _dq(rng.choice(_TITLE_EDITS))
        text = re.sub(r'(?m)^(title: ".*)"$', lambda m: m[1] + suffix + '"', text, count=1)
    return re.sub(r'(?m)^secured: ".*"$', f'secured: "{_secured(rng)}"', text, count=1)


def edit(directory: str | os.PathLike, fraction: float, seed: int = 1) -> list[Path]:
    """Rewrite about ``fraction`` of the well-formed ``.md`` files in place; return them.

    Broken or foreign files are never touched, and edited files stay well-formed.
    Files are validated lazily in a seeded random order, so editing 1% of a
    100,000-file corpus reads about 1,000 files, not all of them.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("fraction must be between 0 and 1")
    rng = Random(seed)
    paths = sorted(Path(directory).glob("*.md"))
    # Target from the total: the few broken files barely move it.
    k = math.floor(fraction * len(paths) + 0.5)
    order = list(range(len(paths)))
    rng.shuffle(order)
    changed: list[Path] = []
    for i in order:
        if len(changed) >= k:
            break
        path = paths[i]
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if not _is_well_formed(text):
            continue
        new = _rewrite(text, rng)
        if new != text and _is_well_formed(new):
            path.write_bytes(new.encode("utf-8"))
            changed.append(path)
    changed.sort()
    return changed
