"""Real servers that tests start and stop themselves: an S3 API (moto in server mode) and a
Dask cluster (`dask scheduler` + `dask worker` processes), on 127.0.0.1, on free ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


class S3Server:
    """moto's S3 API server (`moto_server`) on 127.0.0.1; `env` points AWS clients at it."""

    def __init__(self, log: Path):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._log = open(log, "wb")
        self.proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_port(self.port, self.proc, "moto_server")

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
