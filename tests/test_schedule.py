"""Scheduled runs: `newsetl serve` (newsetl.serve) and its argument checks.

The unit tests check every argument before anything reaches Prefect. The one
integration test (`-m integration`, ~30 s) does it for real: it starts a
Prefect server on a free local port, serves `news-etl` with a cron schedule
from another process, reads the deployment and its schedule back, triggers one
run, waits for it to complete and checks the warehouse that run wrote.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml

import newsetl
from newsetl import cli
from newsetl import serve as S
from newsetl.demo import generate

from .helpers.cli import NEWSETL
from .helpers.servers import free_port, prefect_env, stop, tail

ROOT = Path(__file__).resolve().parents[1]

# Prefect server start (~10 s) + serve start + one small run: keep well under this
INTEGRATION_TIMEOUT = 300


# -- unit tests: arguments are checked up front -----------------------------------------

@pytest.fixture
def folder(tmp_path):
    (tmp_path / "in").mkdir()
    return str(tmp_path / "in")


@pytest.mark.parametrize("cron", ["bad", "61 * * * *", "* * * *", "0 */30 * * * *", "H * * * *", "", "@every"])
def test_bad_cron_is_refused_with_a_clear_message(folder, cron):
    with pytest.raises(ValueError, match=r"invalid cron expression .*expected 5 fields") as e:
        S.serve([folder], cron=cron)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("interval", [0, -5, float("nan"), float("inf"), "abc"])
def test_bad_interval_is_refused_with_a_clear_message(folder, interval):
    with pytest.raises(ValueError, match=r"invalid interval .*seconds") as e:
        S.serve([folder], interval=interval)
    assert "\n" not in str(e.value)


def test_both_or_neither_schedule_is_refused(folder):
    with pytest.raises(ValueError, match="either a cron schedule .* or an interval .*not both"):
        S.serve([folder], cron="*/30 * * * *", interval=900)
    with pytest.raises(ValueError, match="a schedule is needed"):
        S.serve([folder])


def test_good_schedules_are_accepted():
    assert S.check_schedule("*/30  * * *  *", None) == {"cron": "*/30 * * * *"}
    assert S.check_schedule("0 6 * * MON-FRI", None) == {"cron": "0 6 * * MON-FRI"}
    assert S.check_schedule("@hourly", None) == {"cron": "@hourly"}
    assert S.check_schedule(None, 900) == {"interval": dt.timedelta(seconds=900)}
    assert S.check_schedule(None, 0.5) == {"interval": dt.timedelta(seconds=0.5)}


def test_missing_input_folder_and_bad_name_are_refused(folder):
    with pytest.raises(ValueError, match="input folder not found: nowhere"):
        S.serve(["nowhere"], cron="*/30 * * * *")
    with pytest.raises(ValueError, match="invalid deployment name"):
        S.serve([folder], cron="*/30 * * * *", name="a/b")


def test_parameters_are_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "posts").mkdir()
    p = S.deployment_parameters(["posts"], "wh", 30, "out/reports")
    assert p == {"inputs": [f"posts={tmp_path.resolve() / 'posts'}"], "warehouse": str(tmp_path / "wh"),
                 "lock_timeout": 30.0, "reports_dir": str(tmp_path / "out" / "reports"), "allow_deletes": False,
                 # the mapping of the records' keys, resolved (an empty folder: the news format)
                 "preset": "news", "keys": {}, "base_url": None}
    assert S.deployment_parameters("posts", "wh")["reports_dir"] is None
    assert S.deployment_parameters("posts", "wh", allow_deletes=True)["allow_deletes"] is True


def test_no_prefect_server_says_what_to_do(folder):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        with pytest.raises(ValueError, match=r"PREFECT_API_URL is not set.*prefect server start") as e:
            S.serve([folder], cron="*/30 * * * *")
    assert "\n" not in str(e.value)
    with temporary_settings(updates={PREFECT_API_URL: f"http://127.0.0.1:{free_port()}/api"}):
        with pytest.raises(ValueError, match=r"no Prefect server answers at PREFECT_API_URL=http://127\.0\.0\.1"):
            S.serve([folder], interval=60)


def test_serve_subcommand():
    parser = cli.build_parser()
    sub = parser._subparsers._group_actions[0]
    a = parser.parse_args(["serve", "data/demo", "--cron", "*/30 * * * *"])
    assert (a.func, a.inputs, a.cron, a.interval, a.warehouse, a.name, a.lock_timeout, a.reports) == \
        (cli.cmd_serve, ["data/demo"], "*/30 * * * *", None, "warehouse", "scheduled", 600.0, None)
    a = parser.parse_args(["serve", "/srv/a", "/srv/b", "--interval", "900", "--warehouse", "/data/news",
                           "--name", "n", "--lock-timeout", "60", "--reports", "r"])
    assert (a.inputs, a.interval, a.warehouse, a.name, a.lock_timeout, str(a.reports)) == \
        (["/srv/a", "/srv/b"], 900.0, "/data/news", "n", 60.0, "r")
    for bad in (["serve", "d"], ["serve", "d", "--cron", "* * * * *", "--interval", "5"]):
        with pytest.raises(SystemExit) as e, contextlib.redirect_stderr(open(os.devnull, "w")):
            parser.parse_args(bad)
        assert e.value.code == 2
    a = parser.parse_args(["serve", "no/such/folder", "--cron", "nonsense"])
    with pytest.raises(ValueError, match="invalid cron expression 'nonsense'"):
        a.func(a)
    help_text = sub.choices["serve"].format_help()
    for example in ('newsetl serve data/demo --cron "*/30 * * * *"',
                    "newsetl serve /srv/site/_posts --interval 900 --warehouse /data/news",
                    "PREFECT_API_URL=http://127.0.0.1:4200/api newsetl serve"):
        assert example in help_text


def test_prefect_yaml_deploys_news_etl_every_30_minutes():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (d,) = spec["deployments"]
    assert d["name"] == "news-etl-every-30-min"
    assert d["entrypoint"] == "flows/etl.py:news_etl"
    assert (ROOT / d["entrypoint"].split(":")[0]).is_file()
    assert d["parameters"] == {"inputs": ["data/demo"], "warehouse": "warehouse", "allow_deletes": False,
                               "preset": "news"}
    assert [(s["cron"], s["timezone"]) for s in d["schedules"]] == [("*/30 * * * *", "UTC")]
    assert d["work_pool"]["name"] == "newsetl-pool"
    (pull,) = spec["pull"]
    assert list(pull) == ["prefect.deployments.steps.set_working_directory"]


# -- integration: a real Prefect server, a served deployment, one run ---------------------

def expected_articles(folder: Path) -> int:
    """Distinct article URLs (webUrl, else originalUrl) in the records, read with PyYAML."""
    urls = set()
    for path in sorted(folder.rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        assert text.startswith("---\n")
        rec = yaml.load(text[4:text.index("\n---\n") + 1], Loader=yaml.CSafeLoader)
        urls.add(rec.get("webUrl") or rec["originalUrl"])
    return len(urls)


@pytest.mark.integration
@pytest.mark.timeout(INTEGRATION_TIMEOUT)
def test_served_deployment_has_its_schedule_and_runs_once(prefect_server, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url, home = prefect_server
    generate(tmp_path / "demo", records=30, seed=1, malformed=False)
    n_articles = expected_articles(tmp_path / "demo")
    assert n_articles > 0
    # a daily time 12 hours away: the schedule is real, yet never fires during the test
    now = dt.datetime.now(dt.timezone.utc)
    cron = f"{now.minute} {(now.hour + 12) % 24} * * *"

    # the serving process runs elsewhere and gets relative paths: they must be stored absolute;
    # the command as a user types it, so that what it prints is what a user sees
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        served = subprocess.Popen(
            [str(NEWSETL), "serve", "demo", "--warehouse", "wh", "--cron", cron, "--name", "test",
             "--lock-timeout", "60"], cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
            env=prefect_env(home, PREFECT_API_URL=url, PREFECT_RUNNER_POLL_FREQUENCY="1"))
    try:
        with temporary_settings(updates={PREFECT_API_URL: url}), get_client(sync_client=True) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    deployment = client.read_deployment_by_name("news-etl/test")
                    break
                except ObjectNotFound:
                    pass
                assert served.poll() is None, f"newsetl serve exited ({served.returncode}):\n{tail(log)}"
                assert time.monotonic() < deadline, f"no deployment news-etl/test after 60 s:\n{tail(log)}"
                time.sleep(0.5)

            (sched,) = deployment.schedules
            assert sched.active
            assert sched.schedule.cron == cron
            assert sched.schedule.timezone == "UTC"
            assert deployment.parameters == {
                "inputs": [f"demo={(tmp_path / 'demo').resolve()}"], "warehouse": str(tmp_path / "wh"),
                "lock_timeout": 60.0, "reports_dir": None, "allow_deletes": False,
                "preset": "news", "keys": {}, "base_url": None}  # demo records: the news format, detected

            # the server plans runs from that schedule: the next one is at the cron's time
            deadline = time.monotonic() + 30
            while not (planned := client.read_flow_runs(
                    deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id])))):
                assert time.monotonic() < deadline, "the server scheduled no run for the deployment"
                time.sleep(0.5)
            first = min(r.expected_start_time for r in planned)
            assert (first.minute, first.hour, first.second) == (now.minute, (now.hour + 12) % 24, 0)
            assert all(r.state.is_scheduled() for r in planned)

            run = run_deployment("news-etl/test", timeout=180, poll_interval=1)
            assert run.state.is_completed(), f"flow run ended {run.state!r}; newsetl serve log:\n{tail(log)}"
    finally:
        stop(served)

    # one line per phase of the run, not one per task run or per step of Prefect's runner
    text = log.read_text(encoding="utf-8", errors="replace")
    assert "parse-batches" not in text and "Finished in state" not in text and "submitting flow run" not in text, text
    phases = [line for line in text.splitlines() if "files seen" in line or "parsed " in line
              or "published snapshot" in line]
    assert len(phases) == 3, text
    con = newsetl.connect(tmp_path / "wh")
    assert con.sql("SELECT count(*) FROM articles").fetchall() == [(n_articles,)]
    assert con.sql("SELECT flow_run_id, status FROM runs").fetchall() == [(str(run.id), "completed")]
