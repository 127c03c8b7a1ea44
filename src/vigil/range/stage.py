"""The range stage's work: fit each estimator on val objects of known distance, score it on test.

The fit uses the val detections (the release student's, at `range.min_score`) matched to a true
box of known distance (same class, IoU >= `range.iou`): what the deployed model will range. Test
is scored twice — on the matched detections and on the true boxes (the estimator alone, without
the detector's box error) — each unfitted (geometric: the pinhole formula as is) and fitted.
Depth is scored when `range.depth.path` names a model. Nothing is written here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from vigil.data.distance import DistanceParams
from vigil.data.layout import MANIFEST, parse_manifest, read_classes, resolve_inside
from vigil.detection.detections_file import read_detections
from vigil.detection.split_lists import read_split_list
from vigil.errors import VigilError
from vigil.metrics.matching import assign_truth
from vigil.metrics.truth import image_truth
from vigil.range.camera import camera_for
from vigil.range.estimators import (
    DepthEstimator,
    GeometricEstimator,
    RangeEstimator,
    Sighting,
    class_heights,
)
from vigil.range.fit import IDENTITY, InverseAffine, fit_inverse_affine
from vigil.range.known import known_distances
from vigil.range.params import Camera, RangeParams
from vigil.range.range_file import none_document, range_document
from vigil.range.score import range_errors

KINDS: tuple[str, ...] = ("detections", "truth_boxes")


@dataclass(frozen=True)
class RangeResult:
    document: dict[str, Any]  # models/range.json
    metrics: dict[str, Any]  # metrics/range.json


@dataclass
class Objects:
    """Flat arrays over the ranged objects of one kind in one split."""

    distance_m: list[float] = field(default_factory=list)
    image: list[int] = field(default_factory=list)
    signal: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class SplitObjects:
    images: int = 0
    cameras: set[tuple[float, ...]] = field(default_factory=set)
    kinds: dict[str, Objects] = field(default_factory=lambda: {k: Objects() for k in KINDS})


def _manifest(data: Path) -> dict[str, tuple[int, dict[str, Any]]]:
    path = Path(data) / MANIFEST
    if not path.is_file():
        raise VigilError("manifest.jsonl is missing", path=path, hint="run `vigil data check`")
    parsed = parse_manifest(path)
    if parsed.errors:
        line, message = parsed.errors[0]
        raise VigilError(message, path=path, line=line, hint="run `vigil data check` on the folder")
    return {str(m.record.get("image")): (m.line, m.record) for m in parsed.lines}


def _pixels(data: Path, image: str) -> np.ndarray:
    import cv2

    path = resolve_inside(Path(data), image)
    array = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if array is None:
        raise VigilError("cannot decode the image", path=path, hint="run `vigil data check`")
    return array


def collect(
    data: Path,
    split_list: Path,
    detections: Path,
    params: RangeParams,
    distance: DistanceParams,
    estimators: list[RangeEstimator],
) -> SplitObjects:
    """The objects of known distance of one split (true boxes, matched detections), with each signal."""
    records, manifest = _manifest(data), Path(data) / MANIFEST
    out = SplitObjects()
    for i, entry in enumerate(read_detections(detections, set(read_split_list(split_list)))):
        line, record = records.get(entry.image, (None, {"image": entry.image}))
        truth = image_truth(data, entry.image, entry.width, entry.height, record)
        truth_m = known_distances(record, len(truth.classes), distance, manifest, line)
        dets = entry.detections.above(params.min_score)
        assigned = assign_truth(truth, dets, params.iou)
        matched = np.flatnonzero(assigned >= 0)
        matched = matched[np.isfinite(truth_m[assigned[matched]])]
        own = np.flatnonzero(np.isfinite(truth_m))
        out.images += 1
        if not len(own):
            continue
        boxes = np.concatenate([truth.boxes[own], dets.boxes[matched]])
        classes = np.concatenate([truth.classes[own], dets.classes[matched]])
        distances = np.concatenate([truth_m[own], truth_m[assigned[matched]]])

        def camera(
            rec: dict[str, Any] = record, w: int = entry.width, h: int = entry.height
        ) -> Camera:
            return camera_for(rec, w, h, params.intrinsics, manifest)

        if isinstance(record.get("intrinsics"), dict):
            cam = camera()
            out.cameras.add((cam.fx, cam.fy, cam.cx, cam.cy, cam.width, cam.height))
        sighting = Sighting(
            entry.width,
            entry.height,
            boxes,
            classes,
            camera,
            partial(_pixels, data, entry.image),
        )
        signals = {e.name: e.signal(sighting) for e in estimators}
        for kind, part in (
            ("truth_boxes", slice(0, len(own))),
            ("detections", slice(len(own), None)),
        ):
            objects = out.kinds[kind]
            objects.distance_m += distances[part].tolist()
            objects.image += [i] * len(distances[part])
            for name, values in signals.items():
                objects.signal.setdefault(name, []).extend(values[part].tolist())
    return out


def _fit(name: str, val: Objects, params: RangeParams) -> tuple[InverseAffine, dict[str, Any]]:
    signal, truth = np.array(val.signal.get(name, [])), np.array(val.distance_m)
    usable = int((np.isfinite(signal) & np.isfinite(truth)).sum()) if len(signal) else 0
    info: dict[str, Any] = {"split": "val", "source": "detections", "objects": usable}
    if usable >= params.fit.min_objects:
        mapping = fit_inverse_affine(
            signal, truth, shift=params.fit.shift, epsilon=params.fit.epsilon
        )
        return mapping, {**info, "fitted": True}
    reason = (
        f"{usable} val detections of known distance, fewer than range.fit.min_objects "
        f"({params.fit.min_objects})"
    )
    if name == "depth":  # relative depth has no metres without a fit
        raise VigilError(
            reason, field="range.fit.min_objects", hint="label more val distances, or lower it"
        )
    return IDENTITY, {
        **info,
        "fitted": False,
        "reason": f"not fitted, the pinhole range as is: {reason}",
    }


def _score(
    name: str, mapping: InverseAffine, test: SplitObjects, distance: DistanceParams
) -> dict[str, Any]:
    variants = (
        {"unfitted": IDENTITY, "fitted": mapping} if name == "geometric" else {"fitted": mapping}
    )
    labels = distance.labels()  # the bins evaluate reports, the last one open
    out: dict[str, Any] = {}
    for kind in KINDS:
        objects = test.kinds[kind]
        signal = np.array(objects.signal.get(name, []))
        out[kind] = {
            variant: range_errors(
                m.metres(signal),
                np.array(objects.distance_m),
                np.array(objects.image),
                [*distance.bins_m, float("inf")],
                labels,
                distance.min_images_per_bin,
            )
            for variant, m in variants.items()
        }
    return out


def _camera(params: RangeParams, val: SplitObjects) -> Camera | None:
    """The camera range.json carries: params' own, else the one every val image has, else none."""
    if params.intrinsics is not None:
        return params.intrinsics
    if len(val.cameras) == 1:
        fx, fy, cx, cy, w, h = next(iter(val.cameras))
        return Camera(fx, fy, cx, cy, int(w), int(h))
    return None


def run_range(
    data: Path,
    split_dir: Path,
    val_detections: Path,
    test_detections: Path,
    params: RangeParams,
    distance: DistanceParams,
) -> RangeResult:
    """Fit on val, score on test, and the range file for `range.method`."""
    if params.method == "none":
        reason = "range.method: none — no range estimator is fitted or shipped"
        return RangeResult(none_document(reason), {"method": "none", "reason": reason})
    names = read_classes(Path(data))
    estimators: list[RangeEstimator] = [GeometricEstimator(class_heights(names, params.heights))]
    depth_doc = None
    if params.depth.path is not None:
        from vigil.range.depth import load_depth_model

        model = load_depth_model(Path(params.depth.path))
        estimators.append(DepthEstimator(model, params.depth.input_size, params.depth.box_fraction))
        depth_doc = {k: getattr(params.depth, k) for k in ("path", "input_size", "box_fraction")}
    val = collect(data, Path(split_dir) / "val.txt", val_detections, params, distance, estimators)
    test = collect(
        data, Path(split_dir) / "test.txt", test_detections, params, distance, estimators
    )
    if not test.kinds["truth_boxes"].distance_m:
        raise VigilError(
            f"no test object has a known distance (manifest objects.{distance.field})",
            path=Path(data) / MANIFEST,
            field=f"objects.{distance.field}",
            hint="record distances in the manifest, or set range.method: none",
        )
    metrics: dict[str, Any] = {
        "method": params.method,
        "unit": distance.unit,
        "bins": distance.bins,
        "iou": params.iou,
        "min_score": params.min_score,
        **{
            split: {
                "images": objs.images,
                "truth_boxes": len(objs.kinds["truth_boxes"].distance_m),
                "detections": len(objs.kinds["detections"].distance_m),
            }
            for split, objs in (("val", val), ("test", test))
        },
    }
    fits = {}
    for estimator in estimators:
        mapping, info = _fit(estimator.name, val.kinds["detections"], params)
        fits[estimator.name] = mapping, info
        metrics[estimator.name] = {
            "fit": {**mapping.as_json(), **info},
            **_score(estimator.name, mapping, test, distance),
        }
    if "depth" not in fits:
        metrics["depth"] = {"reason": "no depth model: range.depth.path is null"}
    mapping, info = fits[params.method]
    document = range_document(
        params.method, names, params.heights, _camera(params, val), depth_doc, mapping, info
    )
    return RangeResult(document, metrics)


def summary(result: RangeResult) -> str:
    """A few lines for the terminal."""
    m = result.metrics
    if m["method"] == "none":
        return f"range: {m['reason']}"
    lines = [
        f"range: method {m['method']}; test {m['test']['truth_boxes']} true boxes, {m['test']['detections']} detections"
    ]
    for name in ("geometric", "depth"):
        block = m[name]
        if "reason" in block:
            lines.append(f"  {name}: {block['reason']}")
            continue
        for kind in KINDS:
            row = ", ".join(
                f"{v} MAE {e['mae_m']} m ({e['median_abs_pct']}% median)"
                for v, e in block[kind].items()
            )
            lines.append(f"  {name} on {kind}: {row}")
    return "\n".join(lines)


def publish_range(result: RangeResult, document: Path, metrics: Path) -> None:
    """Write models/range.json and metrics/range.json atomically."""
    from vigil.atomic import write_json_atomic

    write_json_atomic(document, result.document)
    write_json_atomic(metrics, result.metrics)
