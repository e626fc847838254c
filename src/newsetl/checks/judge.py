"""Verdicts: each check's measured rows against its history -> pass, warn, fail or insufficient_history.

The measuring is SQL (sql/checks/<check>.sql, one SELECT each); the rules are here, one function
per check, over small Python values (a row per provider at most). The rules share one idea, to
not cry wolf:

- a baseline is the median of the segment's earlier values (at most `training_runs`, never the
  values that warned or failed), its spread 1.4826 x the MAD;
- no verdict before `min_history` such values (`insufficient_history`): a new provider warms up
  in silence;
- a count is judged by how unlikely it is under the baseline (Poisson for arrivals, binomial for
  shares), and also by a relative and an absolute floor, so neither a tiny sample nor a tiny
  baseline alerts alone.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from dataclasses import dataclass

from ..words import plural


@dataclass
class Result:
    check_name: str
    segment: str | None
    detail: str | None
    verdict: str  # pass, warn, fail, insufficient_history, error
    observed: float | None = None
    expected: float | None = None
    lower: float | None = None
    upper: float | None = None
    unit: str = "articles"
    sample_size: int | None = None
    history_size: int | None = None
    message: str = ""
    status: str = ""  # the verdict after levels and mutes (set by newsetl.checks)


# -- statistics ---------------------------------------------------------------------------------

def robust(values: list[float]) -> tuple[float, float]:
    """(median, 1.4826 x median absolute deviation): a standard deviation that outliers do not move."""
    m = statistics.median(values)
    return m, 1.4826 * statistics.median(abs(v - m) for v in values)


def pooled(hist: list[tuple]) -> float:
    """The share over every earlier run together (each run weighs its sample): a median of small
    runs' shares would be 100% where 80% is the truth."""
    n = sum(h[2] for h in hist)
    return sum(h[1] * h[2] for h in hist) / n if n else 0.0


def poisson_cdf(k: float, lam: float) -> float:
    """P(X <= k) for X ~ Poisson(lam)."""
    if lam <= 0:
        return 1.0
    k = int(math.floor(k))
    if k < 0:
        return 0.0
    if k > lam + 40 * math.sqrt(lam) + 40:
        return 1.0
    total, log_lam = 0.0, math.log(lam)
    for i in range(k + 1):
        total += math.exp(i * log_lam - lam - math.lgamma(i + 1))
    return min(total, 1.0)


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    if k >= n:
        return 1.0
    if k < 0:
        return 0.0
    p = min(max(p, 1e-9), 1 - 1e-9)
    lp, lq = math.log(p), math.log1p(-p)
    return min(1.0, sum(math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp
                                 + (n - i) * lq) for i in range(k + 1)))


def binom_sf(k: int, n: int, p: float) -> float:
    """P(X >= k)."""
    return 1.0 - binom_cdf(k - 1, n, p)


def normal_cdf(z: float) -> float:
    return 0.5 * math.erfc(-z / math.sqrt(2))


# -- wording -----------------------------------------------------------------------------------

def who(segment: str | None) -> str:
    return segment if segment is not None else "the whole run"


def pct(x: float) -> str:
    return f"{100 * x:.0f}%" if x >= 0.01 or x == 0 else f"{100 * x:.1f}%"


def num(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 10 or x == int(x) else f"{x:,.1f}"


def eg(evidence) -> str:
    return f" (e.g. {evidence})" if evidence else ""


# -- the context a rule reads ---------------------------------------------------------------------

class Context:
    """What the rules know besides their rows: settings, the run's times, and the history."""

    def __init__(self, config, run_id: str, as_of: dt.datetime, history: dict, run_hours: dict,
                 runs: list[tuple[str, dt.datetime]]):
        self.config = config
        self.run_id = run_id
        self.as_of = as_of
        self._history = history  # (check, segment, detail) -> [(run_id, observed, sample_size)], oldest first
        self.run_hours = run_hours  # run_id -> hours since the completed run before it (None: the first)
        self.runs = runs  # completed runs up to this one, oldest first: (run_id, as_of)
        self.hours = run_hours.get(run_id)

    def s(self, check: str, key: str, segment: str | None = None):
        return self.config.setting(check, key, segment)

    def history(self, check: str, segment: str | None, detail: str | None = None, min_n: int = 0) -> list[tuple]:
        rows = [h for h in self._history.get((check, segment, detail), ()) if (h[2] or 0) >= min_n and h[1] is not None]
        return rows[-self.config.training_runs:]

    def segments(self, check: str) -> set:
        return {seg for (c, seg, _d) in self._history if c == check}

    def details(self, check: str, segment: str | None) -> set:
        return {d for (c, seg, d) in self._history if c == check and seg == segment and d is not None}

    def too_little(self, check: str, segment, detail, have: int, observed=None, n=None, unit="articles",
                   what: str = "earlier runs") -> Result:
        """Not enough history to judge: the value is kept all the same, as the next runs' history."""
        return Result(check, segment, detail, "insufficient_history", observed, unit=unit, sample_size=n,
                      history_size=have, message=f"{who(segment)}{' ' + detail if detail else ''}: {have} {what} of the "
                              f"{self.config.min_history} needed before it can alert")


def _level(verdict_warn: bool, verdict_fail: bool) -> str:
    return "fail" if verdict_fail else "warn" if verdict_warn else "pass"


def _weekend(t: dt.datetime) -> bool:
    return t.weekday() >= 5


# -- the rules ----------------------------------------------------------------------------------

def volume(ctx: Context, rows: list[dict]) -> list[Result]:
    """New articles this run against the same kind of day's rate (weekday or weekend) times the
    hours since the last run: a drop too unlikely under Poisson (or the spread seen, if wider),
    by at least warn_drop and min_drop articles; a spike of spike_ratio times and min_spike."""
    c_ = "volume"
    got = {r["segment"]: r for r in rows}
    out = []
    runs = dict(ctx.runs)
    # each earlier run's kind of day (weekday or weekend), once: not once per provider
    weekend = {r: _weekend(runs[r] - dt.timedelta(hours=h / 2)) for r, h in ctx.run_hours.items() if h and r in runs}
    for seg in sorted(set(got) | ctx.segments(c_), key=lambda s: (s is not None, s or "")):
        r = got.get(seg, {})
        c = float(r.get("observed") or 0)
        s = lambda k: ctx.s(c_, k, seg)  # noqa: E731
        if ctx.hours is None:
            out.append(Result(c_, seg, None, "insufficient_history", c, sample_size=int(c), history_size=0,
                              message=f"{who(seg)}: {num(c)} new articles in the first run; later runs are "
                                      "compared with the ones before them"))
            continue
        now_we = _weekend(ctx.as_of - dt.timedelta(hours=ctx.hours / 2))
        pts = []
        for run_id, v, _n in ctx.history(c_, seg):
            if run_id in weekend:  # a run with hours since the one before it
                pts.append((v / ctx.run_hours[run_id], weekend[run_id]))
        if len(pts) < ctx.config.min_history:
            out.append(ctx.too_little(c_, seg, None, len(pts), c, int(c)))
            continue
        same = [rate for rate, we in pts if we == now_we]
        ref = same if len(same) >= 3 else [rate for rate, _ in pts]
        # the mean rate (a Poisson count's median is biased low for small counts), its spread robust
        rate, sd_rate = statistics.fmean(ref), robust(ref)[1]
        expected = rate * ctx.hours
        # too few runs of this kind of day yet: a drop is judged against the lowest rate seen
        low = expected if len(same) >= 3 else min(ref) * ctx.hours
        sd = sd_rate * ctx.hours
        overdispersed = sd > 1.2 * math.sqrt(max(low, 1e-9))
        p_low = normal_cdf((c - low) / sd) if overdispersed else poisson_cdf(c, low)
        p_high = normal_cdf((expected - c) / sd) if overdispersed else 1 - poisson_cdf(c - 1, expected)
        drop = low - c
        warn = p_low < s("warn_p") and c <= low * (1 - s("warn_drop")) and drop >= s("min_drop")
        fail = p_low < s("fail_p") and c <= low * (1 - s("fail_drop")) and drop >= s("fail_min_drop")
        spike = p_high < s("warn_p") and c >= expected * s("spike_ratio") and c - expected >= s("min_spike")
        verdict = _level(warn or spike, fail)
        span = f"{ctx.hours:.0f} h" if ctx.hours >= 2 else f"{ctx.hours * 60:.0f} min"
        kind = f"{'weekend' if now_we else 'weekday'} " if len(same) >= 3 else ""
        base = f"about {num(expected)} usually ({plural(len(ref), f'earlier {kind}run')})"
        if spike and not fail:
            msg = f"{who(seg)}: {num(c)} new articles in {span}, {c / max(expected, 1e-9):.1f}x the usual; {base}"
        elif warn or fail:
            msg = f"{who(seg)}: {num(c)} new articles in {span}, where at least {num(low)} were expected; {base}"
        else:
            msg = f"{who(seg)}: {num(c)} new articles in {span}; {base}"
        out.append(Result(c_, seg, None, verdict, c, expected, low * (1 - s("warn_drop")),
                          expected * s("spike_ratio"), "articles", int(c), len(ref),
                          msg + (eg(r.get("evidence")) if verdict != "pass" else "")))
    return out


def freshness(ctx: Context, rows: list[dict]) -> list[Result]:
    """Hours since the last article, judged by how many articles the same hours brought in each of
    the last 4 weeks: silence is unlikely (Poisson: e^-expected) when about warn_expected came,
    and came in every one of those weeks (at least min_each_week)."""
    c_ = "freshness"
    out = []
    for r in rows:
        seg, hours, weeks = r["segment"], float(r["observed"]), int(r["sample_size"] or 0)
        s = lambda k: ctx.s(c_, k, seg)  # noqa: E731
        if weeks < s("min_weeks"):
            out.append(Result(c_, seg, None, "insufficient_history", hours, unit="hours", history_size=weeks,
                              message=f"{who(seg)}: {weeks} week{'s' * (weeks != 1)} of articles before its last, "
                                      f"of the {s('min_weeks')} its cadence is learnt from"))
            continue
        lam, least = float(r["expected"]), int(r["least"])
        regular = least >= s("min_each_week")
        one = 1.5 if weeks == 1 else 1.0  # one week is a noisy estimate: it needs half as much again
        verdict = _level(regular and lam >= one * s("warn_expected"), regular and lam >= one * s("fail_expected"))
        span = f"{hours:.0f} h" if hours >= 2 else f"{hours * 60:.0f} min"
        msg = (f"{who(seg)}: no article for {span} (the last published {r['evidence']}); "
               f"the same hours brought {num(lam)} on average in the last {weeks} week{'s' * (weeks > 1)}")
        out.append(Result(c_, seg, None, verdict, hours, lam, None, None, "hours", None, weeks, msg))
    return out


def _share_rise(ctx: Context, c_: str, rows: list[dict], count_key: str, what: str, min_n_key: str,
                min_count: str, fail_min_count: str) -> list[Result]:
    """A share of the run's files or articles (rejected, duplicated, future-dated) that rises above
    its usual share by warn_rise (and is unlikely under it: binomial), or fail_rise."""
    out = []
    for r in rows:
        seg, k, n = r["segment"], int(r[count_key] or 0), int(r["sample_size"] or 0)
        s = lambda key: ctx.s(c_, key, seg)  # noqa: E731
        share = k / n if n else None
        if n < s(min_n_key):
            out.append(Result(c_, seg, None, "insufficient_history", share, unit="share", sample_size=n,
                              message=f"{who(seg)}: {plural(n, 'file' if 'files' in min_n_key else 'article')} this run, "
                                      f"too few to judge a share"))
            continue
        hist = ctx.history(c_, seg, None, s(min_n_key))
        if len(hist) < ctx.config.min_history:
            out.append(ctx.too_little(c_, seg, None, len(hist), share, n, "share"))
            continue
        p0 = pooled(hist)
        tail = binom_sf(k, n, max(p0, 0.002))
        warn = share >= p0 + s("warn_rise") and k >= s(min_count) and tail < 1e-3
        fail = share >= p0 + s("fail_rise") and k >= s(fail_min_count) and tail < 1e-6
        verdict = _level(warn, fail)
        msg = f"{who(seg)}: {pct(share)} of the {n:,} {what} ({k:,}), against {pct(p0)} usually"
        out.append(Result(c_, seg, None, verdict, share, p0, None, p0 + s("warn_rise"), "share", n, len(hist),
                          msg + (r.get("_more", "") if verdict != "pass" else "")
                          + (eg(r.get("evidence")) if verdict != "pass" else "")))
    return out


def rejection_rate(ctx: Context, rows: list[dict]) -> list[Result]:
    for r in rows:
        if r.get("rejected"):
            where = f"; most in {r['folder'] or 'the input root'} ({r['in_folder']:,})" if r.get("folder") is not None else ""
            hint = r.get("providers")
            where += f"; providers of the rejected files: {hint}" if hint else ""
            err = f": {r['error']}" if r.get("error") else ""
            r["_more"] = where
            r["evidence"] = f"{r['evidence']}{err}"[:300] if r.get("evidence") else None
    return _share_rise(ctx, "rejection_rate", rows, "rejected", "files read were rejected", "min_files",
                       "min_rejected", "fail_min_rejected")


def duplicate_rate(ctx: Context, rows: list[dict]) -> list[Result]:
    return _share_rise(ctx, "duplicate_rate", rows, "duplicates", "files read share their URL with another file",
                       "min_files", "min_duplicates", "fail_min_duplicates")


def future_dated(ctx: Context, rows: list[dict]) -> list[Result]:
    c_ = "future_dated"
    for r in rows:
        if r.get("future"):
            r["_more"] = f"; the latest is dated {r['latest']:%Y-%m-%d %H:%M} UTC, the run looked at {ctx.as_of:%Y-%m-%d %H:%M}"
    return _share_rise(ctx, c_, rows, "future", f"articles loaded are dated more than "
                       f"{ctx.s(c_, 'future_hours'):g} h ahead", "min_articles", "min_articles", "fail_min_articles")


def completeness(ctx: Context, rows: list[dict]) -> list[Result]:
    """A field filled in most of a provider's records (min_filled) that is now filled in far fewer:
    warn_drop less and unlikely (binomial); failing when it is all but empty (fail_share) where it
    was filled (fail_filled)."""
    c_ = "completeness"
    out = []
    for r in rows:
        seg, field, k, n = r["segment"], r["detail"], int(r["filled"]), int(r["sample_size"])
        s = lambda key: ctx.s(c_, key, seg)  # noqa: E731
        share = k / n if n else 0.0
        if n < s("min_articles"):
            out.append(Result(c_, seg, field, "insufficient_history", share, unit="share", sample_size=n,
                              message=f"{who(seg)} {field}: {plural(n, 'article')} this run, too few to judge"))
            continue
        hist = ctx.history(c_, seg, field, s("min_articles"))
        if len(hist) < ctx.config.min_history:
            out.append(ctx.too_little(c_, seg, field, len(hist), share, n, "share"))
            continue
        p0 = pooled(hist)
        if p0 < s("min_filled"):
            out.append(Result(c_, seg, field, "pass", share, p0, None, None, "share", n, len(hist),
                              f"{who(seg)} {field}: filled in {pct(share)}; usually filled in {pct(p0)} only"))
            continue
        tail = binom_cdf(k, n, min(p0, 0.99))
        fail = share <= s("fail_share") and p0 >= s("fail_filled") and tail < 1e-4
        warn = p0 - share >= s("warn_drop") and tail < 1e-3
        verdict = _level(warn, fail)
        msg = f"{who(seg)} {field}: filled in {pct(share)} of {n:,} articles ({k:,}), usually {pct(p0)}"
        if fail:
            msg = f"{who(seg)} {field}: empty in {n - k:,} of {n:,} articles this run, usually filled in {pct(p0)}"
        out.append(Result(c_, seg, field, verdict, share, p0, max(p0 - s("warn_drop"), 0), None, "share", n,
                          len(hist), msg + (eg(r.get("evidence")) if verdict != "pass" else "")))
    return out


def frontmatter_drift(ctx: Context, rows: list[dict]) -> list[Result]:
    """Per provider, the keys its records carry against the keys they carried: a key in most
    records (new_share) never seen before, a key nearly always there (vanished_share) now in none,
    both at once (a rename), and a key with a type it never had."""
    c_ = "frontmatter_drift"
    out = []
    by_seg: dict = {}
    for r in rows:
        by_seg.setdefault(r["segment"], {})[r["detail"]] = r
    for seg, got in sorted(by_seg.items()):
        n = int(got[None]["sample_size"])
        s = lambda key: ctx.s(c_, key, seg)  # noqa: E731
        if n < s("min_articles"):
            out.append(Result(c_, seg, None, "insufficient_history", n, unit="articles", sample_size=n,
                              message=f"{who(seg)}: {plural(n, 'article')} this run, too few to judge its keys"))
            continue
        runs_seen = ctx.history(c_, seg, None, s("min_articles"))
        known = ctx.details(c_, seg)
        shares = {d: [h[1] for h in ctx.history(c_, seg, d, s("min_articles"))] for d in known}
        seen = {d for d, v in shares.items() if any(x > 0 for x in v)}
        rows_now = {d: r for d, r in got.items() if d is not None}
        if len(runs_seen) < ctx.config.min_history:
            out.append(ctx.too_little(c_, seg, None, len(runs_seen), n, n))
            out += [Result(c_, seg, d, "insufficient_history", int(r["present"]) / n, unit="share", sample_size=n,
                           message=f"{who(seg)} {d}: in {int(r['present']):,} of {n:,} records")
                    for d, r in rows_now.items()]
            continue
        new, gone, typed = [], [], []
        for d, r in rows_now.items():
            share = int(r["present"]) / n
            if d in seen or share < s("new_share"):
                continue
            if ":" not in d:
                new.append((d, share, r))
            elif d.split(":", 1)[0] in seen:  # a key known before, with a type it never had
                typed.append((d, share, r))
        runs_known = max((len(v) for v in shares.values()), default=0)  # the provider's runs in the window
        for d in seen:
            if ":" in d or d in rows_now:
                continue
            # over all the provider's runs: a key that came three runs ago is not "usually there"
            usual = statistics.median(shares[d] + [0.0] * (runs_known - len(shares[d])))
            # usually there, and there the last time: gone in this run (flagged once, as a change)
            if usual >= s("vanished_share") and shares[d][-1] >= s("vanished_share"):
                gone.append((d, usual))
        flagged = {d for d, *_ in new + typed} | {d for d, _ in gone}
        renamed_to = ", ".join(f"'{d}'" for d, *_ in new)
        renamed_from = ", ".join(f"'{d}'" for d, _ in gone)
        for d, share, r in new:
            also = f"; renamed from {renamed_from}?" if gone else ""
            out.append(Result(c_, seg, d, "warn", share, 0.0, None, 0.0, "share", n, len(runs_seen),
                              f"{who(seg)}: new front-matter key '{d}' in {int(r['present']):,} of {n:,} records{also}"
                              + eg(r["evidence"])))
        for d, share, r in typed:
            key, kind = d.split(":", 1)
            kinds = sorted(x.split(":", 1)[1] for x in seen if x.startswith(key + ":"))
            was = f"where it was {'/'.join(kinds)}" if kinds else "where it was typed"
            what = "a value that cannot be typed" if kind == "untyped" else f"a {kind} value"
            out.append(Result(c_, seg, d, "warn", share, 0.0, None, 0.0, "share", n, len(runs_seen),
                              f"{who(seg)}: front-matter key '{key}' has {what} in {int(r['present']):,} of {n:,} "
                              f"records, {was}" + eg(r["evidence"])))
        for d, usual in gone:
            also = f"; renamed to {renamed_to}?" if new else ""
            out.append(Result(c_, seg, d, "warn", 0.0, usual, usual, None, "share", n, len(runs_seen),
                              f"{who(seg)}: front-matter key '{d}' is in none of {n:,} records, usually in "
                              f"{pct(usual)}{also}"))
        for d, r in rows_now.items():
            if d not in flagged:
                out.append(Result(c_, seg, d, "pass", int(r["present"]) / n, None, None, None, "share", n,
                                  len(shares.get(d, ())), f"{who(seg)} {d}: in {int(r['present']):,} of {n:,} records"))
        for d in seen - flagged - set(rows_now):  # a key seen before and absent now: the zero is history too
            if ":" not in d:
                out.append(Result(c_, seg, d, "pass", 0.0, None, None, None, "share", n, len(shares[d]),
                                  f"{who(seg)} {d}: in none of {n:,} records"))
        if not flagged:  # (a change is the keys' own rows: one alert per key, not one more per provider)
            out.append(Result(c_, seg, None, "pass", n, None, None, None, "articles", n, len(runs_seen),
                              f"{who(seg)}: the same front-matter keys as before in {n:,} records"))
    return out


def quality_shift(ctx: Context, rows: list[dict]) -> list[Result]:
    """The median quality of a provider's articles this run against the medians of its earlier runs:
    a shift of warn_sigmas spreads (scaled to this run's sample) and warn_points at least."""
    c_ = "quality_shift"
    out = []
    for r in rows:
        seg, q, n = r["segment"], float(r["observed"]), int(r["sample_size"])
        s = lambda key: ctx.s(c_, key, seg)  # noqa: E731
        if n < s("min_articles"):
            out.append(Result(c_, seg, None, "insufficient_history", q, unit="points", sample_size=n,
                              message=f"{who(seg)}: {plural(n, 'rated article')} this run, too few to judge"))
            continue
        hist = ctx.history(c_, seg, None, s("min_articles"))
        if len(hist) < ctx.config.min_history:
            out.append(ctx.too_little(c_, seg, None, len(hist), q, n, "points"))
            continue
        base, sd = robust([h[1] for h in hist])
        # the spread of a median of n articles: from the runs' medians (scaled to this run's n), and
        # at least what this run's own articles' spread gives (1.2533 x sigma / sqrt(n))
        spread = 1.4826 * float(r.get("spread") or 0) * 1.2533 / math.sqrt(n)
        sd = max(sd * math.sqrt(statistics.median(h[2] for h in hist) / n), spread, 1.0)
        shift = q - base
        warn_at, fail_at = max(s("warn_sigmas") * sd, s("warn_points")), max(s("fail_sigmas") * sd, s("fail_points"))
        verdict = _level(abs(shift) >= warn_at, abs(shift) >= fail_at)
        msg = (f"{who(seg)}: median quality {num(q)} over {n:,} articles, {'down' if shift < 0 else 'up'} "
               f"{num(abs(shift))} from its usual {num(base)}") if verdict != "pass" else \
            f"{who(seg)}: median quality {num(q)} over {n:,} articles, usually {num(base)}"
        out.append(Result(c_, seg, None, verdict, q, base, base - warn_at, base + warn_at, "points", n, len(hist),
                          msg + (eg(r.get("evidence")) if verdict != "pass" else "")))
    return out


def version_churn(ctx: Context, rows: list[dict]) -> list[Result]:
    """Articles of a provider that got a new version this run, against how many usually do: at
    least min_articles, three times the usual, and too many for chance (Poisson, or the spread
    seen). The message says how many of them changed in each of the last `runs` runs too."""
    c_ = "version_churn"
    got = {r["segment"]: r for r in rows}
    out = []
    for seg in sorted(set(got) | ctx.segments(c_), key=lambda x: x or ""):
        r = got.get(seg, {})
        k, every = int(r.get("observed") or 0), int(r.get("every_run") or 0)
        s = lambda key: ctx.s(c_, key, seg)  # noqa: E731
        hist = ctx.history(c_, seg)
        if len(hist) < ctx.config.min_history:
            out.append(ctx.too_little(c_, seg, None, len(hist), k, k))
            continue
        base, sd = statistics.fmean(h[1] for h in hist), robust([h[1] for h in hist])[1]
        p = normal_cdf((base - k) / sd) if sd > 1.2 * math.sqrt(max(base, 1e-9)) else 1 - poisson_cdf(k - 1, base)
        warn = k >= s("min_articles") and k >= 3 * base and p < s("warn_p")
        fail = warn and k >= s("fail_articles") and k >= 10 * max(base, 1)
        verdict = _level(warn, fail)
        fields = ", ".join(r.get("fields") or []) or "?"
        msg = f"{who(seg)}: {plural(k, 'article')} got a new version this run, usually {num(base)}"
        if verdict != "pass":
            msg += (f"; {every:,} of them in each of the last {s('runs')} runs; changing: {fields}"
                    + eg(r.get("evidence")))
        out.append(Result(c_, seg, None, verdict, k, base, None, max(3 * base, s("min_articles")), "articles", k,
                          len(hist), msg))
    return out


def snapshot_shrink(ctx: Context, rows: list[dict]) -> list[Result]:
    """Articles now against the run before: a loss of warn_share (fail_share) and min_articles."""
    c_ = "snapshot_shrink"
    out = []
    for r in rows:
        now, before = int(r["now"]), r["before"]
        s = lambda key: ctx.s(c_, key, None)  # noqa: E731
        if before is None:
            out.append(Result(c_, None, None, "insufficient_history", now, history_size=0,
                              message=f"the whole run: {now:,} articles; no earlier run to compare with"))
            continue
        lost = before - now
        share = lost / before if before else 0.0
        warn = share >= s("warn_share") and lost >= s("min_articles")
        fail = share >= s("fail_share") and lost >= s("min_articles")
        verdict = _level(warn, fail)
        msg = f"the whole run: {now:,} articles, {before:,} after the run before"
        if verdict != "pass":
            msg = (f"the snapshot shrank by {pct(share)}: {now:,} articles, {before:,} after the run before"
                   + (f"; removed most: {r['evidence']}" if r.get("evidence") else ""))
        out.append(Result(c_, None, None, verdict, now, before, before * (1 - s("warn_share")), None, "articles",
                          now, 1, msg))
    return out


RULES = {
    "freshness": freshness,
    "volume": volume,
    "rejection_rate": rejection_rate,
    "completeness": completeness,
    "frontmatter_drift": frontmatter_drift,
    "duplicate_rate": duplicate_rate,
    "quality_shift": quality_shift,
    "version_churn": version_churn,
    "future_dated": future_dated,
    "snapshot_shrink": snapshot_shrink,
}
