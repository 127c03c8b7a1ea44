"""Profiles become `dvc exp run -S` arguments; an unknown key, a scalar section or a shell-unsafe value is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from vigil.cli import app
from vigil.errors import VigilError
from vigil.profiles import flatten, set_arguments

REPO = Path(__file__).resolve().parents[1]


def test_flatten_makes_dotted_keys() -> None:
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": "x"}) == {
        "a.b": 1,
        "a.c.d": [1, 2],
        "e": "x",
    }


def test_arguments_have_no_spaces_and_unknown_keys_fail(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("train:\n  epochs: 8\n  model: yolov8s.yaml\n  aug: [1, 2]\n")
    profile = tmp_path / "p.yaml"
    profile.write_text("train:\n  epochs: 2\n  model: yolov8n.yaml\n  aug: [3, 4]\n")
    assert set_arguments(profile, params) == [
        "-S",
        "train.epochs=2",
        "-S",
        'train.model="yolov8n.yaml"',
        "-S",
        "train.aug=[3,4]",
    ]
    profile.write_text("train:\n  epochz: 2\n")
    with pytest.raises(VigilError, match="train.epochz"):
        set_arguments(profile, params)


@pytest.mark.parametrize("name", ["quick", "ci"])
def test_shipped_profiles_match_params(name: str) -> None:
    assert set_arguments(REPO / "profiles" / f"{name}.yaml", REPO / "params.yaml")


@pytest.mark.parametrize("name", ["quick", "ci"])
def test_every_argument_parses_back_to_the_profiles_value_with_dvcs_own_parser(name: str) -> None:
    """`dvc exp run -S` reads Hydra's override grammar: mappings inside lists included (the ci
    profile's INT8 recipes), which JSON's quoted keys would break."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    profile = REPO / "profiles" / f"{name}.yaml"
    args = set_arguments(profile, REPO / "params.yaml")
    parsed = OverridesParser.create().parse_overrides(args[1::2])
    assert {o.key_or_group: o.value() for o in parsed} == flatten(
        yaml.safe_load(profile.read_text())
    )


def test_a_mapping_key_hydra_cannot_read_is_one_error(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("export:\n  int8:\n    recipes: [{method: minmax}]\n")
    profile = tmp_path / "p.yaml"
    profile.write_text("export:\n  int8:\n    recipes: [{'two words': minmax}]\n")
    with pytest.raises(VigilError, match="export.int8.recipes.*two words"):
        set_arguments(profile, params)


PARAMS = (
    "train:\n  epochs: 8\n  model: yolov8s.yaml\n  augment:\n    mosaic: 1.0\n  aug: [1, 2]\n"
    "distill:\n  overrides: {}\n"
)


@pytest.fixture
def params(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(PARAMS)
    return path


@pytest.mark.parametrize(
    "text,field",
    [
        ("train: 3\n", "train"),
        ("train: [1, 2]\n", "train"),
        ("train: null\n", "train"),
        ("train:\n  augment: 0.5\n", "train.augment"),
        ("distill:\n  overrides: 3\n", "distill.overrides"),
    ],
)
def test_a_value_where_params_has_a_section_is_refused(
    params: Path, tmp_path: Path, text: str, field: str
) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(text)
    with pytest.raises(VigilError, match="is a section") as err:
        set_arguments(profile, params)
    assert err.value.field == field


def test_an_open_mapping_takes_new_keys(params: Path, tmp_path: Path) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text("distill:\n  overrides:\n    epochs: 12\n")
    assert set_arguments(profile, params) == ["-S", "distill.overrides.epochs=12"]


@pytest.mark.parametrize("value", ["my model.yaml", "*.yaml", "a?b", "x[1]", " lead", "[1, 'a b']"])
def test_shell_unsafe_values_are_refused_in_the_dollar_form_and_print0_carries_them(
    params: Path, tmp_path: Path, value: str
) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(
        f"train:\n  model: {json.dumps(value) if not value.startswith('[') else value}\n"
    )
    with pytest.raises(VigilError, match="--print0") as err:
        set_arguments(profile, params)
    assert err.value.field == "train.model"
    result = CliRunner().invoke(app, ["profile", str(profile), "--params", str(params), "--print0"])
    assert result.exit_code == 0, result.output
    args = result.stdout.split("\0")
    assert args[-1] == "" and args[:-1] == [
        "-S",
        f"train.model={json.dumps(yaml.safe_load(profile.read_text())['train']['model'], separators=(',', ':'))}",
    ]


def test_the_dollar_form_survives_word_splitting_and_globbing(tmp_path: Path) -> None:
    for name in ("quick", "ci"):
        line = (
            CliRunner()
            .invoke(
                app,
                [
                    "profile",
                    str(REPO / "profiles" / f"{name}.yaml"),
                    "--params",
                    str(REPO / "params.yaml"),
                ],
            )
            .stdout
        )
        words = line.split()
        assert words == set_arguments(REPO / "profiles" / f"{name}.yaml", REPO / "params.yaml")
        assert not any(c in line for c in "*?")


@pytest.mark.parametrize(
    "text,field",
    [
        ("train:\n  epochs: .nan\n", "train.epochs"),
        ("train:\n  aug: [1, .inf]\n", "train.aug"),
        ("train:\n  1: 2\n", "train.1"),
        ("train:\n  true: 2\n", "train.True"),
        ("train:\n  'a b': 2\n", "train.a b"),
    ],
)
def test_non_finite_numbers_and_odd_keys_are_refused(
    params: Path, tmp_path: Path, text: str, field: str
) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_text(text)
    with pytest.raises(VigilError) as err:
        set_arguments(profile, params)
    assert err.value.field == field


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe train: 1",
        b"train: [",
        b"- 1\n- 2\n",
        b"",
        b"train: {}\n",
        b"[" * 10000 + b"]" * 10000,
    ],
)
def test_broken_profiles_are_one_line(params: Path, tmp_path: Path, content: bytes) -> None:
    profile = tmp_path / "p.yaml"
    profile.write_bytes(content)
    result = CliRunner().invoke(app, ["profile", str(profile), "--params", str(params)])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    result = CliRunner().invoke(
        app, ["profile", str(REPO / "profiles/ci.yaml"), "--params", str(profile)]
    )
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert (
        "[--params]" in result.stderr or "unknown key" in result.stderr
    )  # `train: {}` is a valid params file
