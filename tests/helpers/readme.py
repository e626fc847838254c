"""The README's examples, as the tests that run them read it."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")

NOT_RUN = ("make ", "export ", "prefect ", "newsetl serve ")  # installs, or servers that run until stopped:
# `make run`/`make test` are what CI runs; the serve and prefect lines run in tests/test_schedule.py


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, re.S)


def commands(storage: bool = False) -> list[str]:
    """The README's shell lines to run; with `storage`, those of "Beyond one machine" (s3://),
    which tests/test_dask.py runs against its S3 server and Dask cluster."""
    lines = [line.split("  #")[0].strip() for block in blocks("sh") for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#") and not line.startswith(NOT_RUN)
            and ("s3://" in line) == storage]
