"""Boxes drawn on an image: the one drawing code behind the error gallery, the findings page and
`vigil predict --draw`.

A mark is a box in original-image pixels (x1 y1 x2 y2), a kind and a label. Each kind has one colour
(Okabe-Ito, readable by colour-blind reviewers): a true positive, a false positive and a missed true
box never look alike, and a miss is drawn dashed as well. Small images are enlarged before drawing
so the labels stay legible; a legend strip under the image counts each kind.
"""

from __future__ import annotations

import io
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# BGR colours (OpenCV order) of the Okabe-Ito palette
TP = "tp"
FP = "fp"
MISS = "miss"
FINDING = "finding"
DETECTION = "detection"
COLOURS: dict[str, tuple[int, int, int]] = {
    TP: (115, 158, 0),  # bluish green
    FP: (0, 94, 213),  # vermillion
    MISS: (233, 180, 86),  # sky blue, dashed
    FINDING: (0, 159, 230),  # orange
    DETECTION: (178, 114, 0),  # blue
}
LEGEND: dict[str, str] = {
    TP: "true positive",
    FP: "false positive",
    MISS: "missed",
    FINDING: "finding",
    DETECTION: "detection",
}
FONT_SCALE = 0.45
LEGEND_HEIGHT = 24


@dataclass(frozen=True)
class Mark:
    """One box to draw: x1 y1 x2 y2 in the image's own pixels, its kind (a COLOURS key) and label."""

    xyxy: tuple[float, float, float, float]
    kind: str
    label: str = ""

    def __post_init__(self) -> None:
        if self.kind not in COLOURS:
            raise ValueError(f"unknown mark kind {self.kind!r}; one of {sorted(COLOURS)}")


def decode_image(data: bytes, max_side: int) -> np.ndarray | None:
    """BGR array of encoded image bytes, or None when they do not decode or claim a side > `max_side`.

    The header is read first (PIL), so a decompression bomb is refused before any pixel is decoded.
    """
    import cv2
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PIL's DecompressionBombWarning: judged below
            with Image.open(io.BytesIO(data)) as header:
                size = header.size
    except Image.DecompressionBombError:
        return None
    except Exception:  # a format PIL does not know: OpenCV decides below
        size = (0, 0)
    if max(size) > max_side:
        return None
    try:
        array = (
            cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR) if data else None
        )
    except cv2.error:
        return None
    if array is None or max(array.shape[:2]) > max_side:
        return None
    return array


def _dashed_rectangle(
    canvas: np.ndarray, p1: tuple[int, int], p2: tuple[int, int], colour: tuple[int, int, int]
) -> None:
    import cv2

    (x1, y1), (x2, y2) = p1, p2
    dash = 6
    for a, b, fixed, horizontal in (
        (x1, x2, y1, True),
        (x1, x2, y2, True),
        (y1, y2, x1, False),
        (y1, y2, x2, False),
    ):
        for start in range(a, b, 2 * dash):
            end = min(start + dash, b)
            if horizontal:
                cv2.line(canvas, (start, fixed), (end, fixed), colour, 2, cv2.LINE_AA)
            else:
                cv2.line(canvas, (fixed, start), (fixed, end), colour, 2, cv2.LINE_AA)


def _label(canvas: np.ndarray, text: str, x: int, y: int, colour: tuple[int, int, int]) -> None:
    """`text` on a filled tag at (x, y) = the box's top-left corner, inside the canvas."""
    import cv2

    if not text:
        return
    (width, height), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, FONT_SCALE, 1)
    top = y - height - base - 2 if y - height - base - 2 >= 0 else y
    left = max(0, min(x, canvas.shape[1] - width - 2))
    cv2.rectangle(canvas, (left, top), (left + width + 2, top + height + base + 2), colour, -1)
    ink = (0, 0, 0) if sum(colour) > 400 else (255, 255, 255)
    cv2.putText(
        canvas,
        text,
        (left + 1, top + height + 1),
        cv2.FONT_HERSHEY_SIMPLEX,
        FONT_SCALE,
        ink,
        1,
        cv2.LINE_AA,
    )


def draw_marks(
    image: np.ndarray, marks: Sequence[Mark], *, min_side: int = 480, legend: bool = True
) -> np.ndarray:
    """A copy of the BGR `image`, enlarged so its longer side is at least `min_side`, with `marks`
    drawn (misses first, so a detection's tag sits on top) and a legend strip counting each kind."""
    import cv2

    scale = max(1.0, min_side / max(image.shape[:2]))
    canvas = (
        cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        if scale > 1.0
        else image.copy()
    )
    if canvas.ndim == 2:
        canvas = cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR)
    height, width = canvas.shape[:2]
    for mark in sorted(marks, key=lambda m: m.kind != MISS):
        x1, y1, x2, y2 = (float(v) * scale for v in mark.xyxy)
        p1 = (int(np.clip(round(x1), 0, width - 1)), int(np.clip(round(y1), 0, height - 1)))
        p2 = (int(np.clip(round(x2), 0, width - 1)), int(np.clip(round(y2), 0, height - 1)))
        colour = COLOURS[mark.kind]
        if mark.kind == MISS:
            _dashed_rectangle(canvas, p1, p2, colour)
        else:
            cv2.rectangle(canvas, p1, p2, colour, 2, cv2.LINE_AA)
        _label(canvas, mark.label, p1[0], p1[1], colour)
    if not legend:
        return canvas
    strip = np.full((LEGEND_HEIGHT, width, 3), 255, dtype=np.uint8)
    x = 6
    counts = Counter(m.kind for m in marks)
    for kind in COLOURS:
        if not counts[kind]:
            continue
        cv2.rectangle(strip, (x, 6), (x + 12, 18), COLOURS[kind], -1)
        text = f"{LEGEND[kind]} {counts[kind]}"
        cv2.putText(
            strip,
            text,
            (x + 16, 17),
            cv2.FONT_HERSHEY_SIMPLEX,
            FONT_SCALE,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
        x += 16 + cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, FONT_SCALE, 1)[0][0] + 14
    if not marks:
        cv2.putText(
            strip,
            "no boxes",
            (6, 17),
            cv2.FONT_HERSHEY_SIMPLEX,
            FONT_SCALE,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
    return np.vstack([canvas, strip])


def shrink(image: np.ndarray, max_side: int) -> np.ndarray:
    """`image` scaled down (never up) so its longer side is at most `max_side`."""
    import cv2

    scale = max_side / max(image.shape[:2])
    if scale >= 1.0:
        return image
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def encode_jpeg(image: np.ndarray, quality: int = 88) -> bytes:
    """JPEG bytes of a BGR array (deterministic for the same pixels and OpenCV build)."""
    import cv2

    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("OpenCV could not encode the image as JPEG")
    return data.tobytes()
