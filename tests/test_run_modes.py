"""`newsetl run` as people meet it: in-process by default, a Prefect flow run where a
Prefect API is configured (or with --prefect), quiet when asked, no parser noise, and
input folders that share a name."""

from __future__ import annotations

import os
import re
import shutil
import warnings

import pytest
import yaml

import newsetl
from newsetl.demo import generate

from .helpers.cli import NEWSETL, newsetl_cli
from .helpers.servers import prefect_env
from .helpers.records import GOOD, record


def no_prefect_env(tmp_path) -> dict:
    """An environment with no Prefect API configured anywhere (and a fresh home, no profile)."""
    env = prefect_env(tmp_path / "prefect-home")
    env.pop("PREFECT_LOGGING_LEVEL")  # as a user has it: the command chooses
    env.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")  # a loaded 2-core machine
    return env


def run(tmp_path, *args, env=None):
    proc = newsetl_cli("run", *map(str, args), env=env)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    return proc


def flow_run_ids(wh) -> list:
    return [r[0] for r in newsetl.connect(wh).execute("SELECT flow_run_id FROM runs ORDER BY started_at").fetchall()]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    d = tmp_path_factory.mktemp("modes") / "site"
    generate(d, records=120, seed=11)  # with malformed files, some of which rapidyaml refuses
    return d


def _unloadable(site) -> int:
    """Files PyYAML cannot read as a record (counted here, independently of newsetl)."""
    n = 0
    for path in site.glob("*.md"):
        try:
            text = path.read_bytes().decode("utf-8")
            head, sep, _ = text[4:].partition("\n---\n") if text.startswith("---\n") else ("", "", "")
            ok = sep and isinstance(yaml.safe_load(head), dict)
        except (UnicodeDecodeError, yaml.YAMLError):
            ok = False
        n += not ok
    return n


def test_without_a_prefect_api_a_run_is_in_process_and_says_how_to_track(site, tmp_path):
    p = run(tmp_path, site, "--warehouse", tmp_path / "wh", env=no_prefect_env(tmp_path))
    assert p.returncode == 0, p.stderr
    n = len(list(site.glob("*.md")))
    assert p.stdout.startswith("run ") and f"{n} files ({n} new" in p.stdout
    assert "not tracked in Prefect" in p.stderr and "PREFECT_API_URL" in p.stderr
    assert flow_run_ids(tmp_path / "wh") == [None]
    # once per warehouse: the next run says it no more
    again = run(tmp_path, site, "--warehouse", tmp_path / "wh", env=no_prefect_env(tmp_path))
    assert again.returncode == 0 and "not tracked in Prefect" not in again.stderr


@pytest.mark.slow
def test_no_parser_text_reaches_the_terminal(site, tmp_path):
    """rapidyaml's C++ error handler prints on stderr before it raises; none of it shows."""
    p = run(tmp_path, site, "--warehouse", tmp_path / "wh", "--no-prefect", env=no_prefect_env(tmp_path))
    assert p.returncode == 0
    assert not re.search(r"\[parse\]|\.hpp|ERROR:|detected here", p.stdout + p.stderr), p.stderr
    rejected = newsetl.connect(tmp_path / "wh").execute(
        "SELECT count(*) FROM source_files WHERE status = 'rejected'").fetchall()[0][0]
    assert rejected == _unloadable(site) > 0  # the malformed files are all there, with their own errors


def test_quiet_prints_nothing_but_errors(site, tmp_path):
    p = run(tmp_path, site, "--warehouse", tmp_path / "wh", "-q", env=no_prefect_env(tmp_path))
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")
    bad = run(tmp_path, tmp_path / "nope", "--warehouse", tmp_path / "wh", "-q", env=no_prefect_env(tmp_path))
    assert bad.returncode == 2 and bad.stdout == "" and bad.stderr.count("\n") == 1


@pytest.mark.slow
def test_with_prefect_a_temporary_server_runs_it_without_noise(site, tmp_path):
    p = run(tmp_path, site, "--warehouse", tmp_path / "wh", "--prefect", env=no_prefect_env(tmp_path))
    assert p.returncode == 0, p.stderr
    (flow_run,) = flow_run_ids(tmp_path / "wh")
    assert flow_run and re.fullmatch(r"[0-9a-f-]{36}", flow_run)
    assert "telemetry" not in p.stderr.lower()
    assert "Finished in state" not in p.stderr and "parse-batches" not in p.stderr  # no line per task run
    # its cost said before it is paid, once
    (announced,) = [line for line in p.stderr.splitlines() if "temporary Prefect server" in line]
    assert re.search(r"starting a temporary Prefect server \(about [\d-]+ s; set PREFECT_API_URL", announced)
    assert "not tracked in Prefect" not in p.stderr
    phases = [line for line in p.stderr.splitlines() if "files seen" in line or "parsed " in line
              or "published snapshot" in line]
    assert len(phases) == 3, p.stderr


@pytest.mark.slow
def test_quiet_with_prefect_prints_nothing_but_errors(site, tmp_path, prefect_server):
    """-q with --prefect: no phase line, and no warning either (the site has rejected files, which
    the flow warns about), even where the user's own PREFECT_LOGGING_LEVEL is INFO. On the session's
    server: the lines come from the flow run, whichever server it reports to."""
    env = {**no_prefect_env(tmp_path), "PREFECT_LOGGING_LEVEL": "INFO", "PREFECT_API_URL": prefect_server[0]}
    p = run(tmp_path, site, "--warehouse", tmp_path / "wh", "--prefect", "-q", env=env)
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")
    (flow_run,) = flow_run_ids(tmp_path / "wh")
    assert flow_run  # it was a flow run
    rejected = newsetl.connect(tmp_path / "wh").execute(
        "SELECT count(*) FROM source_files WHERE status = 'rejected'").fetchall()[0][0]
    assert rejected > 0  # there was something to warn about
    # and an error still shows: a warehouse that is a file
    (tmp_path / "blocker").write_text("not a folder")
    bad = run(tmp_path, site, "--warehouse", tmp_path / "blocker" / "wh", "--prefect", "-q", env=env)
    assert bad.returncode == 1 and bad.stdout == "" and bad.stderr.count("\n") == 1, bad.stderr


@pytest.mark.integration
def test_with_a_configured_api_the_run_shows_on_that_server(site, tmp_path, prefect_server):
    url, _home = prefect_server
    env = {**no_prefect_env(tmp_path), "PREFECT_API_URL": url}
    p = run(tmp_path, site, "--warehouse", tmp_path / "wh", env=env)
    assert p.returncode == 0, p.stderr
    (flow_run,) = flow_run_ids(tmp_path / "wh")
    import json
    import urllib.request

    with urllib.request.urlopen(f"{url}/flow_runs/{flow_run}", timeout=30) as r:
        got = json.loads(r.read())
    assert got["state"]["type"] == "COMPLETED" and got["parameters"]["warehouse"] == str(tmp_path / "wh")
    # --no-prefect keeps the run here, server or not
    p = run(tmp_path, site, "--warehouse", tmp_path / "wh", "--no-prefect", env=env)
    assert p.returncode == 0 and flow_run_ids(tmp_path / "wh")[-1] is None


def test_a_profile_with_an_api_counts_as_configured(tmp_path, monkeypatch):
    from newsetl.cli import prefect_api

    home = tmp_path / "home"
    home.mkdir()
    (home / "profiles.toml").write_text('active = "work"\n[profiles.work]\nPREFECT_API_URL = "http://h:4200/api"\n'
                                        '[profiles.ephemeral]\n')
    # monkeypatch: every later test in this process must see the environment it had
    for k in ("PREFECT_API_URL", "PREFECT_PROFILE", "PREFECT_PROFILES_PATH"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(home))
    assert prefect_api() == "http://h:4200/api"
    monkeypatch.setenv("PREFECT_PROFILE", "ephemeral")
    assert prefect_api() is None
    monkeypatch.setenv("PREFECT_API_URL", "http://other/api")
    assert prefect_api() == "http://other/api"


# -- input folders that share a name -----------------------------------------------------------

def _sites(tmp_path):
    for name in ("site-a", "site-b"):
        (tmp_path / name / "_posts").mkdir(parents=True)
        (tmp_path / name / "_posts" / "post.md").write_text(record(f"post of {name}", "quality: 5",
                                                                    url=f"https://{name}.example/post"))
    (tmp_path / "site-a" / "_posts" / "good.md").write_text(GOOD)


def _paths(wh) -> list[str]:
    return [r[0] for r in newsetl.connect(wh).execute("SELECT source_path FROM source_files ORDER BY 1").fetchall()]


def test_two_posts_folders_load_side_by_side_with_stable_names(tmp_path):
    _sites(tmp_path)
    env = no_prefect_env(tmp_path)
    args = (tmp_path / "site-a" / "_posts", tmp_path / "site-b" / "_posts", "--warehouse", tmp_path / "wh")
    assert run(tmp_path, *args, env=env).returncode == 0
    assert _paths(tmp_path / "wh") == ["site-a/_posts/good.md", "site-a/_posts/post.md", "site-b/_posts/post.md"]
    again = run(tmp_path, *args, env=env)
    assert "3 files (0 new, 0 changed, 3 unchanged, 0 deleted" in again.stdout  # the same names, run after run


def test_inputs_can_be_named(tmp_path):
    _sites(tmp_path)
    p = run(tmp_path, f"blog={tmp_path / 'site-a' / '_posts'}", f"news={tmp_path / 'site-b' / '_posts'}",
            "--warehouse", tmp_path / "wh", env=no_prefect_env(tmp_path))
    assert p.returncode == 0, p.stderr
    assert _paths(tmp_path / "wh") == ["blog/good.md", "blog/post.md", "news/post.md"]


def test_inputs_that_would_still_collide_are_refused_in_one_line(tmp_path):
    _sites(tmp_path)
    p = run(tmp_path, f"x={tmp_path / 'site-a' / '_posts'}", f"x={tmp_path / 'site-b' / '_posts'}",
            "--warehouse", tmp_path / "wh", env=no_prefect_env(tmp_path))
    assert p.returncode == 2 and p.stderr.count("\n") == 1
    assert "both named 'x'" in p.stderr and "NAME=PATH" in p.stderr
    assert not (tmp_path / "wh").exists()
    shutil.rmtree(tmp_path / "site-b")


@pytest.mark.slow
def test_a_temporary_server_that_does_not_start_is_one_line(tmp_path, monkeypatch, capsys):
    """--prefect without a configured API starts Prefect's temporary server; if it cannot,
    the run stops with one line naming the server's log, not a traceback."""
    from prefect.server.api.server import SubprocessASGIServer

    from newsetl import cli

    def refuse(self, timeout=None):
        raise RuntimeError("Timed out while attempting to connect to ephemeral Prefect API server.")

    monkeypatch.setattr(SubprocessASGIServer, "start", refuse)
    for k in [k for k in os.environ if k.startswith("PREFECT_")]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "a.md").write_text(GOOD)
    saved = dict(os.environ)  # a run sets what its flow and workers inherit: not for later tests
    try:
        with warnings.catch_warnings():
            code = cli.main(["run", str(tmp_path / "site"), "--warehouse", str(tmp_path / "wh"), "--prefect", "-q"])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert "Prefect's temporary server did not start" in err[0]
    assert "newsetl-temporary-server.log" in err[0] and not (tmp_path / "wh" / "current").exists()


def _on_a_terminal(cmd: list[str], env: dict, timeout: float = 600) -> tuple[int, str]:
    """Run `cmd` with its stdout and stderr on a pseudo-terminal, as a user at a shell has them."""
    import pty
    import subprocess
    import time

    master, slave = pty.openpty()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    out, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
    return proc.wait(timeout=60), out.decode(errors="replace")


@pytest.mark.integration
def test_a_flow_run_on_a_terminal_prints_no_telemetry_notice(site, tmp_path, prefect_server):
    """Prefect shows its usage-data notice on a terminal, once per PREFECT_HOME, unless its
    client telemetry is off: a fresh home, and none of the variables by which Prefect
    recognises a CI machine (where it keeps quiet anyway)."""
    from prefect._internal.analytics.ci_detection import CI_ENV_VARS

    url, _home = prefect_server
    env = {k: v for k, v in no_prefect_env(tmp_path).items() if k not in CI_ENV_VARS and k != "DO_NOT_TRACK"}
    env["PREFECT_API_URL"] = url
    code, out = _on_a_terminal([str(NEWSETL), "run", str(site), "--warehouse", str(tmp_path / "wh")], env)
    assert code == 0, out
    assert "published snapshot" in out and "anonymous usage" not in out and "telemetry" not in out.lower(), out
