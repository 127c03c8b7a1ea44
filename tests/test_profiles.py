"""Profiles become `dvc exp run -S` arguments; a key params.yaml lacks is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from vigil.errors import VigilError
from vigil.profiles import flatten, set_arguments

REPO = Path(__file__).resolve().parents[1]


def test_flatten_makes_dotted_keys() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": "x"}) == {"a.b": 1, "a.c.d": [1, 2], "e": "x"}


def test_arguments_have_no_spaces_and_unknown_keys_fail(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("train:\n  epochs: 8\n  model: yolov8s.yaml\n  aug: [1, 2]\n")
    profile = tmp_path / "p.yaml"
    profile.write_text("train:\n  epochs: 2\n  model: yolov8n.yaml\n  aug: [3, 4]\n")
    assert set_arguments(profile, params) == ["-S", "train.epochs=2", "-S", 'train.model="yolov8n.yaml"',
                                              "-S", "train.aug=[3,4]"]
    profile.write_text("train:\n  epochz: 2\n")
    with pytest.raises(VigilError, match="train.epochz"):
        set_arguments(profile, params)


@pytest.mark.parametrize("name", ["quick", "ci"])
def test_shipped_profiles_match_params(name: str) -> None:
    assert set_arguments(REPO / "profiles" / f"{name}.yaml", REPO / "params.yaml")
