"""Distance: the unit converted once, bins, mAP per bin by COCO's size rule, validate's checks, and the
sample's physically consistent distances."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from vigil.data.checks import check_dataset
from vigil.data.distance import DistanceParams, object_distances
from vigil.detection.types import ImageDetections, ImageTruth
from vigil.errors import VigilError
from vigil.metrics.distance import ap_by_distance
from vigil.params import ValidateParams, load_section

REPO = Path(__file__).resolve().parents[1]
PARAMS = load_section(REPO / "params.yaml", "distance", DistanceParams)
METRES = DistanceParams(field="distance", unit="m", bins=[0, 50], min_images_per_bin=1)
NAMES = ["car", "person"]


def test_yards_are_converted_once_and_bins_follow_the_unit() -> None:
    yards = DistanceParams(field="range", unit="yd", bins=[0, 100, 300], min_images_per_bin=20)
    record = {"image": "a.jpg", "objects": {"range": [50, 100, None, 1000]}}
    metres = object_distances(record, yards, 4)
    np.testing.assert_allclose(metres[[0, 1, 3]], [45.72, 91.44, 914.4])
    assert np.isnan(metres[2])
    assert yards.labels() == ["0-100yd", "100-300yd", "300yd+"]
    assert yards.bin_index(metres).tolist() == [0, 1, -1, 2]  # an edge opens its bin; NaN: none
    half = DistanceParams(field="d", unit="m", bins=[0, 12.5], min_images_per_bin=0)
    assert half.labels() == ["0-12_5m", "12_5m+"]  # a gate's dotted path can name it


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"unit": "ft"}, "unit"),
        ({"bins": [0, 50, 50]}, "bins"),
        ({"bins": []}, "bins"),
        ({"bins": [-1, 5]}, "bins"),
        ({"field": " "}, "field"),
        ({"min_images_per_bin": -1}, "min_images_per_bin"),
    ],
)
def test_bad_distance_params_are_refused_naming_the_key(changes: dict, field: str) -> None:
    with pytest.raises(VigilError) as caught:
        replace(PARAMS, **changes)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ([10.0], "1 values for 2 label lines"),
        ([10.0, -3], "is not a distance"),
        ("far", "not a list"),
    ],
)
def test_a_broken_distance_list_is_one_clear_error(values: object, fragment: str) -> None:
    with pytest.raises(VigilError, match=fragment) as caught:
        object_distances({"image": "a.jpg", "objects": {"distance": values}}, METRES, 2)
    assert "a.jpg" in str(caught.value) and caught.value.field == "objects.distance"


NEAR, FAR, NONE = [10.0, 10.0, 50.0, 50.0], [200.0, 100.0, 220.0, 120.0], [100.0, 10.0, 140.0, 50.0]


def scene(distances: list[float | None]) -> ImageTruth:
    record = {"image": "a.jpg", "objects": {"distance": distances}}
    return ImageTruth("a.jpg", 320, 240, [NEAR, FAR, NONE], [0, 0, 0], record)


def test_map_per_bin_judges_each_box_in_its_own_bin() -> None:
    """Near box found, far box missed, one false positive on empty ground, and a box without a
    distance found: near bin AP50 1.0 but for the FP; far bin 0; the box without distance in neither."""
    truth = scene([12.0, 80.0, None])
    dets = ImageDetections([NEAR, NONE, [250.0, 200.0, 300.0, 230.0]], [0.9, 0.8, 0.1], [0, 0, 0])
    per = ap_by_distance([truth], [dets], NAMES, METRES, max_det=100)
    assert per["0-50m"]["boxes"] == 1 and per["50m+"]["boxes"] == 1
    assert (
        per["0-50m"]["map50"] == 1.0
    )  # the FP scores below the hit: precision stays 1 up to recall 1
    assert per["50m+"]["map50"] == 0.0 and per["50m+"]["recall50"] == 0.0
    # the detection of the box without a distance is ignored in both bins, not a false positive
    top_fp = ImageDetections([[250.0, 200.0, 300.0, 230.0], NEAR], [0.95, 0.9], [0, 0])
    assert ap_by_distance([truth], [top_fp], NAMES, METRES, max_det=100)["0-50m"]["map50"] < 0.6


def test_a_detection_of_a_box_in_another_bin_is_not_a_false_positive_here() -> None:
    truth = scene([12.0, 80.0, 30.0])
    dets = ImageDetections(
        [FAR, NEAR, NONE], [0.99, 0.9, 0.8], [0, 0, 0]
    )  # the far hit scores highest
    per = ap_by_distance([truth], [dets], NAMES, METRES, max_det=100)
    assert per["0-50m"]["map50"] == 1.0 and per["0-50m"]["boxes"] == 2
    assert per["50m+"]["map50"] == 1.0


def _dataset_with_distances(root: Path, values: list[list[float]]) -> Path:
    from conftest import make_dataset

    make_dataset(root)
    lines = (root / "manifest.jsonl").read_text().splitlines()
    out = []
    for n, line in enumerate(lines):
        record = json.loads(line)
        label = root / record["image"].replace("images/", "labels/").rsplit(".", 1)[0]
        boxes = len(Path(f"{label}.txt").read_text().splitlines())
        record["objects"] = {"distance": (values[n % len(values)] * boxes)[:boxes]}
        out.append(json.dumps(record))
    (root / "manifest.jsonl").write_text("\n".join(out) + "\n")
    return root


def test_validate_checks_distance_values_and_coverage_per_bin(tmp_path: Path) -> None:
    validate = replace(
        load_section(REPO / "params.yaml", "validate", ValidateParams),
        min_per_class=1,
        min_per_stratum=1,
    )
    root = _dataset_with_distances(tmp_path / "ds", [[10.0], [80.0]])
    report = check_dataset(root, validate, distance=METRES)
    assert report.passed and not report.findings, [f.render() for f in report.findings]
    bins = {r["value"]: r["count"] for r in report.coverage if r["kind"] == "distance"}
    assert bins == {"0-50m": 6, "50m+": 6}
    thin = check_dataset(root, validate, distance=replace(METRES, min_images_per_bin=7))
    assert {f.rule for f in thin.findings} == {"coverage_distance"}
    lines = (root / "manifest.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["objects"]["distance"] = ["far"] * len(first["objects"]["distance"])
    (root / "manifest.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    broken = check_dataset(root, validate, distance=METRES)
    (bad,) = [f for f in broken.findings if f.rule == "distance_value"]
    assert not broken.passed and bad.line == 1 and bad.field == "objects.distance"


def test_the_sample_distance_is_what_true_size_and_focal_length_imply() -> None:
    from vigil.data.sample import CAMERA_FOCAL_PX, TRUE_SIZE_M, SampleSpec, camera, compose_image

    rng = np.random.default_rng(3)
    fm_images = rng.integers(0, 255, size=(40, 28, 28)).astype(np.uint8)
    fm_images[:, :4] = 0  # a dark border: tight_item crops it, as on real products
    pool = {fm: list(range(40)) for fm in TRUE_SIZE_M}
    spec = SampleSpec(negative_fraction=0.0)
    background = np.zeros((spec.height, spec.width, 3), dtype=np.uint8)
    ids = {fm: i for i, fm in enumerate(TRUE_SIZE_M)}
    names = {i: fm for fm, i in ids.items()}
    seen = 0
    for _ in range(10):
        _, boxes, distances = compose_image(background, pool, fm_images, ids, spec, rng)
        assert len(boxes) == len(distances)
        for box, metres in zip(boxes, distances, strict=True):
            side = max(box.w * spec.width, box.h * spec.height)
            assert metres == pytest.approx(
                CAMERA_FOCAL_PX * TRUE_SIZE_M[names[box.cls]] / side, abs=0.01
            )
            seen += 1
    assert seen > 10
    assert camera(spec) == {"fx": CAMERA_FOCAL_PX, "fy": CAMERA_FOCAL_PX, "cx": 160.0, "cy": 120.0}
