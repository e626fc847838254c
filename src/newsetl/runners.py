"""How the parse batches of a run are mapped: in this process or a pool of processes.

`pipeline.run` takes a runner; the Prefect flow passes its own (newsetl.flows),
which maps the parse task over the batches with Prefect's task runner. A
runner only maps `parse.parse_batch` over batch specs and yields each result
as it completes; the order of the stages is pipeline.run's alone.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from concurrent.futures import ProcessPoolExecutor, as_completed, wait

from .parse import BatchResult, parse_batch
from .plan import BatchSpec

IN_PROCESS_BYTES = 8 << 20  # less to parse than this: no worker processes


def _start_method() -> str:
    """How worker processes start: forked from this process when that is safe, else
    from a forkserver that imports newsetl first.

    A fork starts a worker at once, with every module already imported; the
    forkserver costs about 0.4 s of imports before the first batch. Forking is
    safe here on Linux when no other Python thread runs (a Prefect flow, a web
    server: their locks could be copied held). The only other threads are
    OpenBLAS's and jemalloc's, which prepare for fork themselves; Python 3.12+
    still warns about any thread at fork, so there the forkserver is used.
    """
    if (sys.platform == "linux" and sys.version_info < (3, 12) and threading.active_count() == 1
            and "fork" in multiprocessing.get_all_start_methods()):
        return "fork"
    return "forkserver"


def _worker_init(parent: int | None) -> None:
    """Parse workers die with the process that forked them (Linux): a killed run
    must not leave workers behind, holding memory and waiting for work forever."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # no prctl: orphans are possible, as elsewhere
        return
    if parent is not None and os.getppid() != parent:  # it died before prctl
        os._exit(1)


def _pool(workers: int) -> ProcessPoolExecutor:
    from . import flatten  # noqa: F401 - the parser, imported here once: forked workers carry it

    ctx = multiprocessing.get_context(_start_method())
    parent = os.getpid()
    if ctx.get_start_method() == "forkserver":
        # workers fork from a clean process that already imported us, not
        # from a parent holding other threads
        ctx.set_forkserver_preload(["newsetl.parse", "newsetl.flatten"])  # flatten: the parser itself
        parent = None  # the forkserver, whose pid we do not know
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_init, initargs=(parent,))


# workers forked by fork_early(), for the next Local.start of the same size
_early: tuple[int, ProcessPoolExecutor] | None = None


def fork_early(workers: int | None = None) -> None:
    """Start this machine's parse workers now, for the next `Local` of this size to take.

    For the flow path (`newsetl run` on a Prefect server): called before Prefect is
    imported, while this process has one thread, the workers are forked at once,
    carrying only the parser, never Prefect; started later, among Prefect's
    threads, they would come from the forkserver, which first imports newsetl.parse
    (about a second, waited for by the flow). Unused workers cost nothing but a
    little memory, and go at exit like any pool's."""
    global _early
    n = workers or os.cpu_count() or 1
    if n > 1 and _early is None:
        pool = _pool(n)
        pool.submit(os.getpid)  # the pool starts its processes at its first task
        _early = (n, pool)


def _take_early(workers: int) -> ProcessPoolExecutor | None:
    global _early
    if _early is None or _early[0] != workers:
        return None
    pool, _early = _early[1], None
    return pool


class Runner:
    """Maps `parse_batch` over batch specs; `map` yields each (spec, result) as it
    completes. `start` may warm up workers while the run lists its files; `close`
    frees them before the build. `workers` sizes the batches (plan.make_batches)."""

    workers: int = 1

    def start(self) -> None:
        pass

    def map(self, specs: list[BatchSpec]):
        for spec in specs:
            yield spec, parse_batch(spec)

    def close(self) -> None:
        pass


class InProcess(Runner):
    """Every batch in this process, one after the other."""


class Local(Runner):
    """This machine: a pool of `workers` processes, or this process when the work
    is too small to pay for starting them (about half a second)."""

    def __init__(self, workers: int | None = None):
        self.workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Start the workers now (a first run has every file to parse): with a
        forkserver they spend half a second importing while the run lists files."""
        if self.workers > 1 and self._pool is None:
            self._pool = _take_early(self.workers) or _pool(self.workers)
            self._pool.submit(os.getpid)

    def wants_pool(self, specs: list[BatchSpec]) -> bool:
        """Whether these batches are worth worker processes (about half a second to start)."""
        work = sum(f.size for s in specs for f, _ in s.files)
        return self.workers > 1 and len(specs) > 1 and work >= IN_PROCESS_BYTES

    def map(self, specs: list[BatchSpec]):
        if not self.wants_pool(specs):
            yield from super().map(specs)
            return
        if self._pool is None:
            self._pool = _take_early(self.workers) or _pool(min(self.workers, len(specs)))
        futures = {self._pool.submit(parse_batch, s): s for s in specs}
        for fut in as_completed(futures):
            yield futures[fut], fut.result()

    def parse(self, specs: list[BatchSpec]) -> list[BatchResult]:
        """These batches, all queued at once in the worker processes if the pool runs, else
        here one after the other (for a caller that maps the batches itself, in threads: the
        Prefect flow's tasks)."""
        if self._pool is None:
            return [parse_batch(s) for s in specs]
        futures = [self._pool.submit(parse_batch, s) for s in specs]
        # all of them, even after one failed: a retry parses them again, and must not find one
        # still writing its staging files
        wait(futures)
        return [f.result() for f in futures]

    def close(self) -> None:
        # and workers forked early for a run that did not need them: not kept through the build
        for pool in (self._pool, _take_early(self.workers)):
            if pool is not None:
                pool.shutdown(cancel_futures=True)
        self._pool = None
