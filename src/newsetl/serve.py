"""`newsetl serve`: the `news-etl` flow as a scheduled Prefect deployment.

`serve()` registers a deployment of `newsetl.flows.news_etl` with a cron or
interval schedule on a Prefect server and then blocks, running each scheduled
(or manually triggered) flow run in a subprocess, until it is stopped with
Ctrl+C or SIGTERM (its schedule is then paused on the server).

Scheduling needs a real Prefect server: in ephemeral mode (no PREFECT_API_URL)
Prefect does register the deployment on a temporary server, but that server
runs no scheduler, so no scheduled run would ever start. `serve()` therefore
refuses to start without PREFECT_API_URL, and says so.

    prefect server start                                    # in another terminal
    export PREFECT_API_URL=http://127.0.0.1:4200/api
    newsetl serve data/demo --cron "*/30 * * * *"
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from pathlib import Path

from .defaults import DEPLOYMENT_NAME as DEFAULT_NAME
from .sources import InputError, resolve_inputs
from .remote import open_warehouse
from .store import LOCK_TIMEOUT

LOCAL_API_URL = "http://127.0.0.1:4200/api"  # `prefect server start` with its defaults
_BANNED_NAME_CHARS = "/%&<>"  # Prefect's rule for deployment names


def check_schedule(cron: str | None, interval: float | None) -> dict:
    """{"cron": str} or {"interval": timedelta}, checked.

    Raises ValueError (one line) unless exactly one valid schedule is given.
    """
    if cron is not None and interval is not None:
        raise ValueError("give either a cron schedule (--cron) or an interval (--interval), not both")
    if cron is None and interval is None:
        raise ValueError('a schedule is needed: --cron "*/30 * * * *" or --interval SECONDS')
    if cron is not None:
        cron = " ".join(str(cron).split())
        from pydantic import ValidationError
        from prefect.client.schemas.schedules import CronSchedule

        fields = cron.split()
        try:  # 5 fields or an @alias (croniter's 6th field, seconds, would surprise); then Prefect's own check
            if not (len(fields) == 5 or (len(fields) == 1 and cron.startswith("@"))):
                raise ValueError(cron)
            CronSchedule(cron=cron)
        except (ValidationError, ValueError):
            raise ValueError(
                f"invalid cron expression {cron!r}: expected 5 fields (minute hour day-of-month month "
                'day-of-week) with values in range, e.g. "*/30 * * * *" (every 30 minutes) or "0 6 * * 1-5" '
                "(06:00 UTC on weekdays)"
            ) from None
        return {"cron": cron}
    try:
        seconds = float(interval)
    except (TypeError, ValueError):
        raise ValueError(f"invalid interval {interval!r}: expected a number of seconds, e.g. 900") from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"invalid interval {interval!r}: must be a number of seconds greater than 0, e.g. 900")
    return {"interval": dt.timedelta(seconds=seconds)}


def deployment_parameters(inputs, warehouse, lock_timeout: float = LOCK_TIMEOUT, reports_dir=None,
                          allow_deletes: bool = False, preset: str | None = None, keys: dict | None = None,
                          base_url: str | None = None, config=None) -> dict:
    """The flow parameters stored with the deployment, with every path made absolute.

    The served process runs each flow run in a subprocess, and a run may be
    triggered from the UI or `prefect deployment run` long after `serve` was
    started: relative paths would depend on where that happened. `allow_deletes` is stored too:
    a scheduled run that would delete more than [run] max_delete_share of the warehouse's files
    fails before writing anything unless it is true. The mapping of the records' keys is stored
    resolved (newsetl.mapping.resolve: the preset given, in the configuration or detected now, the
    [keys] and the base URL), so that every scheduled run maps the keys as the first did.
    """
    try:  # named: each input keeps the name its files' source_path starts with, whatever comes later
        absolute = [f"{name}={path}" for name, path in resolve_inputs(inputs).items()]
    except InputError as e:
        raise ValueError(str(e)) from None
    if not math.isfinite(float(lock_timeout)) or float(lock_timeout) < 0:
        raise ValueError(f"invalid lock timeout {lock_timeout!r}: must be a number of seconds >= 0")
    from .checks.config import load_config
    from .mapping import resolve, sample_folders

    settings = load_config(config)
    keymap, _why = resolve(inputs, preset, keys, base_url, settings, lambda: sample_folders(inputs))
    return {
        "inputs": absolute,
        "warehouse": str(open_warehouse(warehouse).root),  # a URL stays a URL
        "lock_timeout": float(lock_timeout),
        "reports_dir": str(Path(reports_dir).expanduser().absolute()) if reports_dir else None,
        "allow_deletes": bool(allow_deletes),
        **keymap.params(),
    }


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValueError("the deployment name is empty")
    if any(c in name for c in _BANNED_NAME_CHARS):
        raise ValueError(f"invalid deployment name {name!r}: it may not contain any of {' '.join(_BANNED_NAME_CHARS)}")
    return name


def require_server() -> str:
    """The URL of the Prefect API that will hold the schedule; ValueError if there is none.

    PREFECT_API_URL may come from the environment or the active Prefect profile.
    """
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise ValueError(
            "serving a schedule needs a Prefect server, and PREFECT_API_URL is not set (Prefect's "
            "temporary server runs no scheduler): start one with `prefect server start` and run again "
            f"with PREFECT_API_URL={LOCAL_API_URL}"
        )
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        error = client.api_healthcheck()
    if error is not None:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(
            f"no Prefect server answers at PREFECT_API_URL={url} ({reason}): start one with "
            "`prefect server start`, or point PREFECT_API_URL at a running one"
        )
    return url


def serve(inputs: list[str], warehouse: str = "warehouse", *, cron: str | None = None,
          interval: float | None = None, name: str = DEFAULT_NAME, lock_timeout: float = LOCK_TIMEOUT,
          reports_dir: str | None = None, quiet: bool = False, allow_deletes: bool = False,
          preset: str | None = None, base_url: str | None = None, config: str | None = None) -> None:
    """Serve `news-etl` as the deployment `news-etl/<name>` on a cron or interval schedule.

    Exactly one of `cron` (5-field cron expression, UTC) and `interval`
    (seconds) is required. Every argument is checked before anything is sent
    to Prefect; a bad one raises ValueError with a one-line message, as does a
    missing or unreachable Prefect server. Blocks until interrupted
    (Ctrl+C / SIGTERM), then pauses the deployment's schedule and returns. `quiet`: no
    starting line (the flow runs' console is `newsetl serve`'s to set: cli._prefect_console).
    """
    schedule = check_schedule(cron, interval)
    name = check_name(name)
    parameters = deployment_parameters(inputs, warehouse, lock_timeout, reports_dir, allow_deletes, preset,
                                       base_url=base_url, config=config)
    url = require_server()
    if not quiet:
        print(f"newsetl serve: news-etl/{name} ({describe_schedule(schedule)}) on {url}: "
              f"{', '.join(parameters['inputs'])} -> {parameters['warehouse']}; a run now: prefect deployment "
              f"run news-etl/{name}; Ctrl+C stops and pauses the schedule", file=sys.stderr, flush=True)

    from prefect.schedules import Cron, Interval

    from .flows import news_etl

    # Flow.serve(cron=...) stores no timezone; say UTC, as prefect.yaml does
    when = (Cron(schedule["cron"], timezone="UTC") if "cron" in schedule
            else Interval(schedule["interval"], timezone="UTC"))
    news_etl.serve(
        name=name,
        schedule=when,
        parameters=parameters,
        description=f"news-etl on {', '.join(parameters['inputs'])} into {parameters['warehouse']}, "
                    f"served by `newsetl serve` ({describe_schedule(schedule)})",
        tags=["newsetl"],
        print_starting_message=False,  # Prefect's own banner: the line above says it
    )


def describe_schedule(schedule: dict) -> str:
    if "cron" in schedule:
        return f"cron {schedule['cron']} UTC"
    seconds = schedule["interval"].total_seconds()
    return f"every {seconds:g} s"


# -- the `newsetl serve` command ------------------------------------------------------
