"""The camera of one image: its manifest line's `intrinsics`, else `range.intrinsics` from params.

The recorded-sessions importer writes `intrinsics: {fx, fy, cx, cy, …}` (pixels of the image as
stored, so of the line's width × height) into each frame's line; other keys (camera_id, distortion)
are kept there and ignored here. Neither source → one error naming the manifest line and field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vigil.errors import VigilError
from vigil.range.params import Camera

KEYS: tuple[str, ...] = ("fx", "fy", "cx", "cy")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def camera_for(
    record: Mapping[str, Any],
    width: int,
    height: int,
    fallback: Camera | None,
    manifest: Path,
) -> Camera:
    """The camera of the image `record` describes, in pixels of its width × height frame."""
    image = record.get("image", "?")
    raw = record.get("intrinsics")
    if raw is None:
        if fallback is None:
            raise VigilError(
                f"image {image!r} has no camera intrinsics",
                path=manifest,
                field="intrinsics",
                hint="add intrinsics {fx, fy, cx, cy} (pixels) to its manifest line, "
                "or set range.intrinsics in params.yaml",
            )
        return fallback.scaled_to(width, height)
    if not isinstance(raw, dict) or not all(_number(raw.get(k)) for k in KEYS):
        raise VigilError(
            f"image {image!r}: intrinsics must hold numbers {', '.join(KEYS)}, got {raw!r}",
            path=manifest,
            field="intrinsics",
        )
    stored_w, stored_h = record.get("width"), record.get("height")
    size = (
        (stored_w, stored_h) if type(stored_w) is int and type(stored_h) is int else (width, height)
    )
    try:
        fx, fy, cx, cy = (float(raw[k]) for k in KEYS)
        camera = Camera(fx, fy, cx, cy, int(size[0]), int(size[1]))
    except VigilError as exc:
        raise VigilError(
            f"image {image!r}: {exc.message}", path=manifest, field=f"intrinsics.{exc.field}"
        ) from None
    return camera.scaled_to(width, height)
