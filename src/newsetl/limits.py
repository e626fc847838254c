"""Caps on what one record may cost, so that no single file can exhaust memory or hang a run.

Real records are far below every cap: the largest real one is about 60 KB with
a few thousand keys and items, nested 5 deep and without aliases; a record of
50,000 related links (about 40 MB and 850,000 keys and items) still loads. A
file past a cap is rejected with an error that names the cap; the run goes on.
The caps keep one record's parse under about 700 MB, so that a run with any
single hostile file stays under 1 GB (tests/test_hostile.py measures it).
The same caps hold for TOML and JSON front matter (frontmatter_formats), which
have no aliases: there the text is as large as it is written.
"""

from __future__ import annotations

from typing import NamedTuple


class Limits(NamedTuple):
    file_bytes: int  # size of the file, checked on the open file before it is read
    nodes: int  # keys and items: every mapping entry and list item counts one, aliases expanded
    expanded_bytes: int  # characters of all scalars, aliases expanded
    depth: int  # nesting of lists and mappings


RECORD = Limits(
    file_bytes=48 << 20,
    nodes=1_500_000,
    expanded_bytes=48 << 20,
    depth=100,
)
# Past this many keys and items (counted from the text), a record skips the fast
# parser: rapidyaml's tree and JSON take about twice the memory of safeyaml's
# values, which only matters for records a hundred times the size of real ones.
FAST_NODES = 500_000
