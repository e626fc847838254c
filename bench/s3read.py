"""`make bench`, reads of an S3 warehouse: `newsetl sql` and `newsetl status` against a local S3
server (moto), each a process of its own as a user runs it, with the read cache cold (a machine
that never read the warehouse: an empty $NEWSETL_CACHE_DIR) and warm (a second read, nothing
changed), and how many requests the server answered for each. Medians of --repeats.

    python bench/s3read.py                    # 400 demo records, 5 repeats
    python bench/s3read.py --records 2000 --repeats 3
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from run import machine, timed  # noqa: E402  (bench/run.py)

from tests.helpers.servers import S3Server, upload_folder  # noqa: E402

NEWSETL = str(Path(sys.executable).with_name("newsetl"))
COMMANDS = {"sql": ["sql", "SELECT count(*) FROM articles"], "status": ["status"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="newsetl-s3read-"))
    server = S3Server(work / "moto.log")
    try:
        env = {**os.environ, **server.env}
        client = server.client()
        client.create_bucket(Bucket="bench")
        demo = work / "demo"
        timed([NEWSETL, "demo", str(demo), "--records", str(a.records)], env)
        upload_folder(client, demo, "bench", "in")
        url = "s3://bench/wh"
        timed([NEWSETL, "run", "s3://bench/in", "--warehouse", url, "--no-prefect", "-q"],
              {**env, "NEWSETL_CACHE_DIR": str(work / "writer")})
        print(f"reads of an S3 warehouse ({a.records} demo records, moto on 127.0.0.1), {machine()}")
        print("| command | cache | median s | runs (s) | requests |")
        print("|---|---|---:|---|---|")
        for name, args in COMMANDS.items():
            cmd = [NEWSETL, *args, "--warehouse", url]
            for state in ("cold", "warm"):
                times = []
                for r in range(a.repeats):
                    cache = work / f"reader-{name}-{r}"
                    run_env = {**env, "NEWSETL_CACHE_DIR": str(cache)}
                    if state == "warm":
                        timed(cmd, run_env)  # the first read of this machine
                    with server.recording() as seen:
                        times.append(timed(cmd, run_env))
                    shutil.rmtree(cache, ignore_errors=True)
                kinds = collections.Counter("LIST" if "list-type" in p or p.count("/") == 1 else m for m, p in seen)
                print(f"| {name} | {state} | {statistics.median(times):.2f} | "
                      f"{', '.join(f'{t:.2f}' for t in times)} | {dict(sorted(kinds.items()))} |")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
