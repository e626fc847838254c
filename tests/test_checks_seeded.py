"""The checks on seeded faults: a simulated site (tests/helpers/newsday.py) grows day by day, a
run per day with --as-of at the day's end, and faults of every kind are injected at days and
providers chosen here. What each fault shaped comes from the generator (its DayResult), never
from newsetl; each must be flagged, at the right level, naming its provider, in the first run
where it can be observed; the rest of the site stays silent.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path
from typing import NamedTuple

import pytest

import newsetl
from newsetl import html_report, pipeline

from .helpers.cli import newsetl_cli
from .helpers.newsday import Fault, Site, default_providers
from .helpers.page import Page
from .test_html_report import browser, check_layout  # noqa: F401 - the browser fixture, and its layout check

pytestmark = pytest.mark.slow

DAYS = 30
START = dt.date(2021, 3, 1)  # a Monday
# one fault per provider at a time, after two weeks of history (the baselines' warm-up)
FAULTS = [
    Fault("stop", "securewire.example", day=12, until=16),
    Fault("empty_field", "cloudbeat.example", day=13, until=15, field="quality"),
    Fault("reject", "news.bytepost.example", day=14, until=15, share=0.5),
    Fault("rename_key", "redmondreport.example", day=15, until=17),
    Fault("new_key", "gadgetloop.example", day=16, until=18),
    Fault("type_change", "tomskit.example", day=17, until=19),
    Fault("duplicates", "wiredaily.example", day=18, until=19, share=0.5),
    Fault("quality_shift", "quantfolk.example", day=19, until=21),
    Fault("churn", "officehours.example", day=20, until=24),
    Fault("future", "edgenotes.example", day=21, until=22),
    Fault("empty_field", "wiredaily.example", day=22, until=23, field="excerpt"),
    Fault("shrink", None, day=24, share=0.4),
    Fault("spike", "tomskit.example", day=26, until=26),
    Fault("empty_field", "news.bytepost.example", day=27, field="images"),  # still on at the end
]
# the checks that may flag each kind of fault, and the level it gets
CATCHES = {
    "stop": ({"freshness", "volume"}, {"warn", "fail"}),
    "spike": ({"volume"}, {"warn"}),
    "empty_field": ({"completeness"}, {"fail"}),
    "new_key": ({"frontmatter_drift"}, {"warn"}),
    "rename_key": ({"frontmatter_drift", "completeness"}, {"warn", "fail"}),
    "type_change": ({"frontmatter_drift", "completeness"}, {"warn", "fail"}),
    "reject": ({"rejection_rate"}, {"warn", "fail"}),
    "duplicates": ({"duplicate_rate"}, {"warn"}),
    "quality_shift": ({"quality_shift"}, {"fail"}),
    "churn": ({"version_churn"}, {"warn"}),
    "future": ({"future_dated"}, {"warn", "fail"}),
    "shrink": ({"snapshot_shrink"}, {"warn"}),
}
# the fewest faulted files a day needs for the fault to be observable in that day's run: a
# median of quality over fewer than 3 articles, or one future date, tells nothing yet
MIN_FILES = {"quality_shift": 3, "future": 2}


class Sim(NamedTuple):
    wh: Path
    days: list  # (DayResult, RunResult) per day
    site: Site


def simulate(folder, faults, days=DAYS, seed=1) -> Sim:
    site = Site(folder / "site", default_providers(), START, seed=seed, faults=faults)
    days_out = []
    for i in range(days):
        result = site.day(i)
        run = pipeline.run([site.folder], folder / "wh", workers=1, as_of=site.as_of(i))
        days_out.append((result, run))
    return Sim(folder / "wh", days_out, site)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("seeded"), FAULTS)


def alerting(run) -> list:
    return [r for r in run.checks.results if r.status in ("warn", "fail")]


def first_observable(fault: Fault, days) -> int:
    """The first day whose files show the fault (the generator says which files it shaped)."""
    for i, (result, _run) in enumerate(days):
        if i < fault.day or (fault.until is not None and i > fault.until):
            continue
        if fault.kind == "stop":
            if result.providers[fault.provider].planned:  # a day it would have published
                return i
            continue
        if fault.kind == "shrink":
            return i
        shaped = [p for d in result.providers.values() for p in d.faulted.get(fault.kind, [])] \
            if fault.provider is None else result.providers[fault.provider].faulted.get(fault.kind, [])
        if len(shaped) >= MIN_FILES.get(fault.kind, 1):
            return i
    raise AssertionError(f"{fault} shaped no file")


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f"{f.kind}-{f.provider or 'site'}-{f.field or ''}")
def test_every_seeded_fault_is_flagged_in_the_first_run_that_shows_it(seeded, fault):
    days = seeded.days
    day = first_observable(fault, days)
    checks, levels = CATCHES[fault.kind]
    hits = [r for r in alerting(days[day][1]) if r.check_name in checks
            and (fault.provider is None or r.segment == fault.provider or fault.provider in r.message)]
    assert hits, f"day {day}: nothing flagged {fault}; alerts: {[r.message for r in alerting(days[day][1])]}"
    assert {r.status for r in hits} & levels, [(r.status, r.message) for r in hits]
    if fault.kind == "empty_field":  # the field is named
        assert any(r.detail == fault.field for r in hits)
    if fault.kind == "reject":  # the provider of the broken files, read from the files themselves
        assert any(fault.provider in r.message for r in hits)
    # and not before: the days before the fault are clean for that provider and check
    if fault.provider is not None:
        for _result, run in days[:fault.day]:
            assert not [r for r in alerting(run) if r.check_name in checks and r.segment == fault.provider]


def test_providers_without_a_fault_stay_silent(seeded):
    """A new provider (day 15), a weekly one and one with quiet weekends never alert, and the
    others only for a fault of theirs (or the site-wide shrink and the checks of the whole run)."""
    days = seeded.days
    faulted = {f.provider for f in FAULTS}
    for i, (_result, run) in enumerate(days):
        for r in alerting(run):
            assert r.segment is None or r.segment in faulted, (i, r.message)
            assert r.segment not in ("startupradar.example", "aiweekly.example"), (i, r.message)


def test_an_alert_opens_once_and_resolves_once(seeded):
    """The churn lasts 5 runs (days 20-24): one alert, opened by day 20's run and resolved by the
    first run after it whose check passed; every alert of a fault that ended is resolved."""
    wh, days, _site = seeded
    con = newsetl.connect(wh)
    rows = con.sql("SELECT state, opened_run_id, resolved_run_id, runs FROM check_alerts "
                   "WHERE check_name = 'version_churn' AND segment = 'officehours.example'").fetchall()
    run_of = [run.run_id for _result, run in days]
    assert len(rows) == 1, rows
    state, opened, resolved, runs = rows[0]
    assert opened == run_of[20] and state == "resolved"
    assert run_of.index(resolved) > 24 and runs >= 5
    # only the fault still on at the end (news.bytepost.example's images) has alerts open
    still = con.sql("SELECT DISTINCT check_name, segment FROM check_alerts WHERE state = 'open'").fetchall()
    assert {s for _c, s in still} <= {"news.bytepost.example", None}, still
    assert ("completeness", "news.bytepost.example") in still


def test_check_results_hold_a_row_per_check_segment_and_run(seeded):
    wh, days, _site = seeded
    con = newsetl.connect(wh)
    dup = con.sql("SELECT run_id, check_name, segment, detail, count(*) FROM check_results "
                  "GROUP BY ALL HAVING count(*) > 1").fetchall()
    assert dup == []
    got = dict(con.sql("SELECT run_id, count(*) FROM check_results GROUP BY 1").fetchall())
    assert got == {run.run_id: len(run.checks.results) for _r, run in days}
    assert set(con.sql("SELECT DISTINCT status FROM check_results").fetchall()) <= {
        (s,) for s in ("pass", "warn", "fail", "error", "insufficient_history", "muted")}
    assert con.sql("SELECT count(*) FROM check_results WHERE status = 'error'").fetchall() == [(0,)]


# -- newsetl check, on a copy of the seeded warehouse ----------------------------------------------

@pytest.fixture
def wh_copy(seeded, tmp_path):
    copy = tmp_path / "wh"
    shutil.copytree(seeded.wh, copy, symlinks=True)
    return copy


def check_cli(wh, *args, cwd=None):
    return newsetl_cli("check", "--warehouse", str(wh), *args, cwd=cwd)


def current(wh):
    return os.readlink(wh / "current")


def test_the_views_over_the_checks_are_counted_by_the_run_as_duckdb_counts_them(seeded, tmp_path, monkeypatch):
    """The check stage records open_alerts' and check_history's rows (with alerts open: not 0),
    and `newsetl tables` shows them, as DuckDB counts the views over the published snapshot."""
    from newsetl import catalog
    from newsetl.store import Warehouse

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # nothing cached: every other view is counted
    con = newsetl.connect(seeded.wh)
    try:
        want = {n: con.execute(f'SELECT count(*) FROM "{n}"').fetchall()[0][0] for n in ("open_alerts", "check_history")}
    finally:
        con.close()
    assert want["open_alerts"] > 0
    assert catalog._recorded_view_counts(Warehouse(seeded.wh).current()) == want
    r = newsetl_cli("tables", "--warehouse", str(seeded.wh), "--format", "csv")
    assert r.returncode == 0, r.stderr
    shown = {line.split(",")[0]: int(line.split(",")[2]) for line in r.stdout.splitlines()[1:]}
    assert {n: shown[n] for n in want} == want


def test_check_exits_1_on_a_failure_and_names_it(wh_copy):
    # the last day: news.bytepost.example's records lost their images (the fault still on)
    r = check_cli(wh_copy, "--format", "json")
    assert r.returncode == 1, r.stderr
    rows = json.loads(r.stdout)
    assert {(x["status"], x["check_name"], x["segment"], x["detail"]) for x in rows} >= {
        ("fail", "completeness", "news.bytepost.example", "images")}
    assert all(x["status"] in ("fail", "warn", "muted", "error") for x in rows)
    assert "checks:" in r.stderr and "1 fail" in r.stderr


def test_a_dry_run_explains_and_writes_nothing(wh_copy):
    before = (current(wh_copy), sorted(p.name for p in (wh_copy / "snapshots").iterdir()))
    r = check_cli(wh_copy, "--dry-run", "--explain")
    assert r.returncode == 1, r.stderr
    assert "-- completeness:" in r.stdout and "FROM articles WHERE run_id = $run_id" in r.stdout
    assert "fail" in r.stdout and "news.bytepost.example images" in r.stdout and "observed 0" in r.stdout
    assert "dry run: nothing written" in r.stderr
    assert (current(wh_copy), sorted(p.name for p in (wh_copy / "snapshots").iterdir())) == before


def test_a_check_is_recorded_in_a_new_snapshot_without_counting_twice(wh_copy, seeded):
    days = seeded.days
    last = days[-1][1]
    con = newsetl.connect(wh_copy)
    runs_before = con.sql("SELECT count(*) FROM runs").fetchall()
    alerts_before = con.sql("SELECT alert_id, runs FROM check_alerts ORDER BY 1").fetchall()
    con.close()
    snap = current(wh_copy)
    r = check_cli(wh_copy)
    assert r.returncode == 1, r.stderr
    assert current(wh_copy) != snap
    con = newsetl.connect(wh_copy)
    assert con.sql("SELECT count(*) FROM runs").fetchall() == runs_before  # a check is not a run
    # the last run's results, evaluated again, replace its own: one row per check and segment
    assert con.sql("SELECT count(*) FROM check_results WHERE run_id = $r", params={"r": last.run_id}
                   ).fetchall() == [(len(last.checks.results),)]
    assert con.sql("SELECT alert_id, runs FROM check_alerts ORDER BY 1").fetchall() == alerts_before


def test_a_check_leaves_every_file_of_the_earlier_snapshots_as_it_was(wh_copy):
    """newsetl check makes its snapshot of hard links to the last one's files: nothing it writes
    may reach them (its snapshot.json was once written through the link)."""
    import hashlib

    def contents():
        return {p.relative_to(wh_copy).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in (wh_copy / "snapshots").rglob("*") if p.is_file()}

    last = f"snapshots/{Path(current(wh_copy)).name}/"
    before = contents()
    assert check_cli(wh_copy).returncode == 1
    after = contents()
    kept = {k: v for k, v in before.items() if k in after}  # older snapshots may be collected, never changed
    assert {k: after[k] for k in kept} == kept
    assert all(k in after for k in before if k.startswith(last))  # the one it was made from is kept whole
    assert any(k.startswith("snapshots/") and not k.startswith(last) and k not in before for k in after)


def test_a_mute_with_an_expiry_silences_one_provider(wh_copy, tmp_path):
    cfg = tmp_path / "newsetl.toml"
    cfg.write_text('[[checks.mute]]\ncheck = "completeness"\nprovider = "news.bytepost.example"\n'
                   'until = 2021-04-30\nreason = "images moved to a CDN"\n')
    r = check_cli(wh_copy, "--dry-run", "--format", "json", cwd=tmp_path)  # ./newsetl.toml is found
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    muted = [x for x in rows if x["status"] == "muted"]
    assert muted and all(x["segment"] == "news.bytepost.example" for x in muted)
    assert "images moved to a CDN" in muted[0]["message"]
    # expired: the mute is over before the run's as_of (2021-03-30)
    cfg.write_text(cfg.read_text().replace("2021-04-30", "2021-03-01"))
    assert check_cli(wh_copy, "--dry-run", cwd=tmp_path).returncode == 1


def test_levels_and_per_provider_settings(wh_copy, tmp_path):
    cfg = tmp_path / "ops.toml"
    cfg.write_text('[checks.completeness]\nlevel = "warn"\n')
    r = check_cli(wh_copy, "--dry-run", "--config", str(cfg), "--format", "json")
    assert r.returncode == 0, r.stderr
    assert {x["status"] for x in json.loads(r.stdout) if x["check_name"] == "completeness"} == {"warn"}
    assert check_cli(wh_copy, "--dry-run", "--config", str(cfg), "--fail-on", "warn").returncode == 2
    cfg.write_text('[checks.completeness.providers."news.bytepost.example"]\nenabled = false\n'
                   '[checks.frontmatter_drift]\nenabled = false\n')
    r = check_cli(wh_copy, "--dry-run", "--config", str(cfg), "--all", "--format", "json")
    rows = json.loads(r.stdout)
    assert r.returncode == 0 and rows
    assert not [x for x in rows if x["check_name"] == "completeness" and x["segment"] == "news.bytepost.example"]
    assert not [x for x in rows if x["check_name"] == "frontmatter_drift"]
    assert [x for x in rows if x["check_name"] == "completeness" and x["segment"] == "wiredaily.example"]


@pytest.mark.parametrize("text, key", [
    ('[checks.volum]\nwarn_p = 0.1\n', "checks.volum"),
    ('[checks.volume]\nwarn_p = "low"\n', "checks.volume.warn_p"),
    ('[checks.volume]\nlevel = "loud"\n', "checks.volume.level"),
    ('[checks]\nfail_on = "sometimes"\n', "checks.fail_on"),
    ('[[checks.mute]]\ncheck = "volume"\n', "checks.mute[0].until"),
    ('[checks.volume.providers."a.example"]\nwarn_q = 1\n', 'checks.volume.providers.a.example.warn_q'),
    ('[checks\n', "not valid TOML"),
])
def test_a_wrong_configuration_exits_3_in_one_line_naming_the_key(wh_copy, tmp_path, text, key):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    for cmd in (["check", "--warehouse", str(wh_copy)], ["run", str(tmp_path), "--warehouse", str(tmp_path / "w")]):
        r = newsetl_cli(*cmd, "--config", str(cfg))
        assert r.returncode == 3, (cmd, r.stderr)
        assert r.stderr.count("\n") == 1 and str(cfg) in r.stderr and key in r.stderr, r.stderr
    assert not (tmp_path / "w").exists()  # the run stopped before anything was written


def test_run_prints_an_alert_line_and_fail_on_sets_its_exit_code(tmp_path):
    """A scheduled `newsetl run` prints one line per alert that opens or resolves; the data is
    published either way, and --fail-on fail makes the failure its exit code."""
    wh, _days, site = simulate(tmp_path, [Fault("empty_field", "cloudbeat.example", day=8, until=8,
                                                 field="topics")], days=8)
    site.day(8)
    r = newsetl_cli("run", str(site.folder), "--warehouse", str(wh), "--as-of", site.as_of(8).isoformat(),
                    "--no-prefect", "--fail-on", "fail")
    assert r.returncode == 1, r.stderr
    assert "alert fail: completeness cloudbeat.example topics:" in r.stdout
    site.day(9)
    r = newsetl_cli("run", str(site.folder), "--warehouse", str(wh), "--as-of", site.as_of(9).isoformat(),
                    "--no-prefect", "--fail-on", "fail")
    assert r.returncode == 0, r.stderr
    assert "resolved: completeness cloudbeat.example topics, open 1 run:" in r.stdout


# -- the HTML report's Checks section -----------------------------------------------------------

def test_the_report_shows_open_alerts_first_then_their_history(seeded, browser, tmp_path):
    page = tmp_path / "report.html"
    html_report.write(seeded.wh, page)
    p = Page(page.read_text(encoding="utf-8"))
    text = p.section_text("checks")
    assert text.index("Open alerts") < text.index("Resolved")
    # open: the one fault still on at the end (FAULTS: news.bytepost.example's images, from day 27)
    open_rows = p.table("alerts-open")
    assert [(r["Level"], r["Provider"], r["Field or key"]) for r in open_rows] == [
        ("fail", "news.bytepost.example", "images")]
    assert open_rows[0]["Since"] == seeded.days[27][0].date.strftime("%-d %b %Y")
    assert p.cards()["check alerts open (whole warehouse)"][0] == "1"
    # resolved: every other fault's provider is there, the churn of officehours with its 5+ runs
    done = p.table("alerts-resolved")
    providers = {r["Provider"] for r in done}
    assert {f.provider for f in FAULTS if f.provider and f.kind != "reject"} - {"news.bytepost.example"} <= providers
    churn = [r for r in done if r["Check"] == "version churn" and r["Provider"] == "officehours.example"]
    assert len(churn) == 1 and int(churn[0]["Runs"]) >= 5
    check_layout(browser, page, "checks", tmp_path)
