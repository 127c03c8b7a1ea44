"""`vigil bench coreml`: refused off macOS in one line; its JSON is checked and shown by `vigil report`."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vigil.cli import app
from vigil.errors import VigilError
from vigil.export.coreml_bench import (
    SCHEMA,
    bench_section,
    check_options,
    read_bench,
    refuse_unless_macos,
    summarize,
)

# a fixture, not a measurement: the shape `vigil bench coreml` writes on a Mac
BENCH: dict[str, Any] = {
    "schema": SCHEMA,
    "package": "models/export/model_int8.mlpackage",
    "version": "0.1.0",
    "input": [640, 640],
    "iterations": 100,
    "warmup": 10,
    "compute_units": "all",
    "latency_ms": {"mean": 4.217, "std": 0.31, "min": 3.9, "max": 6.02, "median": 4.15},
    "coremltools": "9.0",
    "machine": {"chip": "Fixture M0 (not a measurement)", "macos": "15.1", "logical_cpus": 8},
}


def package(tmp_path: Path) -> Path:
    folder = tmp_path / "m.mlpackage"
    folder.mkdir()
    (folder / "Manifest.json").write_text("{}")
    return folder


@pytest.mark.skipif(
    platform.system() == "Darwin", reason="the refusal is for machines without CoreML"
)
def test_off_macos_the_command_refuses_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(app, ["bench", "coreml", str(package(tmp_path)), "--out", str(out)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "CoreML prediction needs macOS" in lines[0], result.output
    assert not out.exists()


def test_the_refusal_names_the_system_and_macos_passes() -> None:
    with pytest.raises(VigilError, match="needs macOS; this machine runs Windows"):
        refuse_unless_macos("Windows")
    refuse_unless_macos("Darwin")


@pytest.mark.parametrize(
    ("iterations", "warmup", "units", "field"),
    [(0, 10, "all", "--iterations"), (5, -1, "all", "--warmup"), (5, 1, "npu", "--compute-units")],
)
def test_bad_options_name_the_option(
    tmp_path: Path, iterations: int, warmup: int, units: str, field: str
) -> None:
    with pytest.raises(VigilError, match=field):
        check_options(package(tmp_path), iterations, warmup, units)


def test_a_folder_that_is_no_package_is_refused(tmp_path: Path) -> None:
    with pytest.raises(VigilError, match="not a .mlpackage"):
        check_options(tmp_path, 5, 1, "all")


def test_summary_is_the_seeds_mean_std_min_max_in_ms() -> None:
    stats = summarize([0.001, 0.002, 0.003, 0.006])
    assert stats == {"mean": 3.0, "std": 1.871, "min": 1.0, "max": 6.0, "median": 2.5}


def test_the_json_is_shown_as_a_section(tmp_path: Path) -> None:
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(BENCH))
    text = "\n".join(bench_section(read_bench(path), "bench.json"))
    assert (
        "| `models/export/model_int8.mlpackage` | 0.1.0 | all | 100 (10) | 4.22 ms | 0.31 ms"
        in text
    )
    assert "On Fixture M0 (not a measurement), macOS 15.1, 8 CPUs, coremltools 9.0" in text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        (json.dumps(BENCH | {"schema": "other"}), r"\[schema\]: not a vigil.coreml_bench/1"),
        (json.dumps(BENCH | {"latency_ms": {"mean": 1.0}}), r"\[latency_ms.std\]: missing"),
        (json.dumps(BENCH | {"iterations": "100"}), r"\[iterations\]: missing or not an integer"),
        (json.dumps(BENCH | {"machine": None}), r"\[machine\]: missing"),
    ],
)
def test_a_bad_json_is_one_line_naming_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bench.json"
    path.write_text(text)
    with pytest.raises(VigilError, match=message):
        read_bench(path)
