"""Every dataset check, shown passing on good data and failing on the bad input it exists for."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import write_image
from vigil.cli import app
from vigil.data.checks import check_dataset, near_duplicate_pairs
from vigil.params import ValidateParams, load_section

REPO = Path(__file__).resolve().parents[1]
PARAMS = load_section(REPO / "params.yaml", "validate", ValidateParams)
LOOSE = replace(PARAMS, min_per_class=1, min_per_stratum=1)


def rules(root: Path, params: ValidateParams = LOOSE, **kwargs) -> dict[str, set[str]]:
    report = check_dataset(root, params, **kwargs)
    out: dict[str, set[str]] = {"critical": set(), "warning": set()}
    for f in report.findings:
        out[f.severity].add(f.rule)
    return out


def edit_manifest(root: Path, index: int, **changes) -> None:
    lines = (root / "manifest.jsonl").read_text().splitlines()
    record = json.loads(lines[index])
    for key, value in changes.items():
        if value is ...:
            record.pop(key, None)
        else:
            record[key] = value
    lines[index] = json.dumps(record)
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")


def tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            digest.update(path.as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def test_good_dataset_passes_without_findings(dataset: Path) -> None:
    report = check_dataset(dataset, LOOSE)
    assert report.passed, [f.render() for f in report.findings]
    assert report.findings == []
    assert report.stats["images"] == 12 and report.stats["boxes"] == 24


def test_check_never_modifies_the_dataset(dataset: Path) -> None:
    (dataset / "labels/000.txt").write_text("0 0.5 0.5 nan 0.1\n")
    before = tree_digest(dataset)
    check_dataset(dataset, LOOSE, docs_dir=dataset.parent / "docs")
    assert tree_digest(dataset) == before


def test_empty_label_file_is_a_valid_negative(dataset: Path) -> None:
    (dataset / "labels/003.txt").write_text("")
    report = check_dataset(dataset, LOOSE)
    assert report.passed and report.stats["negatives"] == 1


@pytest.mark.parametrize(
    "content,rule",
    [
        (b"", "image_decode"),
        (b"this is not an image at all", "image_decode"),
    ],
)
def test_non_images_are_refused(dataset: Path, content: bytes, rule: str) -> None:
    (dataset / "images/004.png").write_bytes(content)
    assert rule in rules(dataset)["critical"]


def test_truncated_image_is_refused(dataset: Path) -> None:
    path = dataset / "images/005.jpg"
    write_image(path, seed=99)
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    edit_manifest(dataset, 5, image="images/005.jpg")
    (dataset / "labels/005.txt").rename(dataset / "labels/005.txt")
    assert "image_decode" in rules(dataset)["critical"]


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    idat = b"IDAT" + zlib.compress(b"\x00" * 16)
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk))
        + struct.pack(">I", len(idat) - 4)
        + idat
        + struct.pack(">I", zlib.crc32(idat))
    )


def test_absurd_header_size_is_refused_before_decoding(dataset: Path) -> None:
    (dataset / "images/006.png").write_bytes(_png_header(200_000, 200_000) + b"\x00" * 64)
    report = check_dataset(dataset, LOOSE)
    hits = [f for f in report.findings if f.rule == "image_header_size"]
    assert hits and hits[0].path == "images/006.png" and "200000x200000" in hits[0].message
    (dataset / "images/006.png").write_bytes(_png_header(9000, 10) + b"\x00" * 64)
    hits = [f for f in check_dataset(dataset, LOOSE).findings if f.rule == "image_header_size"]
    assert hits and "9000x10" in hits[0].message


def test_recorded_size_must_match(dataset: Path) -> None:
    edit_manifest(dataset, 1, width=640)
    report = check_dataset(dataset, LOOSE)
    hit = next(f for f in report.findings if f.rule == "image_size_mismatch")
    assert hit.line == 2 and hit.field == "width"


@pytest.mark.parametrize(
    "line,rule",
    [
        ("0 0.5 0.5 0.2", "label_syntax"),  # wrong number of fields
        ("0 0.5 0.5 0.2 0.2 9", "label_syntax"),
        ("0 0.5 abc 0.2 0.2", "label_syntax"),  # not a number
        ("0 0.5 0.5 nan 0.2", "label_not_a_number"),  # NaN
        ("7 0.5 0.5 0.2 0.2", "label_unknown_class"),  # class id not in classes.txt
        ("0 0.5 0.5 -0.2 0.2", "box_size_not_positive"),  # negative size
        ("0 0.5 0.5 0.2 0", "box_size_not_positive"),  # zero size
        ("0 1.8 1.7 0.2 0.2", "box_outside_image"),  # wholly outside
    ],
)
def test_bad_label_lines_are_rejected_naming_file_and_line(
    dataset: Path, line: str, rule: str
) -> None:
    (dataset / "labels/002.txt").write_text("1 0.5 0.5 0.1 0.1\n" + line + "\n")
    report = check_dataset(dataset, LOOSE)
    hits = [f for f in report.findings if f.rule == rule]
    assert not report.passed
    assert hits and hits[0].path == "labels/002.txt" and hits[0].line == 2


def test_box_past_the_edge_is_only_a_warning(dataset: Path) -> None:
    (dataset / "labels/002.txt").write_text("1 0.95 0.5 0.2 0.1\n")
    found = rules(dataset)
    assert "box_past_edge" in found["warning"] and not found["critical"]


def test_label_without_image_and_image_without_label(dataset: Path) -> None:
    (dataset / "labels/999.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    (dataset / "labels/007.txt").unlink()
    found = rules(dataset)
    assert "label_orphan" in found["warning"]
    assert "label_missing" in found["critical"]


def test_unlabelled_images_need_no_label(dataset: Path) -> None:
    (dataset / "labels/007.txt").unlink()
    edit_manifest(dataset, 7, labelled=False)
    assert not rules(dataset)["critical"]


@pytest.mark.parametrize(
    "raw,fragment",
    [
        (b"{not json}\n", "not valid JSON"),
        (b"[1, 2]\n", "not an object"),
        (b'{"image": "\xff\xfe"}\n', "not valid UTF-8"),
    ],
)
def test_manifest_lines_must_be_utf8_json_objects(dataset: Path, raw: bytes, fragment: str) -> None:
    with open(dataset / "manifest.jsonl", "ab") as handle:
        handle.write(raw)
    report = check_dataset(dataset, LOOSE)
    hit = next(f for f in report.findings if f.rule == "manifest_json")
    assert hit.line == 13 and fragment in hit.message and not report.passed


@pytest.mark.parametrize(
    "changes,rule,field",
    [
        ({"driver_id": ...}, "manifest_field_missing", "driver_id"),
        ({"vehicle_id": 17}, "manifest_field_type", "vehicle_id"),
        ({"driver_id": " "}, "manifest_id_empty", "driver_id"),
        ({"scenario": "twilight"}, "manifest_value_not_allowed", "scenario"),
        ({"stream": "drone"}, "manifest_value_not_allowed", "stream"),
        ({"image": "images/000.png"}, "manifest_duplicate_image", "image"),
        ({"height": 0}, "manifest_size_invalid", "height"),
    ],
)
def test_manifest_fields_types_and_values(
    dataset: Path, changes: dict, rule: str, field: str
) -> None:
    edit_manifest(dataset, 3, **changes)
    report = check_dataset(dataset, LOOSE)
    hits = [f for f in report.findings if f.rule == rule]
    assert not report.passed
    assert hits and hits[0].field == field and hits[0].line in (1, 4)


def test_allowed_values_come_from_params(dataset: Path) -> None:
    edit_manifest(dataset, 3, stream="drone")
    params = replace(LOOSE, allowed=replace(LOOSE.allowed, stream=["cctv", "drone"]))
    assert check_dataset(dataset, params).passed


@pytest.mark.parametrize("path", ["../outside.png", "/etc/passwd", "images/../../x.png"])
def test_paths_may_not_escape_the_root(dataset: Path, path: str) -> None:
    edit_manifest(dataset, 2, image=path)
    report = check_dataset(dataset, LOOSE)
    hit = next(f for f in report.findings if f.rule == "path_escape")
    assert hit.line == 3 and hit.field == "image"


def test_symlink_out_of_the_dataset_is_refused(dataset: Path, tmp_path: Path) -> None:
    write_image(tmp_path / "secret.png", seed=5)
    os.symlink(tmp_path / "secret.png", dataset / "images/link.png")
    assert "path_escape" in rules(dataset)["critical"]


def test_missing_and_unlisted_images(dataset: Path) -> None:
    (dataset / "images/008.png").rename(dataset / "images/extra.png")
    found = rules(dataset)
    assert "image_missing" in found["critical"] and "image_unlisted" in found["warning"]


def test_same_bytes_under_two_drivers_is_leakage(dataset: Path) -> None:
    (dataset / "images/009.png").write_bytes((dataset / "images/000.png").read_bytes())
    report = check_dataset(dataset, LOOSE)
    hit = next(f for f in report.findings if f.rule == "leak_identical")
    assert hit.severity == "critical" and "images/000.png" in hit.message


def test_near_duplicate_under_another_driver_and_vehicle_warns(dataset: Path) -> None:
    import cv2

    image = cv2.imread(str(dataset / "images/000.png"))
    image[0:3, 0:3] = 255 - image[0:3, 0:3]  # a small edit: other bytes, same picture
    cv2.imwrite(str(dataset / "images/010.png"), image)
    found = rules(dataset)
    assert "leak_near_duplicate" in found["warning"]
    assert not near_duplicate_pairs([b"\x00" * 8, b"\xff" * 8], 4)
    assert near_duplicate_pairs([b"\x00" * 8, b"\x00" * 7 + b"\x07"], 4) == [(0, 1, 3)]


def test_coverage_minimums_warn(dataset: Path) -> None:
    found = rules(dataset, replace(PARAMS, min_per_class=100, min_per_stratum=100))
    assert {"coverage_class", "coverage_stratum"} <= found["warning"]


def test_missing_files_and_empty_dataset(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    found = rules(root)
    assert {"manifest_missing", "classes_file"} <= found["critical"]
    (root / "manifest.jsonl").write_text("")
    (root / "classes.txt").write_text("a\n")
    assert "dataset_empty" in rules(root)["critical"]


def test_changed_since_hash_is_caught(dataset: Path) -> None:
    expected = {f"images/{i:03d}.png": "0" * 64 for i in range(12)}
    assert "hash_mismatch" in rules(dataset, expected_sha=expected)["critical"]


def test_data_docs_are_written(dataset: Path, tmp_path: Path) -> None:
    check_dataset(dataset, LOOSE, docs_dir=tmp_path / "docs")
    assert (tmp_path / "docs/index.html").is_file()
    assert list((tmp_path / "docs/validations").rglob("*.html"))


def test_cli_check_exit_codes_and_warning_lines(dataset: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["data", "check", str(dataset), "--params", str(REPO / "params.yaml")])
    assert ok.exit_code == 0, ok.output
    absent = runner.invoke(
        app, ["data", "check", str(dataset), "--params", str(tmp_path / "none.yaml")]
    )
    assert absent.exit_code == 2 and "params file not found" in absent.output
    (dataset / "labels/001.txt").write_text("0 0.97 0.5 0.1 0.1\n")
    warned = runner.invoke(app, ["data", "check", str(dataset)])
    assert warned.exit_code == 0
    assert any(line.startswith("warning: labels/001.txt:1") for line in warned.output.splitlines())
    (dataset / "labels/001.txt").write_text("0 0.5 0.5 0.1\n")
    rejected = runner.invoke(app, ["data", "check", str(dataset)])
    assert rejected.exit_code == 1
    assert any(line.startswith("error: labels/001.txt:1") for line in rejected.output.splitlines())
    missing = runner.invoke(app, ["data", "check", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "not a folder" in missing.output
