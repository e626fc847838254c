"""Counts in words, the same everywhere newsetl prints one: `plural(1, "file")` is `1 file`,
`plural(2010, "file")` is `2,010 files` (thousands separated by commas, as in every summary)."""

from __future__ import annotations

# the few nouns newsetl counts whose plural is not the noun and an `s`
_IRREGULAR = {"batch": "batches", "entry": "entries", "query": "queries", "was": "were", "is": "are"}


def plural(n: int, word: str, many: str | None = None) -> str:
    """`n` with thousands separators and `word`, in the plural unless `n` is exactly 1
    (`0 files`, `1 file`, `-1 files`); `many` is the plural where adding `s` is wrong."""
    return f"{n:,} {word if n == 1 else (many or _IRREGULAR.get(word) or word + 's')}"


def run_summary(run_id: str, run: dict, counts: dict) -> str:
    """A run's one-line summary, as `newsetl run` prints it and `RunResult.summary()` gives it:
    `run R: 2,010 files (2,000 new, ...); articles 2,000, ...`."""
    return (f"run {run_id}: {plural(run['files_seen'], 'file')} ({run['files_new']:,} new, "
            f"{run['files_changed']:,} changed, {run['files_unchanged']:,} unchanged, {run['files_deleted']:,} "
            f"deleted, {run['files_rejected']:,} rejected); " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))


def close_match(word: str, choices) -> str:
    """` (did you mean 'x'?)` for the choice closest to a mistyped `word` (difflib's ratio of at
    least 0.6, as `get_close_matches` takes it), or nothing."""
    import difflib

    found = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {found[0]!r}?)" if found else ""
