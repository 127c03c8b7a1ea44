"""INT8 sweep: calibration method × calibration image count × nodes kept float, on an exported FP32 ONNX.

Per configuration: quantize (QDQ, per-channel), mAP@[.5:.95] / mAP@.5 on the test split (pycocotools,
the export stage's pipeline), forward-pass median at 1 thread, and the speed-up and mAP change vs FP32.
Prints a Markdown table (and writes it as JSON with --json).

    python benchmarks/int8_sweep.py --fp32 models/export/model.onnx --methods minmax entropy percentile \
        --images 32 64 128 --exclude post post+last
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from vigil.data.layout import read_classes
from vigil.detection.split_lists import read_split_list
from vigil.export.engines import OnnxEngine
from vigil.export.onnx_int8 import quantize_int8
from vigil.export.pipeline import detect_all, preprocess
from vigil.metrics.coco import evaluate_coco
from vigil.metrics.truth import load_truth
from vigil.models.inference import Inference, read_images


def forward_ms(engines: list[OnnxEngine], tensors: list, runs: int) -> list[float]:
    """Median forward time (ms, 1 thread) of each engine, runs interleaved so load drift hits all alike."""
    for engine in engines:
        engine.set_threads(1)
        for t in tensors[:3]:
            engine.forward(t)
    times: list[list[float]] = [[] for _ in engines]
    for i in range(runs):
        for engine, spent in zip(engines, times, strict=True):
            start = time.perf_counter()
            engine.forward(tensors[i % len(tensors)])
            spent.append((time.perf_counter() - start) * 1000.0)
    return [statistics.median(spent) for spent in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fp32", type=Path, default=Path("models/export/model.onnx"))
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--val-split", type=Path, default=Path("artifacts/split/val.txt"))
    parser.add_argument("--test-split", type=Path, default=Path("artifacts/split/test.txt"))
    parser.add_argument("--methods", nargs="+", default=["minmax", "entropy", "percentile"])
    parser.add_argument("--images", nargs="+", type=int, default=[64])
    parser.add_argument("--exclude", nargs="+", default=["post"])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    fp32 = OnnxEngine(args.fp32)
    settings = Inference(
        fp32.imgsz, conf=0.001, iou=0.7, max_det=100
    )  # the scoring settings of evaluate
    names = read_split_list(args.test_split)
    truths, arrays = load_truth(args.data, names), read_images(args.data, names)
    classes = read_classes(args.data)
    tensors = [preprocess(a, settings.imgsz) for a in arrays]
    val = read_images(args.data, read_split_list(args.val_split)[: max(args.images)])
    val_tensors = [preprocess(a, settings.imgsz) for a in val]

    def score(engine: OnnxEngine) -> tuple[float, float]:
        m = evaluate_coco(truths, detect_all(engine, arrays, settings), classes).metrics
        return m["map50_95"], m["map50"]

    base = score(fp32)
    rows = [{"config": "fp32", "map50_95": base[0], "map50": base[1]}]
    print(
        "| config | mAP50-95 | mAP50 | fwd ms int8 / fp32 (1 thread) | speed-up | ΔmAP50-95 (pt) |\n"
        "|---|---|---|---|---|---|"
    )
    print(f"| fp32 | {base[0]:.4f} | {base[1]:.4f} | | 1.00 | 0.00 |", flush=True)
    with tempfile.TemporaryDirectory(prefix="vigil-int8-") as tmp:
        for exclude in args.exclude:
            for count in args.images:
                for method in args.methods:
                    out = Path(tmp) / f"{method}_{count}_{exclude}.onnx"
                    quantize_int8(
                        args.fp32, out, val_tensors[:count], method=method, exclude=exclude
                    )
                    int8 = OnnxEngine(out, "onnx-int8")
                    m50_95, m50 = score(int8)
                    ms, ms_fp32 = forward_ms([int8, fp32], tensors, args.runs)
                    row = {
                        "config": f"{method}/{count}/{exclude}",
                        "map50_95": m50_95,
                        "map50": m50,
                        "ms_1t": ms,
                        "fp32_ms_1t": ms_fp32,
                        "speedup": ms_fp32 / ms,
                        "map_change_pt": 100 * (m50_95 - base[0]),
                    }
                    rows.append(row)
                    print(
                        f"| {row['config']} | {m50_95:.4f} | {m50:.4f} | {ms:.1f} / {ms_fp32:.1f} | "
                        f"{row['speedup']:.2f} | {row['map_change_pt']:+.2f} |",
                        flush=True,
                    )
    if args.json is not None:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
