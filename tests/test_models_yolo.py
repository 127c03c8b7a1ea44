"""ultralytics set up the project's way: its settings file is project-local, a user's global one is never written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import json, sys
{before}
from vigil.models.yolo import configure_ultralytics
configure_ultralytics(sys.argv[1])
from ultralytics import settings
print(json.dumps({{"dvc": settings["dvc"], "sync": settings["sync"], "file": str(settings.file)}}))
"""


def run(tmp_path: Path, before: str) -> dict[str, object]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "home-config"), "HOME": str(tmp_path)}
    env.pop("YOLO_CONFIG_DIR", None)
    proc = subprocess.run([sys.executable, "-c", SCRIPT.format(before=before), str(tmp_path / "project")],
                          capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def global_file(tmp_path: Path) -> Path:
    return tmp_path / "home-config" / "Ultralytics" / "settings.json"


def test_settings_live_in_the_project_folder(tmp_path: Path) -> None:
    out = run(tmp_path, "")
    assert out["dvc"] is False and out["sync"] is False
    assert Path(str(out["file"])).is_relative_to(tmp_path / "project")
    assert json.loads(Path(str(out["file"])).read_text())["dvc"] is False
    assert not global_file(tmp_path).exists()


def test_an_earlier_import_keeps_the_global_file_untouched(tmp_path: Path) -> None:
    out = run(tmp_path, "import ultralytics")  # ultralytics picks the user's global settings file first
    assert Path(str(out["file"])) == global_file(tmp_path)
    assert out["dvc"] is False  # off for this process …
    assert json.loads(global_file(tmp_path).read_text())["dvc"] is True  # … and the user's file as it was
