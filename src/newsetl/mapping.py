"""Key mapping: the front matter of static-site generators onto the warehouse's columns.

newsetl's own keys are the news format's (`publishedDateTime`, `webUrl`, `topics`, ...).
A Hugo, Jekyll, Eleventy or Astro site writes `date`, `tags`, `url`, `image` and so on. With
a generator preset, each record is rewritten into the news format's keys *before* it is
flattened, so the flatten stage, its typing and its data issues stay one code path, and the
fast parser (rapidyaml) and the PyYAML fallback give the same record to rewrite: the mapping
is Python over the parsed mapping, after either parser, never inside one.

The rules (docs/data-dictionary.md, "Generator front matter", says the same):

- A news key present in the record always wins: the generator keys it would have come from
  stay in `extra`, as written. A generator key that is mapped leaves `extra`; every other key
  stays there. Nothing is lost.
- published_at: the first of `date`, `pubDate`, `publishDate`, `published` (when it is a
  date, not a true/false flag; ISO 8601, or in words: `Jul 08 2022`); else a Jekyll-style file name `YYYY-MM-DD-slug.md`'s date
  (midnight UTC). `lastmod`/`updatedDate` have no column: they stay in `extra`.
- topics: `tags`, then `categories`, then `keywords`, merged in that order, each topic once
  (the first time it is seen). A string is split: `tags` and `categories` on white space
  (Jekyll's `categories: "a b"`), `keywords` on commas (HTML's meta keywords).
- URL (webUrl): the first of `canonical`, `url`, `permalink` that is not a template (`{{ }}`,
  `{% %}`: it stays in `extra`); a value without a scheme
  (`/posts/a/`) is joined to the base URL when one is set, else kept as the path. With none
  of them and a base URL: the base URL plus the path the preset builds from the file
  (`path_for`); with no base URL, that path itself (a URL relative to the site). A base
  URL: given, else `[site] base_url`, else the site's own configuration (`site_base_url`).
- images: the first of `images`, `image`, `cover`, `heroImage`, `featured_image`; a string
  is one image, a list is several, a mapping is one with its URL under `url`, `src`,
  `image` (Hugo's `cover.image`) or `path` (jekyll-seo's `image.path`); a relative image URL is joined to the base URL when set.
- author, authors: they stay in `extra`, where the views article_authors and authors read
  them (sql/views/44_article_authors.sql), whatever the preset.
- excerpt: `excerpt`, else `description`, else `summary`.
- is_published: `published` when it is true/false; else `draft: true` -> false, `draft:
  false` -> true; else NULL.
- No publish time by any rule: a data issue (field `published_at`).

`[keys]` in newsetl.toml replaces the generator keys tried for a column (`published_at =
"created"`, `topics = ["tags", "series"]`); the news key still wins over them.
The news preset maps nothing: news records load exactly as before.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass, field
from urllib.parse import urljoin

from .schema import KEY_RULES

from .defaults import PRESETS  # noqa: E402,F401 - the names --preset takes, defined where the parser reads them

# column -> (news key, generator keys tried in order), from schema.KEY_RULES (the data dictionary's
# words); `[keys]` replaces the generator keys
DEFAULT_KEYS: dict[str, tuple[str, tuple[str, ...]]] = {r.column: (r.news_key, r.keys) for r in KEY_RULES}
COLUMNS = tuple(DEFAULT_KEYS)

NO_DATE = "no publish time: none of {keys} holds one, and the file name has no YYYY-MM-DD- date"

_JEKYLL_NAME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})-(.+)$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class Mapping:
    """How records become rows: the preset, `[keys]` overrides and the base URL."""

    preset: str = "news"
    keys: dict = field(default_factory=dict)  # column -> tuple of generator keys
    base_url: str | None = None

    def params(self) -> dict:
        """JSON-friendly, for a deployment's parameters."""
        return {"preset": self.preset, "keys": {k: list(v) for k, v in self.keys.items()},
                "base_url": self.base_url}

    def generator_keys(self, column: str) -> tuple[str, ...]:
        """The keys tried for `column`: [keys]' own, else the preset's (the news preset has none)."""
        return tuple(self.keys.get(column, () if self.preset == "news" else DEFAULT_KEYS[column][1]))


NEWS = Mapping()


def check_keys(keys, where: str, bad) -> dict:
    """`[keys]` of newsetl.toml: column = "key" or ["key", ...]."""
    out = {}
    for column, value in keys.items():
        if column in ("base_url",):
            continue
        if column not in DEFAULT_KEYS:
            raise bad(f"keys.{column}", f"unknown column (keys can map: {', '.join(COLUMNS)}, base_url)")
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise bad(f"keys.{column}", f"expected a key or a list of keys, got {value!r}")
        out[column] = tuple(value)
    return out


def check_base_url(value, name: str, bad) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.match(r"^https?://[^/\s]+", value):
        raise bad(name, f"expected an http(s) URL such as \"https://example.com\", got {value!r}")
    return value.rstrip("/")


# --- detection ------------------------------------------------------------------------

_MARKERS = (
    ("hugo", ("hugo.toml", "hugo.yaml", "hugo.yml", "hugo.json")),
    ("eleventy", (".eleventy.js", ".eleventy.cjs", "eleventy.config.js", "eleventy.config.mjs",
                  "eleventy.config.cjs", "eleventy.config.ts")),
    ("astro", ("astro.config.mjs", "astro.config.js", "astro.config.ts", "astro.config.mts", "astro.config.cjs")),
    ("jekyll", ("_config.yml", "_config.yaml")),
    ("hugo", ("config.toml", "config.yaml", "config.yml")),  # Hugo's older name: last, it is the vaguest
)


def detect_files(folder) -> tuple[str, str, str] | None:
    """(preset, why, the site's folder) from the site's own files: the input folder and up to 3 folders above it,
    nearest first; at each level the markers in `_MARKERS` order, then a `_posts` folder
    (Jekyll) or an `src/content` folder (Astro)."""
    try:
        here = os.path.abspath(folder)
    except (TypeError, ValueError):
        return None
    if not os.path.isdir(here):
        return None
    for _ in range(4):
        for preset, names in _MARKERS:
            for name in names:
                if os.path.isfile(os.path.join(here, name)):
                    return preset, f"{name} in {here}", here
        base = os.path.basename(here)
        if base == "_posts" or os.path.isdir(os.path.join(here, "_posts")):
            return "jekyll", f"a _posts folder at {here}", os.path.dirname(here) if base == "_posts" else here
        if (base == "content" and os.path.basename(os.path.dirname(here)) == "src") or \
                os.path.isdir(os.path.join(here, "src", "content")):
            return "astro", f"an src/content folder at {here}", \
                os.path.dirname(os.path.dirname(here)) if base == "content" else here
        up = os.path.dirname(here)
        if up == here:
            break
        here = up
    return None


_NEWS_KEYS = ("publishedDateTime", "webUrl")
_TEMPLATE = re.compile(r"\{\{|\{%")
_GENERATOR_KEYS = frozenset(k for _c, (_n, ks) in DEFAULT_KEYS.items() for k in ks) - {"images", "excerpt"} | {
    "lastmod", "updatedDate", "slug", "layout"}


def detect_records(records: list[tuple[str, dict]]) -> tuple[str, str] | None:
    """(preset, why) from the first records' keys: (relative path, record) pairs.
    A news key anywhere -> news; else generator keys -> astro (pubDate, heroImage), jekyll
    (a YYYY-MM-DD- file name or `layout`), else hugo; else None."""
    keys: set = set()
    names = []
    for rel, rec in records:
        keys |= set(rec)
        names.append(os.path.basename(rel))
    for k in _NEWS_KEYS:
        if k in keys:
            return "news", f"the records' {k} key"
    if not keys & _GENERATOR_KEYS:
        return None
    if keys & {"pubDate", "heroImage", "updatedDate"}:
        return "astro", "the records' pubDate/heroImage keys"
    if any(_JEKYLL_NAME.match(n) for n in names) or "layout" in keys:
        return "jekyll", "YYYY-MM-DD- file names or a layout key"
    return "hugo", "the records' date/tags keys (generic generator rules)"


# --- the rules ------------------------------------------------------------------------------

# dates written in words, as Astro's blog template does (`pubDate: 'Jul 08 2022'`)
_WORD_DATES = ("%b %d %Y", "%B %d %Y", "%b %d, %Y", "%B %d, %Y", "%d %b %Y", "%d %B %Y")


def as_date(v):
    """`v` if it is a date, a date-time or ISO 8601 text (clean.as_timestamp types those); the
    date of text written in words (`Jul 08 2022`, `July 8, 2022`); else None."""
    if isinstance(v, (dt.date, dt.datetime)):
        return v
    if isinstance(v, str) and v.strip():
        text = v.strip()
        try:
            dt.datetime.fromisoformat(text)
            return v
        except ValueError:
            pass
        for fmt in _WORD_DATES:
            try:
                return dt.datetime.strptime(text, fmt).date()
            except ValueError:
                continue
    return None


def _date_like(v) -> bool:
    return as_date(v) is not None


def _split(key: str, v):
    if isinstance(v, str):
        return [t for t in (v.split(",") if key == "keywords" else v.split()) if t.strip()]
    if isinstance(v, list):
        return v
    return [v]


def _abs(url, base: str | None):
    if isinstance(url, str) and base and url.strip() and not _SCHEME.match(url.strip()):
        return urljoin(base + "/", url.strip().lstrip("/"))
    return url


def _image(v, base):
    """One image item: a mapping with `url`, or the value as is (flatten says what is wrong)."""
    if isinstance(v, str):
        return {"url": _abs(v, base)}
    if isinstance(v, dict) and "url" not in v:
        for k in ("src", "image", "path"):
            if k in v:
                out = {"url": _abs(v[k], base)}
                out.update((kk, vv) for kk, vv in v.items() if kk != k)
                return out
    if isinstance(v, dict) and "url" in v and base:
        return {**v, "url": _abs(v["url"], base)}
    return v


def split_name(rel_path: str) -> tuple[str, str, dt.date | None]:
    """(folder, slug, date) of a file's relative path: a Jekyll name `YYYY-MM-DD-slug.md` gives
    the date and the slug; `index.md`/`_index.md` is its folder's page (slug "")."""
    folder, name = os.path.split(rel_path.replace("\\", "/"))
    stem = name.rsplit(".", 1)[0] if "." in name else name
    day = None
    m = _JEKYLL_NAME.match(stem)
    if m:
        try:
            day = dt.date(int(m[1]), int(m[2]), int(m[3]))
            stem = m[4]
        except ValueError:
            pass
    if stem in ("index", "_index"):
        stem = ""
    return folder, stem, day


def path_for(preset: str, rel_path: str, slug: str | None, day) -> str:
    """The page's path on the site, from the file's path relative to its input folder:
    jekyll `/YYYY/MM/DD/slug.html` (Jekyll's default `date` permalink, without categories);
    the others `/folder/slug/`, where the folder drops a leading `content/` (Hugo),
    `src/content/` or `src/` (Astro, Eleventy) and `_posts/`."""
    folder, stem, name_day = split_name(rel_path)
    slug = slug if isinstance(slug, str) and slug.strip() else stem
    parts = [p for p in folder.split("/") if p]
    for prefix in (["src", "content"], ["content"], ["src"], ["_posts"]):
        if parts[:len(prefix)] == prefix:
            parts = parts[len(prefix):]
            break
    if preset == "jekyll":
        parts = [p for p in parts if p != "_posts"]
        d = day if isinstance(day, (dt.date, dt.datetime)) else name_day
        if d is not None:
            parts += [f"{d.year:04d}", f"{d.month:02d}", f"{d.day:02d}"]
        return "/" + "/".join([*parts, f"{slug}.html"]) if slug else "/" + "/".join(parts) + "/"
    if slug:
        parts.append(slug)
    return "/" + "/".join(parts) + ("/" if parts else "")


def apply(rec: dict, m: Mapping, rel_path: str) -> tuple[dict, dict, list]:
    """The record in the news format's keys, the keys for `extra` that a news key overrode
    although their name is a news key's (a date-valued `published`), and the issues
    (field, raw, problem) of a record with no publish time (a URL can always be built)."""
    if m.preset == "news" and not m.keys and not m.base_url:
        return rec, {}, []
    out = dict(rec)
    moved: dict = {}
    issues: list = []
    base = m.base_url
    news_preset = m.preset == "news"  # [keys] only: no file-name dates, built URLs or date issues

    def take(column: str) -> list[tuple[str, object]]:
        """The generator keys present for `column`, (key, value), removed from `out`
        (the news key itself is never a generator key here)."""
        news = DEFAULT_KEYS[column][0]
        got = []
        for k in m.generator_keys(column):
            if k == news or k not in rec:
                continue
            v = rec[k]
            if column == "published_at" and k == "published" and not _date_like(v):
                continue  # the news format's true/false flag
            if column == "is_published" and k == "draft" and not isinstance(v, bool):
                continue
            got.append((k, v))
        return got

    def consume(column: str, pairs) -> None:
        for k, _v in pairs:
            if k == "published" or k == DEFAULT_KEYS[column][0]:
                continue
            out.pop(k, None)

    def news_has(column: str) -> bool:
        return rec.get(DEFAULT_KEYS[column][0]) is not None

    folder, stem, name_day = split_name(rel_path)

    # published_at
    pairs = take("published_at")
    if not news_has("published_at"):
        if pairs:
            key, v = pairs[0]
            if as_date(v) is None and isinstance(v, str):
                # text that is no date (Eleventy's `Last Modified` keyword): the issue names the
                # record's own key, and the value stays in extra as written
                issues.append((key, v, f"not a date and time (the publish time's key {key!r})"))
            else:
                out["publishedDateTime"] = as_date(v) or v  # not a date: flatten's data issue says so
                consume("published_at", pairs[:1])
                if key == "published":
                    out.pop("published", None)
        elif news_preset:
            pass
        elif name_day is not None:
            out["publishedDateTime"] = name_day
        else:
            issues.append(("published_at", "", NO_DATE.format(keys=", ".join(m.generator_keys("published_at")))))
    if "published" in out and any(k == "published" for k, _ in pairs):
        # a date under `published` that another key's date (or the news one) won over: to extra,
        # not typed as the news format's true/false flag
        moved["published"] = out.pop("published")

    # topics: merged
    pairs = take("topics")
    if not news_has("topics") and pairs:
        seen, topics = set(), []
        for k, v in pairs:
            for t in _split(k, v):
                key = t.strip() if isinstance(t, str) else repr(t)
                if key not in seen:
                    seen.add(key)
                    topics.append(t)
        out["topics"] = topics
        consume("topics", pairs)

    # URL
    if rec.get("webUrl") is None and rec.get("originalUrl") is None:
        # a template (Eleventy's `/news/{{ page.fileSlug }}/`, Liquid's `{% ... %}`) is not a URL
        # until the generator renders it: it stays in extra, and the path is built as below
        pairs = [(k, v) for k, v in take("url") if isinstance(v, str) and v.strip() and not _TEMPLATE.search(v)]
        if pairs:
            out["webUrl"] = _abs(pairs[0][1], base)
            consume("url", pairs[:1])
        elif not news_preset:  # the page's path on the site, made absolute by the base URL when there is one
            day = out.get("publishedDateTime")
            if isinstance(day, str):
                try:
                    day = dt.datetime.fromisoformat(day.strip())
                except ValueError:
                    day = None
            out["webUrl"] = _abs(path_for(m.preset, rel_path, rec.get("slug"), day), base)

    # images: `images` (a list of mappings in the news format) made a list of mappings;
    # else the first other image key present
    pairs = [(k, v) for k, v in take("images") if v is not None]
    if rec.get("images") is not None and "images" in m.generator_keys("images") and not news_preset:
        pairs = [("images", rec["images"])]
    if pairs:
        k, v = pairs[0]
        if isinstance(v, (list, str, dict)):
            items = v if isinstance(v, list) else [v]
            out["images"] = [_image(i, base) for i in items]
            if k != "images":
                out.pop(k, None)

    # excerpt
    pairs = [(k, v) for k, v in take("excerpt") if v is not None]
    if not news_has("excerpt") and pairs:
        out["excerpt"] = pairs[0][1]
        consume("excerpt", pairs[:1])

    # is_published
    pairs = take("is_published")
    if ("published" not in rec or _date_like(rec["published"])) and pairs:
        out["published"] = not pairs[0][1]
        consume("is_published", pairs[:1])
    return out, moved, issues


# --- which mapping a run uses --------------------------------------------------------------

SAMPLE = 20  # records read to detect the preset by their keys, when the site's files do not say


def resolve(inputs, preset: str | None = None, keys: dict | None = None, base_url: str | None = None,
            config=None, sample=None) -> tuple[Mapping, str]:
    """(the run's Mapping, why that preset). Each of preset, keys and base_url: the argument,
    else the configuration's ([site], [keys]), else for the preset: news when the first records
    (`sample()`: (relative path, record) pairs) hold `publishedDateTime` or `webUrl` (the news
    format in a Jekyll `_posts` folder stays news), else detected from the site's files
    (`detect_files`, each local input in turn), else from the records' generator keys
    (`detect_records`), else news."""
    why = "given"
    site = None  # the site's folder, when its files told the preset
    if preset is None and config is not None and getattr(config, "preset", None):
        preset, why = config.preset, f"[site] preset in {config.path}"
    from .sources import resolve_inputs

    try:
        roots = list(resolve_inputs(inputs).values())
    except Exception:  # noqa: BLE001 - the plan says what is wrong with the inputs
        roots = []
    records = sample() if sample is not None and preset is None else []
    found = detect_records(records)
    if preset is None and found and found[0] == "news":  # news records in a Jekyll _posts folder stay news
        preset, why = "news", f"detected: {found[1]}"
    for root in roots:
        found = detect_files(root) if not isinstance(root, str) or "://" not in root else None
        if found:
            site = found[2]  # its configuration may hold the base URL, whatever the preset
            if preset is None:
                preset, why = found[0], f"detected: {found[1]}"
            break
    if preset is None:
        found = detect_records(records)
        if found:
            preset, why = found[0], f"detected: {found[1]}"
    if preset is None:
        preset, why = "news", "the default (no site files or generator keys found)"
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: one of {', '.join(PRESETS)}")
    if keys is None:
        keys = dict(getattr(config, "keys", None) or {})
    else:
        def bad(name, problem):
            return ValueError(f"{name}: {problem}")

        keys = check_keys(keys, "keys", bad)
    if base_url is None:
        base_url = getattr(config, "base_url", None)
        if base_url is None and site is not None and preset != "news":
            base_url = site_base_url(site)
    else:
        base_url = check_base_url(base_url, "base_url", lambda name, problem: ValueError(f"--base-url: {problem}"))
    m = Mapping(preset, keys, base_url)
    if preset == "news" and not keys and not base_url:
        m = NEWS
    return m, why


_BASE_KEYS = (  # file, the regular expression of the site's URL in it
    ("hugo.toml", r'(?m)^\s*baseURL\s*=\s*["\']([^"\']+)["\']'),
    ("config.toml", r'(?m)^\s*baseURL\s*=\s*["\']([^"\']+)["\']'),
    ("hugo.yaml", r'(?m)^baseURL:\s*["\']?([^"\'\s]+)'),
    ("hugo.yml", r'(?m)^baseURL:\s*["\']?([^"\'\s]+)'),
    ("config.yaml", r'(?m)^baseURL:\s*["\']?([^"\'\s]+)'),
    ("hugo.json", r'"baseURL"\s*:\s*"([^"]+)"'),
    ("_config.yml", r'(?m)^url:\s*["\']?([^"\'\s#]+)'),
    ("_config.yaml", r'(?m)^url:\s*["\']?([^"\'\s#]+)'),
    *((f"astro.config.{ext}", r'\bsite\s*:\s*["\'`]([^"\'`]+)["\'`]') for ext in ("mjs", "js", "ts", "mts", "cjs")),
)


def site_base_url(folder: str) -> str | None:
    """The site's own URL where its configuration says it: Hugo's `baseURL`, Jekyll's `url`
    (plus `baseurl`), Astro's `site`. Read with a regular expression, never run; None if absent."""
    for name, rx in _BASE_KEYS:
        path = os.path.join(folder, name)
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                text = fh.read(1 << 20)
        except OSError:
            continue
        found = re.search(rx, text)
        if found and re.match(r"^https?://[^/\s]+", found[1]):
            url = found[1].rstrip("/")
            if name.startswith("_config"):
                sub = re.search(r'(?m)^baseurl:\s*["\']?(/[^"\'\s#]*)', text)
                if sub:
                    url += sub[1].rstrip("/")
            return url
    return None


def check_args(preset: str | None, keys: dict | None, base_url: str | None) -> None:
    """ValueError, in one line, for a preset, keys or base URL that `resolve` would refuse."""
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: one of {', '.join(PRESETS)}")

    def bad(name, problem):
        return ValueError(f"{name}: {problem}")

    if keys is not None:
        check_keys(keys, "keys", bad)
    check_base_url(base_url, "base_url", bad)


def describe(m: Mapping, why: str) -> str:
    """One line for the run's output: `keys: preset hugo (detected: hugo.toml in /site)`."""
    extra = []
    if m.keys:
        extra.append("[keys] " + ", ".join(f"{c} = {'/'.join(v)}" for c, v in m.keys.items()))
    if m.base_url:
        extra.append(f"base URL {m.base_url}")
    return f"preset {m.preset} ({why})" + ("; " + "; ".join(extra) if extra else "")


def sample_folders(inputs, limit: int = SAMPLE) -> list[tuple[str, dict]]:
    """The first records of local input folders, by a walk in name order (for `resolve` where
    no plan has listed the files: a deployment's parameters)."""
    from .sources import resolve_inputs

    out: list = []
    try:
        roots = list(resolve_inputs(inputs).values())
    except Exception:  # noqa: BLE001 - the inputs' own check says what is wrong
        return out
    for root in roots:
        if isinstance(root, str) and "://" in root:
            continue
        for here, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                if len(out) >= limit:
                    return out
                if not name.endswith((".md", ".markdown")):
                    continue
                path = os.path.join(here, name)
                rel = os.path.relpath(path, root).replace(os.sep, "/")
                try:
                    with open(path, "rb") as fh:
                        data = fh.read(1 << 20)
                    rec = _record_of(data)
                except Exception:  # noqa: BLE001 - a file detection cannot read says nothing
                    continue
                if rec is not None:
                    out.append((rel, rec))
    return out


def _record_of(data: bytes) -> dict | None:
    """The YAML front matter of a file's bytes, or None."""
    from . import safeyaml

    text = data.decode("utf-8", "replace")
    if not text.startswith("---"):
        return None
    end = text.find("\n---", 3)
    if end < 0:
        return None
    value = safeyaml.load(text[3:end])
    return value if isinstance(value, dict) else None
