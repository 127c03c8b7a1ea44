"""ultralytics set up the project's way by importing vigil.models: its settings file is project-local,
integrations are off, and a user's global settings file is never written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import json
{before}
from ultralytics import settings
print(json.dumps({{"dvc": settings["dvc"], "sync": settings["sync"], "file": str(settings.file)}}))
"""


def run(tmp_path: Path, before: str) -> dict[str, object]:
    """Run `before`, then read ultralytics' settings, in a fresh interpreter whose working folder is the project."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "home-config"), "HOME": str(tmp_path)}
    env.pop("YOLO_CONFIG_DIR", None)
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(before=before)],
        capture_output=True,
        text=True,
        env=env,
        cwd=project,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def global_file(tmp_path: Path) -> Path:
    return tmp_path / "home-config" / "Ultralytics" / "settings.json"


def test_importing_vigil_models_configures_ultralytics(tmp_path: Path) -> None:
    out = run(
        tmp_path, "import vigil.models.inference"
    )  # any module of the package, no call to remember
    assert out["dvc"] is False and out["sync"] is False
    assert Path(str(out["file"])).is_relative_to(tmp_path / "project" / ".vigil" / "ultralytics")
    assert json.loads(Path(str(out["file"])).read_text())["dvc"] is False
    assert not global_file(tmp_path).exists()


def test_an_earlier_import_keeps_the_global_file_untouched(tmp_path: Path) -> None:
    out = run(
        tmp_path, "import ultralytics\nimport vigil.models"
    )  # ultralytics picks the global file first
    assert Path(str(out["file"])) == global_file(tmp_path)
    assert out["dvc"] is False  # off for this process …
    assert (
        json.loads(global_file(tmp_path).read_text())["dvc"] is True
    )  # … and the user's file as it was
