"""Tiny SKU fixtures: shelves of coloured shapes (one SKU = one shape in one colour) and a tiny embedder."""

from __future__ import annotations

import cv2
import numpy as np

from vigil.sku.crops import CropItem, Jitter
from vigil.sku.train import TrainConfig

TINY_BACKBONE = "test_efficientnet"  # timm's own test model: ~0.1 M parameters, seconds on a CPU
SKUS: dict[str, tuple[str, tuple[int, int, int]]] = {
    "A": ("circle", (220, 40, 40)),
    "B": ("square", (40, 90, 220)),
    "C": ("triangle", (40, 200, 60)),
    "D": ("cross", (230, 210, 40)),
    "E": ("ring", (200, 60, 200)),
}


def draw_sku(image: np.ndarray, sku: str, box: tuple[int, int, int, int]) -> None:
    shape, colour = SKUS[sku]
    x1, y1, x2, y2 = box
    cx, cy, r = (x1 + x2) // 2, (y1 + y2) // 2, (x2 - x1) // 2 - 1
    if shape == "circle":
        cv2.circle(image, (cx, cy), r, colour, -1)
    elif shape == "square":
        cv2.rectangle(image, (x1 + 2, y1 + 2), (x2 - 2, y2 - 2), colour, -1)
    elif shape == "triangle":
        pts = np.array([[cx, y1 + 1], [x1 + 1, y2 - 1], [x2 - 1, y2 - 1]], dtype=np.int32)
        cv2.fillPoly(image, [pts], colour)
    elif shape == "cross":
        cv2.line(image, (x1 + 2, y1 + 2), (x2 - 2, y2 - 2), colour, 4)
        cv2.line(image, (x1 + 2, y2 - 2), (x2 - 2, y1 + 2), colour, 4)
    else:
        cv2.circle(image, (cx, cy), r, colour, 4)


def shelves(
    skus: str, images: int, seed: int, prefix: str = "shelf"
) -> tuple[dict[str, np.ndarray], list[CropItem]]:
    """`images` 96 × 64 shelves, each holding three objects of the given SKUs at random, on grey noise."""
    rng = np.random.default_rng(seed)
    pictures: dict[str, np.ndarray] = {}
    items: list[CropItem] = []
    for n in range(images):
        image = rng.integers(90, 140, size=(64, 96, 3), dtype=np.uint8)
        name = f"images/{prefix}{n:03d}.png"
        for slot in range(3):
            sku = skus[int(rng.integers(len(skus)))]
            side = int(rng.integers(18, 26))
            x1 = slot * 32 + int(rng.integers(0, 32 - side + 1))
            y1 = int(rng.integers(0, 64 - side))
            box = (x1, y1, x1 + side, y1 + side)
            draw_sku(image, sku, box)
            items.append(CropItem(name, tuple(float(v) for v in box), sku))  # type: ignore[arg-type]
        pictures[name] = image
    return pictures, items


def tiny_config(epochs: int = 2, seed: int = 0, **changes: object) -> TrainConfig:
    values: dict[str, object] = {
        "backbone": TINY_BACKBONE,
        "dim": 16,
        "input_size": 32,
        "epochs": epochs,
        "lr": 1e-2,
        "weight_decay": 1e-4,
        "classes_per_batch": 4,
        "per_class": 4,
        "scale": 16.0,
        "margin": 0.3,
        "mining_weight": 0.5,
        "mining_margin": 0.2,
        "jitter": Jitter(0.1, 0.1),
        "seed": seed,
    }
    values.update(changes)
    return TrainConfig(**values)  # type: ignore[arg-type]
