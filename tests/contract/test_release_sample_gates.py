"""The shipped gates against the committed sample release: all pass, and each one fails once its
threshold is moved past the measured value (a `*` gate: each of the rows it expands to)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from vigil.params import load_section
from vigil.release.gate import GateResult, evaluate_gate, expand_gate, load_documents
from vigil.release.params import GateParams

REPO = Path(__file__).resolve().parents[2]
PARAMS = load_section(REPO / "params.yaml", "gate", GateParams)
DOCUMENTS = [REPO / "metrics" / f"{name}.json" for name in ("evaluate", "calibrate", "export")]


def documents():
    present = [p for p in DOCUMENTS if p.is_file()]
    if len(present) < len(DOCUMENTS):
        pytest.skip("the sample release metrics are not all committed yet")
    return load_documents(present)


@pytest.mark.parametrize("spec", PARAMS.gates, ids=lambda g: g.name)
def test_each_shipped_gate_passes_then_fails_past_its_value(spec) -> None:
    docs, problems = documents()
    expanded = expand_gate(spec, docs, problems)
    assert not isinstance(expanded, GateResult), expanded.reason
    assert len(expanded) >= (2 if "*" in spec.metric else 1)
    for gate in expanded:
        result = evaluate_gate(gate, docs, problems)
        assert result.passed, (
            f"{gate.name}: {result.value} {gate.op} {gate.threshold} ({result.reason})"
        )
        value = float(result.value)
        past = {
            ">=": value + 1e-3 + abs(value) * 0.01,
            ">": value + 1e-3,
            "<=": value - 1e-3 - abs(value) * 0.01,
            "<": value - 1e-3,
            "==": value + 1,
        }[gate.op]
        assert not evaluate_gate(replace(gate, threshold=past), docs, problems).passed, gate.name


def test_shipped_per_stratum_gates_name_every_value_with_a_wildcard() -> None:
    """A team's own strata need no gate edits: no shipped gate names a single stratum value."""
    for gate in PARAMS.gates:
        parts = gate.metric.split(".")
        if "per_stratum" in parts:
            assert parts[parts.index("per_stratum") + 2] == "*", gate.name
