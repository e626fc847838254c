"""Helpers shared by the tests (no test module imports another)."""

from __future__ import annotations

import os

FUZZ = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"


def examples(n: int) -> int:
    """A property's number of examples: `n` in `make test`, 100 times more in `make fuzz`."""
    return n * 100 if FUZZ else n
