"""`vigil plots`: every declared plot on one HTML page with nothing to fetch, shown and diffed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from vigil.cli import app
from vigil.errors import VigilError
from vigil.plots import EXTERNAL, build_plots_page

DVC_YAML = """plots:
  - loss curve:
      template: linear
      x: step
      y:
        plots/loss.tsv: loss
  - plots/pr.csv:
      x: recall
      y: [teacher, student]
  - plots/confusion.json:
      template: confusion
      x: actual
      y: predicted
  - plots/gallery
"""


def git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}  # fmt: skip
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env=env)


def write_plots(repo: Path, scale: float) -> None:
    plots = repo / "plots"
    (plots / "gallery" / "student").mkdir(parents=True, exist_ok=True)
    (plots / "loss.tsv").write_text(
        "step\tloss\n" + "".join(f"{i}\t{scale / (i + 1)}\n" for i in range(8))
    )
    (plots / "pr.csv").write_text(
        "recall,teacher,student\n"
        + "".join(f"{r / 10},{1 - r / 12},{scale * (1 - r / 10)}\n" for r in range(11))
    )
    pairs = [
        {"actual": a, "predicted": p} for a in "abc" for p in "abc" for _ in range(1 + (a == p) * 5)
    ]
    (plots / "confusion.json").write_text(json.dumps(pairs))
    image = np.zeros((60, 80, 3), np.uint8)
    image[10:50, 10:70] = (0, 94, 213)
    cv2.imwrite(str(plots / "gallery" / "student" / "missed_01_x.jpg"), image)


def make_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git + DVC repo: four plot definitions (linear TSV, CSV, confusion, an image folder), two commits."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    subprocess.run(["dvc", "init", "-q"], cwd=root, check=True)
    (root / "dvc.yaml").write_text(DVC_YAML)
    write_plots(root, 1.0)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    write_plots(root, 0.5)
    return root


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return make_repo(tmp_path, monkeypatch)


def test_the_page_holds_every_plot_and_needs_no_network(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "plots.html"
    result = CliRunner().invoke(app, ["plots", "--repo", str(repo), "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "3 charts, 1 images" in result.output
    assert page.count("vegaEmbed(") == 3 and 'src="data:image/jpeg;base64,' in page
    assert "window.vegaEmbed=" in page  # the bundle itself, inlined
    assert not EXTERNAL.search(page.split("window.vegaEmbed=")[1])  # nothing after it fetches
    assert not re.search(r"<script[^>]+src=", page) and "cdn.jsdelivr" not in page
    assert not (out.parent / "static").exists()  # one file: the images are inside


def test_dvc_is_found_beside_python_when_the_venv_is_not_activated(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`.venv/bin/vigil plots` from a shell whose PATH has no dvc: the venv's own dvc is used."""
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    out = tmp_path / "plots.html"
    result = CliRunner().invoke(app, ["plots", "--repo", str(repo), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file()


def test_diff_against_a_revision_shows_both(repo: Path, tmp_path: Path) -> None:
    page = build_plots_page(repo, tmp_path / "diff.html", ["HEAD"])
    text = page.path.read_text()
    assert page.charts == 3 and page.images == 2  # the image at HEAD and in the workspace
    assert "workspace" in text
    commit = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    assert commit[:8] in text


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--diff", "--all"], "--diff"),
        (["--diff", "nope"], "--diff"),
        (["--out", "x.txt"], "--out"),
    ],
)
def test_bad_options_are_one_line(repo: Path, tmp_path: Path, args: list[str], field: str) -> None:
    result = CliRunner().invoke(
        app, ["plots", "--repo", str(repo), "--out", str(tmp_path / "p.html"), *args]
    )
    assert result.exit_code == 2 and f"[{field}]" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "p.html").exists()


def test_a_folder_that_is_not_a_dvc_repo_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(VigilError, match="dvc plots"):
        build_plots_page(tmp_path, tmp_path / "p.html")
