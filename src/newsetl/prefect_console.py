"""Prefect's console log handler for `newsetl run`: the run's phase lines and what goes wrong.

Prefect logs every task run's start and end, in the flow's process and in its
workers, and a failed task or flow with its traceback. Run from the command
line, a user sees one line per phase of the run (the records the flow marks
with `flows.PHASE`), warnings and errors, without the tracebacks of expected
failures (a full disk, a locked or unwritable warehouse, an empty input, a run
that would delete too much: newsetl's own one-line error follows). `newsetl run` selects this class through Prefect's
own override of its logging config (PREFECT_LOGGING_HANDLERS_CONSOLE_CLASS, an
environment variable, so task workers use it too). With `newsetl run -q` (QUIET,
also an environment variable) it prints errors only: no phase line, no warning
(the "N files rejected" one included), whatever PREFECT_LOGGING_LEVEL says. The
API log handler still receives every record, tracebacks included, for the UI.
"""

from __future__ import annotations

import logging
import os

from prefect.logging.handlers import PrefectConsoleHandler

PHASE = "newsetl_phase"  # flows.PHASE (not imported: the API server process logs through this class too)
QUIET = "NEWSETL_QUIET"  # set (to 1) by `newsetl run -q`: errors only


class ConsoleHandler(PrefectConsoleHandler):
    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.ERROR and os.environ.get(QUIET):
            return
        if record.levelno < logging.WARNING and not getattr(record, PHASE, False):
            return
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            # imported here: the API server process logs through this class too, and never needs pyarrow
            from .sources import InputError
            from .store import WarehouseError, disk_full

            # an input or a run refused in one line (plan.TooManyDeletes is an InputError) is said without it too
            if isinstance(exc, (WarehouseError, InputError)) or disk_full(exc):
                record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        super().emit(record)
