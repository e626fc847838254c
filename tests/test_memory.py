"""Memory does not grow with the corpus: records flow through in batches.

Peak memory (summed PSS of the run's processes, sampled by bench/run.py's
sampler) is measured for two corpus sizes; the larger may not need much more.
A shape test, not a timing one: it asserts a ratio of two measurements made
side by side, and a generous absolute ceiling."""

from __future__ import annotations

import sys

from newsetl import demo

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import run as bench  # noqa: E402


def test_peak_memory_is_flat_in_corpus_size(tmp_path):
    peaks = {}
    for n in (3000, 12000):
        site = tmp_path / f"site-{n}"
        demo.generate(site, records=n, seed=n, profile="bench", malformed=False)
        r = bench.measure(bench.OURS.format(inp=str(site), out=str(tmp_path / f"wh-{n}"), workers=2))
        assert r["run"]["articles_rows"] > 0.98 * n
        peaks[n] = r["peak_rss"] / 2**20
    # four times the records (about 70 MB against 280 MB of YAML): about the same memory
    assert peaks[12000] < 1.5 * peaks[3000], peaks  # linear growth would be about 4x
    assert peaks[12000] < 1024, peaks
