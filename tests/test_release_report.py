"""reports/release.md is written from the metrics files: every number on it comes from them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vigil.errors import VigilError
from vigil.release.release_report import read_documents, release_markdown

GATE = {"passed": False, "gates": [{"name": "a", "passed": True}, {"name": "b", "passed": False}]}


def test_the_page_shows_each_model_and_derived_measure_from_the_metrics() -> None:
    evaluate = {
        m: {
            "map50_95": v,
            "map50": 0.9,
            "recall": 0.8,
            "latency_ms": {"median": 12.34},
            "per_size": {"tiny": {"map50_95": 0.1}, "small": {"map50_95": 0.2}},
        }
        for m, v in (("teacher", 0.6), ("student", 0.45), ("control", 0.3))
    }
    evaluate["hardware"] = {
        "cpu": "AMD EPYC",
        "isa": ["avx2", "avx512_vnni"],
        "vnni": True,
        "usable_cpus": 2,
    }
    text = release_markdown({"evaluate": evaluate, "distill": {"kd_gain_val_map50_95": 0.2}}, GATE)
    assert "**Gates: 1/2 pass — not released**" in text
    assert "| student | 0.450 | 0.900 | 0.800 | 0.100 / 0.200 | 12.3 ms |" in text
    assert "| student / teacher mAP@[.5:.95] | 0.750 |" in text
    assert "| KD gain on test (student − control) | 0.150 |" in text
    assert "CPU predictions on AMD EPYC, 2 CPUs, avx2 avx512_vnni (VNNI)." in text


def test_latencies_without_a_recorded_machine_say_so() -> None:
    text = release_markdown({"export": {"onnx": {"status": "ok"}}}, {"passed": True, "gates": []})
    assert "on an unrecorded machine." in text


def test_missing_metrics_print_dashes_not_errors() -> None:
    text = release_markdown({}, {"passed": True, "gates": []})
    assert "| student / teacher mAP@[.5:.95] | — |" in text and "## Exports" not in text


def test_a_broken_metrics_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "evaluate.json").write_text("{not json")
    with pytest.raises(VigilError, match="evaluate.json"):
        read_documents([tmp_path / "evaluate.json"])
    (tmp_path / "evaluate.json").write_text(json.dumps({"student": {}}))
    assert read_documents([tmp_path / "evaluate.json", tmp_path / "absent.json"]) == {
        "evaluate": {"student": {}}
    }


def test_distance_and_robustness_tables_come_from_evaluate_and_range() -> None:
    evaluate = {
        "student": {
            "per_distance": {
                "0-25m": {"images": 39, "boxes": 59, "map50": 0.93, "map50_95": 0.79},
                "200m+": {"images": 14, "boxes": 16, "map50": 0.2, "map50_95": 0.1},
            },
            "robustness": {
                "fog": {"mild": {"of_clean": 0.91}, "severe": {"of_clean": 0.5}},
                "jpeg": {"mild": {"of_clean": 0.99}, "severe": {"of_clean": 0.8}},
            },
        }
    }
    ranging = {
        "method": "geometric",
        "geometric": {
            "detections": {
                "fitted": {"per_bin": {"0-25m": {"mae_m": 1.26, "median_abs_pct": 7.45}}}
            }
        },
    }
    text = release_markdown({"evaluate": evaluate, "range": ranging}, GATE)
    assert "| 0-25m | 39 | 59 | 0.930 | 0.790 | 1.3 m | 7.5 % |" in text
    assert "| 200m+ | 14 | 16 | 0.200 | 0.100 | — | — |" in text
    assert "| preset | mild | severe |" in text and "| fog | 0.91 | 0.50 |" in text
    bare = release_markdown({"evaluate": {"student": {}}}, GATE)
    assert "## By distance" not in bare and "## Robustness" not in bare
