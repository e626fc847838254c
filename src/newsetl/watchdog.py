"""When `newsetl run` dies, even by SIGKILL, every process it started dies with it.

A run starts processes it cannot stop once it is killed: on the Prefect path
the temporary API server (a uvicorn subprocess), multiprocessing's resource
tracker and the task runner's parse workers, which init then adopts and
which live on (about 700 MB). So `newsetl run` first calls `start()`, which

- puts a random token in the run's environment (`NEWSETL_RUN_TOKEN`), which
  every process the run starts from then on inherits;
- starts a watchdog (`python -m newsetl.watchdog PID`) that waits for the
  run to die (PR_SET_PDEATHSIG, with a getppid() poll as a fallback), then
  SIGKILLs every process whose /proc/PID/environ holds exactly that token,
  and exits.

Why this way:
- A token, not the process tree: an orphan's parent is init, so the tree is
  gone when it is needed; a process group or session can be left
  (start_new_session). Nobody strips an unknown variable from an environment.
- /proc/PID/environ is the environment a process was exec'd with. The
  exec'd descendants (the server, spawned workers, the tracker, a forkserver
  and what it forks) show the token. Children forked without exec show the
  run's own initial environment, which lacks it: those are the parse
  workers forked by the run (in-process, or before Prefect is imported on
  the flow path), which die by their own PR_SET_PDEATHSIG
  (`runners._worker_init`).
- A fresh interpreter rather than a fork of the run: a forked copy keeps
  the pages the run later writes, 25-40 MB; this one needs about 10 MB, and
  it inherits no thread, lock or file of the run.
- It never kills anything else: only a process whose environment has the
  128-bit token; the process is pinned with a pidfd before its environment
  is read, so a reused pid cannot be hit.
- It never outlives the run: it exits right after the run's own exit,
  normal or not, having swept (after a normal exit there is nothing left to
  kill, or a straggler the run failed to stop).
- Its own session and /dev/null for stdio: Ctrl-C or a hang-up of the
  terminal does not stop it before it has swept, and it never keeps a
  caller's output pipe open.

Linux only (prctl, /proc); elsewhere `start()` does nothing.
"""

from __future__ import annotations

import ctypes
import errno
import os
import secrets
import signal
import subprocess
import sys
import time

ENV = "NEWSETL_RUN_TOKEN"
PR_SET_PDEATHSIG = 1
SWEEP_FOR = 10.0  # seconds to keep sweeping while the run's processes may still start others

_started: subprocess.Popen | None = None  # this process's watchdog, if any


def start() -> int | None:
    """Start this process's watchdog (once); its pid, or None where there is none.

    Call it before the run starts any process: only those started later carry the token."""
    global _started
    if _started is not None:
        return _started.pid
    if not sys.platform.startswith("linux") or not os.path.isdir("/proc/self"):
        return None
    token = secrets.token_hex(16)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the newsetl this run imported
    env = {**os.environ, ENV: token, "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))}
    try:
        _started = subprocess.Popen([sys.executable, "-m", "newsetl.watchdog", str(os.getpid())], env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
    except OSError:
        return None  # the run goes on, as it did before there was a watchdog
    os.environ[ENV] = token
    return _started.pid


def watch(parent: int, token: str) -> None:
    """Wait for `parent` to die, then kill every process carrying `token`."""
    for s in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(s, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGUSR1)
    except (OSError, AttributeError):
        pass  # the poll below still notices, within a second
    while os.getppid() == parent:  # checked first: the run may have died before prctl
        signal.sigtimedwait({signal.SIGUSR1}, 1.0)
    deadline = time.monotonic() + SWEEP_FOR
    quiet = 0
    while quiet < 2 and time.monotonic() < deadline:  # until two sweeps in a row find nothing
        quiet = 0 if sweep(token) else quiet + 1
        time.sleep(0.05)


def sweep(token: str) -> int:
    """SIGKILL every process (but this one) whose environment holds the token; how many."""
    entry = f"{ENV}={token}".encode()
    me = os.getpid()
    n = 0
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        pid = int(name)
        fd = None
        try:
            try:
                fd = os.pidfd_open(pid)  # pinned: the pid cannot be reused while we look
            except AttributeError:
                pass
            except OSError as e:
                if e.errno == errno.ESRCH:
                    continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read()
            if entry in env.split(b"\0"):  # a zombie's environment reads empty
                if fd is not None:
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)
                n += 1
        except OSError:  # gone, or not ours to read
            pass
        finally:
            if fd is not None:
                os.close(fd)
    return n


if __name__ == "__main__":
    token = os.environ.get(ENV)
    if len(sys.argv) == 2 and token:
        watch(int(sys.argv[1]), token)
