"""Waiting for an event rather than for a fixed time: a busy machine is slow, not wrong."""

from __future__ import annotations

import fcntl
import time
from contextlib import contextmanager


def wait_until(predicate, timeout: float, every: float = 0.05):
    """Call `predicate` until it returns something true (returned), or `timeout` seconds
    have passed (its last value is returned, for the caller's assert)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


def run_holds_lock(wh, proc=None):
    """A predicate: the run lock of warehouse folder `wh` is held (by a run that started);
    raises if `proc`, the run expected to hold it, has exited meanwhile."""
    from newsetl.store import Warehouse

    def held():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run exited ({proc.returncode}) before taking the lock: {proc.stderr.read()}")
        return Warehouse(wh).locked_by()

    return held


@contextmanager
def lock_held_as_by_a_run(wh):
    """The run lock of warehouse folder `wh` held meanwhile, as a run in progress holds it."""
    with open(wh / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        fh.truncate()
        fh.write("pid 4242 since 2026-01-01T00:00:00Z\n")
        fh.flush()
        yield
