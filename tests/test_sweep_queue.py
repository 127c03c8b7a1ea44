"""benchmarks/sweep_queue.py: grid expansion, `dvc exp show --json` parsing, and failing on a bad round.

The pure logic is tested fast; the real sweep (DVC experiments in a scratch clone) is `slow`.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("sweep_queue", REPO / "benchmarks/sweep_queue.py")
assert _spec and _spec.loader
sq = importlib.util.module_from_spec(_spec)
sys.modules["sweep_queue"] = sq  # dataclasses look their module up by name
_spec.loader.exec_module(sq)


def exp(
    name: str, metrics: dict[str, Any] | None, state: str | None = "success", **params: Any
) -> dict[str, Any]:
    """One experiment entry as `dvc exp show --json` (DVC 3) writes it."""
    tree: dict[str, Any] = {}
    for dotted, value in params.items():
        node = tree
        *parents, last = dotted.split("__")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    data = {
        "rev": f"{name}-sha",
        "timestamp": "2026-12-04T13:19:58",
        "params": {"params.yaml": {"data": tree}},
        "metrics": {} if metrics is None else {"metrics/evaluate.json": {"data": metrics}},
    }
    return {
        "name": name,
        "executor": None if state is None else {"state": state, "name": "dvc-task", "local": {}},
        "revs": [{"rev": f"{name}-sha", "name": name, "data": data, "error": None}],
    }


def shown(*experiments: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"rev": "workspace", "name": None, "data": {}, "error": None, "experiments": None},
        {"rev": "abc", "name": "main", "data": {}, "error": None, "experiments": list(experiments)},
    ]


def test_grid_parses_and_expands_first_axis_slowest() -> None:
    axes = sq.parse_grid(["train.lr0=0.001,0.01", "distill.dis= 0.0 ,6.0"])
    assert axes == [("train.lr0", ["0.001", "0.01"]), ("distill.dis", ["0.0", "6.0"])]
    points = sq.expand_grid(axes)
    assert points == [
        {"train.lr0": "0.001", "distill.dis": "0.0"},
        {"train.lr0": "0.001", "distill.dis": "6.0"},
        {"train.lr0": "0.01", "distill.dis": "0.0"},
        {"train.lr0": "0.01", "distill.dis": "6.0"},
    ]
    assert sq.set_args(points[1]) == ["-S", "train.lr0=0.001", "-S", "distill.dis=6.0"]
    assert sq.exp_names("sweep-j2", 3) == ["sweep-j2-0", "sweep-j2-1", "sweep-j2-2"]
    assert len(sq.expand_grid(sq.parse_grid(["a.b=1,2,3", "c=x,y"]))) == 6
    added = sq.parse_grid(["+distill.overrides.epochs=1,3", "train.lr0=0.1,0.2", "train.nope=1,2"])
    params = {"train": {"lr0": 0.001}, "distill": {"overrides": {}}}
    assert sq.unknown_keys(added, params) == ["train.nope"]


@pytest.mark.parametrize(
    "specs",
    [
        [],
        ["train.lr0"],
        ["=1,2"],
        ["train.lr0=0.1,,0.2"],
        ["train.lr0=0.1,0.1"],
        ["train.lr0=1", "train.lr0=2"],
        ["-S=1"],
    ],
)
def test_bad_grids_are_refused(specs: list[str]) -> None:
    with pytest.raises(sq.SweepError):
        sq.parse_grid(specs)


def test_exp_show_is_parsed_per_experiment() -> None:
    out = shown(
        exp("a", {"student": {"map50": 0.25}}, train__lr0=0.001, distill__dis=0.0),
        exp("b", {"student": {"map50": 0.0}}, state=None, train__lr0=0.01, distill__dis=6.0),
    )
    metrics = ["evaluate.student.map50"]
    rows = sq.parse_exp_show(out, metrics, ["train.lr0", "distill.dis"])
    assert set(rows) == {"a", "b"}
    a, b = rows["a"], rows["b"]
    assert (
        a.values == {"evaluate.student.map50": 0.25} and a.state == "success" and a.rev == "a-sha"
    )
    assert a.params == {"train.lr0": 0.001, "distill.dis": 0.0}
    assert a.timestamp == "2026-12-04T13:19:58"
    assert b.state == "success" and b.values["evaluate.student.map50"] == 0.0  # no executor record
    assert sq.problems(rows, ["a", "b"], metrics) == []
    assert sq.problems(rows, ["a", "b"], [*metrics, "evaluate.student.recall"]) == [
        "a: no numeric evaluate.student.recall in its metrics (got None)",
        "b: no numeric evaluate.student.recall in its metrics (got None)",
    ]


def test_missing_metric_failed_and_absent_experiments_are_problems() -> None:
    failed = exp("c", None, state="failed")
    failed["revs"][0]["error"] = {"type": "ReproductionError", "msg": "stage train failed"}
    out = shown(
        exp("a", {"student": {"map50": 0.5}}),
        exp("b", {"teacher": {"map50": 0.5}}),  # evaluate.json without the student
        failed,
        exp("d", None),  # no metrics files at all
        exp("e", {"student": {"map50": "n/a"}}),
    )
    rows = sq.parse_exp_show(out, ["evaluate.student.map50"], [])
    found = sq.problems(rows, ["a", "b", "c", "d", "e", "f"], ["evaluate.student.map50"])
    assert [p.split(":")[0] for p in found] == ["b", "c", "d", "e", "f"]
    assert "stage train failed" in found[1] and "not in `dvc exp show`" in found[4]
    with pytest.raises(sq.SweepError):
        sq.parse_exp_show({"not": "a list"}, ["evaluate.student.map50"], [])


def test_dig_metric_finds_the_file_by_stem() -> None:
    metrics = {
        "metrics/gate.json": {"data": {"passed": True}},
        "metrics/evaluate.json": {"data": {"student": {"map50": 0.7}}},
    }
    assert sq.dig_metric(metrics, "evaluate.student.map50") == 0.7
    assert sq.dig_metric(metrics, "gate.passed") is True
    assert sq.dig_metric(metrics, "evaluate.student.recall") is None
    assert sq.dig_metric(metrics, "export.onnx.map50") is None
    assert sq.dig_metric({"metrics/evaluate.json": {"data": None}}, "evaluate.student") is None


def test_same_value_and_active_tasks() -> None:
    assert sq.same_value(0.01, "0.010") and sq.same_value(6.0, "6") and sq.same_value(True, "true")
    assert not sq.same_value(0.01, "0.001") and not sq.same_value(6.0, "six")
    assert sq.same_value("fog", '"fog"') and sq.same_value(None, "null")
    status = (
        "Task     Name        Created    Status\n"
        "64770fe  sweep-j2-0  01:20 PM   Running\n"
        "22f96d2  sweep-j2-1  01:20 PM   Success\n"
        "3db8c91  sweep-j2-2  01:20 PM   Queued\n"
        "e44c995  other       01:20 PM   Running\n"
        "\nWorker status: 2 active, 0 idle\n"
    )
    names = ["sweep-j2-0", "sweep-j2-1", "sweep-j2-2"]
    assert sq.active_tasks(status, names) == ["sweep-j2-0", "sweep-j2-2"]
    assert sq.active_tasks("No experiment tasks in the queue.\n", names) == []


def test_render_reports_speedup_and_flags_problems() -> None:
    points = [{"train.lr0": "0.001"}, {"train.lr0": "0.01"}]
    m = "evaluate.student.map50"
    rows = {
        "sweep-j1-0": sq.ExpRow("sweep-j1-0", state="success", values={m: 0.1}),
        "sweep-j1-1": sq.ExpRow(
            "sweep-j1-1", state="success", values={m: 0.2}, timestamp="2026-12-04T13:03:20"
        ),
        "sweep-j2-0": sq.ExpRow("sweep-j2-0", state="success", values={m: 0.1}),
        "sweep-j2-1": sq.ExpRow("sweep-j2-1", state="failed"),
    }
    started = sq.datetime(2026, 12, 4, 13, 0, 0, 700000)
    names1, names2 = ["sweep-j1-0", "sweep-j1-1"], ["sweep-j2-0", "sweep-j2-1"]
    one = sq.Round(1, names1, 200.0, (1, 1, 1), (2, 2, 2), [1.5], rows, [], started)
    two = sq.Round(2, names2, 160.0, (1, 1, 1), (3, 3, 3), [], rows, ["sweep-j2-1: failed"])
    assert one.finished_s("sweep-j1-1") == 200.0 and one.finished_s("sweep-j1-0") is None
    info = {
        "command": "python benchmarks/sweep_queue.py",
        "date": "2026-12-04 13:00 UTC",
        "commit": "abc",
        "profile": "profiles/ci.yaml",
        "grid": "`train.lr0` ∈ {0.001, 0.01}",
        "metrics": [m],
        "poll": 10.0,
        "python": "Python 3.11",
        "dvc": "3.67.1",
        "cpu": "Test CPU",
        "cores": 2,
        "usable": 2,
    }
    text = sq.render([one, two], info, points)
    assert "| 1 | 2 | 2 | 200.0 | 100.0 | 1.00x | 1.00 → 2.00 | 1.50 |" in text
    assert "| 2 | 2 | 1 | 160.0 | 80.0 | 1.25x | 1.00 → 3.00 | nan |" in text
    assert "| `0.01` | 0.2 | 200 | FAILED | — |" in text
    assert (
        "(every 10.0 s)" in text
        and "**no**" in text
        and "sweep-j2-1: failed" in text
        and "Test CPU, 2 logical CPUs" in text
    )
    reversed_order = sq.render([two, one], info, points)  # -j 1 is the reference in any order
    assert "speed-up vs -j 1 |" in reversed_order and "| 160.0 | 80.0 | 1.25x |" in reversed_order


def test_a_clone_a_straggler_still_writes_into_is_removed(tmp_path: Path) -> None:
    """A detached process that keeps writing under the clone (a Celery worker) is waited for,
    then killed, and the clone is gone; a plain rmtree would race it."""
    clone = tmp_path / "j2"
    (clone / ".dvc" / "tmp").mkdir(parents=True)
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import itertools, pathlib, time\n"
            "for i in itertools.count():\n"
            "    pathlib.Path(f'.dvc/tmp/log{i}').mkdir(parents=True, exist_ok=True)\n"
            "    time.sleep(0.01)\n",
        ],
        cwd=clone,
        start_new_session=True,
    )
    try:
        time.sleep(0.5)
        assert sq.processes_in(clone) == [writer.pid]
        sq.remove_clone(clone, wait_s=1.0)
        assert not clone.exists()
        assert writer.wait(timeout=10) != 0  # it was killed, it did not finish
    finally:
        if writer.poll() is None:
            writer.kill()


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert sq.main(["--grid", "train.lr0"]) == 2
    assert sq.main(["--grid", "train.no_such_key=1,2"]) == 2
    assert sq.main(["--jobs", "0"]) == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.trains
def test_a_real_queued_sweep_lands_in_exp_show_and_a_failing_point_fails_it(tmp_path: Path) -> None:
    """Two ci-profile experiments with -j 2 in a scratch clone: one trains, one is refused (imgsz 65)."""
    report = tmp_path / "sweep.md"
    code = sq.main(
        [
            "--grid",
            "train.imgsz=64,65",
            "--jobs",
            "2",
            "--poll",
            "3",
            "--timeout",
            "1800",
            "--workdir",
            str(tmp_path / "work"),
            "--report",
            str(report),
        ]
    )
    text = report.read_text()
    assert code == 1
    assert "sweep-j2-1: failed" in text and "| `65` | FAILED | FAILED | — |" in text
    number = r"[0-9.e+-]+"
    assert re.search(rf"\| `64` \| {number} \| {number} \| \d+ \|", text), text
    assert not (tmp_path / "work/j2").exists()  # the scratch clone is gone
