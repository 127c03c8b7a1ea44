"""The shipped gates against the committed sample release: all pass, and each one fails once its
threshold is moved past the measured value."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from vigil.params import load_section
from vigil.release.gate import evaluate_gate, load_documents
from vigil.release.params import GateParams

REPO = Path(__file__).resolve().parents[1]
PARAMS = load_section(REPO / "params.yaml", "gate", GateParams)
DOCUMENTS = [REPO / "metrics" / f"{name}.json" for name in ("evaluate", "calibrate", "export")]


def documents():  # noqa: ANN201
    present = [p for p in DOCUMENTS if p.is_file()]
    if len(present) < len(DOCUMENTS):
        pytest.skip("the sample release metrics are not all committed yet")
    return load_documents(present)


@pytest.mark.parametrize("gate", PARAMS.gates, ids=lambda g: g.name)
def test_each_shipped_gate_passes_then_fails_past_its_value(gate) -> None:  # noqa: ANN001
    docs, problems = documents()
    result = evaluate_gate(gate, docs, problems)
    assert result.passed, f"{gate.name}: {result.value} {gate.op} {gate.threshold} ({result.reason})"
    value = float(result.value)
    past = {">=": value + 1e-3 + abs(value) * 0.01, ">": value + 1e-3, "<=": value - 1e-3 - abs(value) * 0.01,
            "<": value - 1e-3, "==": value + 1}[gate.op]
    assert not evaluate_gate(replace(gate, threshold=past), docs, problems).passed
