"""Gates that fit a team's data: `*` gates expand to every stratum value found, and a gate naming a value
the data cannot have fails when `validate` runs (naming the gate), not at the `gate` stage after training."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from vigil.cli import app
from vigil.errors import VigilError
from vigil.params import build
from vigil.release.gate import GateResult, evaluate_gates, expand_gate
from vigil.release.gate_fit import check_gates_fit
from vigil.release.params import GateParams, GateSpec

REPO = Path(__file__).resolve().parents[1]
DOCS = {
    "evaluate": {
        "student": {
            "map50_95": 0.5,
            "per_stratum": {
                "stream": {
                    "front": {"map50": 0.7},
                    "rear": {"map50": 0.5},
                    "cab.v2": {"map50": 0.66},
                },
                "scenario": {"day": {"map50": 0.8}},
            },
        },
        "teacher": {"per_stratum": {"stream": {"front": {"map50": 0.9}}}},
    }
}
ALLOWED = {
    "stream": ["front", "rear", "cab.v2"],
    "scenario": ["day", "night"],
    "road_type": ["street"],
}


def spec(metric: str, threshold: float = 0.6, name: str = "mAP50 *") -> GateSpec:
    return GateSpec(name=name, metric=metric, op=">=", threshold=threshold)


def test_a_wildcard_gate_expands_to_one_row_per_value_found() -> None:
    params = GateParams(
        report_only=False, gates=[spec("evaluate.student.per_stratum.stream.*.map50")]
    )
    results = evaluate_gates(params, DOCS, {})
    assert [(r.name, r.value, r.passed) for r in results] == [
        ("mAP50 cab.v2", 0.66, True),
        ("mAP50 front", 0.7, True),
        ("mAP50 rear", 0.5, False),
    ]
    assert results[2].metric == "evaluate.student.per_stratum.stream.rear.map50"


def test_a_wildcard_fills_both_sides_and_names_without_a_star_get_the_value() -> None:
    gate = spec(
        "evaluate.student.per_stratum.stream.*.map50 / evaluate.teacher.per_stratum.stream.*.map50",
        threshold=0.5,
        name="student / teacher",
    )
    expanded = expand_gate(gate, DOCS, {})
    assert not isinstance(expanded, GateResult)
    assert [g.name for g in expanded] == [
        "student / teacher cab.v2",
        "student / teacher front",
        "student / teacher rear",
    ]
    results = evaluate_gates(GateParams(report_only=False, gates=[gate]), DOCS, {})
    assert results[1].value == pytest.approx(0.7 / 0.9) and "no key 'rear'" in (
        results[2].reason or ""
    )


@pytest.mark.parametrize(
    "metric,reason",
    [
        ("evaluate.student.per_stratum.road_type.*.map50", "no key 'road_type'"),
        ("evaluate.student.map50_95.*", "nothing under evaluate.student.map50_95"),
        ("evaluate.student.per_stratum.*.*.map50", "one `*` per path"),
        ("export.*.ms", "no metrics document 'export'"),
    ],
)
def test_a_wildcard_with_nothing_to_expand_fails_with_the_reason(metric: str, reason: str) -> None:
    results = evaluate_gates(GateParams(report_only=False, gates=[spec(metric)]), DOCS, {})
    assert len(results) == 1 and not results[0].passed and reason in (results[0].reason or "")


@pytest.mark.parametrize(
    "metric",
    [
        "evaluate.student.per_stratum.stream.*.map50",
        "evaluate.student.per_stratum.stream.cab.v2.map50",  # an allowed value with a dot
        "evaluate.student.per_stratum.scenario.night.map50 - evaluate.student.map50_95",
        "evaluate.student.map50",
    ],
)
def test_gates_that_fit_the_allowed_values_pass_the_check(metric: str) -> None:
    check_gates_fit(GateParams(report_only=False, gates=[spec(metric, name="g")]), ALLOWED)


@pytest.mark.parametrize(
    "metric,fragment",
    [
        ("evaluate.student.per_stratum.stream.cctv.map50", "stream value 'cctv'"),
        (
            "evaluate.student.map50 / evaluate.student.per_stratum.scenario.dusk.map50",
            "scenario value 'dusk'",
        ),
        ("evaluate.student.per_stratum.weather.rain.map50", "stratum 'weather'"),
    ],
)
def test_a_gate_naming_a_value_the_data_cannot_have_is_an_error_naming_it(
    metric: str, fragment: str
) -> None:
    params = GateParams(
        report_only=False,
        gates=[spec("evaluate.student.map50", name="ok"), spec(metric, name="mAP50 bad")],
    )
    with pytest.raises(VigilError) as caught:
        check_gates_fit(params, ALLOWED)
    assert caught.value.field == "gate.gates.mAP50 bad" and fragment in caught.value.message


def team_params(tmp_path: Path) -> Path:
    """The repository's params with another team's streams (front/rear/cabin) and the shipped gates."""
    data = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    data["validate"]["allowed"]["stream"] = ["front", "rear", "cabin"]
    data["gate"]["gates"].append(
        {
            "name": "mAP50 stills",
            "op": ">=",
            "threshold": 0.5,
            "metric": "evaluate.student.per_stratum.stream.stills.map50",
        }
    )
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_the_shipped_gates_fit_any_team_strata(tmp_path: Path) -> None:
    data = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    check_gates_fit(
        build(GateParams, data["gate"], "gate"), {**ALLOWED, "stream": ["front", "rear", "cabin"]}
    )


def test_validate_stage_fails_fast_naming_the_gate_and_writes_nothing(
    dataset: Path, tmp_path: Path
) -> None:
    metrics, docs = tmp_path / "out" / "validate.json", tmp_path / "out" / "docs"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "stages" / "validate.py"),
            "--data",
            str(dataset),
            "--files",
            str(tmp_path / "files.jsonl"),
            "--metrics",
            str(metrics),
            "--docs",
            str(docs),
            "--params",
            str(team_params(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert "gate.gates.mAP50 stills" in proc.stderr and "'stills'" in proc.stderr
    assert "Traceback" not in proc.stderr and not metrics.exists() and not docs.exists()


def test_validate_stage_names_a_bad_hash_manifest_in_one_line(
    dataset: Path, tmp_path: Path
) -> None:
    files = tmp_path / "files.jsonl"
    files.write_text('{"path": "images/000.png"}\n')
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "stages" / "validate.py"),
            "--data",
            str(dataset),
            "--files",
            str(files),
            "--metrics",
            str(tmp_path / "v.json"),
            "--docs",
            str(tmp_path / "docs"),
            "--params",
            str(REPO / "params.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and f"{files}:1" in proc.stderr and "Traceback" not in proc.stderr


def test_check_command_fails_fast_on_a_gate_that_cannot_fit(dataset: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["data", "check", str(dataset), "--params", str(team_params(tmp_path))]
    )
    assert result.exit_code == 2 and "mAP50 stills" in result.output
