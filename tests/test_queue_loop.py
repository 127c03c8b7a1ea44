"""The labelling loop end to end: rank the pool with a tiny model → Label Studio tasks → a simulated
export with a person's boxes → accept → a new dataset whose labels are those boxes and that passes
`vigil data check`; every bad export refused in one line with nothing written; the old data untouched.

The model is yolov8n built from its yaml with random weights (no training, no download).
"""

from __future__ import annotations

import copy
import hashlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from tests.conftest import CLASSES, make_dataset, write_image
from tests.contract.module_imports import REPO
from typer.testing import CliRunner

from vigil.cli import app
from vigil.data.layout import read_labels, read_manifest

POOL = [f"images/pool/p{i}.png" for i in range(6)]


def _hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A dataset with 6 pool images (one with distances), its pool list, a tiny model, params."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    base = tmp_path_factory.mktemp("loop")
    data = make_dataset(base / "data", n=12)
    lines = []
    for i, rel in enumerate(POOL):
        write_image(data / rel, seed=100 + i)
        line: dict[str, Any] = {
            "image": rel,
            "driver_id": f"pd{i}",
            "vehicle_id": f"pv{i}",
            "stream": "cctv",
            "scenario": "day",
            "road_type": "campus",
            "width": 64,
            "height": 48,
            "labelled": False,
        }
        if i == 0:
            line["objects"] = {"distance": [12.0, 30.0, 4.5]}  # the withheld truth's, 3 boxes
        lines.append(json.dumps(line, sort_keys=True) + "\n")
    with (data / "manifest.jsonl").open("a") as f:
        f.writelines(lines)
    pool = base / "pool.txt"
    pool.write_text("".join(f"{rel}\n" for rel in POOL))
    torch.manual_seed(0)
    model = DetectionModel("yolov8n.yaml", nc=len(CLASSES), verbose=False)
    model.names = dict(enumerate(CLASSES))
    student = base / "with space" / "tiny.pt"
    student.parent.mkdir()
    torch.save({"model": model, "train_args": {"imgsz": 64}}, student)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["queue"].update(top=4, conf=0.0)  # random weights score low: show every box
    params["evaluate"]["max_det"] = 5
    (base / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return {
        "base": base,
        "data": data,
        "pool": pool,
        "student": student,
        "params": base / "params.yaml",
    }


def vigil(*args: object) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args])


def rank(world: dict[str, Path], out: Path, *extra: object) -> Any:
    return vigil(
        "queue",
        "rank",
        "--out",
        out,
        "--data",
        world["data"],
        "--pool",
        world["pool"],
        "--student",
        world["student"],
        "--teacher",
        world["student"],
        "--params",
        world["params"],
        *extra,
    )


@pytest.fixture(scope="module")
def queue(world: dict[str, Path]) -> Path:
    out = world["base"] / "queue"
    result = rank(world, out, "--method", "low_confidence")
    assert result.exit_code == 0, result.output
    return out


HUMAN = [  # what the person drew, per queued image: (class, x%, y%, w%, h%)
    [
        ("bag", 10.0, 20.0, 30.0, 40.0),
        ("tshirt", 50.0, 5.0, 25.0, 50.0),
        ("trouser", 0.0, 0.0, 100.0, 100.0),
    ],
    [],  # nothing in this one: a negative
    [("trouser", 60.5, 10.25, 20.0, 30.0)],
]


def export_of(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Label Studio's JSON export after a person labelled the first tasks (the last one left alone)."""
    out = []
    for n, task in enumerate(tasks, start=1):
        item = {
            "id": n,
            "data": task["data"],
            "predictions": task["predictions"],
            "annotations": [],
        }
        if n <= len(HUMAN):
            item["annotations"] = [
                {
                    "id": 10 + n,
                    "was_cancelled": False,
                    "result": [
                        {
                            "id": f"h{k}",
                            "from_name": "label",
                            "to_name": "image",
                            "type": "rectanglelabels",
                            "original_width": 64,
                            "original_height": 48,
                            "image_rotation": 0,
                            "origin": "manual",
                            "value": {
                                "x": x,
                                "y": y,
                                "width": w,
                                "height": h,
                                "rotation": 0,
                                "rectanglelabels": [name],
                            },
                        }
                        for k, (name, x, y, w, h) in enumerate(HUMAN[n - 1])
                    ],
                }
            ]
        out.append(item)
    return out


def test_rank_writes_label_studio_tasks_crops_and_the_ranking(
    queue: Path, world: dict[str, Path]
) -> None:
    tasks = json.loads((queue / "tasks.json").read_text())
    record = json.loads((queue / "queue.json").read_text())
    assert len(tasks) == 4 and [r["image"] for r in record["ranking"]] != []
    assert sorted(r["image"] for r in record["ranking"]) == sorted(POOL)
    scores = [r["score"] for r in record["ranking"]]
    assert scores == sorted(scores, reverse=True)
    assert [t["data"]["vigil_image"] for t in tasks] == [r["image"] for r in record["ranking"][:4]]
    config = ET.fromstring((queue / "labeling_config.xml").read_text())
    assert [label.get("value") for label in config.iter("Label")] == CLASSES
    assert config.find("RectangleLabels").get("name") == "label"  # type: ignore[union-attr]
    for task, entry in zip(tasks, record["queued"], strict=True):
        assert (queue / entry["file"]).is_file()
        assert task["data"]["image"] == "/data/local-files/?d=" + entry["file"]
        result = task["predictions"][0]["result"]
        assert len(result) == len(entry["detections"])
        for region, det in zip(result, entry["detections"], strict=True):
            assert region["type"] == "rectanglelabels" and region["to_name"] == "image"
            value = region["value"]
            assert 0 <= value["x"] <= 100 and 0 <= value["x"] + value["width"] <= 100 + 1e-9
            assert value["rectanglelabels"] == [det["name"]]
            assert (queue / det["crop"]).is_file()
    assert sum(len(e["detections"]) for e in record["queued"]) > 0  # crops were exercised
    assert (queue / ".vigil-output.json").is_file()


def test_each_method_ranks_the_same_pool(world: dict[str, Path]) -> None:
    for method in ("random", "disagreement"):
        out = world["base"] / f"queue-{method}"
        result = rank(world, out, "--method", method, "--top", "2")
        assert result.exit_code == 0, result.output
        record = json.loads((out / "queue.json").read_text())
        assert record["method"] == method and len(record["queued"]) == 2
        assert sorted(r["image"] for r in record["ranking"]) == sorted(POOL)
    same = json.loads((world["base"] / "queue-disagreement/queue.json").read_text())
    assert {r["score"] for r in same["ranking"]} == {0.0}  # a model agrees with itself


def test_rank_refuses_an_out_inside_the_data_and_a_bad_method(world: dict[str, Path]) -> None:
    result = rank(world, world["data"] / "queue")
    assert result.exit_code == 2 and "--out" in result.output
    assert not (world["data"] / "queue").exists()
    result = rank(world, world["base"] / "q-bad", "--method", "entropy")
    assert result.exit_code == 2 and "--method" in result.output


def test_the_round_trip_writes_the_persons_boxes(queue: Path, world: dict[str, Path]) -> None:
    before = _hashes(world["data"])
    tasks = json.loads((queue / "tasks.json").read_text())
    export = world["base"] / "export.json"
    export.write_text(json.dumps(export_of(tasks)))
    out = world["base"] / "data-v2"
    result = vigil(
        "queue",
        "accept",
        export,
        "--data",
        world["data"],
        "--out",
        out,
        "--params",
        world["params"],
    )
    assert result.exit_code == 0, result.output
    assert "accepted 3 images (4 boxes)" in result.output and "left in the pool" in result.output
    assert _hashes(world["data"]) == before  # the old version is only read
    manifest = {r["image"]: r for r in read_manifest(out)}
    for n, task in enumerate(tasks[: len(HUMAN)]):
        image = task["data"]["vigil_image"]
        line = manifest[image]
        assert line["labelled"] is True and line["label_source"] == "human"
        assert line["label_task"] == f"export.json#{n + 1}"
        boxes = read_labels(out / image.replace("images/", "labels/", 1).replace(".png", ".txt"))
        want = [
            (CLASSES.index(c), (x + w / 2) / 100, (y + h / 2) / 100, w / 100, h / 100)
            for c, x, y, w, h in HUMAN[n]
        ]
        got = [(b.cls, b.cx, b.cy, b.w, b.h) for b in boxes]
        assert [g[0] for g in got] == [w[0] for w in want]
        np.testing.assert_allclose([g[1:] for g in got], [w[1:] for w in want], atol=1e-6)
        if "objects" in line:
            assert line["objects"] == {"distance": [None] * len(HUMAN[n])}
    untouched = tasks[len(HUMAN)]["data"]["vigil_image"]
    assert manifest[untouched]["labelled"] is False
    old_lines = (world["data"] / "manifest.jsonl").read_text().splitlines()
    new_lines = (out / "manifest.jsonl").read_text().splitlines()
    changed = [a for a, b in zip(old_lines, new_lines, strict=True) if a != b]
    assert len(changed) == 3  # every other line byte for byte
    prov = json.loads((out / "PROVENANCE.json").read_text())
    assert prov["accepted"][0]["images"] == sorted(t["data"]["vigil_image"] for t in tasks[:3])
    check = vigil("data", "check", out, "--params", world["params"])
    assert check.exit_code == 0, check.output
    again = vigil(
        "queue",
        "accept",
        export,
        "--data",
        world["data"],
        "--out",
        out,
        "--params",
        world["params"],
    )
    assert again.exit_code == 2 and "--force" in again.output
    forced = vigil(
        "queue",
        "accept",
        export,
        "--data",
        world["data"],
        "--out",
        out,
        "--params",
        world["params"],
        "--force",
    )
    assert forced.exit_code == 0, forced.output


def _broken(tasks: list[dict[str, Any]], how: str) -> Any:
    doc = export_of(tasks)
    region = doc[0]["annotations"][0]["result"][0]
    if how == "unknown label":
        region["value"]["rectanglelabels"] = ["sofa"]
    elif how == "not in the pool":
        doc[0]["data"]["vigil_image"] = "images/000.png"  # labelled already
    elif how == "outside the image":
        region["value"]["x"] = 90.0  # 90 % + 30 % wide
    elif how == "twice":
        doc[1]["data"] = copy.deepcopy(doc[0]["data"])
    elif how == "rotated":
        region["value"]["rotation"] = 30
    elif how == "not a rectangle":
        region["type"] = "polygonlabels"
    elif how == "other size":
        region["original_width"] = 640
    elif how == "json-min":
        return {"image": "x", "label": []}
    return doc


@pytest.mark.parametrize(
    "how, expected",
    [
        ("unknown label", "task id=1 annotations[0].result[0].value.rectanglelabels"),
        ("not in the pool", "task id=1 data.vigil_image"),
        ("outside the image", "task id=1 annotations[0].result[0].value"),
        ("twice", "task id=2 data.vigil_image"),
        ("rotated", "task id=1 annotations[0].result[0].value.rotation"),
        ("not a rectangle", "task id=1 annotations[0].result[0].type"),
        ("other size", "task id=1 annotations[0].result[0].original_width"),
        ("json-min", "expected a list of tasks"),
        ("malformed", "not valid JSON"),
    ],
)
def test_a_bad_export_is_one_line_and_writes_nothing(
    queue: Path, world: dict[str, Path], tmp_path: Path, how: str, expected: str
) -> None:
    tasks = json.loads((queue / "tasks.json").read_text())
    export = tmp_path / "bad export.json"
    export.write_text('[{"id": 1,' if how == "malformed" else json.dumps(_broken(tasks, how)))
    out = tmp_path / "v2"
    result = vigil(
        "queue",
        "accept",
        export,
        "--data",
        world["data"],
        "--out",
        out,
        "--params",
        world["params"],
    )
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(export) in lines[0], lines
    assert expected in lines[0]
    assert not out.exists() and not list(tmp_path.glob(".v2*"))


def test_nothing_finished_and_a_dataset_that_fails_its_check_write_nothing(
    queue: Path, world: dict[str, Path], tmp_path: Path
) -> None:
    tasks = json.loads((queue / "tasks.json").read_text())
    export = tmp_path / "export.json"
    cancelled = export_of(tasks)
    for task in cancelled:
        for ann in task["annotations"]:
            ann["was_cancelled"] = True
    export.write_text(json.dumps(cancelled))
    result = vigil(
        "queue",
        "accept",
        export,
        "--data",
        world["data"],
        "--out",
        tmp_path / "v2",
        "--params",
        world["params"],
    )
    assert result.exit_code == 2 and "no finished task" in result.output
    broken = tmp_path / "broken"
    import shutil

    shutil.copytree(world["data"], broken)
    (broken / "labels/000.txt").write_text("9 0.5 0.5 0.2 0.2\n")  # a class id classes.txt lacks
    export.write_text(json.dumps(export_of(tasks)))
    result = vigil(
        "queue",
        "accept",
        export,
        "--data",
        broken,
        "--out",
        tmp_path / "v3",
        "--params",
        world["params"],
    )
    assert result.exit_code == 2 and "would not pass `vigil data check`" in result.output
    assert not (tmp_path / "v3").exists()
