"""COCO metrics on hand-made boxes whose answers are worked out by hand (COCO's 101-point AP, IoU .50:.05:.95)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from vigil.detection.boxes import box_iou
from vigil.detection.types import ImageDetections, ImageTruth
from vigil.metrics.coco import coco_detections, coco_ground_truth, evaluate_coco

BOX = [100.0, 50.0, 200.0, 150.0]  # 100 x 100 px: COCO "large" (area 10000 >= 96²)
NAMES = ["cat", "dog"]


def truth(
    boxes: list[list[float]], classes: list[int], image: str = "a.jpg", **record: str
) -> ImageTruth:
    return ImageTruth(image, 320, 240, boxes, classes, record)


def dets(boxes: list[list[float]], scores: list[float], classes: list[int]) -> ImageDetections:
    return ImageDetections(boxes, scores, classes)


def shifted(box: list[float], dx: float) -> list[float]:
    return [box[0] + dx, box[1], box[2] + dx, box[3]]


def test_perfect_prediction_scores_one_everywhere() -> None:
    boxes = [
        BOX,
        [10, 10, 30, 30],
        [200, 150, 250, 200],
    ]  # sides 100 (large), 20 (small), 50 (medium)
    t = [truth(boxes, [0, 1, 1])]
    d = [dets(boxes, [0.9, 0.8, 0.7], [0, 1, 1])]
    m = evaluate_coco(
        t, d, NAMES, size_buckets={"tiny": (0, 16.0**2), "mid": (16.0**2, 64.0**2)}
    ).metrics
    assert m["map50_95"] == m["map50"] == m["recall"] == m["recall50"] == 1.0
    assert m["per_class"] == {
        "cat": {"ap50_95": 1.0, "ap50": 1.0, "boxes": 1},
        "dog": {"ap50_95": 1.0, "ap50": 1.0, "boxes": 2},
    }
    assert {k: (v["map50_95"], v["boxes"]) for k, v in m["per_size"].items()} == {
        "coco_small": (1.0, 1),
        "coco_medium": (1.0, 1),
        "coco_large": (1.0, 1),
        "tiny": (None, 0),  # a 20 px box is not tiny: no true box in range → null
        "mid": (1.0, 2),
    }


# A 100 px square shifted by dx along x has IoU (100 - dx) / (100 + dx). At each COCO threshold
# .50, .55, …, .95 one detection on one box gives AP 1 (matched) or 0 (not): AP@[.5:.95] is the
# share of thresholds <= IoU. IoUs are chosen away from the thresholds (float ties).
@pytest.mark.parametrize(
    ("dx", "iou", "ap50_95", "ap50"),
    [
        (2, 98 / 102, 1.0, 1.0),  # 0.961: all ten thresholds
        (16, 84 / 116, 0.5, 1.0),  # 0.724: .50 .55 .60 .65 .70 → 5/10
        (20, 80 / 120, 0.4, 1.0),  # 0.667: .50 .55 .60 .65 → 4/10
        (30, 70 / 130, 0.1, 1.0),  # 0.538: .50 only → 1/10
        (40, 60 / 140, 0.0, 0.0),  # 0.429: below .50 → a false positive and a miss
    ],
)
def test_shifted_box_gives_the_iou_dependent_ap(
    dx: float, iou: float, ap50_95: float, ap50: float
) -> None:
    assert box_iou(np.array([BOX]), np.array([shifted(BOX, dx)]))[0, 0] == pytest.approx(iou)
    m = evaluate_coco([truth([BOX], [0])], [dets([shifted(BOX, dx)], [0.9], [0])], NAMES).metrics
    assert m["map50_95"] == pytest.approx(ap50_95, abs=1e-6)
    assert m["map50"] == pytest.approx(ap50, abs=1e-6)
    assert m["recall"] == pytest.approx(
        ap50_95, abs=1e-6
    )  # one box: AR = share of thresholds matched too


def test_half_recall_is_51_of_101_points_not_one_half() -> None:
    """Two boxes, one found (precision 1): COCO samples precision at recall 0, .01, …, 1.00 → 51 of 101 ones."""
    m = evaluate_coco(
        [truth([BOX, [10, 10, 40, 40]], [0, 0])], [dets([BOX], [0.9], [0])], NAMES
    ).metrics
    assert m["map50"] == pytest.approx(51 / 101, abs=1e-6)  # 0.504950
    assert m["map50_95"] == pytest.approx(51 / 101, abs=1e-6)
    assert m["recall"] == pytest.approx(0.5)


def test_ranking_matters_a_false_positive_above_the_hit_halves_ap() -> None:
    far = [250.0, 150.0, 300.0, 200.0]
    t = [truth([BOX], [0])]
    fp_first = evaluate_coco(t, [dets([far, BOX], [0.9, 0.8], [0, 0])], NAMES).metrics
    hit_first = evaluate_coco(t, [dets([far, BOX], [0.7, 0.8], [0, 0])], NAMES).metrics
    assert fp_first["map50"] == pytest.approx(0.5, abs=1e-6)  # precision 1/2 once recall reaches 1
    assert hit_first["map50"] == 1.0  # the late false positive costs nothing


def test_missed_class_shows_in_per_class_ap_while_the_other_stays_one() -> None:
    t = [truth([BOX, [10, 10, 40, 40]], [0, 1])]
    d = [dets([BOX, [10, 10, 40, 40]], [0.9, 0.8], [0, 0])]  # the dog is called a cat
    m = evaluate_coco(t, d, NAMES).metrics
    assert m["per_class"]["cat"]["ap50"] == 1.0  # the extra cat ranks below the true one
    assert m["per_class"]["dog"] == {"ap50_95": 0.0, "ap50": 0.0, "boxes": 1}
    assert m["map50"] == pytest.approx(0.5)


def test_class_without_true_boxes_is_null_and_left_out_of_the_mean() -> None:
    d = [dets([BOX, [250, 10, 300, 60]], [0.9, 0.95], [0, 1])]  # a dog where there is none
    m = evaluate_coco([truth([BOX], [0])], d, NAMES).metrics
    assert m["per_class"]["dog"] == {
        "ap50_95": None,
        "ap50": None,
        "boxes": 0,
    }  # pycocotools says -1
    assert m["map50_95"] == 1.0


def test_stratum_counts_only_its_own_images() -> None:
    t = [
        truth([BOX], [0], "a.jpg", stream="cctv", driver_id="d1"),
        truth([BOX], [0], "b.jpg", stream="stills", driver_id="d2"),
    ]
    d = [
        dets([BOX], [0.9], [0]),
        dets([], [], []),
    ]  # found in the cctv image, missed in the stills one
    m = evaluate_coco(t, d, NAMES, strata=["stream"], groups=["driver_id"]).metrics
    assert m["per_stratum"]["stream"]["cctv"] == {
        "map50_95": 1.0,
        "map50": 1.0,
        "images": 1,
        "boxes": 1,
    }
    assert m["per_stratum"]["stream"]["stills"] == {
        "map50_95": 0.0,
        "map50": 0.0,
        "images": 1,
        "boxes": 1,
    }
    assert (
        m["per_group"]["driver_id"]["d1"]["map50"] == 1.0
        and m["per_group"]["driver_id"]["d2"]["map50"] == 0.0
    )
    assert m["map50"] == pytest.approx(51 / 101, abs=1e-6)  # both images: one of two boxes


def test_size_bucket_counts_only_its_objects() -> None:
    tiny, large = [10.0, 10.0, 20.0, 20.0], BOX  # 10 px (area 100) and 100 px sides
    fp_large = [200.0, 130.0, 300.0, 230.0]  # a large false positive ranked first
    t = [truth([tiny, large], [0, 0])]
    d = [dets([fp_large, tiny], [0.95, 0.9], [0, 0])]  # the tiny box found, the large one missed
    buckets = {"tiny": (0.0, 16.0**2), "xlarge": (96.0**2, 1e10)}
    m = evaluate_coco(t, d, NAMES, size_buckets=buckets).metrics
    size = m["per_size"]
    assert size["tiny"] == {
        "map50_95": 1.0,
        "map50": 1.0,
        "boxes": 1,
    }  # large FP is outside the range: ignored
    assert size["coco_small"]["map50"] == 1.0
    assert size["xlarge"] == {"map50_95": 0.0, "map50": 0.0, "boxes": 1}
    assert size["coco_large"]["map50"] == 0.0
    assert size["coco_medium"] == {"map50_95": None, "map50": None, "boxes": 0}
    # all sizes: the FP ranks first, then the hit at recall 1/2 with precision 1/2 → 51 points of 0.5
    assert m["map50"] == pytest.approx(0.5 * 51 / 101, abs=1e-6)


def test_empty_inputs_give_zero_or_null_never_minus_one() -> None:
    none = evaluate_coco([truth([BOX], [0])], [dets([], [], [])], NAMES).metrics
    assert (
        none["map50_95"] == 0.0
        and none["recall"] == 0.0
        and none["per_class"]["cat"]["ap50"] == 0.0
    )
    blank = truth([], [], "blank.jpg")
    with_blank = evaluate_coco(
        [truth([BOX], [0]), blank], [dets([BOX], [0.9], [0]), dets([], [], [])], NAMES
    )
    assert (
        with_blank.metrics["map50_95"] == 1.0
    )  # an image with no box and no detection changes nothing
    fp_on_blank = evaluate_coco(
        [truth([BOX], [0]), blank], [dets([BOX], [0.8], [0]), dets([BOX], [0.9], [0])], NAMES
    )
    assert fp_on_blank.metrics["map50"] == pytest.approx(
        0.5, abs=1e-6
    )  # a detection on a blank image is an FP
    nothing = evaluate_coco([blank], [dets([], [], [])], NAMES, strata=["stream"]).metrics
    assert nothing["map50_95"] is None and nothing["recall"] is None
    assert nothing["per_stratum"]["stream"] == {
        "(missing)": {"map50_95": None, "map50": None, "images": 1, "boxes": 0}
    }
    assert "-1" not in json.dumps([none, with_blank.metrics, nothing])
    assert evaluate_coco([], [], NAMES).metrics["map50_95"] is None


def test_pr_curve_at_iou50_comes_from_cocoeval() -> None:
    report = evaluate_coco(
        [truth([BOX, [10, 10, 40, 40]], [0, 0])], [dets([BOX], [0.9], [0])], NAMES
    )
    assert report.pr50.shape == (2, 101)
    assert (report.pr50[0, :51] == pytest.approx(1.0)) and (report.pr50[0, 51:] == 0).all()
    assert (report.pr50[1] == -1).all()  # no dog: no curve
    assert report.recall_thresholds[50] == pytest.approx(0.5)


def test_coco_ids_start_at_one() -> None:
    """pycocotools reads a match as the partner's id by truthiness: id 0 would be 'unmatched'."""
    gt = coco_ground_truth([truth([BOX], [0])], NAMES)
    dt = coco_detections([dets([BOX], [0.9], [0])])
    assert gt["images"][0]["id"] == gt["annotations"][0]["id"] == dt[0]["id"] == 1
    assert gt["annotations"][0]["bbox"] == [100.0, 50.0, 100.0, 100.0] and math.isclose(
        gt["annotations"][0]["area"], 1e4
    )


def test_mismatched_lengths_are_refused() -> None:
    with pytest.raises(ValueError):
        evaluate_coco([truth([BOX], [0])], [], NAMES)
