"""A copy of a dataset with distances and intrinsics, to run the range stage before the sample has them.

Each labelled object gets a true height = its class's nominal height (params `range.heights`) × a
per-object factor (lognormal, 10 %: real objects of a class differ in size), and the distance the
pinhole camera implies for its true box height, d = fy · H_true / h_px. fy = 4000 px for 320 px
frames is a scope-like telephoto (4.6° across). Images are symlinked, labels and classes copied.

    python benchmarks/range_overlay.py data /tmp/range/data
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import yaml

FY = 4000.0
SPREAD = 0.10
SEED = 14


def overlay(src: Path, dst: Path, heights: dict[str, float]) -> int:
    """Write the copy; returns how many objects got a distance."""
    rng = np.random.default_rng(SEED)
    dst.mkdir(parents=True, exist_ok=True)
    if not (dst / "images").exists():
        os.symlink((src / "images").resolve(), dst / "images")
    (dst / "classes.txt").write_text((src / "classes.txt").read_text())
    names = (src / "classes.txt").read_text().split()
    lines, count = [], 0
    for raw in (src / "manifest.jsonl").read_text().splitlines():
        record = json.loads(raw)
        rel = record["image"].replace("images/", "labels/", 1).rsplit(".", 1)[0] + ".txt"
        label = src / rel
        rows = [r for r in label.read_text().splitlines() if r.strip()] if label.is_file() else []
        if label.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            (dst / rel).write_text(label.read_text())
        distances = []
        for row in rows:
            cls, *_, h = row.split()
            true_height = heights[names[int(cls)]] * float(np.exp(rng.normal(0.0, SPREAD)))
            distances.append(round(FY * true_height / (float(h) * record["height"]), 3))
        record["intrinsics"] = {
            "fx": FY,
            "fy": FY,
            "cx": record["width"] / 2,
            "cy": record["height"] / 2,
        }
        if rows:
            record["objects"] = {"distance": distances}
            count += len(rows)
        lines.append(json.dumps(record))
    (dst / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return count


if __name__ == "__main__":
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    params = yaml.safe_load(Path("params.yaml").read_text())
    print(
        f"{overlay(source, target, params['range']['heights'])} objects with a distance → {target}"
    )
