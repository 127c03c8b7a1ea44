"""`vigil data split`: whole groups per split, stratified, deterministic; pool kept apart; checks that fail."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vigil.cli import app
from vigil.data.split import (SPLITS, ImageInfo, check_group_overlap, group_overlap, group_split, load_images,
                              require_validated, run_split)
from vigil.errors import VigilError
from vigil.params import SplitParams

REPO = Path(__file__).resolve().parents[1]
NAMES = ["car", "person"]


def record(i: int, driver: str, vehicle: str, **extra: Any) -> dict[str, Any]:
    base = {"image": f"images/{i:04d}.jpg", "driver_id": driver, "vehicle_id": vehicle, "stream": "cctv",
            "scenario": ["day", "night"][i % 2], "road_type": "street"}
    return base | extra


def info(rec: dict[str, Any], digest: str | None = None, classes: tuple[int, ...] = (0,)) -> ImageInfo:
    labelled = rec.get("labelled", True)
    return ImageInfo(rec["image"], rec, digest or f"sha-{rec['image']}", classes if labelled else (), labelled)


def pairs(n_groups: int, start: int = 0, size: int = 2) -> list[ImageInfo]:
    """`n_groups` independent driver/vehicle groups of `size` images, both classes in each."""
    out = []
    for g in range(n_groups):
        for k in range(size):
            i = start + g * size + k
            out.append(info(record(i, f"d{start + g}", f"v{start + g}"), classes=(0, 1)))
    return out


def split_of(lists: dict[str, list[str]]) -> dict[str, str]:
    return {p: s for s in SPLITS for p in lists[s]}


def write_dataset(root: Path, images: list[ImageInfo], payload: dict[str, bytes] | None = None) -> Path:
    """Canonical folder for `images` (image bytes = their path unless `payload` says otherwise)."""
    (root / "labels").mkdir(parents=True)
    (root / "images").mkdir()
    (root / "classes.txt").write_text("".join(n + "\n" for n in NAMES))
    for im in images:
        (root / im.path).write_bytes((payload or {}).get(im.path, im.path.encode()))
        if im.labelled:
            label = root / im.path.replace("images/", "labels/").replace(".jpg", ".txt")
            label.write_text("".join(f"{c} 0.5 0.5 0.2 0.2\n" for c in im.classes))
    (root / "manifest.jsonl").write_text("".join(json.dumps(im.record) + "\n" for im in images))
    return root


def write_files_jsonl(root: Path, out: Path) -> Path:
    rows = [{"path": p.relative_to(root).as_posix(), "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
             "size": p.stat().st_size, "kind": "image"} for p in sorted(root.rglob("*.jpg"))]
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def test_shared_driver_pulls_both_vehicles_into_one_split() -> None:
    chain = [info(record(0, "d0", "vA")), info(record(1, "d0", "vB")), info(record(2, "d1", "vB")),
             info(record(3, "d1", "vC"))]
    result = group_split(chain + pairs(8, start=10), NAMES, SplitParams(), seed=0)
    where = split_of(result.lists)
    assert len({where[im.path] for im in chain}) == 1
    assert result.metrics["components"] == 9
    assert result.metrics["group_overlap"]["total"] == 0
    for key in ("driver_id", "vehicle_id"):
        seen: dict[str, set[str]] = {}
        for im in chain + pairs(8, start=10):
            seen.setdefault(im.record[key], set()).add(where[im.path])
        assert all(len(s) == 1 for s in seen.values()), key


def test_identical_bytes_under_different_drivers_land_together() -> None:
    twins = [info(record(0, "dX", "vX"), digest="same"), info(record(1, "dY", "vY"), digest="same")]
    for seed in range(5):
        result = group_split(twins + pairs(6, start=10), NAMES, SplitParams(), seed)
        where = split_of(result.lists)
        assert where[twins[0].path] == where[twins[1].path]
        assert result.metrics["group_overlap"]["content_pairs"] == 0


def test_session_groups_when_present_and_absent_keys_are_ignored() -> None:
    a = info(record(0, "d0", "v0", session="s1"))
    b = info(record(1, "d1", "v1", session="s1"))
    loose = info(record(2, "d2", "v2"))  # no session: grouped by its own driver/vehicle only
    result = group_split([a, b, loose] + pairs(6, start=10), NAMES, SplitParams(), seed=3)
    where = split_of(result.lists)
    assert where[a.path] == where[b.path]
    assert result.metrics["group_keys"] == ["driver_id", "vehicle_id", "session"]
    assert result.metrics["group_overlap"]["per_key"]["session"] == 0


def test_same_seed_is_byte_identical_and_seeds_differ(tmp_path: Path) -> None:
    images = pairs(12, size=3)
    root = write_dataset(tmp_path / "ds", images)
    files = write_files_jsonl(root, tmp_path / "files.jsonl")
    outputs = []
    for run in ("a", "b"):
        run_split(root, tmp_path / run, SplitParams(), 7, files=files, metrics=tmp_path / f"{run}.json")
        outputs.append([(tmp_path / run / f"{s}.txt").read_bytes() for s in (*SPLITS, "pool")]
                       + [(tmp_path / f"{run}.json").read_bytes()])
    assert outputs[0] == outputs[1]
    trains = {tuple(group_split(images, NAMES, SplitParams(), seed).lists["train"]) for seed in range(8)}
    assert len(trains) > 1


def test_fractions_and_strata_roughly_right_on_a_bigger_manifest() -> None:
    rng = random.Random(1)
    images, i = [], 0
    for g in range(120):
        stream = "stills" if g % 4 == 0 else "cctv"
        for _ in range(rng.randint(1, 6)):
            images.append(info(record(i, f"d{g}", f"v{g}", stream=stream), classes=(rng.randint(0, 1),)))
            i += 1
    params = SplitParams(train=0.6, val=0.2, test=0.2)
    result = group_split(images, NAMES, params, seed=0)
    splits = result.metrics["splits"]
    for name in SPLITS:
        assert splits[name]["fraction"] == pytest.approx(getattr(params, name), abs=0.02)
        for key in ("scenario", "stream"):
            for value, count in splits[name]["per_stratum"][key].items():
                total = sum(splits[s]["per_stratum"][key][value] for s in SPLITS)
                assert count / total == pytest.approx(getattr(params, name), abs=0.1), (name, key, value)
    assert sum(splits[s]["images"] for s in SPLITS) == len(images)
    assert result.warnings == []


def test_pool_kept_out_and_a_pool_image_sharing_a_test_group_is_reported() -> None:
    labelled = pairs(6)
    first = group_split(labelled, NAMES, SplitParams(), seed=0)
    test_driver = next(im.record["driver_id"] for im in labelled if im.path in first.lists["test"])
    pool = [info(record(100, test_driver, "v_pool", labelled=False)),
            info(record(101, "d_new", "v_new", labelled=False))]
    result = group_split(labelled + pool, NAMES, SplitParams(), seed=0)
    assert result.lists["pool"] == [pool[0].path, pool[1].path]
    assert not {p.path for p in pool} & {p for s in SPLITS for p in result.lists[s]}
    assert result.lists["test"] == first.lists["test"]
    assert result.metrics["splits"]["pool"]["shares_group_with_test"] == 1
    assert any(w.startswith("pool: 1 ") and f"driver_id={test_driver}" in w for w in result.warnings)


def test_group_overlap_counts_a_bad_assignment_and_the_check_fails() -> None:
    images = {im.path: im for im in [info(record(0, "d0", "v0")), info(record(1, "d0", "v1")),
                                     info(record(2, "d2", "v2"), digest="dup"), info(record(3, "d3", "v3"), digest="dup"),
                                     info(record(4, "d4", "v4"))]}
    bad = {"train": ["images/0000.jpg", "images/0002.jpg"], "val": ["images/0001.jpg", "images/0003.jpg"],
           "test": ["images/0004.jpg"]}
    overlap = group_overlap(bad, images, ["driver_id", "vehicle_id"])
    assert overlap.per_key == {"driver_id": 1, "vehicle_id": 0}
    assert overlap.content_pairs == 1
    assert overlap.total == 2
    with pytest.raises(VigilError, match="group_overlap is 2.*driver_id=d0 in train\\+val"):
        check_group_overlap(overlap)
    good = {"train": ["images/0000.jpg", "images/0001.jpg"], "val": ["images/0002.jpg", "images/0003.jpg"],
            "test": ["images/0004.jpg"]}
    check_group_overlap(group_overlap(good, images, ["driver_id", "vehicle_id"]))


def test_a_class_in_one_component_is_reported_empty_with_the_reason() -> None:
    rare = [info(record(0, "dr", "vr"), classes=(1,))]
    common = [info(record(i, f"d{i}", f"v{i}"), classes=(0,)) for i in range(1, 20)]
    result = group_split(rare + common, NAMES, SplitParams(), seed=0)
    empty = [w for w in result.warnings if "no class 'person'" in w]
    assert len(empty) == 2 and all("only 1 group component" in w for w in empty)


@pytest.mark.parametrize(("params", "message"), [
    (SplitParams(train=0.7, val=0.2, test=0.2), "not 1"),
    (SplitParams(train=1.2, val=-0.1, test=-0.1), "negative"),
    (SplitParams(stratify=["weather"]), "no manifest line has the key 'weather'"),
    (SplitParams(group_keys=["driver"]), "no manifest line has the key 'driver'"),
])
def test_bad_params_are_clear_errors(params: SplitParams, message: str) -> None:
    with pytest.raises(VigilError, match=message):
        group_split(pairs(6), NAMES, params, seed=0)


def test_too_few_components_is_an_error_unless_a_fraction_is_zero() -> None:
    with pytest.raises(VigilError, match="only 2 group component"):
        group_split(pairs(2), NAMES, SplitParams(), seed=0)
    result = group_split(pairs(2), NAMES, SplitParams(train=0.5, val=0.5, test=0.0), seed=0)
    assert result.lists["test"] == [] and result.lists["train"] and result.lists["val"]


def test_refuses_to_split_when_validation_failed(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "ds", pairs(6))
    report = tmp_path / "validate.json"
    report.write_text('{"passed": false, "findings": []}')
    with pytest.raises(VigilError, match="failed validation; refusing to split"):
        run_split(root, tmp_path / "out", SplitParams(), 0, validated=report)
    assert not (tmp_path / "out").exists()
    report.write_text('{"findings": []}')
    with pytest.raises(VigilError, match="no boolean 'passed'"):
        require_validated(report)
    report.write_text('{"passed": true}')
    require_validated(report)


def test_files_manifest_must_cover_every_image_and_out_must_not_be_the_dataset(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "ds", pairs(4))
    files = write_files_jsonl(root, tmp_path / "files.jsonl")
    files.write_text("".join(files.read_text().splitlines(keepends=True)[1:]))
    with pytest.raises(VigilError, match="not in the per-file manifest"):
        load_images(root, files)
    with pytest.raises(VigilError, match="would replace the dataset folder"):
        run_split(root, root, SplitParams(), 0)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.me").write_text("x")
    with pytest.raises(VigilError, match="holds other files"):
        run_split(root, tmp_path / "busy", SplitParams(), 0)


def test_cli_split_hashes_images_itself_and_identical_bytes_stay_together(tmp_path: Path) -> None:
    images = pairs(6) + [info(record(50, "dX", "vX")), info(record(51, "dY", "vY"))]
    root = write_dataset(tmp_path / "ds", images, payload={"images/0050.jpg": b"same", "images/0051.jpg": b"same"})
    params = tmp_path / "params.yaml"
    params.write_text("seed: 4\nsplit:\n  train: 0.5\n  val: 0.25\n  test: 0.25\n")
    out, metrics = tmp_path / "out dir", tmp_path / "m" / "split.json"
    result = CliRunner().invoke(app, ["data", "split", str(root), "--out", str(out), "--metrics", str(metrics),
                                      "--params", str(params)])
    assert result.exit_code == 0, result.output
    lists = {s: (out / f"{s}.txt").read_text().splitlines() for s in SPLITS}
    where = split_of(lists)
    assert where["images/0050.jpg"] == where["images/0051.jpg"]
    report = json.loads(metrics.read_text())
    assert report["seed"] == 4 and report["splits"]["train"]["target"] == 0.5
    assert report["group_overlap"]["total"] == 0


def test_cli_errors_are_one_line_and_every_option_has_help(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "ds", pairs(6))
    params = tmp_path / "params.yaml"
    params.write_text("split:\n  train: 0.5\n  val: 0.5\n  test: 0.5\n")
    result = CliRunner().invoke(app, ["data", "split", str(root), "--out", str(tmp_path / "o"), "--params", str(params)])
    assert result.exit_code == 2
    assert "error:" in result.output and "not 1" in result.output and "Traceback" not in result.output
    help_text = CliRunner().invoke(app, ["data", "split", "--help"], env={"COLUMNS": "200"}).output
    for option in ("--out", "--metrics", "--seed", "--params", "--files", "--validated"):
        assert option in help_text


def test_stage_script_refuses_failed_validation_and_splits_a_passed_one(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "ds", pairs(6))
    files = write_files_jsonl(root, tmp_path / "files.jsonl")
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    report = tmp_path / "validate.json"
    args = [sys.executable, str(REPO / "stages/split.py"), "--data", str(root), "--files", str(files),
            "--validated", str(report), "--out", str(tmp_path / "split"), "--metrics", str(tmp_path / "split.json"),
            "--params", str(tmp_path / "params.yaml")]
    report.write_text('{"passed": false}')
    failed = subprocess.run(args, capture_output=True, text=True, check=False)
    assert failed.returncode == 2 and "refusing to split" in failed.stderr
    report.write_text('{"passed": true}')
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "split.json").read_text())["labelled_images"] == 12


def test_a_rare_class_in_three_components_reaches_every_split() -> None:
    common = [info(record(i, f"d{i}", f"v{i}", scenario="day"), classes=(0,)) for i in range(30)]
    rare = [info(record(100 + i, f"r{i}", f"w{i}", scenario="day"), classes=(1,)) for i in range(3)]
    for seed in range(4):
        splits = group_split(common + rare, NAMES, SplitParams(), seed).metrics["splits"]
        assert all(splits[s]["per_class"]["person"]["boxes"] == 1 for s in SPLITS), seed


def test_swaps_fix_what_largest_first_greedy_leaves_uneven() -> None:
    images, i = [], 0
    for g, size in enumerate([3, 3, 2, 2, 2]):  # greedy alone ends 7/5; one 3↔2 swap gives 6/6
        for _ in range(size):
            images.append(info(record(i, f"d{g}", f"v{g}", scenario="day")))
            i += 1
    result = group_split(images, NAMES, SplitParams(train=0.5, val=0.5, test=0.0), seed=0)
    assert [result.metrics["splits"][s]["images"] for s in SPLITS] == [6, 6, 0]
