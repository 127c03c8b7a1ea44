"""Named augmentation presets: each expands into albumentations that compose, grows with its
intensity, is refused by name when unknown, corrupts deterministically, and shows in a preview grid."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from repo_params import section
from vigil.cli import app
from vigil.errors import VigilError
from vigil.models.augment_presets import PRESETS, corrupter, expand_presets, preset_steps
from vigil.models.params import AugmentParams, TrainParams
from vigil.models.yolo import albumentations_transforms


def picture(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = rng.integers(60, 200, size=(96, 128, 3), dtype=np.uint8)
    cv2.rectangle(image, (30, 30), (80, 70), (255, 255, 255), -1)
    return image


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_composes_and_grows_with_its_intensity(name: str) -> None:
    steps = preset_steps(name, 1.0, 0.3, "train.augment.presets")
    assert steps and all(s.p == 0.3 for s in steps)
    albumentations_transforms(steps)  # albumentations accepts the arguments
    image = picture()
    change = [
        float(np.abs(corrupter(name, i, 0)(image).astype(int) - image).mean()) for i in (0.1, 1.0)
    ]
    assert change[1] > change[0] > 0 or (change[1] > 0 and name == "sun_flare")


def test_corruption_is_seeded_and_the_same_every_run() -> None:
    image = picture()
    a, b = corrupter("fog", 0.6, 0), corrupter("fog", 0.6, 0)
    assert np.array_equal(a(image), b(image))


@pytest.mark.parametrize(
    ("presets", "fragment"),
    [({"smog": 0.3}, "'smog' is not a preset"), ({"fog": 1.5}, r"not in \(0, 1\]")],
)
def test_an_unknown_preset_or_intensity_is_refused_naming_it(presets: dict, fragment: str) -> None:
    with pytest.raises(VigilError, match=fragment) as caught:
        expand_presets(presets, 0.3)
    assert caught.value.field is not None and caught.value.field.startswith("train.augment.presets")


def test_presets_reach_ultralytics_after_the_raw_list_and_not_as_knobs() -> None:
    from vigil.models.train import ultralytics_args

    params = section("train", TrainParams)
    augment = replace(params.augment, presets={"fog": 0.3, "night": 0.5, "motion_blur": 0.2})
    args = ultralytics_args(replace(params, augment=augment), 0)
    names = [type(t).__name__ for t in args["augmentations"]]
    raw = [s.name for s in params.augment.albumentations]
    assert names == [*raw, "RandomFog", "RandomBrightnessContrast", "GaussNoise", "MotionBlur"]
    assert "presets" not in args and "preset_p" not in args
    with pytest.raises(VigilError):
        replace(params.augment, preset_p=1.5)
    assert isinstance(augment, AugmentParams)


def test_preview_writes_a_grid_of_images_by_preset(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    for n in range(3):
        cv2.imwrite(str(data / f"images/{n}.png"), picture(n))
    split = tmp_path / "train.txt"
    split.write_text("".join(f"images/{n}.png\n" for n in range(3)))
    out = tmp_path / "preview.png"
    args = ["augment", "preview", "--data", str(data), "--list", str(split), "--count", "2"]
    result = CliRunner().invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    grid = cv2.imread(str(out))
    assert grid.shape[0] == 2 * (96 + 22) and grid.shape[1] == (1 + len(PRESETS)) * 128
    refused = CliRunner().invoke(app, [*args, "--out", str(out), "--intensity", "2"])
    assert refused.exit_code != 0 and "--intensity" in refused.output
