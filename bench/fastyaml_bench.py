"""Front-matter parsing speed: PyYAML's CSafeLoader vs newsetl.fastyaml.

    .venv/bin/python bench/fastyaml_bench.py [CORPUS]

For the azure-2021-01 and powerapps/latest folders of the real corpus
(../shared/corpus, or $NEWSETL_CORPUS, or the argument), prints MB/s of the
reference and of `fastyaml.load` (median of 5 runs, one core) and the share of
records that fell back to PyYAML. Front matter is split off beforehand, so
only YAML parsing is timed.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

from newsetl import fastyaml
from newsetl.frontmatter import split_front_matter
from newsetl.sources import RejectedFile

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("azure-2021-01", "powerapps/latest")
RUNS = 5


def front_matter(path: Path) -> str | None:
    try:
        return split_front_matter(path.read_bytes())[0]
    except RejectedFile:
        return None


def median_seconds(fn, texts: list[str]) -> float:
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        for t in texts:
            fn(t)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str]) -> int:
    corpus = Path(argv[1] if len(argv) > 1 else os.environ.get("NEWSETL_CORPUS", ROOT.parent / "shared" / "corpus"))
    if not corpus.is_dir():
        print(f"corpus not found at {corpus}", file=sys.stderr)
        return 2
    print(f"{'folder':<18} {'files':>6} {'MB':>6} {'PyYAML MB/s':>12} {'fast MB/s':>10} {'speedup':>8} {'fallback':>9}")
    for folder in FOLDERS:
        texts = [fm for p in sorted((corpus / folder).rglob("*.md")) if (fm := front_matter(p))]
        mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
        fallbacks = sum(not fastyaml.load(t)[1] for t in texts)
        ref = median_seconds(fastyaml.load_reference, texts)
        fast = median_seconds(fastyaml.load, texts)
        print(
            f"{folder:<18} {len(texts):>6} {mb:>6.1f} {mb / ref:>12.1f} {mb / fast:>10.1f} "
            f"{ref / fast:>7.1f}x {fallbacks / len(texts):>9.2%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
