"""Inference, latency, the ultralytics cross-check and the `evaluate` stage on a tiny random-weight model.

The model is yolov8n built from its yaml (random weights, so mAP is ~0: the numbers are not the
point, the plumbing is), saved under a folder with a space, run at imgsz 64 on three images.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CLASSES, make_dataset
from repo_params import section, write_params
from vigil.detection.detections_file import read_detections
from vigil.errors import VigilError
from vigil.metrics.params import EvaluateParams, RobustnessParams
from vigil.models.evaluate import DetectionsDump, ModelSpec, run_evaluate
from vigil.models.inference import (
    Inference,
    load_detector,
    measure_latency,
    predict_images,
    read_images,
    trained_imgsz,
)

REPO = Path(__file__).resolve().parents[1]
TINY = dict(
    latency_runs=3, latency_warmup=1, val_batch=2, gallery={"teacher": 2}
)  # imgsz: as trained (64, in the checkpoint)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """(dataset root, checkpoint, three image paths)."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    model = DetectionModel("yolov8n.yaml", nc=len(CLASSES), verbose=False)
    model.names = dict(enumerate(CLASSES))
    checkpoint = tmp_path_factory.mktemp("models") / "with space" / "tiny.pt"
    checkpoint.parent.mkdir()
    torch.save({"model": model, "train_args": {"imgsz": 64}}, checkpoint)
    root = make_dataset(tmp_path_factory.mktemp("data") / "ds", n=3)
    return root, checkpoint, [f"images/{i:03d}.png" for i in range(3)]


def test_predict_returns_pixel_boxes_per_image_within_the_limits(
    tiny: tuple[Path, Path, list[str]],
) -> None:
    root, checkpoint, images = tiny
    model = load_detector(checkpoint, CLASSES)
    arrays = read_images(root, images)
    out = predict_images(model, arrays, Inference(imgsz=64, conf=0.001, iou=0.7, max_det=5))
    assert len(out) == 3
    for dets in out:
        assert len(dets.boxes) <= 5 and (dets.scores >= 0.001).all()
        assert ((dets.classes >= 0) & (dets.classes < len(CLASSES))).all()
        assert (dets.boxes[:, [0, 2]] <= 64 + 1e-3).all() and (
            dets.boxes[:, [1, 3]] <= 48 + 1e-3
        ).all()  # 64x48 images
    assert sum(len(d.boxes) for d in out) > 0  # random weights still score something above 0.001


def test_latency_is_measured_per_image_after_warm_up(tiny: tuple[Path, Path, list[str]]) -> None:
    root, checkpoint, images = tiny
    model = load_detector(checkpoint, CLASSES)
    latency = measure_latency(
        model, read_images(root, images), Inference(64, 0.25, 0.7, 100), runs=4, warmup=1, threads=1
    )
    assert (
        latency["runs"] == 4
        and latency["warmup"] == 1
        and latency["imgsz"] == 64
        and latency["threads"] == 1
    )
    assert (
        0 < latency["median"] <= latency["p95"] and 0 < latency["forward_median"] <= latency["p95"]
    )


def test_missing_or_foreign_checkpoints_are_refused(
    tiny: tuple[Path, Path, list[str]], tmp_path: Path
) -> None:
    _, checkpoint, _ = tiny
    with pytest.raises(VigilError, match="not found"):
        load_detector(tmp_path / "best.pt", CLASSES)
    with pytest.raises(VigilError, match="detects"):
        load_detector(checkpoint, ["cat", "dog"])
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(VigilError, match="not a loadable"):
        load_detector(tmp_path / "junk.pt", CLASSES)


def test_the_evaluated_size_is_the_trained_one_unless_set(
    tiny: tuple[Path, Path, list[str]], tmp_path: Path
) -> None:
    import torch

    _, checkpoint, _ = tiny
    assert trained_imgsz(load_detector(checkpoint, CLASSES), checkpoint) == 64
    bare = tmp_path / "bare.pt"
    ckpt = torch.load(checkpoint, weights_only=False)
    torch.save({"model": ckpt["model"], "train_args": {}}, bare)
    with pytest.raises(VigilError, match="image size it was trained at") as err:
        trained_imgsz(load_detector(bare, CLASSES), bare)
    assert err.value.field == "evaluate.imgsz"


def test_model_specs_parse_and_refuse() -> None:
    assert ModelSpec.parse("teacher=models/teacher/best.pt") == ModelSpec(
        "teacher", Path("models/teacher/best.pt")
    )
    assert ModelSpec.parse("control?=m/c.pt").optional
    for bad in ("teacher", "=x.pt", "a b=x.pt", "t="):
        with pytest.raises(VigilError):
            ModelSpec.parse(bad)


def _snapshot(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_size for p in root.rglob("*")}


def test_run_evaluate_writes_every_block_and_plot(
    tiny: tuple[Path, Path, list[str]], tmp_path: Path
) -> None:
    root, checkpoint, images = tiny
    split = tmp_path / "test.txt"
    split.write_text("".join(i + "\n" for i in images))
    (tmp_path / "val.txt").write_text(images[1] + "\n")
    before = _snapshot(root)
    specs = [
        ModelSpec("teacher", checkpoint),
        ModelSpec("control", tmp_path / "absent.pt", optional=True),
    ]
    dump = DetectionsDump(
        "teacher",
        tmp_path / "val.txt",
        tmp_path / "det" / "val.json",
        tmp_path / "det" / "test.json",
    )
    result = run_evaluate(
        root,
        split,
        specs,
        metrics=tmp_path / "metrics" / "evaluate.json",
        plots=tmp_path / "plots",
        params=section(
            "evaluate",
            EvaluateParams,
            **TINY,
            robustness=RobustnessParams(["teacher"], ["fog", "jpeg"], {"mild": 0.3, "severe": 1.0}),
        ),
        work_dir=tmp_path / "work",
        dump=dump,
    )
    written = json.loads((tmp_path / "metrics" / "evaluate.json").read_text())
    assert written == json.loads(json.dumps(result))
    assert set(written) == {"hardware", "teacher", "control"}
    assert isinstance(written["hardware"]["isa"], list)
    block = written["teacher"]
    for key in (
        "map50_95",
        "map50",
        "recall",
        "per_class",
        "per_size",
        "per_stratum",
        "per_group",
        "count_mae",
        "latency_ms",
        "ultralytics_val",
    ):
        assert key in block, key
    assert block["images"] == 3 and block["boxes"] == 6 and block["imgsz"] == 64
    deployed = block["deployed"]  # at count_conf: random weights find nothing, so recall is 0 of 6
    assert (deployed["tp"], deployed["missed"], deployed["recall"]) == (0, 6, 0.0)
    assert deployed["conf"] == 0.25 and deployed["iou"] == 0.5
    robustness = block["robustness"]  # every preset at every severity, as a gate can name it
    assert set(robustness) == {"fog", "jpeg"} and set(robustness["fog"]) == {"mild", "severe"}
    assert robustness["jpeg"]["severe"]["intensity"] == 1.0
    assert set(robustness["fog"]["mild"]) == {"intensity", "map50_95", "map50", "of_clean"}
    assert set(block["per_class"]) == set(CLASSES) and "count_mae" in block["per_class"]["bag"]
    assert set(block["per_size"]) == {
        "coco_small",
        "coco_medium",
        "coco_large",
        "tiny",
        "small",
        "medium",
        "large",
        "xlarge",
    }
    assert set(block["per_stratum"]["scenario"]) == {"day", "dusk", "night"}
    assert 0.0 <= block["map50_95"] <= 1.0 and 0.0 <= block["ultralytics_val"]["map50"] <= 1.0
    assert set(block["ultralytics_val"]["on_our_detections"]) == {"map50", "map50_95"}
    assert written["control"] == {
        "skipped": f"{(tmp_path / 'absent.pt').as_posix()} not found (optional)"
    }
    assert sorted(p.name for p in (tmp_path / "plots" / "pr").iterdir()) == sorted(
        f"{c}.csv" for c in CLASSES
    )
    assert (tmp_path / "plots" / "pr" / "bag.csv").read_text().startswith("recall,teacher\n0.00,")
    assert (tmp_path / "plots" / "pr_mean.csv").is_file()
    # the error gallery: random weights find nothing at count_conf, so every image misses its boxes
    errors = json.loads((tmp_path / "plots" / "errors.json").read_text())
    assert set(errors["models"]) == {"teacher"} and len(errors["models"]["teacher"]) == 3
    drawn = errors["gallery"]["teacher"]
    assert [e["kind"] for e in drawn] == ["missed", "missed"] and all(
        e["missed"] == 2 for e in drawn
    )
    assert all((tmp_path / "plots" / e["file"]).is_file() for e in drawn)
    rows = json.loads((tmp_path / "plots" / "teacher" / "confusion.json").read_text())
    assert sum(r["actual"] != "background" for r in rows) == 6  # every true box is a row once
    assert _snapshot(root) == before  # ultralytics val read a view: no labels.cache in the dataset
    # the detections calibrate reads, checked by its own reader against the split lists
    val = read_detections(tmp_path / "det" / "val.json", {images[1]})
    test = read_detections(tmp_path / "det" / "test.json", set(images))
    assert [e.image for e in val] == [images[1]] and [e.image for e in test] == images
    assert (test[0].width, test[0].height) == (64, 48) and all(
        (e.detections.scores >= 0.001).all() for e in test
    )
    assert sum(len(e.detections.scores) for e in test) > 0


def test_detections_need_an_evaluated_model(
    tiny: tuple[Path, Path, list[str]], tmp_path: Path
) -> None:
    root, checkpoint, images = tiny
    (tmp_path / "test.txt").write_text(images[0] + "\n")
    kwargs = dict(
        metrics=tmp_path / "e.json",
        plots=tmp_path / "plots",
        params=section("evaluate", EvaluateParams, **{**TINY, "gallery": {}}),
        work_dir=tmp_path / "work",
    )
    dump = DetectionsDump(
        "student", tmp_path / "test.txt", tmp_path / "v.json", tmp_path / "t.json"
    )
    with pytest.raises(VigilError, match="not one of the models"):
        run_evaluate(
            root, tmp_path / "test.txt", [ModelSpec("teacher", checkpoint)], dump=dump, **kwargs
        )
    with pytest.raises(VigilError, match="calibrate needs is missing"):
        run_evaluate(
            root,
            tmp_path / "test.txt",
            [ModelSpec("student", tmp_path / "no.pt", optional=True)],
            dump=dump,
            **kwargs,
        )
    assert not (tmp_path / "e.json").exists()


def test_stage_script_fails_cleanly_on_a_missing_model(
    tiny: tuple[Path, Path, list[str]], tmp_path: Path
) -> None:
    root, _, images = tiny
    (tmp_path / "test.txt").write_text(images[0] + "\n")
    args = [
        sys.executable,
        str(REPO / "stages/evaluate.py"),
        "--data",
        str(root),
        "--split",
        str(tmp_path / "test.txt"),
        "--model",
        f"teacher={tmp_path / 'best.pt'}",
        "--metrics",
        str(tmp_path / "e.json"),
        "--plots",
        str(tmp_path / "plots"),
        "--work-dir",
        str(tmp_path / "work"),
        "--params",
        str(write_params(tmp_path, {"evaluate.gallery": {"teacher": 1}})),
    ]
    failed = subprocess.run(args, capture_output=True, text=True, check=False, cwd=tmp_path)
    assert failed.returncode == 2, failed.stderr
    assert (
        "best.pt: model checkpoint not found" in failed.stderr and "Traceback" not in failed.stderr
    )
    assert not (tmp_path / "e.json").exists()
