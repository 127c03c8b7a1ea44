"""Acceptance gates: thresholds from `params.yaml` (`gate:`) held against the metrics documents.

A gate names a metric by a dotted path whose first part is the document (`metrics/<name>.json` →
`<name>`): `evaluate.student.map50`, `evaluate.student.per_stratum.scenario.night.map50`. Keys that
themselves contain dots are found too (the longest key that matches wins). Two paths joined by
` / ` or ` - ` (spaces around) make a ratio or a difference: `evaluate.student.map50_95 /
evaluate.teacher.map50_95`. A metric that is missing, not a number, or a division by zero fails
its gate with the reason — it never passes silently and never crashes the stage. Where a stage
could not measure a value it writes null and a `reason` beside it (or higher up the document);
the gate shows that reason.

A `*` part means "every value found there": `evaluate.student.per_stratum.scenario.*.map50 >= 0.55`
becomes one gate row per scenario in the metrics (`*` in the gate's name is replaced by the value),
so a team's own strata need no gate edits.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vigil.errors import VigilError
from vigil.release.params import GateParams, GateSpec

COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}


WILDCARD = "*"


class MetricMissing(Exception):
    """The metric a gate names cannot be read; the message says why."""


class MetricNotMeasured(MetricMissing):
    """The metric is null because its stage could not measure it; the message is the stage's reason."""


@dataclass(frozen=True)
class GateResult:
    name: str
    metric: str
    value: float | None
    op: str
    threshold: float
    passed: bool
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "metric": self.metric,
            "value": self.value,
            "op": self.op,
            "threshold": self.threshold,
            "passed": self.passed,
        }
        if self.reason:
            out["reason"] = self.reason
        return out


def load_documents(paths: list[Path]) -> tuple[dict[str, Any], dict[str, str]]:
    """Metrics documents by name (file stem); unreadable ones go to the second dict with the reason."""
    documents: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for path in map(Path, paths):
        try:
            documents[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            problems[path.stem] = f"{path} not found"
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            problems[path.stem] = f"{path} is not valid JSON ({exc})"
    return documents, problems


def _descend(node: Any, parts: list[str], walked: str, trail: list[Any] | None = None) -> Any:
    if trail is not None:
        trail.append(node)
    if not parts:
        return node
    if isinstance(node, dict):
        for k in range(len(parts), 0, -1):  # longest key first: keys may contain dots
            key = ".".join(parts[:k])
            if key in node:
                return _descend(node[key], parts[k:], f"{walked}.{key}", trail)
        keys = ", ".join(sorted(map(str, node))[:12])
        raise MetricMissing(f"no key {parts[0]!r} under {walked} (has: {keys})")
    if isinstance(node, list) and parts[0].isdigit() and int(parts[0]) < len(node):
        return _descend(node[int(parts[0])], parts[1:], f"{walked}.{parts[0]}", trail)
    raise MetricMissing(f"{walked} is a {type(node).__name__}, cannot look up {parts[0]!r} in it")


def _reasons(trail: list[Any]) -> list[str]:
    """The `reason` strings met on the way down, nearest the value first."""
    found = [
        n["reason"]
        for n in reversed(trail)
        if isinstance(n, dict) and isinstance(n.get("reason"), str)
    ]
    return list(dict.fromkeys(found))


def lookup(documents: dict[str, Any], problems: dict[str, str], path: str) -> float:
    """The number at dotted `path`; raises MetricMissing (or MetricNotMeasured) with the reason."""
    doc, *rest = path.strip().split(".")
    if doc in problems:
        raise MetricMissing(problems[doc])
    if doc not in documents:
        given = ", ".join(sorted(documents | problems)) or "none"
        raise MetricMissing(f"no metrics document {doc!r} (given: {given})")
    trail: list[Any] = []
    value = _descend(documents[doc], rest, doc, trail)
    if isinstance(value, bool):
        return float(value)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        reasons = _reasons(trail[:-1])
        if value is None and reasons:
            raise MetricNotMeasured(f"{path.strip()} is null: {'; '.join(reasons)}")
        raise MetricMissing(f"{path} is {value!r}, not a finite number")
    return float(value)


def split_metric(metric: str) -> tuple[list[str], str | None]:
    """The dotted paths of a metric and the symbol joining them (`A / B`, `A - B`), or one path and None."""
    for symbol in (" / ", " - "):
        if symbol in metric:
            left, right = metric.split(symbol, 1)
            return [left.strip(), right.strip()], symbol
    return [metric.strip()], None


def metric_value(documents: dict[str, Any], problems: dict[str, str], metric: str) -> float:
    """A dotted path, or `A / B`, or `A - B`."""
    paths, symbol = split_metric(metric)
    if symbol is None:
        return lookup(documents, problems, paths[0])
    a, b = lookup(documents, problems, paths[0]), lookup(documents, problems, paths[1])
    if symbol == " - ":
        return a - b
    if b == 0:
        raise MetricMissing(f"{paths[1]} is 0: the ratio is undefined")
    return a / b


def wildcard_values(
    documents: dict[str, Any], problems: dict[str, str], metric: str
) -> list[str] | None:
    """The keys a metric's `*` stands for (sorted), or None when it has no `*`; MetricMissing if none."""
    paths, _ = split_metric(metric)
    starred = [p for p in paths if WILDCARD in p.split(".")]
    if not starred:
        return None
    parts = starred[0].split(".")
    if parts.count(WILDCARD) > 1 or parts[0] == WILDCARD:
        raise MetricMissing(f"{starred[0]}: one `*` per path, after the document name")
    prefix = parts[: parts.index(WILDCARD)]
    doc, *rest = prefix
    if doc in problems:
        raise MetricMissing(problems[doc])
    if doc not in documents:
        raise MetricMissing(f"no metrics document {doc!r} to expand `*` in")
    node = _descend(documents[doc], rest, doc)
    if not isinstance(node, dict) or not node:
        raise MetricMissing(f"nothing under {'.'.join(prefix)} to expand `*` over")
    return sorted(map(str, node))


def _failed(gate: GateSpec, reason: str) -> GateResult:
    return GateResult(gate.name, gate.metric, None, gate.op, gate.threshold, False, reason)


def expand_gate(
    gate: GateSpec, documents: dict[str, Any], problems: dict[str, str]
) -> list[GateSpec] | GateResult:
    """One gate per value of its `*` (the gate itself when it has none), or a failed result saying why."""
    try:
        values = wildcard_values(documents, problems, gate.metric)
    except MetricMissing as exc:
        return _failed(gate, f"missing metric: {exc}")
    if values is None:
        return [gate]
    paths, symbol = split_metric(gate.metric)
    out = []
    for value in values:
        filled = [
            ".".join(value if part == WILDCARD else part for part in p.split(".")) for p in paths
        ]
        name = (
            gate.name.replace(WILDCARD, value) if WILDCARD in gate.name else f"{gate.name} {value}"
        )
        out.append(replace(gate, name=name, metric=(symbol or "").join(filled)))
    return out


def evaluate_gate(
    gate: GateSpec, documents: dict[str, Any], problems: dict[str, str]
) -> GateResult:
    try:
        value = metric_value(documents, problems, gate.metric)
    except MetricNotMeasured as exc:
        return _failed(gate, f"not measured: {exc}")
    except MetricMissing as exc:
        return _failed(gate, f"missing metric: {exc}")
    return GateResult(
        gate.name,
        gate.metric,
        round(value, 6),
        gate.op,
        gate.threshold,
        COMPARE[gate.op](value, gate.threshold),
    )


def evaluate_gates(
    params: GateParams, documents: dict[str, Any], problems: dict[str, str]
) -> list[GateResult]:
    """Every gate, `*` gates expanded to one row per value, in the order params.yaml lists them."""
    if not params.gates:
        raise VigilError(
            "no gates configured",
            field="gate.gates",
            hint="a release is held to written thresholds: list at least one gate",
        )
    results: list[GateResult] = []
    for spec in params.gates:
        expanded = expand_gate(spec, documents, problems)
        if isinstance(expanded, GateResult):
            results.append(expanded)
        else:
            results += [evaluate_gate(g, documents, problems) for g in expanded]
    return results


def gate_document(results: list[GateResult]) -> dict[str, Any]:
    """`metrics/gate.json`: passed, and one {name, value, op, threshold, passed} per gate (+ metric, reason)."""
    return {"passed": all(r.passed for r in results), "gates": [r.as_dict() for r in results]}


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.6g}"


def gate_report(results: list[GateResult], report_only: bool) -> str:
    """`reports/gate.md`: the verdict, then a table with the failed gates first."""
    failed = [r for r in results if not r.passed]
    verdict = (
        f"**FAILED** — {len(failed)} of {len(results)} gates failed"
        if failed
        else f"**PASSED** — all {len(results)} gates passed"
    )
    lines = [f"# Release gate: {verdict}", ""]
    if report_only and failed:
        lines += ["Report only (`gate.report_only: true`): the stage exits 0 regardless.", ""]
    lines += ["| result | gate | metric | value | op | threshold |", "|---|---|---|---|---|---|"]
    for r in failed + [r for r in results if r.passed]:
        value = _fmt(r.value) if r.reason is None else f"— ({r.reason})".replace("|", "\\|")
        lines.append(
            f"| {'FAIL' if not r.passed else 'pass'} | {r.name} | `{r.metric}` | {value} | `{r.op}` | "
            f"{_fmt(r.threshold)} |"
        )
    return "\n".join(lines) + "\n"


def run_gate(params: GateParams, metrics: list[Path]) -> tuple[dict[str, Any], str]:
    """Evaluate every gate against the given metrics files: (gate.json document, gate.md text)."""
    documents, problems = load_documents(metrics)
    results = evaluate_gates(params, documents, problems)
    return gate_document(results), gate_report(results, params.report_only)


def publish_gate(
    params: GateParams, metrics: list[Path], out: Path, report: Path, release: Path
) -> tuple[dict[str, Any], str]:
    """Judge the release and write its three outputs atomically: the verdict JSON, its table, the release page."""
    from vigil.atomic import write_json_atomic, write_text_atomic
    from vigil.release.release_report import read_documents, release_markdown

    document, text = run_gate(params, metrics)
    write_json_atomic(out, document)
    write_text_atomic(report, text)
    write_text_atomic(release, release_markdown(read_documents(metrics), document))
    return document, text
