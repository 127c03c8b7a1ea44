"""Distill stage on tiny models and data made here: pseudo-labels, their quality, an independent control, a run."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from contract.pipeline import resolved_stages
from repo_params import write_params
from vigil.detection.types import ImageDetections, ImageTruth
from vigil.errors import VigilError
from vigil.models.distill import (
    DistillParams,
    DistillPaths,
    control_job,
    label_quality,
    load_distill_params,
    pseudo_label_text,
    student_inits,
    student_job,
    truth_path,
)
from vigil.models.yolo import configure_ultralytics

CLASSES = ["square", "disc"]


@pytest.fixture(scope="module", autouse=True)
def ultralytics_here(tmp_path_factory: pytest.TempPathFactory) -> None:
    configure_ultralytics(tmp_path_factory.mktemp("ultralytics-settings"))


# --- pure parts -----------------------------------------------------------------------------------------


def test_pseudo_labels_keep_only_confident_boxes_in_yolo_form() -> None:
    dets = ImageDetections(
        [[0, 0, 50, 100], [10, 10, 20, 20], [150, 50, 250, 150]], [0.9, 0.2, 0.25], [1, 0, 0]
    )
    text = pseudo_label_text(dets, 200, 100, conf=0.25)
    rows = [line.split() for line in text.splitlines()]
    assert [r[0] for r in rows] == ["1", "0"]  # the 0.2 box is dropped, 0.25 (= threshold) kept
    assert [float(v) for v in rows[0][1:]] == pytest.approx([0.125, 0.5, 0.25, 1.0])
    assert [float(v) for v in rows[1][1:]] == pytest.approx(
        [0.875, 0.75, 0.25, 0.5]
    )  # clipped to 200 x 100
    assert (
        pseudo_label_text(dets, 200, 100, conf=0.95) == ""
    )  # nothing confident: a background image


def test_label_quality_on_a_hand_case() -> None:
    truth = ImageTruth(
        "images/pool/a.jpg",
        100,
        100,
        [[0, 0, 20, 20], [50, 50, 90, 90], [0, 60, 10, 70]],
        [0, 1, 0],
    )
    dets = ImageDetections(
        [
            [0, 0, 20, 20],  # exact: correct
            [50, 50, 90, 70],  # IoU 0.5 with the class-1 box: correct at 0.5
            [0, 60, 10, 70],  # right box, wrong class: wrong
            [80, 0, 99, 10],  # nothing there: wrong
            [0, 0, 20, 20],
        ],  # below the threshold: not a label
        [0.9, 0.8, 0.7, 0.6, 0.1],
        [0, 1, 1, 0, 0],
    )
    q = label_quality([dets], [truth], conf=0.5, iou=0.5, class_names=CLASSES)
    assert (q["labels"], q["correct"], q["true_boxes"]) == (4, 2, 3)
    assert q["precision"] == 0.5 and q["recall"] == pytest.approx(2 / 3, abs=1e-4)
    strict = label_quality([dets], [truth], conf=0.5, iou=0.51, class_names=CLASSES)
    assert strict["correct"] == 1  # the half-overlapping box no longer counts
    perfect = ImageDetections(truth.boxes, [0.9, 0.9, 0.9], truth.classes)
    best = label_quality([perfect], [truth], conf=0.5, iou=0.5, class_names=CLASSES)
    assert best["precision"] == best["recall"] == 1.0 and best["map50"] == pytest.approx(1.0)


def test_truth_path_maps_images_to_pool_truth(tmp_path: Path) -> None:
    assert truth_path(tmp_path, "images/pool/000001.jpg") == tmp_path / "pool" / "000001.txt"


def test_params_are_train_overlaid_by_distill_overrides(tmp_path: Path) -> None:
    path = write_params(
        tmp_path,
        {
            "seed": 3,
            "train.epochs": 5,
            "distill.dis": 2.0,
            "distill.overrides": {"epochs": 2, "augment": {"mosaic": 0.5}},
        },
    )
    params, seed = load_distill_params(path)
    assert (params.model, params.epochs, params.dis, seed) == ("yolov8n.yaml", 2, 2.0, 3)
    assert (
        params.augment.mosaic == 0.5 and params.augment.fliplr == 0.5
    )  # nested keys merged, not replaced
    assert not hasattr(params.train_params(), "dis")
    params, _ = load_distill_params(
        write_params(tmp_path, {"train.epochs": 5, "distill.overrides": {}})
    )
    assert params.epochs == 5  # no override: the teacher's recipe


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"distill.pseudo_confidence": 0.3}, "distill.pseudo_confidence"),
        ({"distill.epochs": 3}, "distill.epochs"),  # a train key belongs under overrides
        ({"distill.pseudo_conf": 0}, "distill.pseudo_conf"),
        ({"distill.init": "pruned"}, "distill.init"),
        ({"distill.overrides": {"epochz": 2}}, "distill.overrides.epochz"),
        ({"distill.overrides": {"model": "yolov8s.yaml"}}, "distill.overrides.model"),
        ({"distill.overrides": {"imgsz": 100}}, "distill.imgsz"),
    ],
)
def test_params_refuse_bad_keys(tmp_path: Path, change: dict, field: str) -> None:
    with pytest.raises(VigilError) as info:
        load_distill_params(write_params(tmp_path, change))
    assert info.value.field == field


def test_init_weights_gives_both_models_the_same_start(tmp_path: Path) -> None:
    inits = student_inits(
        tiny(init="weights"), tmp_path / "t.pt", tmp_path, Path("models/pretrained/x.pt")
    )
    assert (inits.student, inits.control, dict(inits.pruning)) == (
        "models/pretrained/x.pt",
    ) * 2 + ({},)


def test_the_control_owes_nothing_to_the_teacher(tmp_path: Path) -> None:
    params = tiny(dis=6.0)
    lists = {"train": ["images/lab/0.png", "images/lab/1.png"], "val": ["images/lab/2.png"]}
    pool = ["images/pool/0.png"]
    labels = {"images/pool/0.png": "0 0.5 0.5 0.2 0.2\n"}
    teacher = tmp_path / "teacher.pt"
    student = student_job(params, lists, pool, labels, teacher, None)
    control = control_job(params, lists, None)
    assert student.extra_args == {"distill_model": str(teacher.resolve()), "dis": 6.0}
    assert student.lists["train"] == [*lists["train"], *pool] and student.labels == labels
    assert control.extra_args == {} and control.labels == {}
    assert control.lists == lists and not any(
        "pool" in r for items in control.lists.values() for r in items
    )
    assert "teacher" not in repr(control)
    assert control.params == student.params  # same yaml, init, epochs, imgsz, …
    assert (
        student_job(tiny(dis=0.0), lists, [], {}, teacher, None).extra_args == {}
    )  # pseudo-labels only


# --- a tiny run ---------------------------------------------------------------------------------------------


def draw(root: Path, rel: str, i: int, rng: np.random.Generator, size: int = 64) -> str:
    image = rng.integers(0, 60, size=(size, size, 3), dtype=np.uint8)
    x, y, s = (
        int(rng.integers(4, size // 2)),
        int(rng.integers(4, size // 2)),
        int(rng.integers(12, size // 2 - 2)),
    )
    if i % 2 == 0:
        cv2.rectangle(image, (x, y), (x + s, y + s), (255, 255, 255), -1)
    else:
        cv2.circle(image, (x + s // 2, y + s // 2), s // 2, (0, 255, 255), -1)
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / rel), image)
    c = (x + s / 2) / size, (y + s / 2) / size, s / size
    return f"{i % 2} {c[0]:.4f} {c[1]:.4f} {c[2]:.4f} {c[2]:.4f}\n"


def make_dataset(root: Path) -> Path:
    """8 labelled images (6 train, 2 val), 4 unlabelled pool images whose truth sits outside the dataset."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    (root / "classes.txt").write_text("".join(c + "\n" for c in CLASSES))
    lab = [f"images/lab/{i:03d}.png" for i in range(8)]
    for i, rel in enumerate(lab):
        label = root / rel.replace("images/", "labels/").replace(".png", ".txt")
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text(draw(root, rel, i, rng))
    pool = [f"images/pool/{i:03d}.png" for i in range(4)]
    for i, rel in enumerate(pool):
        (root.parent / "pool_truth" / "pool").mkdir(parents=True, exist_ok=True)
        (root.parent / "pool_truth" / "pool" / f"{i:03d}.txt").write_text(draw(root, rel, i, rng))
    split = root.parent / "split"
    split.mkdir()
    for name, items in (("train", lab[:6]), ("val", lab[6:]), ("pool", pool)):
        (split / f"{name}.txt").write_text("".join(r + "\n" for r in items))
    return root


def tiny(**changes: object) -> DistillParams:
    """params.yaml's distill recipe shrunk to a seconds-long run (changes on top)."""
    params, _ = load_distill_params(REPO / "params.yaml")
    augment = replace(params.augment, mosaic=0.0, close_mosaic=0, albumentations=[])
    base = dict(
        epochs=1,
        imgsz=64,
        batch=4,
        nbs=4,
        workers=0,
        warmup_epochs=0.0,
        optimizer="SGD",
        lr0=0.01,
        pseudo_conf=0.001,
        init="weights",  # the tiny teacher is a yolov8n already: nothing to prune
        augment=augment,
    )
    return replace(params, **{**base, **changes})


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The dataset and a 1-epoch tiny teacher trained on it (yolov8n at imgsz 64)."""
    from vigil.models.train import TrainPaths, train_detector

    base = tmp_path_factory.mktemp("distill world")  # a space on purpose
    data = make_dataset(base / "data")
    teacher = base / "models" / "teacher" / "best.pt"
    train_detector(
        tiny().train_params(),
        0,
        TrainPaths(
            data,
            base / "split",
            base / "runs" / "teacher",
            teacher,
            base / "teacher.json",
            base / "plots" / "teacher",
            None,
        ),
    )
    return data, teacher


def distill_paths(data: Path, teacher: Path, ws: Path) -> DistillPaths:
    return DistillPaths(
        data=data,
        split=data.parent / "split",
        pool_truth=data.parent / "pool_truth",
        teacher=teacher,
        pretrained=None,
        student=ws / "models/student/best.pt",
        control=ws / "models/control/best.pt",
        metrics=ws / "metrics/distill.json",
        live=ws / "plots/distill",
        run_dir=ws / "runs",
    )


@pytest.mark.trains
def test_a_tiny_distill_run_writes_both_models_and_metrics(
    world: tuple[Path, Path], tmp_path: Path
) -> None:
    from vigil.models.distill import distill
    from vigil.models.yolo import load_checkpoint_dict

    data, teacher = world
    paths = distill_paths(data, teacher, tmp_path)
    metrics = distill(tiny(), 0, paths)

    assert json.loads(paths.metrics.read_text()) == metrics
    assert metrics["pseudo_labels"]["images"] == 4 and metrics["pool_images"] == 4
    assert (
        0 <= metrics["pseudo_labels"]["precision"] <= 1
        and metrics["pseudo_labels"]["true_boxes"] == 4
    )
    for name in ("student", "control"):
        assert metrics[name]["epochs_run"] == 1 and metrics[name]["seconds_per_epoch"] > 0
        assert (paths.live / name / "plots" / "metrics" / "metrics" / "mAP50.tsv").is_file()
        ckpt = load_checkpoint_dict(getattr(paths, name))
        assert (
            "Distillation" not in type(ckpt["model"]).__name__
        )  # a plain student, loadable on its own
        assert str(tmp_path) not in repr(ckpt["train_args"])
    # the control's run saw no pool image, no pseudo-label and no teacher
    control_view = paths.run_dir / "control" / "train" / "dataset"
    assert not (control_view / "images" / "pool").exists()
    assert "pool" not in (control_view / "train.txt").read_text()
    student_view = paths.run_dir / "student" / "train" / "dataset"
    assert "pool" in (student_view / "train.txt").read_text()
    from vigil.models.distill import label_pool

    labels, _ = label_pool(
        teacher, data, [f"images/pool/{i:03d}.png" for i in range(4)], paths.pool_truth, tiny()
    )
    for (
        rel,
        text,
    ) in labels.items():  # the student learns the teacher's labels, never the withheld truth
        assert (
            student_view / rel.replace("images/", "labels/").replace(".png", ".txt")
        ).read_text() == text
    runs = {name: paths.run_dir / name / "train" / "ultralytics" for name in ("student", "control")}
    args = {name: yaml.safe_load((run / "args.yaml").read_text()) for name, run in runs.items()}
    assert (
        args["student"]["distill_model"] == str(teacher.resolve())
        and args["control"]["distill_model"] is None
    )
    assert str(teacher.parent) not in (runs["control"] / "args.yaml").read_text()
    header = {name: (run / "results.csv").read_text().splitlines()[0] for name, run in runs.items()}
    assert (
        "train/dis_loss" in header["student"] and "dis_loss" not in header["control"]
    )  # KD really ran, once
    from ultralytics import YOLO

    assert YOLO(str(paths.student)).names == dict(enumerate(CLASSES))


class Stop(Exception):
    """Stands in for a killed process."""


@pytest.mark.trains
def test_a_stopped_student_resumes_with_its_teacher(
    world: tuple[Path, Path], tmp_path: Path
) -> None:
    from vigil.models.distill import base_lists, label_pool, pool_list, run_job

    data, teacher = world
    params = tiny(epochs=2)
    paths = distill_paths(data, teacher, tmp_path)
    lists, pool = base_lists(paths.split, params, 0), pool_list(paths.split, params, 0)
    labels, _ = label_pool(teacher, data, pool, paths.pool_truth, params)
    job = student_job(params, lists, pool, labels, teacher, None)

    def stop(trainer: object) -> None:
        raise Stop

    with pytest.raises(Stop):
        run_job(
            job,
            0,
            data,
            paths.run_dir / "student",
            paths.student,
            paths.live / "student",
            callbacks={"on_fit_epoch_end": [stop]},
        )
    started: list[tuple[int, object]] = []
    metrics = run_job(
        job,
        0,
        data,
        paths.run_dir / "student",
        paths.student,
        paths.live / "student",
        callbacks={
            "on_train_start": [lambda t: started.append((t.start_epoch, t.args.distill_model))]
        },
    )
    assert started == [(1, str(teacher.resolve()))]  # epoch 2 of 2, still distilling
    assert metrics["resumed"] is True and metrics["epochs_run"] == 2 and paths.student.is_file()


# --- the shipped params and stage ------------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]


def test_shipped_params_load_and_name_every_key() -> None:
    params, _ = load_distill_params(REPO / "params.yaml")
    assert params.init == "pruned_teacher" and params.model == "yolov8n.yaml"
    written = yaml.safe_load((REPO / "params.yaml").read_text())
    fields = set(DistillParams.__dataclass_fields__)
    # every key is there, to be set with -S: the student's recipe is train's, plus its own keys
    assert set(written["distill"]) - {"overrides"} | set(written["train"]) == fields


def test_stage_declares_what_it_reads_and_writes() -> None:
    import re

    stage = resolved_stages()["distill"]
    outs = {next(iter(o)) if isinstance(o, dict) else o for o in stage["outs"]}
    metrics = {next(iter(m)) for m in stage["metrics"]}
    args = dict(re.findall(r"--([\w-]+) (\S+)", stage["cmd"]))
    assert {args["student"], args["control"], args["live"]} == outs and {args["metrics"]} == metrics
    assert {args["split"], args["teacher"]} <= set(stage["deps"])
    # data/ by content: hash's manifest (tests/contract/test_data_dep.py), not the folder itself
    assert args["data"] not in stage["deps"] and "artifacts/hash/files.jsonl" in stage["deps"]
    assert args["pretrained"] in stage["deps"]  # the control's init source
    assert (
        "stages/distill.py" in stage["deps"]
    )  # the code it imports: tests/contract/test_deps_closure.py
    assert set(stage["params"]) == {"seed", "train", "distill"}
