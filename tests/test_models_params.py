"""Typed params of the model stages: unknown or mistyped keys are refused by name; the shipped files load."""

from __future__ import annotations

from pathlib import Path

import pytest

from repo_params import write_params
from vigil.errors import VigilError
from vigil.models.params import AlbumentationsStep, PretrainedParams, load_train_params
from vigil.params import load_section

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"train.epochz": 3}, "train.epochz"),
        ({"train.augment.mosaik": 0.5}, "train.augment.mosaik"),
        (
            {"train.augment.albumentations": [{"name": "Blur", "prob": 0.1}]},
            "train.augment.albumentations[0].prob",
        ),
        ({"train.epochs": "ten"}, "train.epochs"),
        ({"train.imgsz": 300}, "train.imgsz"),
        ({"train.cache": True}, "train.cache"),
        ({"train.model": "yolov8s.pt"}, "train.model"),
        ({"train.fraction": 0}, "train.fraction"),
        ({"train.lr0": float("nan")}, "train.lr0"),
    ],
)
def test_bad_train_params_name_the_key(tmp_path: Path, change: dict, field: str) -> None:
    path = write_params(tmp_path, change)
    with pytest.raises(VigilError) as info:
        load_train_params(path)
    assert info.value.field == field
    assert str(path) in str(info.value)


def test_unknown_pretrained_key(tmp_path: Path) -> None:
    with pytest.raises(VigilError, match="unknown key 'pretrained.sha'"):
        load_section(
            write_params(tmp_path, {"pretrained.sha": "abc"}), "pretrained", PretrainedParams
        )


def test_seed_comes_from_the_top_level_unless_set(tmp_path: Path) -> None:
    assert load_train_params(write_params(tmp_path, {"seed": 7}))[1] == 7
    params, seed = load_train_params(write_params(tmp_path, {"seed": 7, "train.seed": 3}))
    assert seed == 3


def test_a_missing_key_is_an_error_not_a_default(tmp_path: Path) -> None:
    """params.yaml is the only home of a value: the code has none to fall back on."""
    with pytest.raises(VigilError, match="missing key 'train.epochs'"):
        load_train_params(write_params(tmp_path, {}, drop=("train.epochs",)))
    with pytest.raises(VigilError, match="missing section 'train'"):
        load_train_params(write_params(tmp_path, {}, drop=("train",)))


def test_an_unknown_section_is_an_error(tmp_path: Path) -> None:
    """A misspelled section used to be ignored silently; now it names itself and the known ones."""
    with pytest.raises(VigilError, match="unknown section 'trian'") as info:
        load_train_params(write_params(tmp_path, {"trian.epochs": 2}))
    assert "known sections" in str(info.value)


def test_albumentations_steps_build(tmp_path: Path) -> None:
    steps = [{"name": "RandomBrightnessContrast", "p": 0.2, "args": {"brightness_limit": 0.3}}]
    params, _ = load_train_params(write_params(tmp_path, {"train.augment.albumentations": steps}))
    assert params.augment.albumentations == [
        AlbumentationsStep("RandomBrightnessContrast", 0.2, {"brightness_limit": 0.3})
    ]
