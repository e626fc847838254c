"""Prefect's console log handler for `newsetl run`, without tracebacks for expected failures.

Prefect logs a failed task or flow with its traceback, in the flow's process
and in every task worker. A full disk or a locked or unwritable warehouse is
not a bug: the user sees one line per log record, and newsetl's own one-line
error at the end. `newsetl run` selects this class through Prefect's own
override of its logging config (PREFECT_LOGGING_HANDLERS_CONSOLE_CLASS, an
environment variable, so the task workers use it too). The API log handler
still receives the traceback, for the UI.
"""

from __future__ import annotations

import logging

from prefect.logging.handlers import PrefectConsoleHandler


class ConsoleHandler(PrefectConsoleHandler):
    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            # imported here: the API server process logs through this class too, and never needs pyarrow
            from .store import WarehouseError, disk_full

            if isinstance(exc, WarehouseError) or disk_full(exc):
                record = logging.makeLogRecord({**record.__dict__, "exc_info": None, "exc_text": None})
        super().emit(record)
