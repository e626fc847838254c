"""The naive way, as a data engineer would first write it: PyYAML's C safe
loader per file into dicts, pandas DataFrames, `to_parquet`. The baseline the
benchmarks compare newsetl with. It does less than newsetl (no identity, no
typing, no dedupe, no catalog), so the comparison flatters the baseline."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import yaml


def run(input_dir: str, out_dir: str) -> dict:
    articles, images, related, related_images = [], [], [], []
    for path in sorted(Path(input_dir).rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        _, fm, _body = text.split("---\n", 2)
        rec = yaml.load(fm, Loader=yaml.CSafeLoader)
        sp = str(path)
        provider = rec.pop("provider", None) or {}
        for i, img in enumerate(rec.pop("images", None) or []):
            images.append({"source_path": sp, "position": i, **img})
        for i, link in enumerate(rec.pop("related", None) or []):
            for j, img in enumerate(link.pop("images", None) or []):
                related_images.append({"source_path": sp, "related_position": i, "position": j, **img})
            lp = link.pop("provider", None) or {}
            related.append({"source_path": sp, "position": i, **link,
                            "provider_name": lp.get("name"), "provider_domain": lp.get("domain")})
        rec["provider_name"] = provider.get("name")
        rec["provider_domain"] = provider.get("domain")
        articles.append({"source_path": sp, **rec})
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, rows in (("articles", articles), ("images", images), ("related_links", related),
                       ("related_images", related_images)):
        pd.DataFrame(rows).to_parquet(out / f"{name}.parquet")
        counts[name] = len(rows)
    return counts


if __name__ == "__main__":
    print(run(sys.argv[1], sys.argv[2]))
