"""The `export` stage's job: build every format, re-validate each against PyTorch, time it, write metrics.

`metrics/export.json` has one block per format (`torch` is the reference, run through the same
pipeline): `status` (ok | skipped, with `reason`), `map50_95` / `map50` (pycocotools, test split),
`map50_95_change` (points vs the reference), `parity` (raw and calibrated scores),
`latency_ms.threads_N.{median,p95,…}`, `size_mb`, `calibration_embedded`; `calibration` (the mapping
every export carries as metadata: `vigil.export.embedded_calibration`); and `hardware` (CPU model,
ISA flags, cores: `vigil.hardware`) naming the machine every latency is from.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from vigil.atomic import write_json_atomic
from vigil.data.layout import read_classes
from vigil.detection.split_lists import read_split_list
from vigil.detection.types import ImageDetections, ImageTruth
from vigil.errors import VigilError
from vigil.export import coreml, onnx_fp32, onnx_int8, tensorrt
from vigil.export.embedded_calibration import (
    METADATA_KEY,
    calibrate_image,
    embed_onnx,
    from_metadata,
    onnx_metadata,
    read_calibration,
)
from vigil.export.engines import OnnxEngine, TorchEngine
from vigil.export.params import ExportParams
from vigil.export.parity import compare
from vigil.export.pipeline import Engine, detect_all, preprocess, time_engine
from vigil.hardware import describe
from vigil.metrics.coco import evaluate_coco, rounded
from vigil.metrics.truth import load_truth
from vigil.models.inference import Inference, read_images
from vigil.progress import progress


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return round(sum(p.stat().st_size for p in files) / 2**20, 3)


def skipped(reason: str) -> dict[str, Any]:
    return {"status": "skipped", "reason": reason}


class Validation:
    """The test split held in memory and the PyTorch reference's detections on it."""

    def __init__(
        self,
        data: Path,
        test_split: Path,
        params: ExportParams,
        torch_engine: TorchEngine,
        imgsz: int,
        mapping: dict[str, Any],
    ):
        self.params, self.class_names, self.mapping = params, read_classes(data), mapping
        images = read_split_list(test_split)
        if not images:
            raise VigilError("the split list is empty", path=test_split)
        self.truths: list[ImageTruth] = load_truth(data, images)
        self.arrays = read_images(data, images)
        self.scoring = Inference(imgsz, params.conf, params.iou, params.max_det)
        self.deployed = Inference(imgsz, params.parity_conf, params.iou, params.max_det)
        self.reference_deployed = detect_all(torch_engine, self.arrays, self.deployed)
        self.reference = self.block(torch_engine, against_reference=False)

    def calibrated(self, detections: list[ImageDetections]) -> list[ImageDetections]:
        """Every box of every test image with its calibrated score (none dropped: parity sees all)."""
        return [
            calibrate_image(self.mapping, dets, width=image.shape[1], height=image.shape[0])[0]
            for dets, image in zip(detections, self.arrays, strict=True)
        ]

    def block(
        self, engine: Engine, path: Path | None = None, *, against_reference: bool = True
    ) -> dict[str, Any]:
        """mAP of `engine` on the test split, its latency, and (for exports) parity and mAP change vs PyTorch."""
        detections = detect_all(
            engine, progress(self.arrays, f"{engine.name}: predict", len(self.arrays)), self.scoring
        )
        metrics = evaluate_coco(
            self.truths, detections, self.class_names, max_det=self.scoring.max_det
        ).metrics
        out: dict[str, Any] = {
            "status": "ok",
            "map50_95": metrics["map50_95"],
            "map50": metrics["map50"],
            "recall": metrics["recall"],
        }
        if against_reference:
            out["map50_95_change"] = rounded(
                100 * (metrics["map50_95"] - self.reference["map50_95"])
            )
            out["map50_change"] = rounded(100 * (metrics["map50"] - self.reference["map50"]))
            deployed = detect_all(engine, self.arrays, self.deployed)
            iou = self.params.parity_iou
            calibrated = compare(
                self.calibrated(self.reference_deployed), self.calibrated(deployed), iou=iou
            )
            out["parity"] = compare(self.reference_deployed, deployed, iou=iou) | {
                "max_abs_calibrated_score": calibrated["max_abs_score"],
                "conf": self.params.parity_conf,
            }
        p = self.params
        out["latency_ms"] = {
            f"threads_{t}": time_engine(
                engine,
                self.arrays,
                self.deployed,
                runs=p.latency_runs,
                warmup=p.latency_warmup,
                threads=t,
            )
            for t in p.latency_threads
        }
        if path is not None:
            out["file"], out["size_mb"] = path.as_posix(), size_mb(path)
            carried = from_metadata(onnx_metadata(path), path)
            out["calibration_embedded"] = carried == self.mapping
        return out


def calibration_tensors(data: Path, val_split: Path, count: int, imgsz: int) -> list[np.ndarray]:
    """The first `count` val images, preprocessed as at inference (val never overlaps test)."""
    images = read_split_list(val_split)[:count]
    return [preprocess(im, imgsz) for im in read_images(data, images)]


def choose_int8(
    fp32: Path,
    out: Path,
    data: Path,
    val_split: Path,
    params: ExportParams,
    imgsz: int,
    class_names: list[str],
) -> dict[str, Any]:
    """Quantize `fp32` with every recipe of `export.int8`, score each on val, write the best to `out`.

    The choice is made on val so that test stays an unbiased measure of the one shipped. Returns what
    was done: the shipped recipe's settings, and every recipe's val mAP@[.5:.95] and change vs FP32.
    """
    q = params.int8
    tensors = calibration_tensors(data, val_split, q.calibration_images, imgsz)
    images = read_split_list(val_split)
    truths, arrays = load_truth(data, images), read_images(data, images)
    scoring = Inference(imgsz, params.conf, params.iou, params.max_det)

    def val_map(engine: Engine) -> float:
        detections = detect_all(engine, arrays, scoring)
        scored = evaluate_coco(truths, detections, class_names, max_det=scoring.max_det)
        return float(scored.metrics["map50_95"] or 0.0)

    base = val_map(OnnxEngine(fp32, "onnx"))
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="vigil-int8-") as tmp:
        built: list[tuple[Path, dict[str, Any]]] = []
        for i, recipe in enumerate(progress(q.recipes, "int8: recipes", len(q.recipes))):
            path = Path(tmp) / f"recipe_{i}.onnx"
            try:
                how = onnx_int8.quantize_int8(
                    fp32,
                    path,
                    tensors,
                    method=recipe.method,
                    exclude=recipe.exclude,
                    per_channel=q.per_channel,
                )
            except Exception as exc:
                # entropy's 2048 bins over a near-constant activation): recorded, the others still compete
                rows.append(
                    {"recipe": recipe.label, "failed": f"{type(exc).__name__}: {exc}"[:300]}
                )
                built.append((path, {}))
                continue
            score = val_map(OnnxEngine(path, "onnx-int8"))
            rows.append(
                {
                    "recipe": recipe.label,
                    "val_map50_95": rounded(score),
                    "val_change_vs_onnx": rounded(100 * (score - base)),
                }
            )
            built.append((path, how))
        if all("failed" in row for row in rows):
            raise VigilError(
                "no INT8 recipe could be built: "
                + "; ".join(f"{row['recipe']}: {row['failed']}" for row in rows),
                field="export.int8.recipes",
                hint="add a recipe with method minmax",
            )
        best = pick_recipe([row.get("val_map50_95", float("-inf")) for row in rows])
        shutil.move(str(built[best][0]), str(out))
    return built[best][1] | {
        "chosen": rows[best]["recipe"],
        "chosen_on": f"val ({len(images)} images), best mAP@[.5:.95]",
        "val_onnx_map50_95": rounded(base),
        "recipes": rows,
    }


def pick_recipe(val_scores: list[float]) -> int:
    """Index of the best val score; the earliest of equals (recipes are listed in order of preference)."""
    if not val_scores:
        raise VigilError("no INT8 recipe to choose from", field="export.int8.recipes")
    return max(range(len(val_scores)), key=lambda i: (val_scores[i], -i))


def speedups(fast: dict[str, Any], slow: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per thread count: slow / fast median time, of the forward pass and end to end."""
    return {
        t: {
            key: round(slow["latency_ms"][t][key] / fast["latency_ms"][t][key], 2)
            for key in ("forward_median", "median")
        }
        for t in fast["latency_ms"]
    }


def run_export(
    weights: Path,
    data: Path,
    test_split: Path,
    val_split: Path,
    out_dir: Path,
    metrics: Path,
    params: ExportParams,
    calibration: Path,
) -> dict[str, Any]:
    """Build, embed the calibration into, re-validate and time every format; write `metrics`."""
    mapping = read_calibration(
        calibration
    )  # a bad mapping stops the stage before anything is built
    torch_engine = TorchEngine(weights)
    imgsz = params.imgsz or torch_engine.imgsz
    if imgsz is None:
        raise VigilError(
            "the checkpoint does not record its trained image size",
            path=weights,
            field="export.imgsz",
            hint="set export.imgsz in params.yaml",
        )
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    check = Validation(data, test_split, params, torch_engine, imgsz, mapping)
    result: dict[str, Any] = {
        "hardware": describe(),  # every latency below was measured here
        "subject": Path(weights).as_posix(),
        "imgsz": imgsz,
        "calibration": {
            "file": Path(calibration).as_posix(),
            "schema": mapping["schema"],
            "metadata_key": METADATA_KEY,
        },
        "torch": check.reference | {"file": Path(weights).as_posix(), "size_mb": size_mb(weights)},
    }

    reason = onnx_fp32.unavailable()
    if reason is None:
        fp32 = onnx_fp32.export_onnx(
            weights,
            out_dir / "model.onnx",
            imgsz=imgsz,
            opset=params.opset,
            simplify=params.simplify,
        )
        embed_onnx(fp32, mapping)
        result["onnx"] = check.block(OnnxEngine(fp32, "onnx"), fp32)
        reason = onnx_int8.unavailable()
    else:
        result["onnx"] = skipped(reason)
    if reason is None:
        int8 = out_dir / "model_int8.onnx"
        how = choose_int8(fp32, int8, data, val_split, params, imgsz, check.class_names)
        embed_onnx(int8, mapping)
        block = check.block(OnnxEngine(int8, "onnx-int8"), int8)
        block["quantization"] = how
        block["speedup_vs_onnx"] = speedups(block, result["onnx"])
        block["map50_95_change_vs_onnx"] = rounded(
            100 * (block["map50_95"] - result["onnx"]["map50_95"])
        )
        result["onnx_int8"] = block
    else:
        result["onnx_int8"] = skipped(reason)

    reason = coreml.unavailable() or (None if params.coreml else "export.coreml is false")
    if reason is None:
        package = coreml.export_coreml(weights, out_dir / "model.mlpackage", imgsz=imgsz)
        packed = coreml.quantize_weights_int8(package, out_dir / "model_int8.mlpackage")
        classes = len(check.class_names)
        result["coreml"] = {
            "status": "ok",
            **{
                name: coreml.inspect_package(
                    coreml.embed_calibration(path, mapping),
                    imgsz=imgsz,
                    classes=classes,
                    calibration=mapping,
                )
                for name, path in (("fp16", package), ("int8_weights", packed))
            },
        }
        result["coreml"]["fp16"]["size_mb"], result["coreml"]["int8_weights"]["size_mb"] = (
            size_mb(package),
            size_mb(packed),
        )
    else:
        result["coreml"] = skipped(reason)

    reason = tensorrt.unavailable()
    if reason is None:
        engine = tensorrt.export_engine(weights, out_dir / "model.engine", imgsz=imgsz)
        result["tensorrt"] = {
            "status": "ok",
            "precision": "fp16",
            "file": engine.as_posix(),
            "size_mb": size_mb(engine),
        }
    else:
        result["tensorrt"] = skipped(reason)
    write_json_atomic(metrics, result)
    return result


def summary(result: dict[str, Any]) -> str:
    lines = []
    for name in ("torch", "onnx", "onnx_int8"):
        block = result[name]
        if block.get("status") != "ok":
            lines.append(f"{name}: skipped ({block['reason']})")
            continue
        lat = "  ".join(
            f"{t}: {v['median']:.1f} ms (fwd {v['forward_median']:.1f}, p95 {v['p95']:.1f})"
            for t, v in block["latency_ms"].items()
        )
        lines.append(
            f"{name}: mAP50-95 {block['map50_95']:.4f} ({block.get('map50_95_change', 0):+.2f} pt), "
            f"mAP50 {block['map50']:.4f}, {block['size_mb']} MB; {lat}"
        )
    for name in ("coreml", "tensorrt"):
        block = result[name]
        lines.append(
            f"{name}: {block['status']}" + (f" ({block['reason']})" if "reason" in block else "")
        )
    return "\n".join(lines)
