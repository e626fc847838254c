"""The checks' settings: defaults that need no file, and `newsetl.toml`'s `[checks]` over them.

Why `newsetl.toml` and not a `[tool.newsetl]` section of `pyproject.toml`: the sites newsetl
reads are Hugo, Jekyll or Eleventy sites and deployment folders, not Python projects, and
most have no pyproject.toml; this repository's pyproject.toml is newsetl's own packaging.
A file of its own is found the same way everywhere (`--config`, `$NEWSETL_CONFIG`, else
`./newsetl.toml`), and the standard library reads it (tomllib): no new dependency.

    [checks]
    training_runs = 30            # a baseline is the median of up to this many earlier values
    min_history = 5               # values needed before a check may alert
    fail_on = "never"             # `newsetl run`'s exit code: never, warn or fail

    [checks.volume]
    level = "warn"                # never more than a warning (or "fail": every alert fails)
    warn_drop = 0.6

    [checks.volume.providers."weekly.example"]
    enabled = false

    [run]
    max_delete_share = 0.5        # a run that would delete more of the warehouse's files stops (0..1)

    [site]
    preset = "hugo"               # news, hugo, jekyll, eleventy or astro (default: detected)
    base_url = "https://example.com"   # joined to records' paths (url = "/posts/a/")

    [keys]                        # generator keys tried for a column, over the preset's
    published_at = "created"
    topics = ["tags", "series"]

    [[checks.mute]]
    check = "freshness"
    provider = "paused.example"
    until = 2027-01-31            # a date or a date-time (UTC when it has no offset)
    reason = "their feed is paused for the holidays"

Every key is checked: an unknown check, setting or provider key, or a value of the wrong
type, is a ConfigError naming the file and the key (`newsetl check` exits 3).
"""

from __future__ import annotations

import copy
import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_ENV = "NEWSETL_CONFIG"
CONFIG_NAME = "newsetl.toml"
LEVELS = ("auto", "warn", "fail")
FAIL_ON = ("never", "warn", "fail")


class ConfigError(ValueError):
    """The configuration file cannot be used: one line naming the file, the key and the problem."""


# Each check's settings and their defaults. Shares are 0..1; `p` values are the probabilities
# below which a count is too unlikely under the baseline to be chance (warn, fail).
DEFAULTS: dict[str, dict] = {
    "freshness": {"warn_expected": 9.0, "fail_expected": 20.0, "min_each_week": 2, "min_weeks": 1,
                  "future_hours": 48.0},
    "volume": {"warn_p": 0.001, "fail_p": 1e-7, "warn_drop": 0.5, "fail_drop": 0.8, "min_drop": 5,
               "fail_min_drop": 15, "spike_ratio": 2.0, "min_spike": 10},
    "rejection_rate": {"warn_rise": 0.05, "fail_rise": 0.2, "min_rejected": 3, "fail_min_rejected": 10,
                       "min_files": 10},
    "completeness": {"min_filled": 0.5, "warn_drop": 0.25, "fail_share": 0.05, "fail_filled": 0.8,
                     "min_articles": 3},
    "frontmatter_drift": {"new_share": 0.5, "vanished_share": 0.9, "min_articles": 3},
    "duplicate_rate": {"warn_rise": 0.1, "fail_rise": 0.5, "min_duplicates": 3, "fail_min_duplicates": 10,
                       "min_files": 5},
    "quality_shift": {"warn_points": 25.0, "fail_points": 45.0, "warn_sigmas": 5.0, "fail_sigmas": 8.0,
                      "min_articles": 3},
    "version_churn": {"runs": 3, "min_articles": 5, "fail_articles": 50, "warn_p": 0.001},
    "future_dated": {"future_hours": 48.0, "warn_rise": 0.2, "fail_rise": 0.5, "min_articles": 2,
                     "fail_min_articles": 10},
    "snapshot_shrink": {"warn_share": 0.2, "fail_share": 0.5, "min_articles": 10},
}
CHECKS = tuple(DEFAULTS)
COMMON = {"enabled": True, "level": "auto"}
MAX_DELETE_SHARE = 0.5
RUN = {"max_delete_share": MAX_DELETE_SHARE}  # the [run] table's settings
GLOBAL = {"enabled": True, "training_runs": 30, "min_history": 5, "fail_on": "never"}


@dataclass(frozen=True)
class Mute:
    check: str
    provider: str | None
    detail: str | None
    until: dt.datetime
    reason: str


@dataclass
class Config:
    path: str | None = None  # the file read, None for the defaults
    enabled: bool = True
    training_runs: int = 30
    min_history: int = 5
    fail_on: str = "never"
    checks: dict[str, dict] = field(default_factory=lambda: {c: {**COMMON, **d} for c, d in copy.deepcopy(DEFAULTS).items()})
    providers: dict[str, dict[str, dict]] = field(default_factory=dict)  # check -> domain -> overrides
    mutes: list[Mute] = field(default_factory=list)
    # [run]: a run that would delete more than this share of the warehouse's files stops before
    # writing anything, unless allowed (`newsetl run --allow-deletes`; pipeline.run(allow_deletes=True))
    max_delete_share: float = MAX_DELETE_SHARE
    # [site] and [keys]: how records' keys map to columns (newsetl.mapping); None: detected / none
    preset: str | None = None
    base_url: str | None = None
    keys: dict = field(default_factory=dict)

    def setting(self, check: str, key: str, segment: str | None = None):
        """A check's setting for a provider: its override if any, else the check's."""
        over = self.providers.get(check, {}).get(segment or "", {})
        return over.get(key, self.checks[check][key])

    def enabled_for(self, check: str, segment: str | None = None) -> bool:
        return self.enabled and bool(self.setting(check, "enabled", segment))

    def mute_for(self, check: str, segment: str | None, detail: str | None, as_of: dt.datetime) -> Mute | None:
        for m in self.mutes:
            if (m.check in (check, "*") and (m.provider is None or m.provider == segment)
                    and (m.detail is None or m.detail == detail) and as_of <= m.until):
                return m
        return None


def find_config(path=None) -> Path | None:
    """The file to read: `path`, else $NEWSETL_CONFIG, else ./newsetl.toml if there is one."""
    given = path or os.environ.get(CONFIG_ENV)
    if given:
        p = Path(given)
        if not p.is_file():
            raise ConfigError(f"{p}: no such configuration file"
                              + (f" (from ${CONFIG_ENV})" if not path else ""))
        return p
    p = Path(CONFIG_NAME)
    return p if p.is_file() else None


def load_config(path=None) -> Config:
    """The checks' configuration: defaults, overridden by the file (see the module's text)."""
    p = find_config(path)
    if p is None:
        return Config()
    import tomllib

    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{p}: not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"{p}: cannot be read: {e.strerror or e}") from None
    return parse_config(doc, str(p))


def parse_config(doc: dict, where: str = CONFIG_NAME) -> Config:
    """A Config from a parsed TOML document (its `checks` table; other tables are other settings')."""
    cfg = Config(path=where)
    checks = doc.get("checks", {})
    if not isinstance(checks, dict):
        raise ConfigError(f"{where}: checks: expected a table ([checks])")

    def bad(key: str, problem: str) -> ConfigError:
        return ConfigError(f"{where}: {key}: {problem}")

    for key, value in checks.items():
        if key == "mute":
            cfg.mutes = _mutes(value, bad)
        elif key in GLOBAL:
            setattr(cfg, key, _value(f"checks.{key}", GLOBAL[key], value, bad))
        elif key in DEFAULTS:
            if not isinstance(value, dict):
                raise bad(f"checks.{key}", "expected a table of settings")
            for k, v in value.items():
                name = f"checks.{key}.{k}"
                if k == "providers":
                    if not isinstance(v, dict):
                        raise bad(name, 'expected a table of providers ([checks.volume.providers."domain"])')
                    for domain, over in v.items():
                        if not isinstance(over, dict):
                            raise bad(f"{name}.{domain}", "expected a table of settings")
                        cfg.providers.setdefault(key, {})[domain.lower()] = {
                            kk: _value(f"{name}.{domain}.{kk}", _default(key, kk, f"{name}.{domain}", bad), vv, bad)
                            for kk, vv in over.items()}
                else:
                    cfg.checks[key][k] = _value(name, _default(key, k, f"checks.{key}", bad), v, bad)
        else:
            raise bad(f"checks.{key}", f"unknown setting or check (checks: {', '.join(CHECKS)}; settings: "
                                       f"{', '.join(GLOBAL)}, mute)")
    _run_table(doc.get("run", {}), cfg, bad)
    _site_tables(doc, cfg, bad)
    if cfg.training_runs < 3:
        raise bad("checks.training_runs", "must be at least 3")
    if cfg.min_history < 1 or cfg.min_history > cfg.training_runs:
        raise bad("checks.min_history", f"must be between 1 and training_runs ({cfg.training_runs})")
    return cfg


def _run_table(run, cfg: Config, bad) -> None:
    """`[run]`: the settings of the run itself (not the checks')."""
    if not isinstance(run, dict):
        raise bad("run", "expected a table ([run])")
    for key, value in run.items():
        if key not in RUN:
            raise bad(f"run.{key}", f"unknown setting (run has: {', '.join(RUN)})")
        value = _value(f"run.{key}", RUN[key], value, bad)
        if value > 1:
            raise bad(f"run.{key}", f"expected a share between 0 and 1, got {value!r}")
        setattr(cfg, key, float(value))


def _site_tables(doc: dict, cfg: Config, bad) -> None:
    """`[site]` (preset, base_url) and `[keys]` (column = key or [keys], and base_url)."""
    from ..mapping import PRESETS, check_base_url, check_keys

    site, keys = doc.get("site", {}), doc.get("keys", {})
    if not isinstance(site, dict):
        raise bad("site", "expected a table ([site])")
    if not isinstance(keys, dict):
        raise bad("keys", "expected a table ([keys])")
    for key in site:
        if key not in ("preset", "base_url"):
            raise bad(f"site.{key}", "unknown setting (site has: preset, base_url)")
    if "preset" in site:
        if site["preset"] not in PRESETS:
            raise bad("site.preset", f"expected one of {', '.join(PRESETS)}, got {site['preset']!r}")
        cfg.preset = site["preset"]
    cfg.keys = check_keys(keys, cfg.path or CONFIG_NAME, bad)
    cfg.base_url = check_base_url(site.get("base_url", keys.get("base_url")),
                                  "site.base_url" if "base_url" in site else "keys.base_url", bad)


def _default(check: str, key: str, where: str, bad):
    if key in COMMON:
        return COMMON[key]
    if key not in DEFAULTS[check]:
        raise bad(f"{where}.{key}", f"unknown setting of {check} (it has: "
                                    f"{', '.join([*COMMON, *DEFAULTS[check], 'providers'])})")
    return DEFAULTS[check][key]


def _value(name: str, default, value, bad):
    """`value` checked against the type of `default` (and the named choices)."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad(name, f"expected true or false, got {value!r}")
        return value
    if isinstance(default, str):
        choices = LEVELS if name.endswith(".level") else FAIL_ON
        if value not in choices:
            raise bad(name, f"expected one of {', '.join(choices)}, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad(name, f"expected a number, got {value!r}")
    if isinstance(default, int) and not isinstance(value, int):
        raise bad(name, f"expected a whole number, got {value!r}")
    if value < 0 or value != value:
        raise bad(name, f"expected a number of at least 0, got {value!r}")
    return value


def _mutes(value, bad) -> list[Mute]:
    if not isinstance(value, list):
        raise bad("checks.mute", "expected a list of tables ([[checks.mute]])")
    out = []
    for i, m in enumerate(value):
        name = f"checks.mute[{i}]"
        if not isinstance(m, dict):
            raise bad(name, "expected a table with check, until and (optionally) provider, detail, reason")
        unknown = set(m) - {"check", "provider", "detail", "until", "reason"}
        if unknown:
            raise bad(f"{name}.{sorted(unknown)[0]}", "unknown key (a mute has check, provider, detail, until, reason)")
        check = m.get("check")
        if check not in (*CHECKS, "*"):
            raise bad(f"{name}.check", f"expected one of {', '.join(CHECKS)} or \"*\", got {check!r}")
        until = m.get("until")
        if isinstance(until, dt.datetime):
            until = until if until.tzinfo else until.replace(tzinfo=dt.timezone.utc)
        elif isinstance(until, dt.date):  # the whole day
            until = dt.datetime.combine(until, dt.time.max, dt.timezone.utc)
        else:
            raise bad(f"{name}.until", f"expected a date (2027-01-31) or date-time: a mute expires, got {until!r}")
        for k in ("provider", "detail", "reason"):
            if k in m and not isinstance(m[k], str):
                raise bad(f"{name}.{k}", f"expected text, got {m[k]!r}")
        out.append(Mute(check, m["provider"].lower() if "provider" in m else None, m.get("detail"), until,
                        m.get("reason", "")))
    return out
