"""Import speed (images/s) of each `vigil data import` format, and of `vigil data merge`.

    .venv/bin/python benchmarks/import_benchmark.py --images 300

Generates the same N images (640x480 JPEG, a few boxes each) in every source layout in a temp folder,
then times the whole import (read and check the source, decode every image as `vigil data check` does,
copy images, write labels, manifest, mode file) into a fresh --out, the way the CLI runs it. Times are
the median of --repeats runs, page cache warm. The image checks (limits, threads) come from --params.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("VIGIL_NO_PROGRESS", "1")

import cv2
import numpy as np

from vigil.data.importers.coco import read_coco
from vigil.data.importers.common import SourceDataset
from vigil.data.importers.merge import merge_datasets
from vigil.data.importers.sessions import read_sessions
from vigil.data.importers.visdrone import read_visdrone
from vigil.data.importers.voc import read_voc
from vigil.data.importers.writer import ImportOptions, write_dataset
from vigil.data.importers.yolo import read_yolo
from vigil.params import ValidateParams, load_section

W, H = 640, 480
NAMES = ["person", "car", "truck"]


def make_sources(root: Path, n: int, seed: int = 0) -> None:
    """The same n images and boxes as COCO, VOC, YOLO, VisDrone and one recorded session."""
    rng = np.random.default_rng(seed)
    categories = [{"id": i + 1, "name": c} for i, c in enumerate(NAMES)]
    coco: dict = {"images": [], "annotations": [], "categories": categories}
    (root / "yolo/labels").mkdir(parents=True)
    (root / "yolo/classes.txt").write_text("".join(c + "\n" for c in NAMES))
    for d in (
        "coco",
        "voc",
        "yolo/images",
        "vd/images",
        "vd/annotations",
        "s/sess/p1/frames/cam",
        "s/sess/p1/detections",
    ):
        (root / d).mkdir(parents=True, exist_ok=True)
    frames, dets = [], []
    for i in range(n):
        small = rng.integers(0, 256, size=(12, 16, 3), dtype=np.uint8)
        data = cv2.imencode(".jpg", cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC))[
            1
        ].tobytes()
        png = cv2.imencode(".png", cv2.resize(small, (W, H), interpolation=cv2.INTER_NEAREST))[
            1
        ].tobytes()
        name = f"{i:07d}_00000_d_{i:07d}.jpg"
        for d in ("coco", "voc", "yolo/images", "vd/images"):
            (root / d / name).write_bytes(data)
        (root / f"s/sess/p1/frames/cam/f{i:05d}.png").write_bytes(png)
        boxes = [
            (
                int(rng.integers(0, 3)),
                *map(
                    float,
                    (
                        rng.integers(0, W - 60),
                        rng.integers(0, H - 60),
                        rng.integers(8, 60),
                        rng.integers(8, 60),
                    ),
                ),
            )
            for _ in range(int(rng.integers(1, 9)))
        ]
        coco["images"].append({"id": i, "file_name": name, "width": W, "height": H})
        coco["annotations"] += [
            {
                "id": len(coco["annotations"]) + k,
                "image_id": i,
                "category_id": c + 1,
                "bbox": [x, y, w, h],
            }
            for k, (c, x, y, w, h) in enumerate(boxes)
        ]
        objs = "".join(
            f"<object><name>{NAMES[c]}</name><bndbox><xmin>{x:g}</xmin><ymin>{y:g}</ymin>"
            f"<xmax>{x + w:g}</xmax><ymax>{y + h:g}</ymax></bndbox></object>"
            for c, x, y, w, h in boxes
        )
        (root / "voc" / name).with_suffix(".xml").write_text(
            f"<annotation><filename>{name}</filename><size><width>{W}</width><height>{H}</height></size>"
            f"{objs}</annotation>"
        )
        (root / "yolo/labels" / name).with_suffix(".txt").write_text(
            "".join(
                f"{c} {(x + w / 2) / W:.6f} {(y + h / 2) / H:.6f} {w / W:.6f} {h / H:.6f}\n"
                for c, x, y, w, h in boxes
            )
        )
        (root / "vd/annotations" / name).with_suffix(".txt").write_text(
            "".join(f"{x:g},{y:g},{w:g},{h:g},1,{c + 1},0,0\n" for c, x, y, w, h in boxes)
        )
        frames.append({"file": f"f{i:05d}.png", "camera": "cam", "frame_index": i})
        dets += [
            {
                "frame_index": i,
                "timestamp_ns": i,
                "u_px": x + 30,
                "v_px": y + 30,
                "radius_px": 12.0,
                "confidence": 0.9,
            }
            for _, x, y, _, _ in boxes[:2]
        ]
    (root / "coco/instances.json").write_text(json.dumps(coco))
    (root / "s/sess/p1/manifest.json").write_text(
        json.dumps({"pitch_id": "p1", "fps": 60, "frames": frames})
    )
    (root / "s/sess/p1/detections/cam_detections.json").write_text(
        json.dumps(
            {"pitch_id": "p1", "camera": "cam", "detection_count": len(dets), "detections": dets}
        )
    )


def time_import(
    read: Callable[[], SourceDataset], out: Path, repeats: int, validate: ValidateParams
) -> float:
    times = []
    for _ in range(repeats):
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        defaults = {"stream": "cctv", "scenario": "day", "road_type": "campus"}
        write_dataset(read(), ImportOptions(out=out, validate=validate, defaults=defaults))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=300, help="images per format")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--params", type=Path, default=Path("params.yaml"), help="its `validate` section"
    )
    args = parser.parse_args()
    validate = load_section(args.params, "validate", ValidateParams)
    with tempfile.TemporaryDirectory(prefix="vigil-import-bench-") as tmp:
        root = Path(tmp)
        make_sources(root, args.images)
        readers: dict[str, Callable[[], SourceDataset]] = {
            "coco": lambda: read_coco(root / "coco/instances.json", root / "coco"),
            "voc": lambda: read_voc(root / "voc"),
            "yolo": lambda: read_yolo(root / "yolo"),
            "visdrone": lambda: read_visdrone(root / "vd"),
            "sessions": lambda: read_sessions(root / "s"),
        }
        print(
            f"{args.images} images of {W}x{H} per format, median of {args.repeats}, {os.cpu_count()} CPUs"
        )
        for name, read in readers.items():
            read()  # warm the page cache
            seconds = time_import(read, root / f"out-{name}", args.repeats, validate)
            print(f"  import {name:9s} {args.images / seconds:8.0f} images/s  ({seconds:.2f} s)")
        start = time.perf_counter()
        merge_datasets(
            [root / "out-coco", root / "out-visdrone"],
            root / "merged",
            ["out-visdrone=0.3"],
            0,
            validate,
        )
        seconds = time.perf_counter() - start
        print(
            f"  merge (coco + 30% visdrone) {int(args.images * 1.3) / seconds:8.0f} images/s  ({seconds:.2f} s)"
        )


if __name__ == "__main__":
    main()
