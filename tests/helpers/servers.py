"""Real servers that tests start and stop themselves: Prefect, an S3 API (moto in server mode)
and a Dask cluster (`dask scheduler` + `dask worker` processes), on 127.0.0.1, on free ports."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
SERVER_START_TIMEOUT = 90


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prefect_env(home: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_UI_ENABLED="false", PREFECT_LOGGING_LEVEL="INFO", **extra)
    return env


def stop(proc: subprocess.Popen, grace: float = 20) -> None:
    """SIGTERM the process group we started, then SIGKILL what is left of it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # also any child left behind
    proc.wait()


def tail(path: Path, lines: int = 25) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout:g} s")


class S3Server:
    """moto's S3 API server (`moto_server`) on 127.0.0.1; `env` points AWS clients at it."""

    def __init__(self, log: Path):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        # moto's recorder writes every request it serves here, once `recording()` starts it
        self.recording_file = log.with_name("requests.jsonl")
        self._log = open(log, "wb")
        self.proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, "MOTO_RECORDER_FILEPATH": str(self.recording_file)})
        wait_port(self.port, self.proc, "moto_server")

    def _recorder(self, action: str) -> None:
        import urllib.request

        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/moto-api/recorder/{action}", method="POST"),
                               timeout=10).read()

    @contextmanager
    def recording(self):
        """The requests the server answered meanwhile (method, path), as the server saw them."""
        self._recorder("reset-recording")
        self._recorder("start-recording")
        seen: list[tuple[str, str]] = []
        try:
            yield seen
        finally:
            self._recorder("stop-recording")
            # moto's threads append entries without a lock, so a large upload's entry may be cut by
            # others: read each request's method and URL where they stand, not line by line
            text = self.recording_file.read_text()
            for method, url in re.findall(r'"method": "([A-Z]+)", "url": "([^"]*)"', text):
                seen.append((method, urllib.parse.unquote(urllib.parse.urlsplit(url).path)))

    @property
    def env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                # never ask a cloud's metadata address for credentials: only 127.0.0.1 is ours
                "AWS_EC2_METADATA_DISABLED": "true",
                "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials", "AWS_CONFIG_FILE": "/nonexistent/config"}

    def client(self):
        """A boto3 client of its own (not the code under test's filesystem) to arrange and check objects."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="testing",
                            aws_secret_access_key="testing", region_name="us-east-1")

    def stop(self) -> None:
        stop(self.proc)
        self._log.close()


def upload_folder(client, folder: Path, bucket: str, prefix: str) -> int:
    """Put every file under `folder` at `prefix/<relative path>`; how many."""
    n = 0
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            client.put_object(Bucket=bucket, Key=f"{prefix}/{p.relative_to(folder).as_posix()}", Body=p.read_bytes())
            n += 1
    return n


def keys(client, bucket: str, prefix: str = "") -> list[str]:
    out, token = [], None
    while True:
        kw = {"Bucket": bucket, "Prefix": prefix, **({"ContinuationToken": token} if token else {})}
        r = client.list_objects_v2(**kw)
        out += [o["Key"] for o in r.get("Contents", [])]
        if not r.get("IsTruncated"):
            return out
        token = r["NextContinuationToken"]


class DaskCluster:
    """`dask scheduler` and `n` `dask worker` processes (one thread each), as a user starts them.
    `worker_env` adds to the workers' environment (e.g. S3 settings)."""

    def __init__(self, log_dir: Path, n: int = 2, worker_env: dict | None = None, env: dict | None = None):
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.log_dir = log_dir
        base = {**os.environ, **(env or {}), "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
        self._base = base
        self._worker_env = worker_env or {}
        self.scheduler = subprocess.Popen(
            [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
             "--dashboard-address", ":0", "--no-show"],
            stdout=open(log_dir / "scheduler.log", "wb"), stderr=subprocess.STDOUT, env=base, start_new_session=True)
        wait_port(self.port, self.scheduler, "dask scheduler")
        self.workers: list[subprocess.Popen] = []
        for _ in range(n):
            self.workers.append(self.add_worker())
        if n:
            self.wait_workers(n)

    def add_worker(self, env: dict | None = None, prefix: list[str] | None = None) -> subprocess.Popen:
        i = len(self.workers)
        return subprocess.Popen(
            [*(prefix or []), str(BIN / "dask"), "worker", self.address, "--nthreads", "1", "--nworkers", "1",
             "--no-dashboard", "--name", f"w{i}-{time.monotonic_ns()}"],
            stdout=open(self.log_dir / f"worker-{i}-{time.monotonic_ns()}.log", "wb"), stderr=subprocess.STDOUT,
            env={**self._base, **self._worker_env, **(env or {})}, start_new_session=True)

    def info(self) -> dict:
        from distributed import Client

        with Client(self.address, timeout=20) as c:
            return c.scheduler_info(n_workers=-1)

    def wait_workers(self, n: int, timeout: float = 90) -> None:
        from distributed import Client

        with Client(self.address, timeout=20) as c:
            c.wait_for_workers(n, timeout=timeout)

    def worker_pids(self) -> set[int]:
        from distributed import Client

        with Client(self.address, timeout=20) as c:
            return set(c.run(os.getpid).values())

    def stop(self) -> None:
        for w in self.workers:
            stop(w)
        stop(self.scheduler)


class PrefectServer:
    """`prefect server start` on a free port with a throwaway PREFECT_HOME (`home`); `url` is its API."""

    def __init__(self, home: Path, timeout: float = SERVER_START_TIMEOUT):
        home.mkdir(parents=True, exist_ok=True)
        self.home, self.port = home, free_port()
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.env = {"PREFECT_API_URL": self.url, "PREFECT_HOME": str(home)}
        log = home / "server.log"
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
                env=prefect_env(home), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2) as r:
                    if r.status == 200:
                        keep_as_template(home)
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                why = (f"exited with code {self.proc.returncode}" if self.proc.poll() is not None
                       else f"did not answer {self.url}/health within {timeout:g} s")
                stop(self.proc)
                raise RuntimeError(f"`prefect server start` {why}; its log ends:\n{tail(log)}")
            time.sleep(0.5)

    def stop(self) -> None:
        stop(self.proc)


TEMPLATE = "home-template"


def keep_as_template(home: Path) -> None:
    """A copy of a server's PREFECT_HOME as it is once started (database migrated, block types
    registered, nothing run yet): `prefect_home_like_a_users` gives it to a test's temporary server."""
    import sqlite3

    dest = home / TEMPLATE
    dest.mkdir(exist_ok=True)
    with contextlib.closing(sqlite3.connect(home / "prefect.db")) as src, \
            contextlib.closing(sqlite3.connect(dest / "prefect.db")) as out:
        src.backup(out)  # consistent while the server writes
    for name in ("memo_store.toml",):
        if (home / name).exists():
            (dest / name).write_bytes((home / name).read_bytes())


def prefect_home_like_a_users(server_home: Path, home: Path) -> Path:
    """`home`, a PREFECT_HOME where Prefect has run before (as on a user's machine after their
    first flow run): the session server's template. A temporary server started there skips the
    first start's database migrations and block registration (15-20 s of CPU each); the tests of
    that first start itself use an empty home."""
    home.mkdir(parents=True, exist_ok=True)
    for f in (server_home / TEMPLATE).iterdir():
        (home / f.name).write_bytes(f.read_bytes())
    return home


def start_server(tmp_path_factory):
    """A real Prefect server for a test session; yields (its API URL, its PREFECT_HOME).

    Under pytest-xdist one server serves every worker (`SharedServer`): it is the costliest
    start of the suite (15 s of CPU), every test that uses it asks about its own runs only,
    and the last worker done with it stops it."""
    try:
        if os.environ.get("PYTEST_XDIST_WORKER"):
            server = SharedServer(tmp_path_factory.getbasetemp().parent)
        else:
            server = PrefectServer(tmp_path_factory.mktemp("prefect-server-home"))
    except RuntimeError as e:
        pytest.skip(f"could not start a Prefect server: {e}")
    try:
        yield server.url, server.home
    finally:
        server.stop()


class SharedServer:
    """The Prefect server of a whole xdist run, under `root` (the run's base temp folder, which
    every worker's own folder is in): the first worker that needs it starts it, each holds a
    shared lock on `users` while it may use it, and the last to let go stops it."""

    def __init__(self, root: Path):
        self._guard = root / "prefect-server.lock"  # held while one worker starts or stops it
        self._info = root / "prefect-server.json"
        self._started = None  # the PrefectServer, in the worker that started it
        with self._locked():
            self._users = open(root / "prefect-server.users", "a")
            fcntl.flock(self._users, fcntl.LOCK_SH)  # under the guard: nobody stops it meanwhile
            try:
                info = json.loads(self._info.read_text())
            except (OSError, ValueError):
                home = root / "prefect-server-home"
                server = self._started = PrefectServer(home)
                info = {"url": server.url, "home": str(home), "pid": server.proc.pid}
                self._info.write_text(json.dumps(info))
        self.url, self.home, self._pid = info["url"], Path(info["home"]), info["pid"]

    @contextmanager
    def _locked(self):
        with open(self._guard, "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield

    def stop(self) -> None:
        with self._locked():
            fcntl.flock(self._users, fcntl.LOCK_UN)
            self._users.close()
            with open(self._users.name, "a") as probe:
                try:
                    fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody else uses it
                except OSError:
                    if self._started is not None:
                        # another worker stops it and this one ends first: its Popen must not
                        # warn at exit that the server still runs
                        self._started.proc.returncode = 0
                    return
                stop_group(self._pid)
                self._info.unlink(missing_ok=True)
                if self._started is not None:
                    self._started.proc.wait()


def stop_group(pid: int, grace: float = 20) -> None:
    """SIGTERM the process group `pid` leads (a server another process started), then SIGKILL
    what is left of it."""
    def alive() -> bool:  # a zombie (its parent, another worker, has not reaped it) is gone
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while alive() and time.monotonic() < deadline:
            time.sleep(0.1)
        os.killpg(pid, signal.SIGKILL)  # and whatever it started


def stop_shared_servers(root: Path) -> None:
    """What `SharedServer`s are still up under `root` when the run ends (a worker died)."""
    with contextlib.suppress(OSError, ValueError, KeyError):
        stop_group(json.loads((root / "prefect-server.json").read_text())["pid"])
