"""DVC checks the data folder once per `dvc repro`: only `hash` depends on data/, the rest on its manifest.

At 100k images DVC's check of a data folder costs tens of seconds, once per stage that lists it. The
per-file sha256 manifest `hash` writes changes exactly when the data does, so every later stage that
reads data/ depends on it instead. The second test proves the behaviour with DVC itself, on a real
(tiny) dataset: an unchanged dataset re-runs nothing, a changed label re-runs hash and then reaches
every stage that reads data/.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import make_dataset
from contract.module_imports import REPO
from contract.pipeline import placeholder, resolved_stages

DVC = str(Path(sys.executable).with_name("dvc"))
FILES = "artifacts/hash/files.jsonl"


def _deps(stage: dict) -> list[str]:
    return [d if isinstance(d, str) else next(iter(d)) for d in stage.get("deps", [])]


def readers_of_data() -> list[str]:
    """The stages whose command is given the data folder."""
    return sorted(
        name for name, stage in resolved_stages().items() if " --data data " in f"{stage['cmd']} "
    )


def test_only_hash_depends_on_the_data_folder() -> None:
    listing = {name: _deps(stage) for name, stage in resolved_stages().items()}
    assert [name for name, deps in listing.items() if "data" in deps] == ["hash"]
    outs = resolved_stages()["hash"]["outs"]
    assert {FILES: {"persist": True}} in outs, (
        f"hash must write {FILES} as a persisted output (DVC skips 4 of its walks of data/)"
    )


def test_every_stage_that_reads_data_depends_on_the_manifest() -> None:
    readers = readers_of_data()
    assert {"validate", "split", "train", "distill", "evaluate", "calibrate", "export"} <= set(
        readers
    )
    missing = [n for n in readers if n != "hash" and FILES not in _deps(resolved_stages()[n])]
    assert not missing, f"these stages read data/ but do not depend on {FILES}: {missing}"


def _dvc(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    path = (
        f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # stages' `python`
    )
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": path}
    return subprocess.run(
        [DVC, *args], cwd=root, check=True, env=env, capture_output=True, text=True
    )


def _status(root: Path) -> dict:
    return json.loads(_dvc(root, "status", "--json").stdout)


def test_a_changed_label_reaches_every_reader_and_an_unchanged_dataset_reaches_none(
    tmp_path: Path,
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("src", "stages"):
        shutil.copytree(
            REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy2(REPO / name, root / name)
    make_dataset(root / "data")
    _dvc(root, "init", "--no-scm", "-q")
    _dvc(root, "repro", "-s", "hash")  # the real hash stage writes the real manifest
    for stage in resolved_stages().values():
        for entry in [*stage.get("deps", []), *stage.get("outs", []), *stage.get("metrics", [])]:
            placeholder(root / (entry if isinstance(entry, str) else next(iter(entry))))
    _dvc(root, "commit", "-f", "-q")
    assert _status(root) == {}

    label = root / "data/labels/000.txt"
    os.utime(label, ns=(1, 1))  # touched, same content: nothing to re-run
    assert _status(root) == {}

    label.write_text(label.read_text().replace("0.3\n", "0.31\n", 1))
    assert set(_status(root)) == {"hash"}  # the folder is checked by hash alone …
    _dvc(root, "repro", "-s", "hash")
    changed = _status(root)
    assert set(readers_of_data()) - {"hash"} <= set(changed), changed  # … and reaches every reader
    for name in set(readers_of_data()) - {"hash"}:
        assert any(
            isinstance(entry, dict) and FILES in entry.get("changed deps", {})
            for entry in changed[name]
        ), changed[name]
