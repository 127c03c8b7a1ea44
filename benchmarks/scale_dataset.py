"""A seeded, video-like dataset at scale, in vigil's canonical layout (issue #15's benchmark set).

    .venv/bin/python benchmarks/scale_dataset.py --out /tmp/scale100k               # 100,000 images
    .venv/bin/python benchmarks/scale_dataset.py --out /tmp/s --sequences 40 --frames 25

`--sequences` sequences of `--frames` near-duplicate frames each (a camera that barely moves over a
textured scene, one to three objects drifting a few pixels per frame), 96×72 JPEG by default:

- one vehicle per sequence, one driver per `--sequences-per-driver` (4) sequences, so frames of one
  sequence are near-duplicates *within* a group, the case a leak search must not make quadratic;
- strata (stream, scenario, road_type) drawn per sequence from the values `params.yaml` allows;
- labels: one YOLO line per object; classes: the names given by `--classes` (default: two).

Byte-identical for the same arguments whatever `--workers` is: every sequence draws from its own
generator, seeded by (seed, sequence index). Writes only under `--out`, which must not exist yet.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

STREAMS = ("cctv", "stills")
SCENARIOS = ("day", "dusk", "night")
ROAD_TYPES = ("campus", "street", "indoor", "nature")


def _sequence(
    out: str, index: int, frames: int, size: tuple[int, int], n_classes: int, seed: int
) -> list[str]:
    """Write one sequence's frames and labels; return its manifest lines (JSON text)."""
    import cv2

    width, height = size
    rng = np.random.default_rng([seed, index])
    # a smooth random scene: low-resolution noise blown up, so frames stay near-duplicates under a shift
    scene = cv2.resize(
        rng.integers(0, 256, (height // 6 + 4, width // 6 + 4, 3), dtype=np.uint8),
        (width + 16, height + 16),
        interpolation=cv2.INTER_CUBIC,
    )
    n_objects = int(rng.integers(1, 4))
    cls = rng.integers(0, n_classes, n_objects)
    wh = rng.uniform(0.12, 0.35, (n_objects, 2))
    centre = rng.uniform(0.25, 0.75, (n_objects, 2))
    drift = rng.uniform(-0.004, 0.004, (n_objects, 2))
    colour = rng.integers(0, 256, (n_objects, 3))
    pan = rng.integers(-1, 2, 2)
    folder = f"seq{index:06d}"
    record = {
        "vehicle_id": f"v{index:06d}",
        "stream": STREAMS[int(rng.integers(len(STREAMS)))],
        "scenario": SCENARIOS[int(rng.integers(len(SCENARIOS)))],
        "road_type": ROAD_TYPES[int(rng.integers(len(ROAD_TYPES)))],
        "width": width,
        "height": height,
    }
    os.makedirs(os.path.join(out, "images", folder), exist_ok=True)
    os.makedirs(os.path.join(out, "labels", folder), exist_ok=True)
    lines = []
    for f in range(frames):
        x0 = int(8 + pan[0] * (f % 8)) if pan[0] else 8
        y0 = int(8 + pan[1] * (f % 8)) if pan[1] else 8
        frame = scene[y0 : y0 + height, x0 : x0 + width].copy()
        rows = []
        for k in range(n_objects):
            cx, cy = np.clip(centre[k] + drift[k] * f, wh[k] / 2, 1 - wh[k] / 2)
            w, h = wh[k]
            p1 = (int((cx - w / 2) * width), int((cy - h / 2) * height))
            p2 = (int((cx + w / 2) * width), int((cy + h / 2) * height))
            cv2.rectangle(frame, p1, p2, tuple(int(c) for c in colour[k]), thickness=-1)
            rows.append(f"{int(cls[k])} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
        noise = rng.integers(-3, 4, frame.shape, dtype=np.int16)
        frame = np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8)
        ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
        if not ok:
            raise RuntimeError(f"cannot encode frame {f} of sequence {index}")
        rel = f"images/{folder}/f{f:03d}.jpg"
        with open(os.path.join(out, rel), "wb") as handle:
            handle.write(jpeg.tobytes())
        with open(os.path.join(out, "labels", folder, f"f{f:03d}.txt"), "w") as handle:
            handle.write("".join(rows))
        lines.append(json.dumps({"image": rel, **record}))
    return lines


def build(
    out: Path,
    *,
    sequences: int = 2000,
    frames: int = 50,
    size: tuple[int, int] = (96, 72),
    classes: tuple[str, ...] = ("person", "vehicle"),
    sequences_per_driver: int = 4,
    seed: int = 0,
    workers: int = 2,
) -> int:
    """Write the dataset to `out` (a new folder); return the number of images."""
    if out.exists():
        raise SystemExit(f"{out}: already exists; pass a new folder (nothing was written)")
    out.mkdir(parents=True)
    (out / "classes.txt").write_text("".join(c + "\n" for c in classes))
    args = [(str(out), i, frames, size, len(classes), seed) for i in range(sequences)]
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        per_sequence = list(pool.map(_sequence, *zip(*args, strict=True), chunksize=16))
    with open(out / "manifest.jsonl", "w") as handle:
        for index, lines in enumerate(per_sequence):
            driver = f"d{index // sequences_per_driver:06d}"
            for line in lines:
                record = json.loads(line)
                handle.write(json.dumps({**record, "driver_id": driver}) + "\n")
    return sequences * frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sequences", type=int, default=2000)
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--width", type=int, default=96)
    parser.add_argument("--height", type=int, default=72)
    parser.add_argument("--classes", nargs="+", default=["person", "vehicle"])
    parser.add_argument("--sequences-per-driver", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    n = build(
        args.out,
        sequences=args.sequences,
        frames=args.frames,
        size=(args.width, args.height),
        classes=tuple(args.classes),
        sequences_per_driver=args.sequences_per_driver,
        seed=args.seed,
        workers=args.workers,
    )
    print(f"{n} images in {args.out} ({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
