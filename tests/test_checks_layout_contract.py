"""The canonical layout's own contract: optional sizes, deterministic findings, the checks a team's data needs.

Each test fails without the rule it is named for; hostile inputs end in findings naming file and line,
never in a traceback.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from conftest import make_dataset
from vigil.cli import app
from vigil.data.checks import check_dataset
from vigil.data.layout import read_classes, read_labels
from vigil.errors import VigilError
from vigil.params import ValidateParams, load_section

REPO = Path(__file__).resolve().parents[1]
PARAMS = replace(
    load_section(REPO / "params.yaml", "validate", ValidateParams),
    min_per_class=1,
    min_per_stratum=1,
)


def strip_sizes(root: Path, lines: range | None = None) -> None:
    """Drop width/height from the manifest (all lines, or the given 0-based ones)."""
    records = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
    for i, record in enumerate(records):
        if lines is None or i in lines:
            record.pop("width", None)
            record.pop("height", None)
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def edit(root: Path, index: int, **changes: object) -> None:
    records = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
    records[index].update(changes)
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def hits(root: Path, rule: str, params: ValidateParams = PARAMS) -> list:
    return [f for f in check_dataset(root, params).findings if f.rule == rule]


@pytest.fixture
def sizeless(tmp_path: Path) -> Path:
    """The documented layout as a person writes it by hand: no width/height in manifest.jsonl."""
    root = make_dataset(tmp_path / "sizeless")
    strip_sizes(root)
    return root


def test_manifest_without_width_and_height_passes(sizeless: Path) -> None:
    report = check_dataset(sizeless, PARAMS)
    assert report.passed and report.findings == [], [f.render() for f in report.findings]


def test_sizes_may_be_left_out_on_some_lines_only(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "mixed")
    strip_sizes(root, range(0, 12, 2))
    assert check_dataset(root, PARAMS).passed
    edit(root, 1, width=640)  # a recorded size is still held to the image
    assert [f.line for f in hits(root, "image_size_mismatch")] == [2]


@pytest.mark.parametrize("value", ["64", True, 47.5, [64], {"w": 64}, -3, 10**40])
def test_a_recorded_size_that_is_not_a_pixel_count_is_named(sizeless: Path, value: object) -> None:
    edit(sizeless, 4, width=value)
    report = check_dataset(sizeless, PARAMS)
    found = [
        f
        for f in report.findings
        if f.field == "width" and f.rule.startswith(("manifest_size", "image_size"))
    ]
    assert not report.passed and found and {f.line for f in found} == {5}, [
        f.render() for f in report.findings
    ]


@pytest.mark.parametrize(
    "key,value,rule",
    [
        ("stream", ["cctv"], "manifest_value_not_allowed"),
        ("driver_id", {"id": 1}, "manifest_field_type"),
        ("image", ["images/004.png"], "manifest_field_type"),
        ("labelled", "yes", "manifest_field_type"),
    ],
)
def test_json_lists_and_objects_in_fields_are_findings_on_their_line(
    sizeless: Path, key: str, value: object, rule: str
) -> None:
    edit(sizeless, 4, **{key: value})
    found = hits(sizeless, rule)
    assert found and found[0].line == 5 and found[0].field == key


def hostile(root: Path) -> Path:
    """A folder with one of most things wrong, so many rules and GE metrics are exercised at once."""
    make_dataset(root)
    strip_sizes(root, range(0, 12, 3))
    edit(root, 1, width="64", stream=["x"])
    edit(root, 2, driver_id={"a": 1}, height=2.5)
    edit(root, 5, scenario="twilight", image="images/../../etc/passwd")
    (root / "labels/003.txt").write_text(
        "0 0.5 0.5 0.2 0.2\n0 0.5 0.5 0.2 0.2\n9 0.5 0.5 nan 0.1\n"
    )
    (root / "labels/004.txt").write_bytes(b"0 0.5 0.5 0.2 0.2\n\xff\xfe 1 2\n")
    (root / "images/006.png").write_bytes(b"not an image")
    (root / "val.txt").write_text("images/000.png\nimages/nope.png\n")
    return root


def findings_of(root: Path, **kwargs: object) -> list[str]:
    return [f.render() for f in check_dataset(root, PARAMS, **kwargs).findings]


def test_validation_is_deterministic_across_processes(tmp_path: Path) -> None:
    """The same folder twice, in processes with different string hashing (set and dict order in GE)."""
    root = hostile(tmp_path / "hostile")
    script = (
        "import json, sys; from dataclasses import replace; from pathlib import Path;"
        "from vigil.data.checks import check_dataset; from vigil.params import ValidateParams, load_section;"
        f"p = replace(load_section(Path({str(REPO / 'params.yaml')!r}), 'validate', ValidateParams),"
        "min_per_class=1, min_per_stratum=1);"
        f"print(json.dumps(check_dataset(Path({str(root)!r}), p).summary()))"
    )
    outputs = []
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "VIGIL_NO_PROGRESS": "1"}
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append(done.stdout.strip().splitlines()[-1])
    assert outputs[0] == outputs[1] == outputs[2]
    summary = json.loads(outputs[0])
    assert summary["critical"] >= 8 and not summary["passed"]


def test_validation_does_not_depend_on_the_order_workers_finish(tmp_path: Path) -> None:
    root = hostile(tmp_path / "hostile")

    def shuffled(fn, items):  # the thread pool's map, finishing in random order
        order = list(items)
        random.Random(len(order)).shuffle(order)
        done = [fn(item) for item in order]
        return reversed(done)

    assert findings_of(root) == findings_of(root, map_fn=shuffled) == findings_of(root)


def test_a_1x1_jpeg_is_refused_under_min_image_side(dataset: Path) -> None:
    ok, data = cv2.imencode(".jpg", np.zeros((1, 1, 3), dtype=np.uint8))
    (dataset / "images/002.png").write_bytes(data.tobytes())  # named .png: judged by content
    edit(dataset, 2, width=1, height=1)
    found = hits(dataset, "image_too_small")
    assert found and found[0].path == "images/002.png" and "1x1" in found[0].message
    assert not hits(dataset, "image_too_small", replace(PARAMS, min_image_side=1))


def test_a_repeated_box_line_warns_naming_file_and_line(dataset: Path) -> None:
    (dataset / "labels/002.txt").write_text(
        "1 0.5 0.5 0.1 0.1\n0 0.3 0.3 0.2 0.2\n1 0.50 0.5 0.1 0.100\n"
    )
    found = hits(dataset, "box_duplicate")
    assert [(f.severity, f.path, f.line) for f in found] == [("warning", "labels/002.txt", 3)]
    assert "line 1" in found[0].message
    assert check_dataset(dataset, PARAMS).passed


def test_a_box_under_min_box_side_pixels_warns(dataset: Path) -> None:
    # images are 64x48: w 0.02 → 1.28 px, h 0.5 → 24 px
    (dataset / "labels/002.txt").write_text("1 0.5 0.5 0.1 0.1\n0 0.3 0.3 0.02 0.5\n")
    found = hits(dataset, "box_too_small")
    assert [(f.severity, f.path, f.line) for f in found] == [("warning", "labels/002.txt", 2)]
    assert not hits(dataset, "box_too_small", replace(PARAMS, min_box_side=1.0))


def test_a_split_list_naming_a_missing_image_is_rejected_naming_list_and_line(
    dataset: Path,
) -> None:
    (dataset / "train.txt").write_text("images/000.png\n./images/001.png\n\nimages/gone.png\n")
    (dataset / "val.txt").write_bytes(b"images/002.png\n../outside.png\n\xff\n")
    report = check_dataset(dataset, PARAMS)
    assert not report.passed
    where = {(f.rule, f.path, f.line) for f in report.findings if f.severity == "critical"}
    assert where == {
        ("split_list_missing_image", "train.txt", 4),
        ("path_escape", "val.txt", 2),
        ("split_list_syntax", "val.txt", 3),
    }


def test_non_utf8_class_list_and_labels_name_file_and_line(dataset: Path) -> None:
    (dataset / "classes.txt").write_bytes(b"tshirt\ntrous\xe9r\nbag\n")
    (dataset / "labels/005.txt").write_bytes(b"0 0.5 0.5 0.2 0.2\n1 0.5 0.5 0.2 0.2 \x80\n")
    report = check_dataset(dataset, PARAMS)
    found = {(f.rule, f.path, f.line) for f in report.findings if "UTF-8" in f.message}
    assert found == {("classes_file", "classes.txt", 2), ("label_syntax", "labels/005.txt", 2)}
    with pytest.raises(VigilError) as caught:
        read_classes(dataset)
    assert caught.value.line == 2 and "classes.txt" in caught.value.render()
    with pytest.raises(VigilError) as caught:
        read_labels(dataset / "labels/005.txt")
    assert caught.value.line == 2


@pytest.mark.parametrize("name", ["trou\tser", "bag\x0b", "dress\u2028x", "\x1b[31mred"])
def test_class_names_with_control_characters_are_refused(dataset: Path, name: str) -> None:
    (dataset / "classes.txt").write_text(f"tshirt\n{name}\nbag\n", encoding="utf-8")
    found = hits(dataset, "classes_file")
    assert found and found[0].line == 2


def write_params(tmp_path: Path, **validate: object) -> Path:
    data = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    data["validate"].update(validate)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "key,value",
    [
        ("max_image_side", -1),
        ("max_image_side", 0),
        ("min_image_side", 0),
        ("min_image_side", 10**6),
        ("min_box_side", -1.0),
        ("min_box_side", float("nan")),
        ("edge_tolerance", -0.1),
        ("edge_tolerance", 2.0),
        ("near_duplicate_bits", 65),
        ("near_duplicate_bits", -1),
        ("workers", 0),
        ("min_per_class", -5),
        ("min_per_stratum", -1),
    ],
)
def test_every_numeric_validate_param_is_range_checked_by_name(
    tmp_path: Path, key: str, value: object
) -> None:
    with pytest.raises(VigilError) as caught:
        load_section(write_params(tmp_path, **{key: value}), "validate", ValidateParams)
    assert caught.value.field == f"validate.{key}", caught.value.render()


@pytest.mark.parametrize(
    "allowed,field",
    [
        ({"stream": [], "scenario": ["day"], "road_type": ["campus"]}, "validate.allowed.stream"),
        (
            {"stream": ["cctv", "cctv"], "scenario": ["day"], "road_type": ["campus"]},
            "validate.allowed.stream[1]",
        ),
        (
            {"stream": ["cctv"], "scenario": ["*"], "road_type": ["campus"]},
            "validate.allowed.scenario[0]",
        ),
        (
            {"stream": ["cctv"], "scenario": ["day"], "road_type": [" "]},
            "validate.allowed.road_type[0]",
        ),
    ],
)
def test_allowed_values_are_checked_by_name(tmp_path: Path, allowed: dict, field: str) -> None:
    with pytest.raises(VigilError) as caught:
        load_section(write_params(tmp_path, allowed=allowed), "validate", ValidateParams)
    assert caught.value.field == field, caught.value.render()


def test_cli_check_refuses_a_bad_param_in_one_line(dataset: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["data", "check", str(dataset), "--params", str(write_params(tmp_path, max_image_side=-1))],
    )
    assert result.exit_code == 2
    assert "validate.max_image_side" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    "case", ["nul_in_path", "deep_json", "symlink_loop", "huge_width", "nan_width"]
)
def test_hostile_manifests_end_in_findings_not_tracebacks(dataset: Path, case: str) -> None:
    manifest = dataset / "manifest.jsonl"
    if case == "nul_in_path":
        edit(dataset, 0, image="images/\x00.png")
    elif case == "deep_json":
        manifest.write_text(manifest.read_text() + "[" * 100_000 + "]" * 100_000 + "\n")
    elif case == "symlink_loop":
        os.symlink(dataset / "images/loop.png", dataset / "images/loop.png")
    elif case == "huge_width":
        edit(dataset, 0, width=10**400)
    else:
        manifest.write_text(manifest.read_text().replace('"width": 64', '"width": NaN', 1))
    report = check_dataset(dataset, PARAMS)
    assert not report.passed and all(f.path for f in report.findings)


def test_a_byte_order_mark_does_not_break_the_manifest(dataset: Path) -> None:
    manifest = dataset / "manifest.jsonl"
    manifest.write_bytes(b"\xef\xbb\xbf" + manifest.read_bytes())
    assert check_dataset(dataset, PARAMS).passed
