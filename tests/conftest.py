"""Shared fixtures: tiny canonical datasets written by the tests themselves."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

os.environ.setdefault("VIGIL_NO_PROGRESS", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`gpu` tests need CUDA: skipped, with the reason, on machines without it (this project's CI)."""
    if not any(item.get_closest_marker("gpu") for item in items):
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA (torch.cuda.is_available() is False here)")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)


CLASSES = ["tshirt", "trouser", "bag"]


def write_image(path: Path, seed: int, size: tuple[int, int] = (64, 48)) -> None:
    """A distinct random picture (smooth blobs, so perceptual hashes differ between seeds)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    image = cv2.resize(small, size, interpolation=cv2.INTER_CUBIC)
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(path.suffix or ".png", image)
    assert ok
    path.write_bytes(data.tobytes())


def make_dataset(
    root: Path,
    n: int = 12,
    boxes_per_image: int = 2,
    record: Callable[[int], dict[str, Any]] | None = None,
) -> Path:
    """A valid canonical dataset of `n` labelled images (drivers/vehicles in pairs, all strata present)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("".join(c + "\n" for c in CLASSES))
    scenarios = ["day", "dusk", "night"]
    lines = []
    for i in range(n):
        rel = f"images/{i:03d}.png"
        write_image(root / rel, seed=i)
        labels = [
            f"{(i + k) % len(CLASSES)} {0.25 + 0.4 * k:.3f} 0.5 0.2 0.3"
            for k in range(boxes_per_image)
        ]
        (root / "labels").mkdir(exist_ok=True)
        (root / f"labels/{i:03d}.txt").write_text("".join(row + "\n" for row in labels))
        line = {
            "image": rel,
            "driver_id": f"d{i // 2}",
            "vehicle_id": f"v{i // 2}",
            "stream": "cctv",
            "scenario": scenarios[i % 3],
            "road_type": "campus",
            "width": 64,
            "height": 48,
        }
        if record:
            line.update(record(i))
        lines.append(json.dumps(line))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    return make_dataset(tmp_path / "ds")
