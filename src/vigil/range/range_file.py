"""`models/range.json`: the fitted range estimator any runtime applies, and applying it to one image.

```
{"format": 1,
 "method": "geometric" | "depth" | "none",
 "apply": "range_m = 1 / (scale * signal + shift) …",     how to port it (text)
 "classes": ["tshirt", …],                                 class id → name
 "heights_m": {"tshirt": 0.7, …},                           geometric: class heights
 "camera": {"fx", "fy", "cx", "cy", "width", "height"} | null,   geometric: the camera (scaled to each image)
 "depth": {"path", "input_size", "box_fraction"} | null,   depth: the model folder (repository-relative)
 "fit": {"scale", "shift", "fitted", "objects", "split", "reason"?}}
```

`camera` is `range.intrinsics` when params give it, else the one camera every fitting image shares;
null when they had several (then a geometric runtime has no focal length, and says so).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vigil.errors import VigilError
from vigil.range.estimators import (
    DepthEstimator,
    GeometricEstimator,
    RangeEstimator,
    Sighting,
    class_heights,
)
from vigil.range.fit import InverseAffine
from vigil.range.params import Camera

FORMAT = 1
APPLY = (
    "range_m = 1 / (scale * signal + shift), none where that is not positive; signal = "
    "box_height_px / (fy * heights_m[class]) with fy scaled to the image height (geometric), or the "
    "median Depth Anything output over the box's central box_fraction (depth)"
)
HINT = "give models/range.json, written by the range stage"


def range_document(
    method: str,
    classes: list[str],
    heights: dict[str, float],
    camera: Camera | None,
    depth: dict[str, Any] | None,
    mapping: InverseAffine,
    fit: dict[str, Any],
) -> dict[str, Any]:
    """The release output for `method` (the stage's side of the format above)."""
    return {
        "format": FORMAT,
        "method": method,
        "apply": APPLY,
        "classes": classes,
        "heights_m": dict(heights),
        "camera": None if camera is None else camera.__dict__.copy(),
        "depth": depth,
        "fit": {**mapping.as_json(), **fit},
    }


def none_document(reason: str) -> dict[str, Any]:
    """The range file when no estimator is shipped (`range.method: none`)."""
    return {"format": FORMAT, "method": "none", "reason": reason}


def read_range(path: Path, field: str = "--range") -> dict[str, Any]:
    """A range file, checked enough that applying it cannot fail on its content."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VigilError(
            f"cannot read the range file: {exc}", path=path, field=field, hint=HINT
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise VigilError(f"not a range file of format {FORMAT}", path=path, field=field, hint=HINT)
    if doc.get("method") == "none":
        return doc
    fit = doc.get("fit")
    numbers = isinstance(fit, dict) and all(
        isinstance(fit.get(k), (int, float)) and math.isfinite(fit[k]) for k in ("scale", "shift")
    )
    if doc.get("method") not in ("geometric", "depth") or not numbers:
        raise VigilError(
            "needs method geometric or depth and a fit {scale, shift}",
            path=path,
            field=field,
            hint=HINT,
        )
    return doc


@dataclass(frozen=True)
class RangeRuntime:
    """A range file made runnable: its estimator, its mapping, and its camera (geometric)."""

    estimator: RangeEstimator
    mapping: InverseAffine
    camera: Camera | None
    source: str

    def metres(self, image_bgr: np.ndarray, boxes: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """Range in metres per box of one image (NaN where there is none)."""
        height, width = image_bgr.shape[:2]
        sighting = Sighting(
            width, height, boxes, classes, lambda: self._camera(width, height), lambda: image_bgr
        )
        return self.mapping.metres(self.estimator.signal(sighting))

    def _camera(self, width: int, height: int) -> Camera:
        if self.camera is None:
            raise VigilError(
                "the range file has no camera intrinsics",
                path=self.source,
                field="camera",
                hint="set range.intrinsics in params.yaml and re-run the range stage",
            )
        return self.camera.scaled_to(width, height)


def open_range(doc: dict[str, Any], source: Path, repo: Path) -> RangeRuntime | None:
    """The runtime of a checked range file; None for method `none` (no range is emitted)."""
    from vigil.params import build

    if doc["method"] == "none":
        return None
    mapping = InverseAffine(float(doc["fit"]["scale"]), float(doc["fit"]["shift"]))
    try:
        camera = None if doc.get("camera") is None else build(Camera, doc["camera"], "camera")
        estimator: RangeEstimator
        if doc["method"] == "geometric":
            estimator = GeometricEstimator(class_heights(doc["classes"], doc["heights_m"]))
        else:
            from vigil.range.depth import load_depth_model

            depth = doc["depth"]
            model = load_depth_model(Path(repo) / depth["path"], field="depth.path")
            estimator = DepthEstimator(
                model, int(depth["input_size"]), float(depth["box_fraction"])
            )
    except (VigilError, KeyError, TypeError) as exc:
        message = exc.render() if isinstance(exc, VigilError) else f"missing or bad {exc}"
        raise VigilError(message, path=source, field="--range", hint=HINT) from None
    return RangeRuntime(estimator, mapping, camera, str(source))
