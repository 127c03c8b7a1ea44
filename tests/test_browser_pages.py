"""The pages a reviewer opens, checked in a real browser: headless Chromium, no network.

- the plots page (`vigil plots`) of a tiny repo and of this repository's own dvc.yaml: every plot
  DVC renders drew (SVG with data marks, or a loaded image) and its part of a screenshot is not blank;
- the findings page: every finding row is there, every thumbnail loaded, and the page is not blank.

Screenshots are kept under the test's tmp folder (printed with -s) for a person to look at.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml

from browser import inked_fraction, needs_chromium, probe, screenshot
from repo_params import section
from test_findings_page import SETTINGS, faulty_dataset, rows
from test_plots_page import make_repo
from vigil.data.checks import check_dataset
from vigil.data.findings_page import findings_html, minimums_of
from vigil.params import ValidateParams
from vigil.plots import build_plots_page

pytestmark = [pytest.mark.browser, needs_chromium]
REPO = Path(__file__).resolve().parents[1]
WINDOW = (1280, 6000)


def assert_every_plot_drew(
    page: Path, work: Path, expected: int, missing: frozenset[str] = frozenset()
) -> dict:
    """Each plot on `page` drew; `missing`: ids of definitions whose files do not exist (DVC leaves
    an empty block for each, which is all the page can show)."""
    seen = probe(page, work, WINDOW)
    plots = {k: v for k, v in seen["plots"].items() if k not in missing}
    # the screenshot is as tall as the page's last plot (a release's gallery runs past one window)
    bottom = max((d["rect"][1] + d["rect"][3] for d in plots.values()), default=0.0)
    window = (WINDOW[0], max(WINDOW[1], int(bottom) + 50))
    shot = work / f"{page.stem}.png"
    screenshot(page, shot, work, window)
    assert len(plots) == expected, sorted(plots)
    for name, drew in plots.items():
        if drew["images"]:
            assert drew["loaded"] == drew["images"], name
        else:
            assert drew["svg"] > 0 and drew["marks"] > 0, name  # axes and data marks, drawn
        x, y, w, h = drew["rect"]
        assert w > 100 and h > 30 and y + h <= window[1], name
        assert inked_fraction(shot, drew["rect"]) > 0.01, name  # not a blank box
    print(f"{page}: {len(plots)} plots drew in {seen['ms']} ms; screenshot {shot}")
    return seen


def test_the_plots_page_draws_every_plot_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = build_plots_page(make_repo(tmp_path, monkeypatch), tmp_path / "plots.html")
    assert_every_plot_drew(page.path, tmp_path, expected=4)  # 3 charts + 1 gallery image


def test_the_plots_diff_page_draws_every_plot_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = build_plots_page(make_repo(tmp_path, monkeypatch), tmp_path / "diff.html", ["HEAD"])
    assert_every_plot_drew(page.path, tmp_path, expected=4)


def declared_files(repo: Path) -> tuple[int, frozenset[str]]:
    """How many plots DVC draws from dvc.yaml (one per named definition, one per file of a folder),
    and the page ids of the definitions with no file yet."""
    count, missing = 0, set()
    for entry in yaml.safe_load((repo / "dvc.yaml").read_text())["plots"]:
        name, spec = next(iter(entry.items())) if isinstance(entry, dict) else (entry, None)
        sources = (
            list(spec["y"])
            if isinstance(spec, dict) and isinstance(spec.get("y"), dict)
            else [name]
        )
        paths = [repo / s for s in sources]
        if any(p.is_dir() for p in paths):
            count += sum(1 for p in paths if p.is_dir() for f in p.rglob("*") if f.is_file())
        elif any(p.is_file() for p in paths):
            count += 1
        else:
            missing.add(re.sub(r"[^\w-]", "_", name))
    return count, frozenset(missing)


def test_this_repositorys_plots_all_draw_offline(tmp_path: Path) -> None:
    if not (REPO / "plots").is_dir():
        pytest.skip("no plots/ in this checkout")
    page = build_plots_page(REPO, tmp_path / "plots.html")
    expected, missing = declared_files(REPO)
    assert_every_plot_drew(page.path, tmp_path, expected, missing)


def test_the_findings_page_shows_every_finding_offline(tmp_path: Path) -> None:
    root = faulty_dataset(tmp_path / "ds")
    settings = section("validate", ValidateParams, **SETTINGS)
    report = check_dataset(root, settings)
    page = tmp_path / "findings.html"
    page.write_text(findings_html(root, report, minimums_of(settings)))
    shutil.rmtree(root)  # the page needs nothing beside it
    seen = probe(page, tmp_path, WINDOW)["plots"]
    thumbnails = sum(row.count("<img ") for row in rows(page.read_text()))
    assert seen["findings"]["images"] == seen["findings"]["loaded"] == thumbnails > 0
    shot = tmp_path / "findings.png"
    screenshot(page, shot, tmp_path, WINDOW)
    assert inked_fraction(shot, seen["findings"]["rect"]) > 0.05
    assert inked_fraction(shot, seen["coverage"]["rect"]) > 0.02
    from browser import dump_dom

    dom = dump_dom(page, tmp_path)
    shown = re.findall(r'<tr class="finding [^"]*"[^>]*>.*?</tr>', dom, flags=re.S)
    assert len(shown) == len(report.findings)
    for row, finding in zip(shown, report.findings, strict=True):
        assert (
            finding.path in row and finding.rule in row and finding.hint.split("`")[0][:20] in row
        )
    print(f"{page}: {len(shown)} finding rows, {thumbnails} thumbnails; screenshot {shot}")
