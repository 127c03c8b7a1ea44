"""Crops from true boxes (jittered like a detector's) and from detections, through one cutter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.conftest import make_dataset

from vigil.detection.types import ImageDetections
from vigil.errors import VigilError
from vigil.sku.crops import (
    NO_JITTER,
    Jitter,
    crops_of_items,
    cut_crops,
    detection_crops,
    jitter_boxes,
    truth_items,
)


def test_jitter_is_seeded_and_bounded() -> None:
    boxes = np.array([[10.0, 10.0, 30.0, 50.0]] * 200)
    jitter = Jitter(scale=0.2, shift=0.1)
    a = jitter_boxes(boxes, jitter, np.random.default_rng(3))
    assert np.array_equal(a, jitter_boxes(boxes, jitter, np.random.default_rng(3)))
    assert not np.array_equal(a, jitter_boxes(boxes, jitter, np.random.default_rng(4)))
    w, h = a[:, 2] - a[:, 0], a[:, 3] - a[:, 1]
    assert w.min() >= 20 * 0.8 - 1e-9 and w.max() <= 20 * 1.2 + 1e-9 and h.max() <= 40 * 1.2 + 1e-9
    cx = (a[:, 0] + a[:, 2]) / 2
    assert np.abs(cx - 20).max() <= 0.1 * 20 + 1e-9 and np.abs(cx - 20).std() > 0.5
    assert np.array_equal(jitter_boxes(boxes, NO_JITTER, np.random.default_rng(0)), boxes)
    with pytest.raises(VigilError, match="jitter"):
        Jitter(1.5, 0.0)


def test_cut_crops_clips_and_resizes() -> None:
    image = np.zeros((40, 60, 3), dtype=np.uint8)
    image[10:20, 30:40] = (255, 0, 0)
    crops = cut_crops(image, [[30, 10, 40, 20], [-50, -50, 5, 5], [59.5, 39.5, 90, 90]], 16)
    assert crops.shape == (3, 16, 16, 3) and crops.dtype == np.uint8
    assert (crops[0][..., 0] == 255).all() and (crops[1] == 0).all()
    dets = ImageDetections([[30, 10, 40, 20]], [0.9], [0])
    assert np.array_equal(detection_crops(image, dets, 16), crops[:1])


def test_truth_items_take_the_sku_from_the_manifest(tmp_path: Path) -> None:
    root = make_dataset(
        tmp_path / "ds", n=3, record=lambda i: {"objects": {"sku": [f"s{i}", "s9"]}}
    )
    items = truth_items(root, ["images/000.png", "images/001.png"], "sku")
    assert [i.sku for i in items] == ["s0", "s9", "s1", "s9"]
    assert items[0].box == pytest.approx(
        (0.25 * 64 - 6.4, 0.5 * 48 - 7.2, 0.25 * 64 + 6.4, 0.5 * 48 + 7.2)
    )
    by_class = truth_items(root, ["images/000.png"], None)
    assert [i.sku for i in by_class] == ["tshirt", "trouser"]
    crops = crops_of_items(root, items, 24, Jitter(0.1, 0.1), np.random.default_rng(0))
    assert crops.shape == (4, 24, 24, 3) and crops.std() > 0


def test_a_sku_list_of_the_wrong_length_names_the_field(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "ds", n=2, record=lambda i: {"objects": {"sku": ["only-one"]}})
    with pytest.raises(VigilError, match=r"objects.sku is not a list of 2 SKU names") as err:
        truth_items(root, ["images/000.png"], "sku")
    assert "images/000.png" in str(err.value)
