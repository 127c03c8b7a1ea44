"""Relative depth from a Depth Anything model in a local folder, sampled at each box.

The model loads with transformers' `DepthAnythingForDepthEstimation` from a folder written by
`save_pretrained` (config.json + safetensors), never from a hub: `local_files_only` and the offline
switches `import vigil` sets. No registry ships such weights; a team puts theirs in a folder and
names it in `range.depth.path`. Preprocessing is the model's own recipe, done here so no processor
file is needed: RGB, resized to a square `input_size` (a multiple of the ViT patch, 14; the seed
uses 518), ImageNet mean and std. The output, relative *inverse* depth (disparity: larger = nearer),
is resized back to the image, and each box gets the median over its central `box_fraction` — the
median, because a box's corners are background, much farther than the object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vigil.errors import VigilError

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def load_depth_model(folder: Path, field: str = "range.depth.path") -> Any:
    """The Depth Anything model saved in `folder`, in eval mode; a clear error when it is not one."""
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise VigilError(
            "no Depth Anything model here (no config.json)",
            path=folder,
            field=field,
            hint="give a folder written by DepthAnythingForDepthEstimation.save_pretrained",
        )
    from transformers import DepthAnythingForDepthEstimation
    from transformers.utils import logging

    logging.disable_progress_bar()  # its loading bar would land between `vigil predict`'s JSON lines
    try:
        model = DepthAnythingForDepthEstimation.from_pretrained(
            str(folder), local_files_only=True, use_safetensors=True
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()
        raise VigilError(
            f"cannot load a Depth Anything model ({first[0][:200] if first else type(exc).__name__})",
            path=folder,
            field=field,
            hint="its config.json must be a depth_anything config and its weights model.safetensors",
        ) from None
    return model.eval()


def disparity_map(model: Any, image_bgr: np.ndarray, input_size: int) -> np.ndarray:
    """The model's relative inverse depth for every pixel of `image_bgr` (H, W), float64."""
    import cv2
    import torch

    height, width = image_bgr.shape[:2]
    rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
    resized = cv2.resize(rgb, (input_size, input_size), interpolation=cv2.INTER_CUBIC)
    x = (resized.astype(np.float32) / 255.0 - MEAN) / STD
    tensor = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
    with torch.inference_mode():
        out = model(pixel_values=tensor).predicted_depth  # (1, h, w)
        full = torch.nn.functional.interpolate(
            out[:, None], size=(height, width), mode="bilinear", align_corners=False
        )
    return full[0, 0].double().numpy()


def sample_boxes(disparity: np.ndarray, boxes: np.ndarray, fraction: float) -> np.ndarray:
    """Median disparity inside the central `fraction` of each xyxy box (pixels); NaN for an empty box."""
    height, width = disparity.shape
    out = np.full(len(boxes), np.nan)
    for i, (x1, y1, x2, y2) in enumerate(np.asarray(boxes, dtype=np.float64).reshape(-1, 4)):
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        hw, hh = (x2 - x1) * fraction / 2, (y2 - y1) * fraction / 2
        left, right = (
            int(np.clip(np.floor(cx - hw), 0, width)),
            int(np.clip(np.ceil(cx + hw), 0, width)),
        )
        top, bottom = (
            int(np.clip(np.floor(cy - hh), 0, height)),
            int(np.clip(np.ceil(cy + hh), 0, height)),
        )
        patch = disparity[top:bottom, left:right]
        if patch.size:
            out[i] = float(np.median(patch))
    return out
