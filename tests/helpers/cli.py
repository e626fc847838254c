"""Running the `newsetl` command as a user would, in a new process or in this one."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

NEWSETL = Path(sys.executable).with_name("newsetl")


def newsetl_cli(*args: str, env: dict | None = None, cwd=None, timeout: float = 600) -> subprocess.CompletedProcess:
    """`newsetl ARGS` in a subprocess; its environment is this one plus `env`."""
    return subprocess.run([str(NEWSETL), *args], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          env={**os.environ, **(env or {})})


# Commands that only read the warehouse (and rewrite a stale catalog file): called in this
# process they run the same code as the installed command, without a new interpreter's second
# of imports. `run` stays a process of its own (it starts a watchdog and workers, and is what
# the tests kill), as do tests of the process itself (exit on a closed pipe, the terminal).
READ_COMMANDS = ("sql", "report", "runs", "status", "tables", "describe")


def newsetl_here(*args, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    """`newsetl ARGS` for a read command, called in this process (`cli.main`): its exit code,
    and what it wrote to standard output and error, decoded as `newsetl_cli` decodes them
    (universal newlines). `env` is added to the environment meanwhile."""
    from newsetl import cli

    args = [str(a) for a in args]
    assert args and args[0] in READ_COMMANDS, f"newsetl {args[:1]} runs in a process of its own: use newsetl_cli"
    out, err = io.StringIO(), io.StringIO()
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    try:
        os.environ.update({k: str(v) for k, v in (env or {}).items()})
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(args)
            except SystemExit as e:  # argparse: usage errors and --help
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)

    def text(s: io.StringIO) -> str:
        return s.getvalue().replace("\r\n", "\n").replace("\r", "\n")

    return subprocess.CompletedProcess(["newsetl", *args], code, text(out), text(err))
