"""`dvc repro` never calls a stale result up to date: every stage's deps cover all the code it runs.

The deps of a stage must cover the transitive import closure of its script (read with `ast`, through
`vigil/__init__` and every package `__init__`), so an edit anywhere in that closure re-runs the stage.
The second test proves it with DVC itself: in a copy of the repository whose lock is committed, an edit
to the deepest module of each stage's closure makes `dvc status` report that stage changed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from contract.module_imports import REPO, closure, own_imports
from contract.pipeline import placeholder, resolved_stages

DVC = str(Path(sys.executable).with_name("dvc"))


def pipeline() -> dict[str, dict]:
    return resolved_stages()


def stage_script(stage: dict) -> Path:
    cmd = stage["cmd"] if isinstance(stage["cmd"], str) else " ".join(stage["cmd"])
    found = re.search(r"python\s+(\S+\.py)", cmd)
    assert found, f"cmd does not run a stage script: {cmd}"
    return REPO / found.group(1)


def dep_paths(stage: dict) -> list[Path]:
    return [REPO / (d if isinstance(d, str) else next(iter(d))) for d in stage.get("deps", [])]


def uncovered(stage: dict) -> list[str]:
    deps = dep_paths(stage)
    files = closure(stage_script(stage))
    return sorted(
        str(f.relative_to(REPO)) for f in files if not any(f == d or d in f.parents for d in deps)
    )


@pytest.mark.parametrize("name", sorted(pipeline()))
def test_stage_deps_cover_its_import_closure(name: str) -> None:
    missing = uncovered(pipeline()[name])
    assert not missing, (
        f"dvc.yaml stage {name!r} imports these but does not list them under deps: {missing}; "
        "run `python tests/contract/sync_deps.py`"
    )


def test_the_closure_check_sees_a_missing_module() -> None:
    """The check itself can fail: drop one module from train's deps and it is reported."""
    stage = dict(pipeline()["train"])
    module = next(
        str(f.relative_to(REPO)) for f in sorted(closure(stage_script(stage))) if "src" in f.parts
    )
    stage["deps"] = [
        d
        for d in stage["deps"]
        if not (isinstance(d, str) and (REPO / module).is_relative_to(REPO / d))
    ]
    assert module in uncovered(stage)


def test_the_closure_goes_through_package_inits() -> None:
    """`import vigil.x` runs `vigil/__init__.py` (the offline switches): it is in every stage's closure."""
    for name, stage in pipeline().items():
        assert REPO / "src/vigil/__init__.py" in closure(stage_script(stage)), name


def _deepest_module(script: Path) -> Path:
    """The module of the closure farthest (in import steps) from the script: the hardest edit to notice."""
    depth = {script.resolve(): 0}
    frontier = [script.resolve()]
    while frontier:
        nxt = []
        for path in frontier:
            for child in sorted(own_imports(path)):
                if child not in depth:
                    depth[child] = depth[path] + 1
                    nxt.append(child)
        frontier = nxt
    return max(sorted(depth), key=lambda p: depth[p])


@pytest.fixture(scope="module")
def committed_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the graph, code and params with placeholder data, whose dvc.lock matches it exactly."""
    root = tmp_path_factory.mktemp("repo")
    for name in ("src", "stages"):
        shutil.copytree(
            REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy2(REPO / name, root / name)
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    subprocess.run([DVC, "init", "--no-scm", "-q"], cwd=root, check=True, env=env)
    for stage in pipeline().values():
        for entry in [*stage.get("deps", []), *stage.get("outs", []), *stage.get("metrics", [])]:
            placeholder(root / (entry if isinstance(entry, str) else next(iter(entry))))
    subprocess.run([DVC, "commit", "-f", "-q"], cwd=root, check=True, env=env)
    status = subprocess.run(
        [DVC, "status", "--json"], cwd=root, check=True, env=env, capture_output=True, text=True
    )
    assert json.loads(status.stdout) == {}, status.stdout
    return root


@pytest.mark.parametrize("name", sorted(pipeline()))
def test_editing_the_deepest_module_makes_dvc_status_report_the_stage(
    committed_copy: Path, name: str
) -> None:
    stage = pipeline()[name]
    module = _deepest_module(stage_script(stage)).relative_to(REPO)
    target = committed_copy / module
    original = target.read_text()
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    try:
        target.write_text(original + "\n# an edit deep in the closure\n")
        status = subprocess.run(
            [DVC, "status", "--json", name],
            cwd=committed_copy,
            check=True,
            env=env,
            capture_output=True,
            text=True,
        )
    finally:
        target.write_text(original)
    changed = json.loads(status.stdout)
    assert name in changed, f"editing {module} left stage {name!r} up to date: {changed}"
