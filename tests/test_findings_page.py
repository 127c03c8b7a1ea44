"""The findings page: every finding a row with file, line, field, rule and hint; thumbnails with the
offending box; coverage as bars; one file with nothing to fetch (no script, no remote reference)."""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from conftest import make_dataset
from repo_params import section, write_params
from vigil.cli import app
from vigil.data.checks import check_dataset, publish_validation
from vigil.data.findings_page import PAGE, findings_html, minimums_of
from vigil.detection.draw import COLOURS, FINDING
from vigil.params import ValidateParams

SETTINGS = dict(min_per_class=10, min_per_stratum=5)


def faulty_dataset(root: Path) -> Path:
    """A tiny box and a box past the edge (labels/001.txt), a stratum not allowed (manifest line 4),
    a copied image under other ids (leak), and thin coverage."""
    make_dataset(root, n=12, record=lambda i: {"scenario": "dawn"} if i == 3 else {})
    (root / "labels/001.txt").write_text("0 0.5 0.5 0.01 0.01\n1 0.85 0.5 0.4 0.5\n")
    shutil.copy(root / "images/002.png", root / "images/005.png")
    return root


def rows(page: str) -> list[str]:
    return re.findall(r'<tr class="finding [^"]*".*?</tr>', page, flags=re.S)


def test_every_finding_is_a_row_with_its_place_and_thumbnail(tmp_path: Path) -> None:
    root = faulty_dataset(tmp_path / "ds")
    settings = section("validate", ValidateParams, **SETTINGS)
    report = check_dataset(root, settings)
    page = findings_html(root, report, minimums_of(settings))
    found = rows(page)
    assert len(found) == len(report.findings) >= 8
    for row, finding in zip(found, report.findings, strict=True):
        assert f"<code>{finding.path}</code>" in row and f"<code>{finding.rule}</code>" in row
        assert f'<td class="line">{"" if finding.line is None else finding.line}</td>' in row
        assert f'<td class="field">{finding.field or ""}</td>' in row
    rules = {f.rule for f in report.findings}
    assert {
        "box_too_small",
        "box_past_edge",
        "manifest_value_not_allowed",
        "leak_identical",
    } <= rules
    by_rule = {f.rule: row for f, row in zip(report.findings, found, strict=True)}
    assert by_rule["leak_identical"].count("<img ") == 2  # the copy and the image it copies
    assert by_rule["manifest_value_not_allowed"].count("<img ") == 1  # line 4's image
    assert by_rule["coverage_class"].count("<img ") == 0  # about the dataset, not an image
    # the label row's box is drawn: the finding colour sits on the thumbnail of labels/001.txt:2
    uri = re.search(r'src="data:image/jpeg;base64,([^"]+)"', by_rule["box_past_edge"]).group(1)
    thumb = cv2.imdecode(np.frombuffer(base64.b64decode(uri), np.uint8), cv2.IMREAD_COLOR)
    ink = (np.abs(thumb.astype(int) - COLOURS[FINDING]).sum(axis=2) < 60).sum()
    assert ink > 50
    # coverage: one bar per class and stratum value, those under the minimum marked low
    assert page.count('class="bar-row low"') == sum(
        f.rule in ("coverage_class", "coverage_stratum") for f in report.findings
    )
    assert "Boxes per class" in page and "Labelled images per scenario" in page
    assert "<script" not in page and not re.search(r"(src|href)=\"(https?:)?//", page)


def test_the_validate_stage_writes_the_page_beside_the_data_docs(tmp_path: Path) -> None:
    root = faulty_dataset(tmp_path / "ds")
    settings = section("validate", ValidateParams, **SETTINGS)
    report = publish_validation(root, settings, {}, tmp_path / "m.json", tmp_path / "docs")
    page = (tmp_path / "docs" / PAGE).read_text()
    assert len(rows(page)) == len(report.findings)
    assert (tmp_path / "docs" / "gx" / "index.html").is_file()


def test_data_check_docs_writes_the_page(tmp_path: Path) -> None:
    root = make_dataset(tmp_path / "ds", n=12)
    params = write_params(tmp_path, {})
    result = CliRunner().invoke(
        app, ["data", "check", str(root), "--params", str(params), "--docs", str(tmp_path / "docs")]
    )
    assert result.exit_code == 0, result.output
    page = (tmp_path / "docs" / PAGE).read_text()
    assert "Data findings: passed" in page and len(rows(page)) == result.output.count("warning:")
