"""The checks' parts on their own: the statistics against brute force, the configuration file,
the binary-counter merge of check_results' parts, the alert lifecycle, the Prefect events'
shape and the HTML report's Checks section (in a real browser). The checks on whole runs are
tests/test_checks_seeded.py and tests/test_checks_clean.py."""

from __future__ import annotations

import datetime as dt
import math
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from newsetl.checks import Result, _merge, lifecycle
from newsetl.checks.config import CHECKS, DEFAULTS, ConfigError, load_config, parse_config
from newsetl.checks.events import check_events
from newsetl.checks.judge import binom_cdf, poisson_cdf, pooled, robust
from newsetl.schema import CHECK_RESULTS

ROOT = Path(__file__).resolve().parents[1]
T0 = dt.datetime(2021, 3, 1, tzinfo=dt.timezone.utc)


# -- statistics, against their definitions ---------------------------------------------------------

@given(st.integers(0, 60), st.floats(0.01, 50))
def test_poisson_cdf_is_the_sum_of_the_probabilities(k, lam):
    want = sum(math.exp(-lam) * lam ** i / math.factorial(i) for i in range(k + 1))
    assert poisson_cdf(k, lam) == pytest.approx(want, rel=1e-9, abs=1e-300)


@given(st.integers(1, 60), st.floats(0.001, 0.999), st.data())
def test_binom_cdf_is_the_sum_of_the_probabilities(n, p, data):
    k = data.draw(st.integers(0, n))
    want = sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k + 1))
    assert binom_cdf(k, n, p) == pytest.approx(min(want, 1.0), rel=1e-7, abs=1e-12)


def test_robust_spread_and_pooled_share_by_hand():
    assert robust([1, 2, 3, 4, 100]) == (3, pytest.approx(1.4826 * 1))  # |dev|: 2,1,0,1,97 -> median 1
    # two runs: 4 of 5 and 100 of 100 filled; the pooled share weighs each run by its sample
    assert pooled([("r1", 0.8, 5), ("r2", 1.0, 100)]) == pytest.approx(104 / 105)


# -- the configuration ---------------------------------------------------------------------------------

def test_no_file_gives_the_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NEWSETL_CONFIG", raising=False)
    cfg = load_config()
    assert cfg.path is None and cfg.training_runs == 30 and cfg.min_history == 5 and cfg.fail_on == "never"
    assert set(cfg.checks) == set(CHECKS) == set(DEFAULTS)
    assert all(c["enabled"] and c["level"] == "auto" for c in cfg.checks.values())


def test_a_file_overrides_checks_providers_and_mutes(tmp_path, monkeypatch):
    (tmp_path / "newsetl.toml").write_text(
        '[checks]\ntraining_runs = 20\nfail_on = "warn"\n'
        '[checks.volume]\nwarn_drop = 0.7\nlevel = "warn"\n'
        '[checks.volume.providers."Weekly.Example"]\nenabled = false\nmin_drop = 2\n'
        '[[checks.mute]]\ncheck = "freshness"\nprovider = "a.example"\nuntil = 2021-03-31\n'
        '[keys]\npublished_at = "pubDate"\n')  # another section's table ([keys]: column = key): not the checks' concern
    monkeypatch.chdir(tmp_path)
    cfg = load_config()
    assert cfg.training_runs == 20 and cfg.fail_on == "warn"
    assert cfg.setting("volume", "warn_drop") == 0.7 and cfg.setting("volume", "level") == "warn"
    assert cfg.setting("volume", "min_drop", "weekly.example") == 2
    assert cfg.setting("volume", "min_drop", "other.example") == DEFAULTS["volume"]["min_drop"]
    assert not cfg.enabled_for("volume", "weekly.example") and cfg.enabled_for("volume", "other.example")
    end = dt.datetime(2021, 3, 31, 23, 59, 59, 999999, tzinfo=dt.timezone.utc)
    assert cfg.mute_for("freshness", "a.example", None, end) is not None
    assert cfg.mute_for("freshness", "a.example", None, end + dt.timedelta(microseconds=1)) is None
    assert cfg.mute_for("freshness", "b.example", None, T0) is None
    assert cfg.mute_for("volume", "a.example", None, T0) is None


@pytest.mark.parametrize("doc, key", [
    ({"checks": {"nope": {}}}, "checks.nope"),
    ({"checks": {"volume": {"warn_drop": "x"}}}, "checks.volume.warn_drop"),
    ({"checks": {"volume": {"min_drop": 1.5}}}, "checks.volume.min_drop"),
    ({"checks": {"volume": {"enabled": 1}}}, "checks.volume.enabled"),
    ({"checks": {"volume": {"warn_drop": -1}}}, "checks.volume.warn_drop"),
    ({"checks": {"training_runs": 2}}, "checks.training_runs"),
    ({"checks": {"min_history": 40}}, "checks.min_history"),
    ({"checks": {"mute": [{"check": "volume", "until": "soon"}]}}, "checks.mute[0].until"),
    ({"checks": {"mute": [{"check": "all", "until": dt.date(2030, 1, 1)}]}}, "checks.mute[0].check"),
    ({"checks": {"mute": [{"check": "volume", "until": dt.date(2030, 1, 1), "who": "me"}]}}, "checks.mute[0].who"),
    ({"checks": {"volume": {"providers": {"a.example": {"level": "loud"}}}}}, "checks.volume.providers.a.example.level"),
    ({"checks": []}, "checks"),
])
def test_every_wrong_setting_is_named(doc, key):
    with pytest.raises(ConfigError) as e:
        parse_config(doc, "site/newsetl.toml")
    assert str(e.value).startswith(f"site/newsetl.toml: {key}:") and "\n" not in str(e.value)


def test_an_unreadable_or_missing_file_is_one_line(tmp_path, monkeypatch):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"[checks]\nx = \xff\n")
    with pytest.raises(ConfigError, match="bad.toml: not UTF-8"):
        load_config(bad)
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "gone.toml")
    monkeypatch.setenv("NEWSETL_CONFIG", str(tmp_path / "gone.toml"))
    with pytest.raises(ConfigError, match=r"gone.toml: no such configuration file \(from \$NEWSETL_CONFIG\)"):
        load_config()


# -- check_results' parts: a binary counter ------------------------------------------------------

def _part(folder: Path, name: str, rows: int, tag: str) -> str:
    t = pa.Table.from_pylist([{"run_id": tag, "check_name": "volume", "observed": float(i)} for i in range(rows)],
                             schema=CHECK_RESULTS.schema)
    pq.write_table(t, folder / name)
    return name


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=40))
def test_merging_keeps_every_row_in_few_parts(tmp_path_factory, sizes):
    folder = tmp_path_factory.mktemp("parts")
    names: list[str] = []
    for i, n in enumerate(sizes):
        run = f"20210301T{i // 60:02d}{i % 60:02d}00.000000Z-{i:06x}"
        names, told = _merge(folder, [*names, _part(folder, f"{run}.parquet", n, run)], run)
        rows = [pq.read_metadata(folder / p).num_rows for p in names]
        assert told == rows  # the rows it says each part holds
        # every row once, in run order; sizes strictly decrease (a binary counter): O(log runs) parts
        got = [r for p in names for r in pq.ParquetFile(folder / p).read(columns=["run_id"]).column(0).to_pylist()]
        assert got == [f"20210301T{j // 60:02d}{j % 60:02d}00.000000Z-{j:06x}" for j in range(i + 1) for _ in range(sizes[j])]
        assert all(a > b for a, b in zip(rows, rows[1:]))
        assert len(names) <= math.floor(math.log2(sum(sizes[:i + 1]))) + 1
        assert sorted(p.name for p in folder.iterdir()) == sorted(names)  # no file left behind


# -- alerts ------------------------------------------------------------------------------------------

def _r(status: str, check="volume", seg="a.example") -> Result:
    r = Result(check, seg, None, status, 1.0, 2.0, message=f"{check} {seg} {status}")
    r.status = status
    return r


def test_a_fault_of_five_runs_opens_once_and_resolves_once():
    alerts, events = [], []
    statuses = ["pass", "warn", "fail", "warn", "warn", "warn", "insufficient_history", "muted", "pass", "pass"]
    for i, status in enumerate(statuses):
        alerts, opened, resolved = lifecycle(alerts, [_r(status)], f"run{i}", T0 + dt.timedelta(days=i))
        events += [("open", i) for _ in opened] + [("resolved", i) for _ in resolved]
    assert events == [("open", 1), ("resolved", 8)]
    (a,) = alerts
    assert (a["state"], a["level"], a["runs"], a["opened_run_id"], a["resolved_run_id"]) == \
        ("resolved", "fail", 5, "run1", "run8")
    # the same run evaluated again (newsetl check) counts once
    again, opened, _ = lifecycle([], [_r("warn")], "run1", T0)
    again, opened, _ = lifecycle(again, [_r("warn")], "run1", T0)
    assert not opened and again[0]["runs"] == 1


def test_events_name_the_check_the_provider_and_the_values():
    _alerts, opened, _ = lifecycle([], [_r("fail", "completeness", "b.example")], "run1", T0)

    class O:
        run_id = "run1"
    o = O()
    o.opened, o.resolved = opened, []
    (e,) = check_events(o, "/data/wh")
    assert e["event"] == "newsetl.check.fail"
    assert e["resource"]["prefect.resource.id"] == "newsetl.check.completeness.b.example"
    assert e["resource"]["newsetl.provider"] == "b.example" and e["resource"]["newsetl.check"] == "completeness"
    assert e["payload"]["observed"] == 1.0 and e["payload"]["expected"] == 2.0
    assert e["payload"]["message"] == "completeness b.example fail"


def test_the_automations_file_is_valid_for_prefect():
    """docs/automations.yaml, with a block id filled in, as `prefect automation create` reads it."""
    from prefect.events.schemas.automations import AutomationCore

    text = (ROOT / "docs" / "automations.yaml").read_text().replace("BLOCK_DOCUMENT_ID", str(uuid.uuid4()))
    got = [AutomationCore.model_validate(a) for a in yaml.safe_load(text)["automations"]]
    assert [(a.trigger.posture.value, a.trigger.expect) for a in got] == [
        ("Reactive", {"newsetl.check.fail"}), ("Reactive", {"newsetl.check.warn"}),
        ("Proactive", {"prefect.flow-run.Completed"})]


def test_reading_a_rejected_files_head_never_blocks(tmp_path):
    """The rejection check reads the start of rejected files again for their provider: a FIFO,
    a folder or a file gone since is skipped at once (a FIFO opened for reading would wait for
    a writer forever; found by test_hostile's FIFO)."""
    import os

    from newsetl.checks import _head

    os.mkfifo(tmp_path / "fifo.md")
    (tmp_path / "dir.md").mkdir()
    (tmp_path / "bad.md").write_bytes(b"---\nprovider:\n  domain: x.example\n" + b"y" * 70000)
    assert _head(str(tmp_path / "fifo.md")) is None
    assert _head(str(tmp_path / "dir.md")) is None
    assert _head(str(tmp_path / "gone.md")) is None
    assert len(_head(str(tmp_path / "bad.md"))) == 65536
