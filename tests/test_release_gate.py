"""Acceptance gates: every op made to fail, missing metrics fail with a reason, the stage's exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vigil.errors import VigilError
from vigil.params import build
from vigil.release.gate import evaluate_gate, evaluate_gates, gate_report, run_gate
from vigil.release.params import GateParams, GateSpec

REPO = Path(__file__).resolve().parents[1]
DOCS = {
    "evaluate": {
        "student": {
            "map50": 0.62,
            "map50_95": 0.41,
            "recall": 0.7,
            "per_stratum": {
                "scenario": {"night": {"map50": 0.55}},
                "stream": {"cctv.v2": {"map50": 0.6}},
            },
        },
        "teacher": {"map50_95": 0.5},
        "control": {"map50_95": 0.0},
    },
    "calibrate": {"test": {"dece": {"after": 0.04}}, "operating_threshold": {"changed": 0}},
}


def gate(metric: str, op: str, threshold: float) -> GateSpec:
    return GateSpec(name=f"gate on {metric}", metric=metric, op=op, threshold=threshold)


@pytest.mark.parametrize(
    "op, passing, failing",
    [
        (">=", 0.62, 0.63),  # raise the floor past the value
        (">", 0.61, 0.62),
        ("<=", 0.62, 0.61),  # lower the ceiling past the value
        ("<", 0.63, 0.62),
        ("==", 0.62, 0.621),
    ],
)
def test_each_op_passes_then_fails_past_the_value(op: str, passing: float, failing: float) -> None:
    ok = evaluate_gate(gate("evaluate.student.map50", op, passing), DOCS, {})
    bad = evaluate_gate(gate("evaluate.student.map50", op, failing), DOCS, {})
    assert (ok.value, ok.passed, ok.reason) == (0.62, True, None)
    assert (bad.value, bad.passed) == (0.62, False)


def test_nested_paths_dotted_keys_ratio_and_difference() -> None:
    assert evaluate_gate(
        gate("evaluate.student.per_stratum.scenario.night.map50", ">=", 0.5), DOCS, {}
    ).passed
    assert (
        evaluate_gate(
            gate("evaluate.student.per_stratum.stream.cctv.v2.map50", ">=", 0.6), DOCS, {}
        ).value
        == 0.6
    )
    ratio = evaluate_gate(
        gate("evaluate.student.map50_95 / evaluate.teacher.map50_95", ">=", 0.8), DOCS, {}
    )
    assert ratio.value == pytest.approx(0.82) and ratio.passed
    assert not evaluate_gate(
        gate("evaluate.student.map50_95 / evaluate.teacher.map50_95", ">=", 0.83), DOCS, {}
    ).passed
    drop = evaluate_gate(
        gate("evaluate.teacher.map50_95 - evaluate.student.map50_95", "<=", 0.1), DOCS, {}
    )
    assert drop.value == pytest.approx(0.09) and drop.passed


@pytest.mark.parametrize(
    "metric, reason",
    [
        ("export.onnx.map50_95", "no metrics document 'export' (given: calibrate, evaluate)"),
        ("evaluate.student.map75", "no key 'map75' under evaluate.student"),
        (
            "evaluate.student.per_stratum.scenario",
            "is {'night': {'map50': 0.55}}, not a finite number",
        ),
        ("evaluate.student.map50.x", "evaluate.student.map50 is a float"),
        ("evaluate.student.map50_95 / evaluate.control.map50_95", "evaluate.control.map50_95 is 0"),
    ],
)
def test_a_missing_metric_fails_its_gate_with_the_reason(metric: str, reason: str) -> None:
    result = evaluate_gate(gate(metric, ">=", 0.0), DOCS, {})
    assert result.passed is False and result.value is None
    assert reason in result.reason


def test_an_unreadable_metrics_file_fails_its_gates(tmp_path: Path) -> None:
    (tmp_path / "evaluate.json").write_text("{not json")
    params = GateParams(
        report_only=False,
        gates=[gate("evaluate.student.map50", ">=", 0.5), gate("export.onnx.ms", "<=", 9)],
    )
    document, _ = run_gate(params, [tmp_path / "evaluate.json", tmp_path / "export.json"])
    assert document["passed"] is False
    assert "is not valid JSON" in document["gates"][0]["reason"]
    assert "export.json not found" in document["gates"][1]["reason"]


def test_report_puts_failed_gates_first() -> None:
    params = build(
        GateParams,
        {
            "report_only": False,
            "gates": [
                {
                    "name": "map ok",
                    "metric": "evaluate.student.map50",
                    "op": ">=",
                    "threshold": 0.5,
                },
                {
                    "name": "recall low",
                    "metric": "evaluate.student.recall",
                    "op": ">=",
                    "threshold": 0.9,
                },
                {"name": "gone", "metric": "export.onnx.ms", "op": "<=", "threshold": 10},
            ],
        },
        "gate",
    )
    results = evaluate_gates(params, DOCS, {})
    text = gate_report(results, report_only=False)
    assert text.startswith("# Release gate: **FAILED** — 2 of 3 gates failed")
    rows = [
        line for line in text.splitlines() if line.startswith("| FAIL") or line.startswith("| pass")
    ]
    assert [r.split("|")[2].strip() for r in rows] == ["recall low", "gone", "map ok"]
    assert "no metrics document 'export'" in rows[1]


def test_gate_params_are_checked() -> None:
    with pytest.raises(VigilError, match="unknown op"):
        build(
            GateParams,
            {
                "report_only": False,
                "gates": [{"name": "a", "metric": "x.y", "op": "=>", "threshold": 1}],
            },
            "gate",
        )
    with pytest.raises(VigilError, match="duplicate gate name"):
        build(
            GateParams,
            {
                "report_only": False,
                "gates": [{"name": "a", "metric": "x.y", "op": ">=", "threshold": 1}] * 2,
            },
            "gate",
        )
    with pytest.raises(VigilError, match="unknown key"):
        build(
            GateParams,
            {
                "report_only": False,
                "gates": [{"name": "a", "metric": "x.y", "op": ">=", "treshold": 1}],
            },
            "gate",
        )
    with pytest.raises(VigilError, match="no gates configured"):
        evaluate_gates(GateParams(report_only=False, gates=[]), DOCS, {})


def run_stage(
    tmp_path: Path, report_only: bool, threshold: float
) -> tuple[subprocess.CompletedProcess, Path, Path]:
    for name, doc in DOCS.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(doc))
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "gate": {
                    "report_only": report_only,
                    "gates": [
                        {
                            "name": "student mAP50",
                            "metric": "evaluate.student.map50",
                            "op": ">=",
                            "threshold": threshold,
                        },
                        {
                            "name": "D-ECE",
                            "metric": "calibrate.test.dece.after",
                            "op": "<=",
                            "threshold": 0.1,
                        },
                    ],
                }
            }
        )
    )
    out, report = tmp_path / "metrics" / "gate.json", tmp_path / "reports" / "gate.md"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "stages" / "gate.py"),
            "--metrics",
            str(tmp_path / "evaluate.json"),
            "--metrics",
            str(tmp_path / "calibrate.json"),
            "--out",
            str(out),
            "--report",
            str(report),
            "--release",
            str(tmp_path / "reports" / "release.md"),
            "--params",
            str(params),
        ],
        capture_output=True,
        text=True,
    )
    return proc, out, report


def test_stage_exits_non_zero_after_writing_both_files(tmp_path: Path) -> None:
    proc, out, report = run_stage(tmp_path, report_only=False, threshold=0.7)
    assert proc.returncode == 1, proc.stderr
    document = json.loads(out.read_text())
    assert document["passed"] is False
    assert document["gates"][0] == {
        "name": "student mAP50",
        "metric": "evaluate.student.map50",
        "value": 0.62,
        "op": ">=",
        "threshold": 0.7,
        "passed": False,
    }
    assert document["gates"][1]["passed"] is True
    assert "**FAILED** — 1 of 2 gates failed" in report.read_text()
    assert "FAILED" in proc.stdout  # the verdict is printed


def test_stage_passes_with_exit_0(tmp_path: Path) -> None:
    proc, out, report = run_stage(tmp_path, report_only=False, threshold=0.6)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["passed"] is True
    assert "**PASSED**" in report.read_text()


def test_report_only_exits_0_with_passed_false(tmp_path: Path) -> None:
    proc, out, report = run_stage(tmp_path, report_only=True, threshold=0.7)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["passed"] is False
    assert "Report only" in report.read_text()


def test_bad_params_exit_2_and_write_nothing(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            {
                "gate": {
                    "report_only": False,
                    "gates": [{"name": "a", "metric": "x.y", "op": "~", "threshold": 1}],
                }
            }
        )
    )
    out = tmp_path / "gate.json"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "stages" / "gate.py"),
            "--metrics",
            str(tmp_path / "x.json"),
            "--out",
            str(out),
            "--report",
            str(tmp_path / "gate.md"),
            "--release",
            str(tmp_path / "release.md"),
            "--params",
            str(params),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "unknown op '~'" in proc.stderr and str(params) in proc.stderr
    assert not out.exists()


def test_release_params_fragment_loads() -> None:
    from vigil.release.params import CalibrateParams

    doc = yaml.safe_load((REPO / "params.yaml").read_text())
    build(CalibrateParams, doc["calibrate"], "calibrate")
    gates = build(GateParams, doc["gate"], "gate").gates
    metrics = " ".join(g.metric for g in gates)
    # the student is the release subject; the gate list, each at least once
    for needed in (
        "evaluate.student.map50",
        "per_stratum",
        "recall",
        "calibrate.test.dece.after",
        "calibrate.operating_threshold.changed",
        "latency",
        "export.onnx.map50_95_change",
        "export.onnx_int8",
        "evaluate.student.map50_95 / evaluate.teacher.map50_95",
        "evaluate.student.map50_95 - evaluate.control.map50_95",
    ):
        assert needed in metrics
