"""A tiny random-weight yolov8n checkpoint (imgsz 64, under a folder with a space) and its dataset + splits."""

from __future__ import annotations

from pathlib import Path

from conftest import CLASSES, make_dataset
from vigil.models.yolo import configure_ultralytics

IMAGES = [f"images/{i:03d}.png" for i in range(3)]


def tiny_release(base: Path) -> tuple[Path, Path, Path, Path]:
    """(dataset root, checkpoint, test split list, val split list) under `base`."""
    configure_ultralytics(base / "ultralytics-settings")
    import torch
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(0)
    model = DetectionModel("yolov8n.yaml", nc=len(CLASSES), verbose=False)
    model.names = dict(enumerate(CLASSES))
    checkpoint = base / "models" / "with space" / "tiny.pt"
    checkpoint.parent.mkdir(parents=True)
    torch.save({"model": model, "train_args": {"imgsz": 64}}, checkpoint)
    root = make_dataset(base / "ds", n=3)
    splits = base / "split"
    splits.mkdir()
    (splits / "test.txt").write_text("".join(f"{im}\n" for im in IMAGES))
    (splits / "val.txt").write_text("".join(f"{im}\n" for im in IMAGES[:2]))
    return root, checkpoint, splits / "test.txt", splits / "val.txt"
