"""Range estimation's library: the pinhole formula, units, the fit, the camera, the depth sampling."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from range_helpers import tiny_depth_model
from vigil.data.distance import DistanceParams
from vigil.errors import VigilError
from vigil.params import build
from vigil.range.camera import camera_for
from vigil.range.depth import disparity_map, load_depth_model, sample_boxes
from vigil.range.estimators import GeometricEstimator, Sighting, class_heights
from vigil.range.fit import IDENTITY, InverseAffine, fit_inverse_affine
from vigil.range.geometric import geometric_range
from vigil.range.known import known_distances
from vigil.range.params import Camera
from vigil.range.score import range_errors

CAMERA = Camera(fx=800.0, fy=800.0, cx=160.0, cy=120.0, width=320, height=240)


def test_the_pinhole_range_is_exact() -> None:
    # a 1.75 m person 56 px tall at fy 800 px: 800 * 1.75 / 56 = 25 m
    assert geometric_range(np.array([56.0]), np.array([1.75]), 800.0)[0] == pytest.approx(25.0)
    estimator = GeometricEstimator(class_heights(["person", "car"], {"person": 1.75, "car": 1.5}))
    boxes = np.array([[10, 20, 30, 76], [0, 0, 50, 30]], dtype=float)  # 56 px and 30 px tall
    # the image at half size: fy halves with it, and the boxes are half as tall → the same ranges
    for size, scale in (((320, 240), 1.0), ((160, 120), 0.5)):
        sighting = Sighting(
            *size,
            boxes * scale,
            np.array([0, 1]),
            lambda s=size: CAMERA.scaled_to(*s),
            lambda: np.zeros(0),
        )
        metres = IDENTITY.metres(estimator.signal(sighting))
        np.testing.assert_allclose(metres, [25.0, 40.0])


def test_a_flat_box_or_a_class_without_height_has_no_range() -> None:
    assert np.isnan(geometric_range(np.array([0.0]), np.array([1.0]), 800.0)[0])
    assert np.isnan(geometric_range(np.array([10.0]), np.array([np.nan]), 800.0)[0])


def test_every_class_needs_a_height_and_every_height_a_class() -> None:
    with pytest.raises(VigilError, match="class 'car' has no height"):
        class_heights(["person", "car"], {"person": 1.75})
    with pytest.raises(VigilError, match="'cra' is not a class") as info:
        class_heights(["person", "car"], {"person": 1.75, "car": 1.5, "cra": 1.5})
    assert info.value.field == "range.heights.cra"


def test_yards_are_converted_to_metres_once_on_reading(tmp_path: Path) -> None:
    params = DistanceParams(field="distance", unit="yd", bins=[0, 100, 200], min_images_per_bin=1)
    assert params.bins_m == pytest.approx([0.0, 91.44, 182.88])
    record = {"image": "a.png", "objects": {"distance": [100, None]}}
    got = known_distances(record, 2, params, tmp_path / "manifest.jsonl", 3)
    assert got[0] == pytest.approx(91.44) and np.isnan(got[1])
    metres = DistanceParams(field="distance", unit="m", bins=[0, 100], min_images_per_bin=1)
    assert known_distances(record, 2, metres, tmp_path, 3)[0] == 100.0
    with pytest.raises(VigilError, match="is not a unit"):
        DistanceParams(field="distance", unit="ft", bins=[0, 100], min_images_per_bin=1)
    with pytest.raises(VigilError, match="does not increase"):
        DistanceParams(field="distance", unit="m", bins=[0, 50, 50], min_images_per_bin=1)


def test_a_distance_list_that_does_not_match_the_labels_names_its_line(tmp_path: Path) -> None:
    params = DistanceParams(field="distance", unit="m", bins=[0, 100], min_images_per_bin=1)
    with pytest.raises(VigilError, match="1 distances for 2 label lines") as info:
        known_distances({"objects": {"distance": [5.0]}}, 2, params, tmp_path / "m.jsonl", 7)
    assert info.value.line == 7 and info.value.field == "objects.distance"
    with pytest.raises(VigilError, match="not a positive number") as info:
        known_distances({"objects": {"distance": [-5.0]}}, 1, params, tmp_path / "m.jsonl", 7)
    assert info.value.field == "objects.distance[0]"


def test_the_fit_recovers_a_known_scale_and_shift_despite_outliers() -> None:
    rng = np.random.default_rng(0)
    distance = rng.uniform(5.0, 400.0, 300)
    truth = InverseAffine(scale=1.7, shift=0.002)
    signal = (1.0 / distance - truth.shift) / truth.scale  # what a model would output
    noisy = signal * np.exp(rng.normal(0.0, 0.02, len(signal)))
    noisy[:15] *= 4.0  # mismatched boxes: Huber counts them linearly
    fitted = fit_inverse_affine(noisy, distance, shift=True, epsilon=1.35)
    assert fitted.scale == pytest.approx(1.7, rel=0.03)
    assert fitted.shift == pytest.approx(0.002, rel=0.1)
    exact = fit_inverse_affine(signal, distance, shift=True, epsilon=1.35)
    np.testing.assert_allclose(exact.metres(signal), distance, rtol=1e-6)
    scale_only = fit_inverse_affine(signal * 1.0, 1.0 / (2.0 * signal), shift=False, epsilon=1.35)
    assert scale_only.shift == 0.0 and scale_only.scale == pytest.approx(2.0)


def test_a_mapped_inverse_range_that_is_not_positive_has_no_range() -> None:
    assert np.isnan(InverseAffine(1.0, -1.0).metres(np.array([0.5]))[0])


def test_a_manifest_line_without_intrinsics_and_no_fallback_is_one_clear_error(
    tmp_path: Path,
) -> None:
    record = {"image": "images/a.png", "width": 320, "height": 240}
    with pytest.raises(VigilError) as info:
        camera_for(record, 320, 240, None, tmp_path / "manifest.jsonl")
    assert info.value.field == "intrinsics" and "range.intrinsics" in (info.value.hint or "")
    assert camera_for(record, 160, 120, CAMERA, tmp_path).fy == 400.0  # the fallback, scaled
    own = {**record, "intrinsics": {"fx": 900, "fy": 901.0, "cx": 160, "cy": 120, "camera_id": "L"}}
    assert camera_for(own, 320, 240, CAMERA, tmp_path).fy == 901.0  # the line's own wins
    with pytest.raises(VigilError, match="must hold numbers"):
        camera_for({**record, "intrinsics": {"fx": 1}}, 320, 240, CAMERA, tmp_path)


def test_params_intrinsics_are_typed(tmp_path: Path) -> None:
    with pytest.raises(VigilError, match="positive"):
        build(
            Camera,
            {"fx": 0, "fy": 1, "cx": 0, "cy": 0, "width": 2, "height": 2},
            "range.intrinsics",
        )


def test_errors_per_distance_bin() -> None:
    truth = np.array([10.0, 20.0, 60.0, 500.0])
    estimate = np.array([11.0, 18.0, np.nan, 400.0])
    scored = range_errors(
        truth * 0 + estimate,
        truth,
        np.array([0, 0, 1, 2]),
        [0, 50, 100],
        ["0-50", "50-100"],
        2,
    )
    assert scored["objects"] == 4 and scored["no_estimate"] == 1
    assert scored["mae_m"] == pytest.approx((1 + 2 + 100) / 3)
    near = scored["per_bin"]["0-50"]
    assert (
        near["mae_m"] == 1.5
        and near["mean_abs_pct"] == 10.0
        and near["images"] == 1
        and near["thin"]
    )
    assert scored["per_bin"]["50-100"]["no_estimate"] == 1


def test_depth_anything_loads_from_a_folder_and_is_sampled_in_the_box(tmp_path: Path) -> None:
    folder = tiny_depth_model(tmp_path / "depth model")
    model = load_depth_model(folder)
    image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    disparity = disparity_map(model, image, 56)
    assert disparity.shape == (48, 64) and np.isfinite(disparity).all()
    assert np.ptp(disparity) > 0  # the lifted head: a real map, not zeros
    box = np.array([[8.0, 8.0, 40.0, 40.0]])
    assert sample_boxes(disparity, box, 0.5)[0] == pytest.approx(np.median(disparity[16:32, 16:32]))
    assert np.isnan(sample_boxes(disparity, np.array([[70.0, 50.0, 80.0, 60.0]]), 0.5)[0])


def test_a_folder_without_a_depth_model_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(VigilError, match="no Depth Anything model here"):
        load_depth_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "depth_anything"}))
    with pytest.raises(VigilError, match="cannot load a Depth Anything model"):
        load_depth_model(tmp_path)
