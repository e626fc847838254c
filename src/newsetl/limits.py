"""Caps on what one record may cost, so that no single file can exhaust memory or hang a run.

Real records are far below every cap: the largest real one is about 60 KB with
a few thousand keys and items, nested 5 deep and without aliases; a record of
50,000 related links (about 30 MB) still loads. A file past a cap is rejected
with an error that names the cap; the run goes on.
"""

from __future__ import annotations

from typing import NamedTuple


class Limits(NamedTuple):
    file_bytes: int  # size of the file, checked on the open file before it is read
    nodes: int  # keys and items (every scalar, list and mapping counts one), aliases expanded
    expanded_bytes: int  # characters of all scalars, aliases expanded
    depth: int  # nesting of lists and mappings


RECORD = Limits(
    file_bytes=64 << 20,
    nodes=2_000_000,
    expanded_bytes=64 << 20,
    depth=100,
)
