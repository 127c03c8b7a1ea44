"""Typed params of the model stages: unknown or mistyped keys are refused by name; the shipped files load."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from vigil.errors import VigilError
from vigil.models.params import AlbumentationsStep, PretrainedParams, TrainParams, load_train_params
from vigil.params import build, load_section

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "field"), [
    ("train:\n  epochz: 3\n", "train.epochz"),
    ("train:\n  augment:\n    mosaik: 0.5\n", "train.augment.mosaik"),
    ("train:\n  augment:\n    albumentations:\n      - {name: Blur, prob: 0.1}\n", "train.augment.albumentations[0].prob"),
    ("train:\n  epochs: ten\n", "train.epochs"),
    ("train:\n  imgsz: 300\n", "train.imgsz"),
    ("train:\n  cache: true\n", "train.cache"),
    ("train:\n  model: yolov8s.pt\n", "train.model"),
    ("train:\n  fraction: 0\n", "train.fraction"),
])
def test_bad_train_params_name_the_key(tmp_path: Path, text: str, field: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(VigilError) as info:
        load_train_params(path)
    assert info.value.field == field
    assert str(path) in str(info.value)


def test_unknown_pretrained_key(tmp_path: Path) -> None:
    with pytest.raises(VigilError, match="unknown key 'pretrained.sha'"):
        load_section(write(tmp_path, "pretrained:\n  sha: abc\n"), "pretrained", PretrainedParams)


def test_seed_comes_from_the_top_level_unless_set(tmp_path: Path) -> None:
    assert load_train_params(write(tmp_path, "seed: 7\ntrain:\n  epochs: 2\n"))[1] == 7
    params, seed = load_train_params(write(tmp_path, "seed: 7\ntrain:\n  seed: 3\n"))
    assert seed == 3 and params.epochs == TrainParams().epochs


def test_albumentations_steps_build(tmp_path: Path) -> None:
    params, _ = load_train_params(write(tmp_path, "train:\n  augment:\n    albumentations:\n"
                                        "      - {name: RandomBrightnessContrast, p: 0.2, args: {brightness_limit: 0.3}}\n"))
    assert params.augment.albumentations == [AlbumentationsStep("RandomBrightnessContrast", 0.2,
                                                                {"brightness_limit": 0.3})]


@pytest.mark.parametrize("name", ["params.yaml", "profiles/quick.yaml", "profiles/ci.yaml"])
def test_shipped_params_files_load(name: str) -> None:
    path = ROOT / name
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    load_section(path, "pretrained", PretrainedParams)
    params, _ = load_train_params(path)
    build(TrainParams, data.get("train") or {}, "train")
    if name == "profiles/ci.yaml":
        assert params.epochs == 1 and 64 <= params.imgsz <= 128


def test_code_defaults_are_the_reference_release() -> None:
    """params.yaml spells out the defaults: a section left out means the same run."""
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert build(TrainParams, data["train"], "train") == TrainParams()
    assert build(PretrainedParams, data["pretrained"], "pretrained") == PretrainedParams()
