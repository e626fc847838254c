"""The checks on clean runs: no false alarms over 30 runs of generated data (with a new
provider, a weekly one and quiet weekends among them) and over 30 runs replaying a real site's
three years of history (../shared/corpus/powerapps/history)."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from newsetl import pipeline

from .test_checks_seeded import alerting, simulate

pytestmark = pytest.mark.slow


def test_thirty_clean_runs_of_generated_data_raise_no_failure(tmp_path):
    """The seeded site's providers without faults: no fail, at most a few warnings over 30
    runs, and none for the negative controls (a new provider, a weekly one, quiet weekends)."""
    days = simulate(tmp_path, [], seed=7).days
    found = [(i, r.status, r.message) for i, (_res, run) in enumerate(days) for r in alerting(run)]
    assert not [f for f in found if f[1] == "fail"], found
    assert len(found) <= 3, found
    controls = ("startupradar.example", "aiweekly.example", "officehours.example")
    assert not [f for f in found if any(c in f[2] for c in controls)], found


def test_thirty_runs_replaying_a_real_sites_history_raise_no_failure(corpus, tmp_path):
    """powerapps/history in 30 runs, each with the as-of time of its last commit folder: real
    rewrites (heat on nearly every one), new articles, quiet months. No fail, few warnings."""
    history = corpus / "powerapps" / "history"
    stamps = sorted(p.name for p in history.iterdir() if p.is_dir())
    site = tmp_path / "powerapps"
    site.mkdir()
    step = -(-len(stamps) // 30)
    found = []
    for g in range(0, len(stamps), step):
        group = stamps[g:g + step]
        for stamp in group:
            for f in (history / stamp).iterdir():
                shutil.copyfile(f, site / f.name)
        as_of = dt.datetime.strptime(group[-1], "%Y%m%dT%H%M%S").replace(tzinfo=dt.timezone.utc)
        run = pipeline.run([site], tmp_path / "wh", workers=1, as_of=as_of)
        found += [(group[-1], r.status, r.message) for r in alerting(run)]
    assert not [f for f in found if f[1] == "fail"], found
    # runs weeks apart over a real site's slow months: a 10-day silence, two slow spells, a run
    # whose articles have fewer images (measured: 4 warnings with these 30 groups)
    assert len(found) <= 5, found
