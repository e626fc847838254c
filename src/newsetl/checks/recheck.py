"""`newsetl check`: the checks of the current snapshot's last run, evaluated again.

With the configuration as it is now (a mute added, a threshold changed) and, for freshness, at
the time given (`as_of`, default the run's own). A dry run reads the current snapshot and writes
nothing. Otherwise the new results replace that run's in a new snapshot, which links every other
file of the current one (no copy) and is published like a run's: atomically, under the run lock.
The `runs` table is unchanged: a check is not a run.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from . import Config, Outcome, check_snapshot


def last_run(snapshot: Path) -> tuple[str, dt.datetime]:
    """The last completed run of a snapshot: (run_id, as_of)."""
    import pyarrow.parquet as pq

    from ..store import table_files

    runs = pq.ParquetFile(table_files(snapshot)["runs"][0]).read(columns=["run_id", "as_of", "status"]).to_pylist()
    done = [r for r in runs if r["status"] == "completed"]
    if not done:
        raise ValueError(f"{snapshot}: no completed run to check")
    r = max(done, key=lambda r: r["run_id"])
    return r["run_id"], r["as_of"]


def recheck(warehouse, config: Config, *, as_of: dt.datetime | None = None, dry_run: bool = False,
            explain: bool = False, lock_timeout: float | None = None, snapshot: str | None = None) -> Outcome:
    """The checks of the current snapshot's last run, evaluated again; a dry run may name a kept
    `snapshot` instead (its id)."""
    from .. import publish
    from ..build import carry_over
    from ..plan import new_run_id
    from ..remote import open_warehouse
    from ..store import LOCK_TIMEOUT, STATE, STATE_FILES, read_info, write_info

    wh = open_warehouse(warehouse)
    if snapshot is not None and not dry_run:
        raise ValueError("a check of a kept snapshot is a dry run: its results are recorded for the current one only")
    if dry_run:
        current = wh.snapshot(snapshot)
        run_id, run_as_of = last_run(current)
        return check_snapshot(current, run_id, as_of or run_as_of, config, write=False, explain=explain)
    wh.prepare()
    with wh.lock(LOCK_TIMEOUT if lock_timeout is None else lock_timeout):
        current = wh.require_current()
        run_id, run_as_of = last_run(current)
        name = new_run_id()
        out = wh.partial_dir(name)
        carry_over(current, out)
        for rel in ["runs/part-0.parquet", *(f"{STATE}/{n}" for n in STATE_FILES)]:
            src = current / rel
            if src.exists() and not (out / rel).exists():
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                os.link(src, out / rel)
        info = read_info(current)
        info["checked"] = {"run_id": run_id, "at": dt.datetime.now(dt.timezone.utc).isoformat()}
        info["previous"] = current.name  # made from it (publish.rollback goes back to it)
        write_info(out, info)
        outcome = check_snapshot(out, run_id, as_of or run_as_of, config, write=True, explain=explain)
        final = wh.commit(out, name)
        publish.catalog(wh, final)
        wh.collect()
    return outcome
