"""`vigil report`: on a temporary git + DVC repo with two commits whose metrics differ."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vigil.cli import app
from vigil.errors import VigilError
from vigil.review import build_report, distillation_lines, dvc_executable, stratum_changes

DVC_YAML = """stages:
  evaluate:
    cmd: echo evaluate
    params: [train]
    metrics:
      - metrics/evaluate.json:
          cache: false
"""


def git(repo: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, env=env)


def write_state(
    repo: Path, epochs: int, night: float, day: float, mapv: float, passed: bool
) -> None:
    (repo / "params.yaml").write_text(f"train:\n  epochs: {epochs}\n")
    (repo / "metrics").mkdir(exist_ok=True)
    evaluate = {
        "teacher": {
            "map50": mapv,
            "map50_95": 0.6,
            "recall": 0.7,
            "latency_ms": {"median": 40.0},
            "per_stratum": {"scenario": {"night": {"map50": night}, "day": {"map50": day}}},
        },
        "student": {
            "map50": mapv - 0.05,
            "map50_95": round(mapv - 0.2, 4),
            "recall": 0.65,
            "latency_ms": {"median": 12.0},
        },
        "control": {"map50": 0.5, "map50_95": 0.5, "recall": 0.6, "latency_ms": {"median": 12.0}},
    }
    (repo / "metrics/evaluate.json").write_text(json.dumps(evaluate))
    gate = {
        "passed": passed,
        "gates": [
            {"name": "mAP50", "value": mapv, "op": ">=", "threshold": 0.6, "passed": mapv >= 0.6},
            {"name": "night", "value": night, "op": ">=", "threshold": 0.5, "passed": passed},
        ],
    }
    (repo / "metrics/gate.json").write_text(json.dumps(gate))


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    subprocess.run(["dvc", "init", "-q"], cwd=root, check=True)
    (root / "dvc.yaml").write_text(DVC_YAML)
    write_state(root, epochs=8, night=0.70, day=0.80, mapv=0.75, passed=True)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    write_state(root, epochs=4, night=0.40, day=0.78, mapv=0.65, passed=False)
    (root / "plots/evaluate/teacher").mkdir(parents=True)
    (root / "plots/evaluate/pr_mean.csv").write_text("recall,teacher\n0.0,1.0\n0.5,0.8\n1.0,0.0\n")
    (root / "plots/evaluate/teacher/confusion.json").write_text(
        json.dumps([{"actual": "a", "predicted": "a"}, {"actual": "a", "predicted": "background"}])
    )
    git(root, "add", "-A")
    git(root, "commit", "-qm", "change")
    return root


def test_report_shows_verdict_diffs_drops_and_plots(repo: Path) -> None:
    out = repo / "reports/review.md"
    text = build_report(repo, "HEAD~1", out)
    assert "## Gate: **FAILED** (1/2)" in text
    assert text.index("**FAIL** | night") < text.index("pass | mAP50")  # failed gates first
    drops = text.split("## Per-stratum changes")[1].split("##")[0]
    assert drops.index("night") < drops.index("day")  # largest drop first
    assert "-0.3000" in drops and "-0.0200" in drops
    assert "| `train.epochs` | 8 | 4 |" in text  # dvc params diff
    assert "| `evaluate.teacher.map50` | 0.75 | 0.65 | -0.1 |" in text  # dvc metrics diff
    assert (repo / "reports/review_plots/pr.png").stat().st_size > 1000
    assert (repo / "reports/review_plots/confusion_teacher.png").is_file()
    assert "](review_plots/pr.png)" in text
    models = text.split("## Models (test split)")[1].split("\n## ")[0]
    assert (
        "| `teacher` | 0.6 | 0.65 (base 0.75) | 0.7 | 40 |" in models
    )  # unchanged vs changed cells
    assert "| `student` | 0.45 (base 0.55) |" in models
    assert "student / teacher mAP50-95: **0.750**" in models
    assert (
        "KD gain (student − control) mAP50-95: **-0.0500**" in models
    )  # a KD loss shows as negative


def test_bad_base_is_a_clear_error(repo: Path) -> None:
    with pytest.raises(VigilError, match="--base"):
        build_report(repo, "no-such-rev", repo / "r.md")
    result = CliRunner().invoke(
        app, ["report", "--base", "no-such-rev", "--repo", str(repo), "--out", str(repo / "r.md")]
    )
    assert result.exit_code == 2


def test_stratum_changes_ignore_non_numeric_and_sort() -> None:
    diff = {
        "metrics/evaluate.json": {
            "s.per_stratum.scenario.a.map50": {"old": 0.5, "new": 0.6},
            "s.per_stratum.scenario.b.map50": {"old": 0.5, "new": 0.1},
            "s.per_stratum.scenario.c.map50": {"old": None, "new": 0.1},
            "s.map50": {"old": 0.5, "new": 0.1},
        }
    }
    assert [row[0] for row in stratum_changes(diff)] == [
        "evaluate.s.per_stratum.scenario.b.map50",
        "evaluate.s.per_stratum.scenario.a.map50",
    ]


def test_distillation_lines_need_all_three_models() -> None:
    assert distillation_lines({"teacher": {"map50_95": 0.5}, "student": {"map50_95": 0.4}}) == []
    lines = distillation_lines(
        {"teacher": {"map50_95": 0.5}, "student": {"map50_95": 0.45}, "control": {"map50_95": 0.4}}
    )
    assert lines == [
        "- student / teacher mAP50-95: **0.900**",
        "- KD gain (student − control) mAP50-95: **+0.0500**",
    ]


@pytest.mark.parametrize(
    "base", ["--all", "-n", "--", "", " ", "HEAD\n--all", "no-such-rev", "HEAD~99"]
)
def test_a_base_that_is_not_a_commit_is_refused_before_dvc(
    repo: Path, base: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    real = subprocess.run

    def spy(args: list[str], **kwargs: object) -> object:
        calls.append(list(args))
        return real(args, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy)
    result = CliRunner().invoke(
        app, ["report", f"--base={base}", "--repo", str(repo), "--out", str(repo / "r.md")]
    )
    assert (
        result.exit_code == 2 and "[--base]" in result.stderr and "Traceback" not in result.output
    )
    assert len(result.stderr.strip().splitlines()) == 1
    assert not any(call[0] == "dvc" for call in calls) and not (repo / "r.md").exists()


def test_dvc_gets_the_verified_commit(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    real = subprocess.run

    def spy(args: list[str], **kwargs: object) -> object:
        seen.append(list(args))
        return real(args, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy)
    build_report(repo, "HEAD~1", repo / "r.md")
    sha = real(
        ["git", "rev-parse", "HEAD~1"], cwd=repo, capture_output=True, text=True
    ).stdout.strip()
    assert [dvc_executable(), "metrics", "diff", sha, "--json"] in seen


@pytest.mark.parametrize(
    "out,what",
    [
        (".", "folder"),
        ("", "folder"),
        ("reports", "folder"),
        ("/proc/vigil/review.md", "cannot write"),
        ("/proc/review.md", "cannot write"),
        ("review.txt", ".md"),
        ("/dev/null", "not a regular file"),
        ("params.yaml/review.md", "is a file"),
    ],
)
def test_an_unwritable_out_is_one_line_before_any_work(
    repo: Path, out: str, what: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo)
    (repo / "reports").mkdir(exist_ok=True)
    result = CliRunner().invoke(app, ["report", "--base", "HEAD~1", "--out", out])
    assert result.exit_code == 2 and what in result.stderr and "[--out]" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (repo / "reports").glob("*") or list((repo / "reports").iterdir()) == []


def test_damaged_workspace_files_do_not_lose_the_report(repo: Path) -> None:
    (repo / "plots/evaluate/pr_mean.csv").write_text("recall\n")  # no model column, no rows
    (repo / "plots/evaluate/teacher/confusion.json").write_text('[{"actual": 1}]')
    text = build_report(repo, "HEAD~1", repo / "r.md")
    assert "not drawn" in text and "## Gate" in text
    (repo / "metrics/gate.json").write_text("{broken")
    with pytest.raises(VigilError, match="gate.json"):
        build_report(repo, "HEAD~1", repo / "r2.md")


def write_gallery_state(repo: Path, counts: dict[str, tuple[int, int]], drawn: list[str]) -> None:
    """plots/evaluate/errors.json (student: image → (missed, fp)) and the drawn gallery files."""
    import cv2
    import numpy as np

    folder = repo / "plots/evaluate"
    (folder / "gallery/student").mkdir(parents=True, exist_ok=True)
    entries = []
    for rank, image in enumerate(drawn, 1):
        name = f"gallery/student/missed_{rank:02d}_{Path(image).stem}.jpg"
        cv2.imwrite(str(folder / name), np.full((8, 8, 3), 40 * rank, np.uint8))
        missed, fp = counts[image]
        entries.append({"file": name, "image": image, "kind": "missed", "rank": rank,
                        "missed": missed, "fp": fp, "tp": 1})  # fmt: skip
    models = {"student": {im: {"tp": 1, "missed": m, "fp": f} for im, (m, f) in counts.items()}}
    doc = {"conf": 0.25, "iou": 0.5, "models": models, "gallery": {"student": entries}}
    (folder / "errors.json").write_text(json.dumps(doc))


def test_the_gallery_shows_what_got_worse_first_beside_the_base(repo: Path) -> None:
    base = {"images/a.jpg": (1, 0), "images/b.jpg": (3, 0), "images/c.jpg": (0, 0)}
    write_gallery_state(repo, base, ["images/b.jpg", "images/a.jpg"])
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base with a gallery")
    now = {"images/a.jpg": (4, 1), "images/b.jpg": (3, 0), "images/c.jpg": (2, 0)}
    write_gallery_state(repo, now, ["images/a.jpg", "images/b.jpg", "images/c.jpg"])
    text = build_report(repo, "HEAD", repo / "reports/review.md")
    section = text.split("## Error gallery", 1)[1].split("\n## ", 1)[0]
    order = re.findall(r"### \d+\. `student` · `(images/\w\.jpg)` · ([^\n]+)", section)
    # a went from 1 to 5 errors, c from 0 to 2, b stayed at 3
    assert order == [
        ("images/a.jpg", "+4 errors"),
        ("images/c.jpg", "+2 errors"),
        ("images/b.jpg", "+0 errors"),
    ]
    assert "base: 1 missed, 0 false" in section
    shown = re.findall(r"!\[(now|base)\]\((review_plots/[^)]+)\)", section)
    assert [kind for kind, _ in shown] == [
        "now",
        "base",
        "now",
        "now",
        "base",
    ]  # c was not drawn at the base
    for _, rel in shown:
        assert (repo / "reports" / rel).is_file()


def test_without_a_gallery_the_review_says_so(repo: Path) -> None:
    text = build_report(repo, "HEAD~1", repo / "reports/review.md")
    assert "No `plots/evaluate/errors.json` in the workspace" in text


def test_a_coreml_benchmark_given_or_present_is_shown(repo: Path, tmp_path: Path) -> None:
    from test_coreml_bench import BENCH

    given = tmp_path / "mac.json"
    given.write_text(json.dumps(BENCH))
    text = build_report(repo, "HEAD~1", repo / "r.md", coreml_bench=given)
    section = text.split("## CoreML on a Mac (`vigil bench coreml`)")[1].split("\n## ")[0]
    assert "| 100 (10) | 4.22 ms | 0.31 ms | 3.90 ms | 6.02 ms |" in section
    assert f"from `{given.as_posix()}`" in section
    assert "CoreML on a Mac" not in build_report(repo, "HEAD~1", repo / "r.md")  # none present
    (repo / "reports").mkdir(exist_ok=True)
    (repo / "reports/coreml_bench.json").write_text(json.dumps(BENCH))
    assert "from `reports/coreml_bench.json`" in build_report(repo, "HEAD~1", repo / "r.md")
    (repo / "reports/coreml_bench.json").write_text("{")
    text = build_report(repo, "HEAD~1", repo / "r.md")  # a damaged one does not lose the report
    section = text.split("## CoreML on a Mac")[1].split("\n## ")[0]
    assert "Not shown:" in section and "coreml_bench.json: not JSON" in section


def test_a_bad_coreml_benchmark_given_is_refused_before_any_work(
    repo: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "mac.json"
    bad.write_text(json.dumps({"schema": "other"}))
    out = repo / "never.md"
    result = CliRunner().invoke(
        app,
        ["report", "--base", "HEAD~1", "--repo", str(repo), "--out", str(out)]
        + ["--coreml-bench", str(bad)],
    )
    assert (
        result.exit_code == 2 and "[schema]: not a vigil.coreml_bench/1 document" in result.output
    )
    assert not out.exists()
