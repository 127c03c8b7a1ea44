"""End to end: a temporary git + DVC repository runs `dvc repro` through `split` on a tiny dataset."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_dataset

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1", "VIGIL_NO_PROGRESS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo with space"
    root.mkdir()
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, root / name)
    for name in ("stages", "src"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    params = (root / "params.yaml").read_text()
    (root / "params.yaml").write_text(params.replace("min_per_class: 20", "min_per_class: 1")
                                      .replace("min_per_stratum: 10", "min_per_stratum: 1"))
    make_dataset(root / "data", n=24, record=lambda i: {"driver_id": f"d{i // 3}", "vehicle_id": f"v{i // 2}"})
    run(["git", "init", "-q"], root)
    run(["dvc", "init", "-q"], root)
    run(["dvc", "add", "-q", "data"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "init"], root)
    return root


def test_repro_through_split_then_nothing_to_do(repo: Path) -> None:
    run(["dvc", "repro", "split"], repo)
    split = json.loads((repo / "metrics/split.json").read_text())
    assert split["group_overlap"]["total"] == 0
    lists = {name: (repo / f"artifacts/split/{name}.txt").read_text().split() for name in ("train", "val", "test")}
    assert sum(map(len, lists.values())) == 24 and all(lists.values())
    assert json.loads((repo / "metrics/validate.json").read_text())["passed"] is True
    assert json.loads((repo / "metrics/dataset.json").read_text())
    again = run(["dvc", "repro", "split"], repo)
    assert "didn't change" in again.stdout or "up to date" in again.stdout
    status = run(["dvc", "status"], repo)
    assert "changed" not in status.stdout


def test_rejected_data_stops_the_graph_at_validate(repo: Path) -> None:
    run(["dvc", "unprotect", "data"], repo)
    (repo / "data/labels/003.txt").write_text("0 0.5 0.5 0.2\n")
    run(["dvc", "add", "-q", "data"], repo)
    proc = run(["dvc", "repro", "split"], repo, check=False)
    assert proc.returncode != 0
    assert "labels/003.txt:1" in proc.stderr + proc.stdout
    assert not (repo / "artifacts/split").exists()
