"""A model file must not run code: only checkpoints the pipeline produced or verified are unpickled.

The crafted checkpoint below creates a file when it is unpickled; that file must never appear
unless the user passed --trust-pickle.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from export_helpers import IMAGES, tiny_release
from vigil.cli import app
from vigil.errors import VigilError
from vigil.models.trust import load_user_checkpoint, load_weights_only, pipeline_md5s
from vigil.models.yolo import load_checkpoint_dict


class Planted:
    """Unpickling this calls `open(marker, "w")`: a stand-in for any code a hostile file runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (open, (self.marker, "w"))


def crafted(path: Path, marker: Path) -> Path:
    import torch

    torch.save({"model": Planted(marker), "train_args": {"imgsz": 64}}, path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(dataset root, a genuine detector checkpoint)."""
    root, checkpoint, _, _ = tiny_release(tmp_path_factory.mktemp("trust"))
    return root, checkpoint


def test_a_crafted_checkpoint_is_refused_before_it_runs(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    marker = tmp_path / "pwned"
    evil = crafted(tmp_path / "model.pt", marker)
    result = CliRunner().invoke(
        app, ["predict", str(tiny[0] / IMAGES[0]), "--engine", "torch", "--model", str(evil)]
    )
    assert result.exit_code == 2 and not marker.exists()
    line = result.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line and "Traceback" not in result.output
    assert "ONNX" in line and "--trust-pickle" in line and "run any code" in line
    with pytest.raises(VigilError, match="refusing to unpickle"):
        load_user_checkpoint(evil, repo=tmp_path)
    assert not marker.exists()


def test_weights_only_refuses_a_foreign_global_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    assert load_weights_only(crafted(tmp_path / "model.pt", marker).read_bytes()) is None
    assert not marker.exists()


def test_the_trust_flag_is_explicit(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = crafted(tmp_path / "model.pt", marker)
    load_user_checkpoint(
        evil, repo=tmp_path, trust_pickle=True
    )  # the user vouched: a full unpickle
    assert marker.exists()


def test_pipeline_outputs_and_the_pinned_pretrained_load_as_today(
    tiny: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint = tiny[1]
    data = checkpoint.read_bytes()
    with pytest.raises(VigilError, match="refusing"):
        load_user_checkpoint(checkpoint, repo=tmp_path)
    (tmp_path / "dvc.lock").write_text(
        "schema: '2.0'\nstages:\n  distill:\n    outs:\n"
        f"    - path: models/student/best.pt\n      hash: md5\n"
        f"      md5: {hashlib.md5(data).hexdigest()}\n"
    )
    assert "model" in load_user_checkpoint(checkpoint, repo=tmp_path)
    monkeypatch.chdir(tmp_path)  # `vigil predict` trusts the dvc.lock of the folder it runs in
    result = CliRunner().invoke(
        app, ["predict", str(tiny[0] / IMAGES[0]), "--model", str(checkpoint), "--raw"]
    )  # --raw: this tiny model has no calibration of its own; what is tested here is the load
    assert result.exit_code == 0, result.output
    (tmp_path / "dvc.lock").unlink()
    (tmp_path / "params.yaml").write_text(
        f"pretrained:\n  sha256: {hashlib.sha256(data).hexdigest()}\n"
    )
    assert "model" in load_user_checkpoint(checkpoint, repo=tmp_path)


@pytest.mark.parametrize(
    "lock", ["", "[1, 2]", "stages: 3", "stages:\n  a:\n    outs: [3, {md5: 7}]\n", "\xff: ["]
)
def test_a_broken_dvc_lock_vouches_for_nothing(tmp_path: Path, lock: str) -> None:
    (tmp_path / "dvc.lock").write_text(lock, encoding="latin-1")
    assert pipeline_md5s(tmp_path) == set()


def test_detector_checkpoints_load_weights_only(
    tiny: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    assert load_weights_only(tiny[1].read_bytes())[
        "model"
    ].names  # the allow-list covers a detector
    calls: list[object] = []
    real = torch.load

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(kwargs.get("weights_only"))
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    assert "model" in load_checkpoint_dict(tiny[1])
    assert calls == [True]


def test_garbage_checkpoint_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x80\x04not a pickle at all")
    with pytest.raises(VigilError, match="not a readable PyTorch checkpoint"):
        load_user_checkpoint(bad, repo=tmp_path, trust_pickle=True)
    import torch

    torch.save([1, 2], bad)
    with pytest.raises(VigilError, match="not an ultralytics checkpoint"):
        load_user_checkpoint(bad, repo=tmp_path, trust_pickle=True)
