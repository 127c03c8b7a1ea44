"""`reports/release.md`: the release's numbers as tables, written by the pipeline from the metrics files.

The README links here instead of pasting numbers that go stale: every figure below is read from the
`metrics/*.json` of the same run (a missing one prints as `—`, e.g. a skipped export or the tiny ci
profile), so the page always describes the outputs it sits beside.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vigil.errors import VigilError
from vigil.hardware import one_line

MODELS = ("teacher", "student", "control")
DASH = "—"


def read_documents(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """metrics/<stem>.json files by stem (a missing file is simply absent: its tables print dashes)."""
    documents = {}
    for path in paths:
        if not path.is_file():
            continue
        try:
            documents[path.stem] = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise VigilError(
                f"not a JSON metrics file: {exc}", path=path, hint="re-run the stage that writes it"
            ) from None
    return documents


def pick(document: Any, dotted: str) -> Any:
    """The value at a dotted path, or None when any part is missing."""
    node = document
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def number(value: Any, digits: int = 3, suffix: str = "") -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return DASH
    return f"{value:.{digits}f}{suffix}"


def _ratio(a: Any, b: Any) -> Any:
    return a / b if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else None


def _minus(a: Any, b: Any) -> Any:
    return a - b if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
    ]


def machine(document: Mapping[str, Any]) -> str:
    """The machine a metrics file's latencies were measured on (`vigil.hardware`), in words."""
    block = document.get("hardware")
    return one_line(dict(block)) if isinstance(block, Mapping) else "an unrecorded machine"


def models_section(evaluate: Mapping[str, Any]) -> list[str]:
    rows = []
    for name in MODELS:
        block = evaluate.get(name)
        if not isinstance(block, Mapping):
            continue
        rows.append(
            [
                name,
                number(block.get("map50_95")),
                number(block.get("map50")),
                number(block.get("recall")),
                f"{number(pick(block, 'per_size.tiny.map50_95'))} / {number(pick(block, 'per_size.small.map50_95'))}",
                number(pick(block, "latency_ms.median"), 1, " ms"),
            ]
        )
    images, boxes = pick(evaluate, "student.images"), pick(evaluate, "student.boxes")
    return [
        "## Models on the test split",
        "",
        f"pycocotools on {images if images is not None else DASH} test images "
        f"({boxes if boxes is not None else DASH} boxes); latency: median of single-image CPU predictions "
        f"on {machine(evaluate)}.",
        "",
        *_table(
            ["model", "mAP@[.5:.95]", "mAP@.5", "recall", "tiny / small mAP@[.5:.95]", "latency"],
            rows,
        ),
    ]


def distill_section(evaluate: Mapping[str, Any], distill: Mapping[str, Any]) -> list[str]:
    student, teacher, control = (
        pick(evaluate, "student.map50_95"),
        pick(evaluate, "teacher.map50_95"),
        pick(evaluate, "control.map50_95"),
    )
    pseudo = distill.get("pseudo_labels") or {}
    rows = [
        ["student / teacher mAP@[.5:.95]", number(_ratio(student, teacher))],
        ["KD gain on test (student − control)", number(_minus(student, control), 3)],
        ["KD gain on val (student − control)", number(distill.get("kd_gain_val_map50_95"), 3)],
        [
            "pseudo-labels on the pool (count, precision, recall)",
            f"{pseudo.get('labels', DASH)}, {number(pseudo.get('precision'))}, {number(pseudo.get('recall'))}",
        ],
    ]
    return ["## Distillation", "", *_table(["measure", "value"], rows)]


def calibration_section(calibrate: Mapping[str, Any]) -> list[str]:
    if not calibrate:
        return []
    reason = calibrate.get("reason") or pick(calibrate, "global.reason")
    rows = [
        [
            "method (chosen out of fold on val)",
            str(pick(calibrate, "global.method") or reason or DASH),
        ],
        [
            "ECE on test, before → after",
            f"{number(pick(calibrate, 'test.ece.before'))} → "
            f"{number(pick(calibrate, 'test.ece.after'))}",
        ],
        [
            "D-ECE on test, before → after",
            f"{number(pick(calibrate, 'test.dece.before'))} → "
            f"{number(pick(calibrate, 'test.dece.after'))}",
        ],
        [
            "D-ECE a perfectly calibrated detector would measure here (floor), before → after",
            f"{number(pick(calibrate, 'test.dece.floor_before'))} → "
            f"{number(pick(calibrate, 'test.dece.floor_after'))}",
        ],
        [
            "NLL / Brier on test, before → after",
            f"{number(pick(calibrate, 'test.nll.before'))} → "
            f"{number(pick(calibrate, 'test.nll.after'))} / "
            f"{number(pick(calibrate, 'test.brier.before'))} → "
            f"{number(pick(calibrate, 'test.brier.after'))}",
        ],
        [
            "boxes changed at the operating threshold",
            str(
                pick(calibrate, "operating_threshold.changed")
                if pick(calibrate, "operating_threshold.changed") is not None
                else DASH
            ),
        ],
    ]
    return ["## Calibration", "", *_table(["measure", "value"], rows)]


def export_section(export: Mapping[str, Any]) -> list[str]:
    if not export:
        return []
    rows = []
    for name in ("torch", "onnx", "onnx_int8"):
        block = export.get(name)
        if not isinstance(block, Mapping):
            continue
        threads = sorted((pick(block, "latency_ms") or {}).keys())
        latency = (
            ", ".join(
                f"{number(pick(block, f'latency_ms.{t}.median'), 1)} ms ({t.replace('_', ' ')})"
                for t in threads
            )
            or DASH
        )
        rows.append(
            [
                name,
                str(block.get("status", DASH)),
                number(block.get("map50_95")),
                number(block.get("size_mb"), 1, " MB"),
                latency,
            ]
        )
    for name in ("coreml", "tensorrt"):
        block = export.get(name)
        if isinstance(block, Mapping):
            rows.append(
                [
                    name,
                    str(block.get("status", DASH)),
                    DASH,
                    DASH,
                    str(block.get("reason", ""))[:80] or DASH,
                ]
            )
    speedup = pick(export, "onnx_int8.speedup_vs_onnx.threads_1.forward_median")
    return [
        "## Exports",
        "",
        *_table(["format", "status", "mAP@[.5:.95]", "size", "latency (median)"], rows),
        f"INT8 forward-pass speed-up over ONNX FP32, 1 thread: {number(speedup, 2, '×')}, "
        f"on {machine(export)}.",
        "",
    ]


def distance_section(evaluate: Mapping[str, Any], ranging: Mapping[str, Any]) -> list[str]:
    """The student's mAP per distance bin, and the shipped range estimator's error in the same bins."""
    bins = pick(evaluate, "student.per_distance")
    if not isinstance(bins, Mapping) or not bins:
        return []
    method = ranging.get("method")
    errors = (
        pick(ranging, f"{method}.detections.fitted.per_bin") if isinstance(method, str) else None
    )
    errors = errors if isinstance(errors, Mapping) else {}
    rows = [
        [
            label,
            str(block.get("images", DASH)),
            str(block.get("boxes", DASH)),
            number(block.get("map50")),
            number(block.get("map50_95")),
            number(pick(errors, f"{label}.mae_m"), 1, " m"),
            number(pick(errors, f"{label}.median_abs_pct"), 1, " %"),
        ]
        for label, block in bins.items()
        if isinstance(block, Mapping)
    ]
    return [
        "## By distance",
        "",
        f"The student on test, per distance bin (`distance.bins`); range: the `{method or DASH}` estimator "
        "fitted on val, on the student's detections matched to a true box (`metrics/range.json`).",
        "",
        *_table(
            ["bin", "images", "boxes", "mAP@.5", "mAP@[.5:.95]", "range MAE", "range median error"],
            rows,
        ),
    ]


def robustness_section(evaluate: Mapping[str, Any]) -> list[str]:
    """The student's mAP@[.5:.95] under each corruption preset, as a share of its clean mAP."""
    table = pick(evaluate, "student.robustness")
    if not isinstance(table, Mapping) or not table:
        return []
    severities = list(
        dict.fromkeys(s for cells in table.values() if isinstance(cells, Mapping) for s in cells)
    )
    rows = [
        [preset, *(number(pick(cells, f"{s}.of_clean"), 2) for s in severities)]
        for preset, cells in table.items()
        if isinstance(cells, Mapping)
    ]
    return [
        "## Robustness",
        "",
        "The student's test mAP@[.5:.95] under each corruption preset (`evaluate.robustness`), as a share "
        "of its clean mAP.",
        "",
        *_table(["preset", *severities], rows),
    ]


def wall_section(train: Mapping[str, Any], distill: Mapping[str, Any]) -> list[str]:
    rows = [
        [
            "train (teacher)",
            number(train.get("wall_seconds"), 0, " s"),
            str(train.get("epochs_run", DASH)),
        ]
    ]
    for name in ("student", "control"):
        block = distill.get(name) or {}
        rows.append(
            [
                f"distill ({name})",
                number(block.get("wall_seconds"), 0, " s"),
                str(block.get("epochs_run", DASH)),
            ]
        )
    return ["## Training wall time", "", *_table(["run", "wall time", "epochs"], rows)]


def release_markdown(documents: Mapping[str, Mapping[str, Any]], gate: Mapping[str, Any]) -> str:
    """The whole page: the verdict first, then models, distillation, calibration, exports, wall times."""
    gates = gate.get("gates", [])
    passed = sum(1 for g in gates if g.get("passed"))
    lines = [
        "# Release",
        "",
        "Written by the `gate` stage from `metrics/*.json`; do not edit by hand (`dvc repro` rewrites it).",
        "",
        f"**Gates: {passed}/{len(gates)} pass — {'released' if gate.get('passed') else 'not released'}** "
        "(details: [gate.md](gate.md)).",
        "",
    ]
    evaluate, distill = documents.get("evaluate", {}), documents.get("distill", {})
    lines += models_section(evaluate) + distill_section(evaluate, distill)
    lines += calibration_section(documents.get("calibrate", {})) + export_section(
        documents.get("export", {})
    )
    lines += distance_section(evaluate, documents.get("range", {})) + robustness_section(evaluate)
    lines += wall_section(documents.get("train", {}), distill)
    return "\n".join(lines).rstrip() + "\n"
