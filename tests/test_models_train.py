"""Teacher training on a tiny model and data made here: outputs, clean checkpoints, untouched data, resume."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from repo_params import section
from vigil.errors import VigilError
from vigil.models.params import AlbumentationsStep, AugmentParams, TrainParams
from vigil.models.yolo import configure_ultralytics

CLASSES = ["square", "disc"]


@pytest.fixture(scope="module", autouse=True)
def ultralytics_here(tmp_path_factory: pytest.TempPathFactory) -> None:
    configure_ultralytics(tmp_path_factory.mktemp("ultralytics-settings"))
    from ultralytics import settings

    assert settings["dvc"] is False and settings["sync"] is False


def make_images(root: Path, n: int = 8, size: int = 64) -> Path:
    """`n` pictures of a bright square and/or disc on noise, labelled exactly, and their split lists."""
    rng = np.random.default_rng(0)
    (root / "classes.txt").parent.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("".join(c + "\n" for c in CLASSES))
    rels = []
    for i in range(n):
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
        rel = f"images/lab/{i:03d}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / rel), image)
        (root / "labels/lab").mkdir(parents=True, exist_ok=True)
        c = (x + s / 2) / size, (y + s / 2) / size, s / size
        (root / f"labels/lab/{i:03d}.txt").write_text(
            f"{i % 2} {c[0]:.4f} {c[1]:.4f} {c[2]:.4f} {c[2]:.4f}\n"
        )
        rels.append(rel)
    (root / "split").mkdir()
    (root / "split" / "train.txt").write_text("".join(r + "\n" for r in rels[:6]))
    (root / "split" / "val.txt").write_text("".join(r + "\n" for r in rels[6:]))
    return root


def tiny_augment(**changes: object) -> AugmentParams:
    """params.yaml's augmentation with mosaic off and one albumentations step (changes on top)."""
    base = section("train", TrainParams).augment
    return replace(
        base,
        **{
            "mosaic": 0.0,
            "close_mosaic": 0,
            "albumentations": [AlbumentationsStep("RandomBrightnessContrast", 0.5, {})],
            **changes,
        },
    )


def tiny_params(**changes: object) -> TrainParams:
    """params.yaml's train recipe shrunk to a seconds-long yolov8n run (changes on top)."""
    tiny = dict(
        model="yolov8n.yaml",
        epochs=1,
        imgsz=64,
        batch=4,
        nbs=4,
        workers=0,
        cache="ram",
        warmup_epochs=0.0,
        optimizer="SGD",
        lr0=0.01,
        plots=False,
        augment=tiny_augment(),
    )
    return section("train", TrainParams, **{**tiny, **changes})


def paths_for(root: Path, ws: Path, init: Path | None = None):  # type: ignore[no-untyped-def]
    from vigil.models.train import TrainPaths

    return TrainPaths(
        data=root,
        split=root / "split",
        run_dir=ws / ".vigil" / "runs" / "train",
        weights=ws / "models" / "teacher" / "best.pt",
        metrics=ws / "metrics" / "train.json",
        live=ws / "plots" / "train",
        init=init,
    )


def snapshot(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime for p in root.rglob("*")}


def steps(live: Path, name: str) -> list[int]:
    with (live / "plots" / "metrics" / f"{name}.tsv").open() as handle:
        return [int(row["step"]) for row in csv.DictReader(handle, delimiter="\t")]


@pytest.mark.trains
def test_one_epoch_writes_checkpoint_metrics_and_curves(tmp_path: Path) -> None:
    from vigil.models.train import train_detector

    root = make_images(tmp_path / "data set")  # a space in the path, on purpose
    before = snapshot(root)
    paths = paths_for(root, tmp_path / "ws")
    metrics = train_detector(tiny_params(), 0, paths)

    assert paths.weights.is_file()
    written = json.loads(paths.metrics.read_text())
    assert written == metrics
    assert set(written["val"]) == {"map50", "map50_95", "precision", "recall"}
    assert written["epochs_run"] == 1 and written["best_epoch"] == 1 and written["resumed"] is False
    assert written["seconds_per_epoch"] > 0
    assert written["cache"]["asked"] == tiny_params().cache and written["cache"]["cache"] in (
        "ram",
        "disk",
        "none",
    )
    assert steps(paths.live, "metrics/mAP50") == [0] and steps(paths.live, "train/box_loss") == [0]
    assert not list(paths.live.rglob("dvc.yaml"))  # DVCLive writes no second dvc.yaml
    assert snapshot(root) == before  # no label cache or anything else inside the dataset

    from vigil.models.yolo import load_checkpoint_dict

    ckpt = load_checkpoint_dict(paths.weights)
    text = repr(ckpt["train_args"]) + repr(ckpt["model"].args)
    assert str(tmp_path) not in text and "date" not in ckpt
    assert ckpt["train_args"]["model"] == ckpt["model"].args["model"] == "yolov8n.yaml"
    from ultralytics import YOLO

    assert YOLO(str(paths.weights)).names == dict(enumerate(CLASSES))


class Stop(Exception):
    """Stands in for a killed process."""


@pytest.mark.trains
def test_a_stopped_run_resumes_where_it_stopped(tmp_path: Path) -> None:
    from vigil.models.train import train_detector

    root = make_images(tmp_path / "data")
    paths = paths_for(root, tmp_path / "ws")
    params = tiny_params(epochs=2)

    def stop_after_first_epoch(trainer: object) -> None:
        raise Stop

    with pytest.raises(Stop):
        train_detector(params, 0, paths, callbacks={"on_fit_epoch_end": [stop_after_first_epoch]})
    assert paths.last.is_file() and not paths.weights.exists() and not paths.metrics.exists()

    started: list[int] = []
    metrics = train_detector(
        params, 0, paths, callbacks={"on_train_start": [lambda t: started.append(t.start_epoch)]}
    )
    assert started == [1]  # epoch 2 of 2 only
    assert metrics["resumed"] is True and metrics["epochs_run"] == 2
    assert steps(paths.live, "metrics/mAP50") == [0, 1]  # one row per epoch across the stop
    assert paths.weights.is_file()


@pytest.mark.trains
def test_changed_params_start_afresh(tmp_path: Path) -> None:
    from vigil.models.train import train_detector

    root = make_images(tmp_path / "data")
    paths = paths_for(root, tmp_path / "ws")
    with pytest.raises(Stop):
        train_detector(
            tiny_params(epochs=2),
            0,
            paths,
            callbacks={"on_fit_epoch_end": [lambda t: (_ for _ in ()).throw(Stop())]},
        )
    started: list[int] = []
    metrics = train_detector(
        tiny_params(epochs=1),
        0,
        paths,
        callbacks={"on_train_start": [lambda t: started.append(t.start_epoch)]},
    )
    assert started == [0] and metrics["resumed"] is False and metrics["epochs_run"] == 1


def test_refusals_before_any_work(tmp_path: Path) -> None:
    from vigil.models.train import train_detector

    root = make_images(tmp_path / "data")
    paths = paths_for(root, tmp_path / "ws")
    with pytest.raises(VigilError, match="init weights not found") as info:
        train_detector(tiny_params(), 0, paths_for(root, tmp_path / "ws", init=Path("yolov8n.pt")))
    assert "hub name is never downloaded" in str(info.value)
    bad = tiny_params(
        augment=tiny_augment(albumentations=[AlbumentationsStep("NoSuchBlur", 0.1, {})])
    )
    with pytest.raises(VigilError, match="not an albumentations transform"):
        train_detector(bad, 0, paths)
    bad = tiny_params(
        augment=tiny_augment(albumentations=[AlbumentationsStep("Blur", 0.1, {"blur_limit": "x"})])
    )
    with pytest.raises(VigilError) as info:
        train_detector(bad, 0, paths)
    assert info.value.field == "train.augment.albumentations[0].args"
    (root / "split" / "val.txt").write_text("/etc/passwd\n")
    with pytest.raises(VigilError, match="not under images/"):
        train_detector(tiny_params(), 0, paths)
    assert not paths.run_dir.exists() or not (paths.run_dir / "ultralytics").exists()


def test_view_keeps_data_untouched_and_subset_is_seeded(tmp_path: Path) -> None:
    from vigil.models.dataset import build_view, subset

    root = make_images(tmp_path / "data")
    items = [f"images/lab/{i:03d}.png" for i in range(8)]
    yaml_path = build_view(root, {"train": items[:6], "val": items[6:]}, tmp_path / "view")
    view = yaml_path.parent
    assert (view / "train.txt").read_text().splitlines()[0] == "./images/lab/000.png"
    assert (view / "labels/lab/000.txt").read_text() == (root / "labels/lab/000.txt").read_text()
    assert not (view / "labels").is_symlink() and not (view / "images/lab").is_symlink()
    before = snapshot(root)
    pseudo = build_view(
        root,
        {"train": items[:6], "val": items[6:]},
        tmp_path / "view2",
        labels={items[0]: "1 0.5 0.5 0.2 0.2\n"},
    ).parent
    assert (
        pseudo / "labels/lab/000.txt"
    ).read_text() == "1 0.5 0.5 0.2 0.2\n"  # e.g. a teacher's pseudo-label
    assert snapshot(root) == before
    assert subset(items, 0.25, 0) == subset(items, 0.25, 0) and len(subset(items, 0.25, 0)) == 2
    assert subset(items, 0.01, 0) and subset(items, 1.0, 5) == items


def test_ignore_regions_are_filled_in_the_view_not_learnt_as_background(tmp_path: Path) -> None:
    """An image with a manifest `ignore` region gets a copy with the region grey (its true box kept);
    the others stay links, and data/ is untouched."""
    from vigil.models.dataset import IGNORE_FILL, build_view

    root = make_images(tmp_path / "data")
    items = [f"images/lab/{i:03d}.png" for i in range(8)]
    lines = [{"image": rel, "width": 64, "height": 64} for rel in items]
    # the left half of image 0 holds its true box partly; the region covers the whole image
    lines[0]["ignore"] = [{"box": [0.5, 0.5, 1.0, 1.0], "reason": "visdrone ignored region"}]
    (root / "manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    before = snapshot(root)
    original = cv2.imread(str(root / items[0]))
    view = build_view(root, {"train": items[:6], "val": items[6:]}, tmp_path / "view").parent
    masked = cv2.imread(str(view / items[0]))
    assert not (view / items[0]).is_symlink() and (view / items[1]).is_symlink()
    cx, cy, w, _ = (float(v) for v in (root / "labels/lab/000.txt").read_text().split()[1:])
    x1, y1, x2, y2 = (
        round((cx - w / 2) * 64),
        round((cy - w / 2) * 64),
        round((cx + w / 2) * 64),
        round((cy + w / 2) * 64),
    )
    inside = np.zeros((64, 64), dtype=bool)
    inside[y1:y2, x1:x2] = True
    assert (masked[~inside] == IGNORE_FILL).all()  # the region, outside the true box: grey
    assert np.array_equal(masked[inside], original[inside])  # the true box: as it was
    assert snapshot(root) == before


PINNED = Path(__file__).resolve().parents[1] / "models" / "pretrained" / "yolov8s_fall.pt"


@pytest.mark.skipif(not PINNED.is_file(), reason="run the pretrained stage first")
def test_pinned_checkpoint_loads_onto_yolov8s() -> None:
    from vigil.models.yolo import build_model

    model = build_model("yolov8s.yaml", PINNED)
    assert sum(p.numel() for p in model.model.parameters()) > 10_000_000


def test_fingerprint_counts_what_a_run_depends_on(tmp_path: Path) -> None:
    from vigil.models.train import fingerprint

    teacher = tmp_path / "teacher.pt"
    teacher.write_bytes(b"v1")
    lists = {"train": ["images/a.png"], "val": ["images/b.png"]}
    base = fingerprint(tiny_params(), 0, lists, CLASSES, None, {"distill_model": teacher}, {})
    assert base == fingerprint(
        tiny_params(), 0, lists, CLASSES, None, {"distill_model": teacher}, {}
    )
    assert base != fingerprint(
        tiny_params(epochs=2), 0, lists, CLASSES, None, {"distill_model": teacher}, {}
    )
    assert base != fingerprint(
        tiny_params(), 1, lists, CLASSES, None, {"distill_model": teacher}, {}
    )
    assert base != fingerprint(
        tiny_params(),
        0,
        lists,
        CLASSES,
        None,
        {"distill_model": teacher},
        {"images/c.png": "0 0.5 0.5 0.1 0.1\n"},
    )
    teacher.write_bytes(b"v2")  # same path, new teacher: a stopped run must not resume
    assert base != fingerprint(
        tiny_params(), 0, lists, CLASSES, None, {"distill_model": teacher}, {}
    )


def _weights(path: Path) -> dict[str, object]:
    from vigil.models.yolo import load_checkpoint_dict

    return {k: v.float() for k, v in load_checkpoint_dict(path)["model"].state_dict().items()}


@pytest.mark.trains
def test_two_clean_runs_with_albumentations_give_the_same_weights(tmp_path: Path) -> None:
    """Init weights that do not cover the head, strong albumentations steps and mosaic closed in the last
    epoch (ultralytics rebuilds the transforms then): two clean runs in one process give identical losses
    and weights (ultralytics seeds albumentations from torch's seed; vigil seeds the head it builds)."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    from vigil.models.prune import export_checkpoint_model
    from vigil.models.train import RUN_NAME, read_results, train_detector

    root = make_images(tmp_path / "data")
    # init weights of another class count: the dataset's 2-class classifier is initialised by vigil, unseeded
    # before the fix (the two runs below then start from different heads)
    source = DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    source.names = {0: "x", 1: "y", 2: "z"}
    export_checkpoint_model(source, tmp_path / "three.pt", {"made_by": "test"})
    params = tiny_params(
        epochs=2,
        augment=tiny_augment(
            mosaic=1.0,
            close_mosaic=1,
            albumentations=[
                AlbumentationsStep("RandomBrightnessContrast", 0.5, {}),
                AlbumentationsStep("Blur", 0.5, {}),
            ],
        ),
    )
    runs, losses = [], []
    for name in ("a", "b"):
        paths = paths_for(root, tmp_path / name, init=tmp_path / "three.pt")
        train_detector(params, 0, paths, resume=False)
        runs.append(_weights(paths.weights))
        losses.append(
            [
                {k: v for k, v in row.items() if k.startswith("train/")}
                for row in read_results(paths.run_dir / RUN_NAME / "results.csv")
            ]
        )
    assert len(losses[0]) == 2 and losses[0] == losses[1]  # the losses see every augmented pixel
    assert runs[0].keys() == runs[1].keys()
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
