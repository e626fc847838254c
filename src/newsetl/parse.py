"""Parse: one batch of files -> its staging tables, in whatever process runs it.

Read each file (sources), split and parse its front matter (frontmatter),
flatten the records into typed staging tables (flatten), write them under
`staging/<batch_id>/` (store). Nothing a file holds can make this raise: only
the warehouse (writing the staging files) can.
"""

from __future__ import annotations

import hashlib
import os
import signal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from .plan import BatchSpec
from .sources import fetch_objects, read_error, read_file, rejected_size, rejection_key
from .store import batch_dir, write_staging

if TYPE_CHECKING:
    from .frontmatter import Extracted

# The parser (frontmatter, flatten and the YAML modules) is imported by the functions that
# parse, not here: the build imports BatchResult, and a run that parses nothing has no use
# for it. Worker processes import it first (runners: the forkserver preloads it).

@dataclass
class BatchResult:
    batch_id: str
    files: pa.Table  # stg_files rows of the files parsed (or rejected) in this batch
    same: list[tuple[str, int]] = field(default_factory=list)  # (source_path, mtime_ns): content unchanged
    parsed: int = 0
    rejected: int = 0
    fast: int = 0
    bytes: int = 0
    rows: dict = field(default_factory=dict)


def parse_batch(spec: BatchSpec) -> BatchResult:
    """Read, parse and flatten one batch of files; write its staging tables.

    A file whose content hash equals the one it had before is not parsed again.
    Whatever happens to one file while it is read, split, parsed, typed or
    flattened makes that file `rejected` with a one-line error; only the
    warehouse (writing the staging files) can make this raise.
    """
    from .frontmatter import Extracted, extract_all

    same = []
    read = []
    unreadable = []
    nbytes = 0
    # objects are fetched together (concurrent GETs); files are read one by one, as ever
    objects = [f for f, _ in spec.files if f.version is not None]
    fetched = fetch_objects(objects) if objects else {}
    for f, old_sha in spec.files:
        try:
            data = fetched.pop(f.path) if f.version is not None else read_file(f)
            if isinstance(data, Exception):
                raise data
        except Exception as e:  # noqa: BLE001 - vanished, unreadable or not a file since listing: never fatal
            # never read, so no hash: its size where known (past the cap), else NULL
            size, error = rejected_size(f, e), read_error(e)
            if old_sha is not None and old_sha == rejection_key(size, error):
                same.append((f.source_path, f.mtime_ns))  # rejected as last run, for the same reason
                continue
            unreadable.append(Extracted(f, None, size, error=error))
            continue
        nbytes += len(data)
        # touched but not changed (a checkout, a copy): not worth parsing
        sha = hashlib.sha256(data).hexdigest() if old_sha is not None else None
        if sha is not None and sha == old_sha:
            same.append((f.source_path, f.mtime_ns))
            continue
        read.append((f, data, sha))  # the hash, once: extract_all takes it
    if FAULTS in os.environ:
        _worker_fault(os.environ[FAULTS])
    tables = flatten_files(spec.run_id, unreadable + extract_all(read, fast=spec.parser == "fast", split_related=True),
                           spec.keys)
    files = tables["stg_files"]
    if files.num_rows:
        write_staging(batch_dir(spec.staging_dir, spec.batch_id), spec.batch_id,
                      {name[4:]: t for name, t in tables.items()}, sync=spec.sync)
    status = files.column("status")
    return BatchResult(
        batch_id=spec.batch_id,
        files=files.append_column("batch_id", pa.array([spec.batch_id] * files.num_rows, pa.string())),
        same=same,
        parsed=pc.sum(pc.equal(status, "parsed")).as_py() or 0,
        rejected=pc.sum(pc.equal(status, "rejected")).as_py() or 0,
        fast=pc.sum(pc.equal(files.column("parser"), "fast")).as_py() or 0,
        bytes=nbytes,
        rows={name: t.num_rows for name, t in tables.items()},
    )


FAULTS = "NEWSETL_WORKER_FAULTS"


def _worker_fault(folder: str) -> None:
    """Tests of a cluster set NEWSETL_WORKER_FAULTS=DIR on its workers, then drop a file in DIR:
    `kill-once` makes the first worker to take it die by SIGKILL mid-batch (files read, nothing
    written); `raise` makes every batch fail as an I/O error would."""
    try:
        os.rename(os.path.join(folder, "kill-once"), os.path.join(folder, f"killed-{os.getpid()}"))
    except OSError:
        pass
    else:
        os.kill(os.getpid(), signal.SIGKILL)
    if os.path.exists(os.path.join(folder, "raise")):
        raise OSError(f"injected fault ({folder}/raise)")


def flatten_files(run_id: str, extracted: list[Extracted], keys=None) -> dict[str, pa.Table]:
    """The staging tables of extracted files. Typing runs a column at a time over
    the batch; should one file's values still break that, each file is typed on
    its own, so that only the file that breaks is rejected."""
    from .flatten import BatchBuilder
    from .frontmatter import Extracted, unexpected

    from .mapping import NEWS

    keys = keys or NEWS
    builder = BatchBuilder(run_id, keys)
    for ex in extracted:
        builder.add(ex)
    try:
        return builder.tables()
    except Exception as e:  # noqa: BLE001 - one file must never stop its batch
        if len(extracted) == 1:
            ex = extracted[0]
            return flatten_files(run_id, [Extracted(ex.file, ex.sha256, ex.size, error=unexpected("type", e))], keys)
    parts = [flatten_files(run_id, [ex], keys) for ex in extracted]
    return {name: pa.concat_tables([p[name] for p in parts]) for name in parts[0]}
