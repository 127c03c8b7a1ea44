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

from repo_params import section, write_params
from vigil.cli import app
from vigil.data.interlock_search import exhaustive
from vigil.data.split import (
    SPLITS,
    Dimensions,
    ImageInfo,
    check_group_overlap,
    group_overlap,
    group_split,
)
from vigil.data.split_interlocked import build_problem
from vigil.data.split_io import load_images, require_validated, run_split, split_images, write_split
from vigil.errors import VigilError
from vigil.params import SplitParams

REPO = Path(__file__).resolve().parents[1]
NAMES = ["car", "person"]


def params(**changes: Any) -> SplitParams:
    """The repository's `split:` params (their only home) with `changes`."""
    return section("split", SplitParams, **changes)


def record(i: int, driver: str, vehicle: str, **extra: Any) -> dict[str, Any]:
    base = {
        "image": f"images/{i:04d}.jpg",
        "driver_id": driver,
        "vehicle_id": vehicle,
        "stream": "cctv",
        "scenario": ["day", "night"][i % 2],
        "road_type": "street",
    }
    return base | extra


def info(
    rec: dict[str, Any], digest: str | None = None, classes: tuple[int, ...] = (0,)
) -> ImageInfo:
    labelled = rec.get("labelled", True)
    return ImageInfo(
        rec["image"], rec, digest or f"sha-{rec['image']}", classes if labelled else (), labelled
    )


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


def write_dataset(
    root: Path, images: list[ImageInfo], payload: dict[str, bytes] | None = None
) -> Path:
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
    rows = [
        {
            "path": p.relative_to(root).as_posix(),
            "sha256": hashlib.sha256(p.read_bytes()).hexdigest(),
            "size": p.stat().st_size,
            "kind": "image",
        }
        for p in sorted(root.rglob("*.jpg"))
    ]
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def test_shared_driver_pulls_both_vehicles_into_one_split() -> None:
    chain = [
        info(record(0, "d0", "vA")),
        info(record(1, "d0", "vB")),
        info(record(2, "d1", "vB")),
        info(record(3, "d1", "vC")),
    ]
    result = group_split(chain + pairs(8, start=10), NAMES, params(), seed=0)
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
        result = group_split(twins + pairs(6, start=10), NAMES, params(), seed)
        where = split_of(result.lists)
        assert where[twins[0].path] == where[twins[1].path]
        assert result.metrics["group_overlap"]["content_pairs"] == 0


def test_session_groups_when_present_and_absent_keys_are_ignored() -> None:
    a = info(record(0, "d0", "v0", session="s1"))
    b = info(record(1, "d1", "v1", session="s1"))
    loose = info(record(2, "d2", "v2"))  # no session: grouped by its own driver/vehicle only
    result = group_split([a, b, loose] + pairs(6, start=10), NAMES, params(), seed=3)
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
        run_split(root, tmp_path / run, params(), 7, files=files, metrics=tmp_path / f"{run}.json")
        outputs.append(
            [(tmp_path / run / f"{s}.txt").read_bytes() for s in (*SPLITS, "pool")]
            + [(tmp_path / f"{run}.json").read_bytes()]
        )
    assert outputs[0] == outputs[1]
    trains = {tuple(group_split(images, NAMES, params(), seed).lists["train"]) for seed in range(8)}
    assert len(trains) > 1


def test_fractions_and_strata_roughly_right_on_a_bigger_manifest() -> None:
    rng = random.Random(1)
    images, i = [], 0
    for g in range(120):
        stream = "stills" if g % 4 == 0 else "cctv"
        for _ in range(rng.randint(1, 6)):
            images.append(
                info(record(i, f"d{g}", f"v{g}", stream=stream), classes=(rng.randint(0, 1),))
            )
            i += 1
    chosen = params(train=0.6, val=0.2, test=0.2)
    result = group_split(images, NAMES, chosen, seed=0)
    splits = result.metrics["splits"]
    for name in SPLITS:
        assert splits[name]["fraction"] == pytest.approx(getattr(chosen, name), abs=0.02)
        for key in ("scenario", "stream"):
            for value, count in splits[name]["per_stratum"][key].items():
                total = sum(splits[s]["per_stratum"][key][value] for s in SPLITS)
                assert count / total == pytest.approx(getattr(chosen, name), abs=0.1), (
                    name,
                    key,
                    value,
                )
    assert sum(splits[s]["images"] for s in SPLITS) == len(images)
    assert result.warnings == []


def test_pool_kept_out_and_a_pool_image_sharing_a_test_group_is_reported() -> None:
    labelled = pairs(6)
    first = group_split(labelled, NAMES, params(), seed=0)
    test_driver = next(im.record["driver_id"] for im in labelled if im.path in first.lists["test"])
    pool = [
        info(record(100, test_driver, "v_pool", labelled=False)),
        info(record(101, "d_new", "v_new", labelled=False)),
    ]
    result = group_split(labelled + pool, NAMES, params(), seed=0)
    assert result.lists["pool"] == [pool[0].path, pool[1].path]
    assert not {p.path for p in pool} & {p for s in SPLITS for p in result.lists[s]}
    assert result.lists["test"] == first.lists["test"]
    assert result.metrics["splits"]["pool"]["shares_group_with_test"] == 1
    assert any(
        w.startswith("pool: 1 ") and f"driver_id={test_driver}" in w for w in result.warnings
    )


def test_group_overlap_counts_a_bad_assignment_and_the_check_fails() -> None:
    images = {
        im.path: im
        for im in [
            info(record(0, "d0", "v0")),
            info(record(1, "d0", "v1")),
            info(record(2, "d2", "v2"), digest="dup"),
            info(record(3, "d3", "v3"), digest="dup"),
            info(record(4, "d4", "v4")),
        ]
    }
    bad = {
        "train": ["images/0000.jpg", "images/0002.jpg"],
        "val": ["images/0001.jpg", "images/0003.jpg"],
        "test": ["images/0004.jpg"],
    }
    overlap = group_overlap(bad, images, ["driver_id", "vehicle_id"])
    assert overlap.per_key == {"driver_id": 1, "vehicle_id": 0}
    assert overlap.content_pairs == 1
    assert overlap.total == 2
    with pytest.raises(VigilError, match="group_overlap is 2.*driver_id=d0 in train\\+val"):
        check_group_overlap(overlap)
    good = {
        "train": ["images/0000.jpg", "images/0001.jpg"],
        "val": ["images/0002.jpg", "images/0003.jpg"],
        "test": ["images/0004.jpg"],
    }
    check_group_overlap(group_overlap(good, images, ["driver_id", "vehicle_id"]))


def test_a_class_in_one_component_is_reported_empty_with_the_reason() -> None:
    rare = [info(record(0, "dr", "vr"), classes=(1,))]
    common = [info(record(i, f"d{i}", f"v{i}"), classes=(0,)) for i in range(1, 20)]
    result = group_split(rare + common, NAMES, params(), seed=0)
    empty = [w for w in result.warnings if "no class 'person'" in w]
    assert len(empty) == 2 and all("only 1 group component" in w for w in empty)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"train": 0.7, "val": 0.2, "test": 0.2}, "train+val+test", "not 1"),
        ({"train": 1.2, "val": -0.1, "test": -0.1}, "train", "above 1"),
        ({"train": 0.7, "val": -0.1, "test": 0.4}, "val", "negative"),
        ({"val": float("nan")}, "val", "not a finite number"),
        ({"test": float("inf")}, "test", "not a finite number"),
        ({"train": float("-inf")}, "train", "not a finite number"),
        ({"interlock_tolerance": float("nan")}, "interlock_tolerance", "not a finite number"),
        ({"interlock_tolerance": -0.1}, "interlock_tolerance", "negative"),
        ({"strategy": "random"}, "strategy", "unknown strategy 'random'"),
        ({"interlock_keys": ["driver_id"]}, "interlock_keys", "two different keys"),
        ({"interlock_keys": ["driver_id", "driver_id"]}, "interlock_keys", "two different keys"),
    ],
)
def test_bad_split_params_are_refused_naming_the_param(
    changes: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(VigilError, match=message) as caught:
        params(**changes)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("yaml_value", "field", "message"),
    [
        (".nan", "split.val", "finite"),
        (".inf", "split.val", "finite"),
        ("-0.15", "split.val", "negative"),
    ],
)
def test_bad_fractions_in_params_yaml_are_one_line_naming_the_param(
    tmp_path: Path, yaml_value: str, field: str, message: str
) -> None:
    root = write_dataset(tmp_path / "ds", pairs(6))
    text = (REPO / "params.yaml").read_text().replace("\n  val: 0.15\n", f"\n  val: {yaml_value}\n")
    (tmp_path / "params.yaml").write_text(text)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        ["data", "split", str(root), "--out", str(out), "--params", str(tmp_path / "params.yaml")],
    )
    assert result.exit_code == 2, result.output
    assert (
        f"[{field}]" in result.output
        and message in result.output
        and "Traceback" not in result.output
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"stratify": ["weather"]}, "no manifest line has the key 'weather'"),
        ({"group_keys": ["driver"]}, "no manifest line has the key 'driver'"),
        (
            {"strategy": "interlocked", "interlock_keys": ["driver_id", "fleet"]},
            "no manifest line has the key 'fleet'",
        ),
    ],
)
def test_params_naming_absent_keys_are_clear_errors(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(VigilError, match=message):
        group_split(pairs(6), NAMES, params(**changes), seed=0)


def test_too_few_components_is_an_error_pointing_to_the_interlocked_strategy() -> None:
    with pytest.raises(VigilError, match="only 2 group component") as caught:
        group_split(pairs(2), NAMES, params(), seed=0)
    assert "split.strategy: interlocked" in caught.value.render()
    result = group_split(pairs(2), NAMES, params(train=0.5, val=0.5, test=0.0), seed=0)
    assert result.lists["test"] == [] and result.lists["train"] and result.lists["val"]


def test_refuses_to_split_when_validation_failed(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "ds", pairs(6))
    report = tmp_path / "validate.json"
    report.write_text('{"passed": false, "findings": []}')
    with pytest.raises(VigilError, match="failed validation; refusing to split"):
        run_split(root, tmp_path / "out", params(), 0, validated=report)
    assert not (tmp_path / "out").exists()
    report.write_text('{"findings": []}')
    with pytest.raises(VigilError, match="no boolean 'passed'"):
        require_validated(report)
    report.write_text('{"passed": true}')
    require_validated(report)


def test_files_manifest_must_cover_every_image_and_out_must_not_be_the_dataset(
    tmp_path: Path,
) -> None:
    root = write_dataset(tmp_path / "ds", pairs(4))
    files = write_files_jsonl(root, tmp_path / "files.jsonl")
    files.write_text("".join(files.read_text().splitlines(keepends=True)[1:]))
    with pytest.raises(VigilError, match="not in the per-file manifest"):
        load_images(root, files)
    with pytest.raises(VigilError, match="would replace the dataset folder"):
        run_split(root, root, params(), 0)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.me").write_text("x")
    with pytest.raises(VigilError, match="holds other files"):
        run_split(root, tmp_path / "busy", params(), 0)


def test_cli_split_hashes_images_itself_and_identical_bytes_stay_together(tmp_path: Path) -> None:
    images = pairs(6) + [info(record(50, "dX", "vX")), info(record(51, "dY", "vY"))]
    root = write_dataset(
        tmp_path / "ds", images, payload={"images/0050.jpg": b"same", "images/0051.jpg": b"same"}
    )
    settings = write_params(
        tmp_path, {"seed": 4, "split.train": 0.5, "split.val": 0.25, "split.test": 0.25}
    )
    out, metrics = tmp_path / "out dir", tmp_path / "m" / "split.json"
    result = CliRunner().invoke(
        app,
        [
            "data",
            "split",
            str(root),
            "--out",
            str(out),
            "--metrics",
            str(metrics),
            "--params",
            str(settings),
        ],
    )
    assert result.exit_code == 0, result.output
    lists = {s: (out / f"{s}.txt").read_text().splitlines() for s in SPLITS}
    where = split_of(lists)
    assert where["images/0050.jpg"] == where["images/0051.jpg"]
    report = json.loads(metrics.read_text())
    assert report["seed"] == 4 and report["splits"]["train"]["target"] == 0.5
    assert report["group_overlap"]["total"] == 0


def test_cli_errors_are_one_line_and_every_option_has_help(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "ds", pairs(6))
    settings = write_params(tmp_path, {"split.train": 0.5, "split.val": 0.5, "split.test": 0.5})
    result = CliRunner().invoke(
        app, ["data", "split", str(root), "--out", str(tmp_path / "o"), "--params", str(settings)]
    )
    assert result.exit_code == 2
    assert (
        "error:" in result.output and "not 1" in result.output and "Traceback" not in result.output
    )
    help_text = CliRunner().invoke(app, ["data", "split", "--help"], env={"COLUMNS": "200"}).output
    for option in ("--out", "--metrics", "--seed", "--params", "--files", "--validated"):
        assert option in help_text


def test_stage_script_refuses_failed_validation_and_splits_a_passed_one(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "ds", pairs(6))
    files = write_files_jsonl(root, tmp_path / "files.jsonl")
    (tmp_path / "params.yaml").write_text((REPO / "params.yaml").read_text())
    report = tmp_path / "validate.json"
    args = [
        sys.executable,
        str(REPO / "stages/split.py"),
        "--data",
        str(root),
        "--files",
        str(files),
        "--validated",
        str(report),
        "--out",
        str(tmp_path / "split"),
        "--metrics",
        str(tmp_path / "split.json"),
        "--params",
        str(tmp_path / "params.yaml"),
    ]
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
        splits = group_split(common + rare, NAMES, params(), seed).metrics["splits"]
        assert all(splits[s]["per_class"]["person"]["boxes"] == 1 for s in SPLITS), seed


def test_swaps_fix_what_largest_first_greedy_leaves_uneven() -> None:
    images, i = [], 0
    for g, size in enumerate([3, 3, 2, 2, 2]):  # greedy alone ends 7/5; one 3↔2 swap gives 6/6
        for _ in range(size):
            images.append(info(record(i, f"d{g}", f"v{g}", scenario="day")))
            i += 1
    result = group_split(images, NAMES, params(train=0.5, val=0.5, test=0.0), seed=0)
    assert [result.metrics["splits"][s]["images"] for s in SPLITS] == [6, 6, 0]


# ---------------------------------------------------------------- interlocked groups


def fleet(drivers: int, vehicles: int, seed: int, **extra: Any) -> list[ImageInfo]:
    """Drivers who drive several vehicles (a home one half the time): the ids join every image into one."""
    rng = random.Random(seed)
    images: list[ImageInfo] = []
    for d in range(drivers):
        home = rng.randrange(vehicles)
        for _ in range(rng.randint(3, 6)):
            vehicle = home if rng.random() < 0.5 else rng.randrange(vehicles)
            for _ in range(rng.randint(2, 6)):
                rec = record(len(images), f"d{d}", f"v{vehicle}", **extra)
                images.append(info(rec, classes=(rng.randrange(2),)))
    return images


def interlocked(**changes: Any) -> SplitParams:
    return params(strategy="interlocked", **changes)


def test_interlocked_fleet_is_refused_by_components_and_split_by_interlocked() -> None:
    images = fleet(8, 6, seed=0)
    with pytest.raises(VigilError, match="only 1 group component") as caught:
        group_split(images, NAMES, params(), seed=0)
    assert "split.strategy: interlocked" in caught.value.render()

    result = split_images(images, NAMES, interlocked(), seed=0)
    lists, m = result.lists, result.metrics
    where = split_of(lists)
    quarantined = set(lists["quarantine"])
    assert quarantined and not quarantined & set(where) and not quarantined & set(lists["pool"])
    assert len(where) + len(quarantined) == len(images) == m["labelled_images"]
    assert m["quarantine"]["images"] == len(quarantined) and m["quarantine"]["list"] == sorted(
        quarantined
    )
    assert m["quarantine"]["share"] == round(len(quarantined) / len(images), 4)
    assert sum(m["quarantine"]["why"].values()) == len(quarantined)
    assert m["strategy"] == "interlocked" and m["group_overlap"]["total"] == 0
    for key in ("driver_id", "vehicle_id"):  # no driver, no vehicle in two splits
        seen: dict[str, set[str]] = {}
        for im in images:
            if im.path in where:
                seen.setdefault(im.record[key], set()).add(where[im.path])
        assert all(len(s) == 1 for s in seen.values()), key
    label = {
        (key, v): s
        for s, held in m["interlock"]["values"].items()
        for key, values in held.items()
        for v in values
    }
    for im in images:  # kept: driver and vehicle both in its split; quarantined: in different ones
        d, v = (
            label[("driver_id", im.record["driver_id"])],
            label[("vehicle_id", im.record["vehicle_id"])],
        )
        assert (d != v) if im.path in quarantined else (d == v == where[im.path])
    kept = len(where)
    for s in SPLITS:
        share = m["splits"][s]["images"] / kept
        assert abs(share - getattr(interlocked(), s)) <= interlocked().interlock_tolerance + 1e-9, s


@pytest.mark.parametrize(("drivers", "vehicles", "seed"), [(5, 4, 0), (6, 4, 1), (6, 5, 2)])
def test_interlocked_search_reaches_the_exhaustive_optimum_on_small_fleets(
    drivers: int, vehicles: int, seed: int
) -> None:
    images = sorted(fleet(drivers, vehicles, seed), key=lambda im: im.path)
    chosen = interlocked()
    problem = build_problem(
        images,
        chosen.interlock_keys,
        [],
        Dimensions.of(images, NAMES, chosen.stratify),
        [chosen.train, chosen.val, chosen.test],
        chosen.interlock_tolerance,
    )
    labels, cost = problem.search(seed)
    best = exhaustive(problem)
    assert cost == pytest.approx(best.cost, abs=1e-9)
    assert best.min_quarantined <= best.quarantined + 1e-12
    counts = problem.counts(labels)  # the per-move plain-Python cost is the batched numpy cost
    assert problem.score(counts.tolist()) == pytest.approx(float(problem.cost(counts)), abs=1e-12)


def test_interlocked_keeps_a_shared_session_or_identical_bytes_whole() -> None:
    images = fleet(8, 6, seed=3)
    a, b = images[0], next(im for im in images if im.record["driver_id"] == "d5")
    c, d = (
        images[5],
        next(im for im in images if im.record["vehicle_id"] != images[5].record["vehicle_id"]),
    )
    linked = {a.path: {"session": "s1"}, b.path: {"session": "s1"}}
    images = [
        info(
            im.record | linked.get(im.path, {}),
            classes=im.classes,
            digest="twin" if im.path in (c.path, d.path) else None,
        )
        for im in images
    ]
    for seed in range(3):  # merged nodes are coarse: a wider tolerance
        result = split_images(images, NAMES, interlocked(interlock_tolerance=0.15), seed)
        where = split_of(result.lists)
        for x, y in (
            (a, b),
            (c, d),
        ):  # together, or at least one of them quarantined: never in two splits
            assert x.path not in where or y.path not in where or where[x.path] == where[y.path]
        assert result.metrics["group_overlap"]["total"] == 0
        assert "session" in result.metrics["group_keys"]


def test_interlocked_refuses_what_it_cannot_split_naming_the_param() -> None:
    one_driver = [info(record(i, "d0", f"v{i % 5}")) for i in range(20)]
    with pytest.raises(VigilError, match="leaves .*empty") as caught:
        split_images(one_driver, NAMES, interlocked(), seed=0)
    assert caught.value.field == "split.interlock_keys"
    with pytest.raises(VigilError, match="misses a fraction by more than the tolerance") as caught:
        split_images(fleet(4, 3, seed=1), NAMES, interlocked(interlock_tolerance=0.0), seed=0)
    assert caught.value.field == "split.interlock_tolerance"


def test_interlocked_run_writes_a_quarantine_list_and_components_does_not(tmp_path: Path) -> None:
    images = fleet(8, 6, seed=0) + [info(record(900, "d0", "v9", labelled=False))]
    root = write_dataset(tmp_path / "ds", images)
    files = write_files_jsonl(root, tmp_path / "files.jsonl")
    runs = []
    for run in ("a", "b"):
        run_split(
            root, tmp_path / run, interlocked(), 5, files=files, metrics=tmp_path / f"{run}.json"
        )
        runs.append(
            [(tmp_path / run / f"{s}.txt").read_bytes() for s in (*SPLITS, "pool", "quarantine")]
            + [(tmp_path / f"{run}.json").read_bytes()]
        )
    assert runs[0] == runs[1]
    names = (*SPLITS, "pool", "quarantine")
    lists = {s: (tmp_path / "a" / f"{s}.txt").read_text().splitlines() for s in names}
    assert lists["pool"] == ["images/0900.jpg"]
    assert (
        lists["quarantine"] == json.loads((tmp_path / "a.json").read_text())["quarantine"]["list"]
    )
    assert not set(lists["quarantine"]) & {p for s in (*SPLITS, "pool") for p in lists[s]}
    run_split(
        root,
        tmp_path / "a",
        params(strategy="components", group_keys=["vehicle_id"]),
        5,
        files=files,
    )
    written = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert written == ["pool.txt", "test.txt", "train.txt", "val.txt"]


# ---------------------------------------------------------------- hostile inputs and outputs


def test_files_manifest_not_utf8_or_not_json_is_one_line(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "ds", pairs(6))
    files = write_files_jsonl(root, tmp_path / "files.jsonl")
    good = files.read_bytes()
    cases = [
        (good.replace(b'"sha256"', b'"sha\xff256"', 1), ":1", "not UTF-8"),
        (b"[" * 100_000 + b"\n", ":1", "nested too deeply"),
        (good + b'{"path": ["x"], "sha256": 1}\n', ":13", "string 'path' and 'sha256'"),
        (good + b"{not json\n", ":13", "not valid JSON"),
    ]
    for data, line, message in cases:
        files.write_bytes(data)
        out = tmp_path / "out"
        result = CliRunner().invoke(
            app,
            [
                "data",
                "split",
                str(root),
                "--out",
                str(out),
                "--files",
                str(files),
                "--params",
                str(REPO / "params.yaml"),
            ],
        )
        assert result.exit_code == 2, (message, result.output)
        assert f"files.jsonl{line}" in result.output and message in result.output
        assert "Traceback" not in result.output and not out.exists()


def test_validation_report_not_utf8_is_one_line(tmp_path: Path) -> None:
    report = tmp_path / "validate.json"
    report.write_bytes(b'{"passed": tr\xe9e}')
    with pytest.raises(VigilError, match="not UTF-8"):
        require_validated(report)
    report.write_bytes(b"[" * 100_000)
    with pytest.raises(VigilError, match="nested too deeply"):
        require_validated(report)


@pytest.mark.parametrize("where", ["out", "metrics"])
def test_unwritable_outputs_leave_nothing_and_one_line(tmp_path: Path, where: str) -> None:
    root = write_dataset(tmp_path / "ds", pairs(6))
    out, metrics = tmp_path / "out", tmp_path / "split.json"
    if where == "out":
        out = Path("/proc/vigil-test/split")
    else:
        metrics = Path("/proc/vigil-test/split.json")
    result = CliRunner().invoke(
        app,
        [
            "data",
            "split",
            str(root),
            "--out",
            str(out),
            "--metrics",
            str(metrics),
            "--params",
            str(REPO / "params.yaml"),
        ],
    )
    assert result.exit_code == 2, result.output
    assert f"[--{where}]" in result.output and "cannot write" in result.output
    assert "Traceback" not in result.output
    assert (
        not out.exists() and not metrics.exists()
    )  # the lists are not written when the metrics cannot be
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_lists_are_not_moved_into_place_when_the_metrics_cannot_be_written(tmp_path: Path) -> None:
    result = group_split(pairs(6), NAMES, params(), seed=0)
    out = tmp_path / "out"
    with pytest.raises(VigilError, match="cannot write") as caught:
        write_split(result, out, Path("/proc/vigil-test/split.json"))
    assert caught.value.field == "--metrics"
    assert not out.exists() and not list(tmp_path.iterdir())


def test_outputs_on_the_working_folder_the_dataset_or_an_input_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_dataset(tmp_path / "ds", pairs(6))
    files = write_files_jsonl(root, tmp_path / "files.jsonl")
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.chdir(empty)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    out = ["--out", str(tmp_path / "o")]
    cases = [
        (["--out", "."], "is the working folder"),
        (["--out", str(root / "splits")], "inside the dataset folder"),
        ([*out, "--metrics", str(root / "manifest.jsonl")], "inside the dataset"),
        ([*out, "--metrics", str(files)], "overwrite an input"),
        ([*out, "--metrics", str(tmp_path / "o" / "m.json")], "inside the output"),
        ([*out, "--metrics", str(empty)], "is a folder"),
        ([*out, "--metrics", str(REPO / "params.yaml")], "overwrite an input"),
    ]
    for args, message in cases:
        result = CliRunner().invoke(
            app,
            [
                "data",
                "split",
                str(root),
                *args,
                "--files",
                str(files),
                "--params",
                str(REPO / "params.yaml"),
            ],
        )
        assert result.exit_code == 2 and message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_a_kept_source_split_is_honoured_and_the_rest_balanced_around_it() -> None:
    """VisDrone `--keep-split`: images with `source_split` stay in it (even against the balance); the
    team's own images fill the splits around them; nothing leaks."""
    kept = [
        info(record(i, f"vd{i}", f"vd{i}", source_split="val"), classes=(0, 1)) for i in range(6)
    ]
    own = pairs(10, start=100)
    result = group_split(kept + own, NAMES, params(), seed=0)
    where = split_of(result.lists)
    assert all(where[im.path] == "val" for im in kept)
    assert {where[im.path] for im in own} >= {"train", "test"}
    assert result.metrics["group_overlap"]["total"] == 0
    free = group_split(
        [info(record(i, f"vd{i}", f"vd{i}"), classes=(0, 1)) for i in range(6)] + own,
        NAMES,
        params(),
        seed=0,
    )
    assert {split_of(free.lists)[im.path] for im in kept} != {"val"}  # without it: balanced away


@pytest.mark.parametrize(
    ("kept", "message"),
    [
        ([("d0", "val"), ("d0", "train")], "own train and val splits"),
        ([("d0", "holdout")], "'holdout'"),
    ],
)
def test_a_source_split_that_cannot_be_kept_is_one_clear_error(
    kept: list[tuple[str, str]], message: str
) -> None:
    images = [info(record(i, d, d, source_split=s)) for i, (d, s) in enumerate(kept)]
    with pytest.raises(VigilError, match=message):
        group_split(images + pairs(6, start=50), NAMES, params(), seed=0)
    with pytest.raises(VigilError, match="split.test is 0"):
        group_split(
            [info(record(0, "d0", "d0", source_split="test"))] + pairs(6, start=50),
            NAMES,
            params(train=0.8, val=0.2, test=0.0),
            seed=0,
        )
