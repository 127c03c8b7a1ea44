"""The one drawing module: each kind in its own colour, misses dashed, a legend, hostile bytes refused."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vigil.detection.draw import (
    COLOURS,
    FP,
    LEGEND_HEIGHT,
    MISS,
    TP,
    Mark,
    decode_image,
    draw_marks,
    encode_jpeg,
    shrink,
)


def _has(canvas: np.ndarray, colour: tuple[int, int, int], region: tuple[slice, slice]) -> int:
    return int((np.abs(canvas[region].astype(int) - colour).sum(axis=2) < 30).sum())


def test_each_kind_is_drawn_in_its_colour_on_an_enlarged_copy() -> None:
    image = np.full((48, 64, 3), 128, dtype=np.uint8)
    marks = [
        Mark((4, 4, 20, 20), TP, "bag 0.91"),
        Mark((30, 4, 60, 20), FP, "tshirt 0.40"),
        Mark((4, 28, 30, 44), MISS, "trouser"),
    ]
    canvas = draw_marks(image, marks, min_side=640)
    assert image.max() == 128  # the input is not drawn on
    scale = 10.0
    assert canvas.shape == (480 + LEGEND_HEIGHT, 640, 3)
    # each box's left edge carries its own colour, and no other box's colour
    for mark in marks:
        x1, y1, _, y2 = (int(v * scale) for v in mark.xyxy)
        column = (slice(y1 + 30, y2 - 5), slice(x1 - 2, x1 + 3))
        assert _has(canvas, COLOURS[mark.kind], column) > 0, mark.kind
        for other in {TP, FP, MISS} - {mark.kind}:
            assert _has(canvas, COLOURS[other], column) == 0, (mark.kind, other)
    # the miss is dashed: its left edge has gaps; a detection's is solid
    miss_edge = _has(canvas, COLOURS[MISS], (slice(300, 430), slice(38, 43)))
    tp_edge = _has(canvas, COLOURS[TP], (slice(60, 190), slice(38, 43)))
    assert 0 < miss_edge < 0.8 * tp_edge
    legend = canvas[480:]
    for kind in (TP, FP, MISS):
        assert _has(legend, COLOURS[kind], (slice(None), slice(None))) > 20


def test_no_marks_still_draws_a_legend_and_unknown_kinds_fail() -> None:
    canvas = draw_marks(np.zeros((10, 10, 3), np.uint8), [], min_side=100)
    assert canvas.shape == (100 + LEGEND_HEIGHT, 100, 3) and canvas[100:].min() < 100  # "no boxes"
    assert draw_marks(np.zeros((10, 10, 3), np.uint8), [], legend=False, min_side=10).shape == (
        10,
        10,
        3,
    )
    with pytest.raises(ValueError, match="unknown mark kind"):
        Mark((0, 0, 1, 1), "wrong")


def test_decode_refuses_garbage_and_oversized_headers() -> None:
    ok, png = cv2.imencode(".png", np.zeros((40, 30, 3), np.uint8))
    assert ok
    assert decode_image(png.tobytes(), 100).shape == (40, 30, 3)
    assert decode_image(png.tobytes(), 35) is None  # a side above the limit
    assert decode_image(b"", 100) is None and decode_image(b"garbage", 100) is None
    big = np.zeros((1, 1), np.uint8)
    ok, data = cv2.imencode(".png", big)
    header = bytearray(data.tobytes())
    header[16:24] = (100000).to_bytes(4, "big") + (100000).to_bytes(4, "big")  # IHDR claims 1e5²
    assert decode_image(bytes(header), 8192) is None


def test_shrink_and_jpeg() -> None:
    image = np.zeros((400, 200, 3), np.uint8)
    assert shrink(image, 100).shape == (100, 50, 3) and shrink(image, 1000) is image
    data = encode_jpeg(image)
    assert data[:2] == b"\xff\xd8" and encode_jpeg(image) == data
