"""The parse stage on a Dask cluster, through Prefect's own task runner (prefect-dask).

`--dask ADDRESS` (or the `dask_address` parameter of the news-etl flow) maps
the parse-batches tasks on `prefect_dask.DaskTaskRunner` connected to a running
scheduler; `--dask local:N` starts a `LocalCluster` of N worker processes for
trying it out. Before anything runs, `check` makes sure that a scheduler
answers within seconds, that it has workers, and that the workers can see
the local folders the run names (a URL needs no such check: every worker
reads the store).

Plan, build and the commit stay in the flow's process, which holds the lock;
only a batch's summary comes back from a worker.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

CONNECT_TIMEOUT = 5.0  # seconds to reach the scheduler: a wrong address fails fast, never hangs
WORKERS_TIMEOUT = 20.0  # seconds to wait for a scheduler without workers to get one

_LOCAL = re.compile(r"^local(?::(\d+))?$")


class ClusterError(ValueError):
    """The Dask cluster cannot run the parse (no scheduler, no workers, paths it cannot see)."""


_TCP = re.compile(r"^tcp://(?:\[([^\]]+)\]|([^:/\[\]]+)):(\d+)/?$")


def _refused(address: str) -> str | None:
    """Why nothing listens at a tcp:// address, when a connection says so: refused (at once,
    where Dask's client would try again for CONNECT_TIMEOUT seconds first) or no answer within
    CONNECT_TIMEOUT (what Dask's client would then conclude too). None when a connection is made
    or the reason is Dask's to say (another scheme, a name that does not resolve, no route)."""
    m = _TCP.match(address)
    if not m:
        return None
    import socket

    try:
        with socket.create_connection((m.group(1) or m.group(2), int(m.group(3))), timeout=CONNECT_TIMEOUT):
            return None
    except ConnectionRefusedError:
        return "connection refused"
    except TimeoutError:
        return f"no answer within {CONNECT_TIMEOUT:g} s"
    except (OSError, ValueError):
        return None


def _require():
    try:
        import distributed  # noqa: F401
        import prefect_dask  # noqa: F401
    except ImportError:
        raise ClusterError("--dask needs prefect-dask and distributed: pip install 'newsetl[dask]' "
                           "(make install installs them)") from None


@dataclass
class Cluster:
    address: str  # tcp://host:port, or local:N
    workers: int  # worker threads, which size the batches (local:N: N processes of one thread each)

    @property
    def local(self) -> bool:
        return self.address.startswith("local")

    def describe(self) -> str:
        """What really runs the parse, for the run's phase line."""
        from .words import plural

        if self.local:  # task_runner: a LocalCluster of processes, one thread each
            return f"a local Dask cluster of {plural(self.workers, 'worker process', 'worker processes')}, one thread each"
        return f"the Dask cluster {self.address} ({plural(self.workers, 'worker thread')})"

    def task_runner(self):
        """The flow's task runner for the parse tasks."""
        from prefect_dask import DaskTaskRunner

        if self.local:
            # processes, one thread each: parsing is CPU-bound Python, threads would share one core
            return DaskTaskRunner(cluster_class="distributed.LocalCluster",
                                  cluster_kwargs={"n_workers": self.workers, "threads_per_worker": 1,
                                                  "processes": True, "dashboard_address": None})
        return DaskTaskRunner(address=self.address, client_kwargs={"timeout": CONNECT_TIMEOUT})


def check(address: str, inputs=(), warehouse=None) -> Cluster:
    """The cluster at `address`, checked: a one-line ClusterError if no scheduler answers within
    CONNECT_TIMEOUT seconds, if it has no worker, or if its workers cannot see a local path
    the run needs (the input folders, the warehouse's staging folder)."""
    _require()
    address = (address or "").strip()
    m = _LOCAL.match(address)
    if m:
        n = int(m.group(1) or os.cpu_count() or 1)
        if n < 1:
            raise ClusterError(f"--dask {address}: local:N needs N >= 1 worker processes")
        return Cluster(f"local:{n}", n)
    if "://" not in address:
        address = "tcp://" + address
    refused = _refused(address)
    if refused:
        raise ClusterError(f"no Dask scheduler answers at {address} ({refused}): start one with `dask scheduler`, "
                           "or check --dask")
    from distributed import Client

    try:
        client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError) as e:
        raise ClusterError(f"no Dask scheduler answers at {address} (waited {CONNECT_TIMEOUT:g} s: "
                           f"{' '.join(str(e).split())[:120]}): start one with `dask scheduler`, "
                           "or check --dask") from None
    try:
        try:
            client.wait_for_workers(1, timeout=WORKERS_TIMEOUT)
        except (TimeoutError, OSError):
            raise ClusterError(f"the Dask scheduler at {address} has no workers (waited {WORKERS_TIMEOUT:g} s): "
                               f"start some with `dask worker {address} --nthreads 1`") from None
        paths = _local_paths(inputs, warehouse)
        if paths:
            seen = client.run(_missing, paths)
            blind = {w: miss for w, miss in seen.items() if miss}
            if blind:
                worker, missing = sorted(blind.items())[0]
                raise ClusterError(
                    f"the Dask workers cannot see {missing[0]} ({len(blind)} of {len(seen)} workers, e.g. {worker}): "
                    "local folders work with --dask only when every worker mounts them at the same path; "
                    "give s3:// URLs for the inputs and --warehouse instead")
        threads = sum(w.get("nthreads", 1) for w in client.scheduler_info(n_workers=-1)["workers"].values())
    finally:
        client.close()
    return Cluster(address, max(threads, 1))


def _local_paths(inputs, warehouse) -> list[str]:
    from .remote import open_warehouse
    from .sources import resolve_inputs

    # as the run will read them: NAME=PATH gives PATH, a URL needs no check
    paths = [str(root) for root in resolve_inputs(inputs).values() if not isinstance(root, str)] if inputs else []
    if warehouse is not None:
        wh = open_warehouse(warehouse)
        if not wh.remote:
            wh.prepare()  # a new warehouse's staging folder exists before the workers are asked
            paths.append(str(wh.staging))
    return paths


def _missing(paths: list[str]) -> list[str]:
    """On a worker: the paths it cannot see (staging must also be writable)."""
    out = []
    for p in paths:
        if not os.path.isdir(p):
            out.append(p)
        elif p.endswith("staging") and not os.access(p, os.W_OK | os.X_OK):
            out.append(p)
    return out
