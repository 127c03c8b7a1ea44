"""Pruning a YOLOv8s to YOLOv8n's shape: exact C2f rewrite, shapes, weight-independence, the stage's two inits."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from vigil.errors import VigilError
from vigil.models.distill import load_distill_params, student_inits
from vigil.models.prune import (
    channel_ratio,
    check_shapes,
    export_checkpoint_model,
    fold_c2f,
    model_scale,
    prune_checkpoint,
    prune_detection_model,
    split_c2f,
)
from vigil.models.yolo import configure_ultralytics

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def ultralytics_here(tmp_path_factory: pytest.TempPathFactory) -> None:
    configure_ultralytics(tmp_path_factory.mktemp("ultralytics-settings"))


def v8(scale: str, nc: int, seed: int) -> torch.nn.Module:
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(seed)
    model = DetectionModel(f"yolov8{scale}.yaml", nc=nc, verbose=False).eval()
    with torch.no_grad():  # batch-norm statistics that are not all 0 / 1, so folding mistakes show
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model


def checkpoint(model: torch.nn.Module, path: Path, names: dict[int, str]) -> Path:
    model.names = names
    export_checkpoint_model(model.float(), path, {"made_by": "test"})
    return path


def test_ratio_follows_the_yolov8_scales_and_refuses_what_pruning_cannot_do() -> None:
    s = model_scale({"scale": "s", "scales": {"s": [0.33, 0.5, 1024]}})
    assert channel_ratio(s, "yolov8n.yaml") == pytest.approx(0.5)
    assert (
        channel_ratio(model_scale({"depth_multiple": 0.33, "width_multiple": 0.5}), "yolov8n.yaml")
        == 0.5
    )
    with pytest.raises(VigilError, match="not narrower"):
        channel_ratio(s, "yolov8s.yaml")
    with pytest.raises(VigilError, match="removes channels, not layers"):
        channel_ratio((0.67, 0.75, 768), "yolov8n.yaml")  # m has more layers than n
    with pytest.raises(VigilError, match="yolov8"):
        channel_ratio(s, "yolo11n.yaml")
    with pytest.raises(VigilError, match="width"):
        model_scale({"nc": 2})


def test_split_then_fold_is_exactly_the_same_network() -> None:
    model = v8("s", 3, 0)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        before = model(x)[0]
        split_c2f(model)
        assert any(type(m).__name__ == "SplitC2f" for m in model.model)
        split = model(x)[0]
        fold_c2f(model)
        assert not any(type(m).__name__ == "SplitC2f" for m in model.model)
        after = model(x)[0]
    assert torch.equal(before, split) and torch.equal(before, after)


def test_pruned_s_has_the_exact_shape_of_n_whatever_its_weights() -> None:
    from ultralytics.nn.tasks import DetectionModel

    target = DetectionModel("yolov8n.yaml", nc=3, verbose=False)
    shapes = []
    for seed in (0, 1):
        pruned = prune_detection_model(v8("s", 3, seed), 0.5, imgsz=64)
        check_shapes(pruned, target)  # raises on any difference
        shapes.append({k: tuple(v.shape) for k, v in pruned.state_dict().items()})
        with torch.no_grad():
            assert (
                pruned(torch.rand(1, 3, 64, 64))[0].shape
                == target.eval()(torch.rand(1, 3, 64, 64))[0].shape
            )
    assert shapes[0] == shapes[1]
    with pytest.raises(VigilError, match="does not match the target"):
        check_shapes(prune_detection_model(v8("s", 3, 0), 0.25, imgsz=64), target)


def test_pruning_keeps_the_strong_channels_and_their_weights() -> None:
    source = v8("s", 3, 0)
    weak = list(
        range(0, 32, 2)
    )  # the stem's even filters carry (almost) nothing anywhere in their group
    with torch.no_grad():
        source.model[0].conv.weight[weak] *= 1e-3
        source.model[0].bn.weight[weak] *= 1e-3
        source.model[0].bn.bias[weak] *= 1e-3
        source.model[1].conv.weight[:, weak] *= 1e-3
    pruned = prune_detection_model(source, 0.5, imgsz=64)
    first, kept = source.model[0].conv.weight, pruned.model[0].conv.weight  # stem: 32 → 16 filters
    rows = [next(i for i in range(32) if torch.equal(first[i], w)) for w in kept]
    assert rows == list(range(1, 32, 2))  # the strong half, in order, weights untouched
    assert torch.equal(pruned.model[0].bn.running_var, source.model[0].bn.running_var[rows])


def test_the_stage_prunes_the_teacher_for_the_student_and_the_teacher_free_source_for_the_control(
    tmp_path: Path,
) -> None:
    from ultralytics import YOLO

    names = {0: "a", 1: "b", 2: "c"}
    pretrained = checkpoint(v8("s", 2, 7), tmp_path / "pretrained.pt", {0: "x", 1: "y"})
    params, _ = load_distill_params(REPO / "params.yaml")
    params = replace(params, init="pruned_teacher", imgsz=64)
    controls = []
    for seed in (1, 2):  # two different teachers
        teacher = checkpoint(v8("s", 3, seed), tmp_path / f"teacher{seed}.pt", names)
        inits = student_inits(params, teacher, tmp_path / f"init{seed}", pretrained)
        student = YOLO(inits.student)
        assert student.model.yaml["scale"] == "n" and student.names == names
        assert (
            inits.pruning["student"]["source"] == "teacher"
            and inits.pruning["student"]["kept"] < 0.3
        )
        assert inits.pruning["control"]["source"] == str(pretrained)
        controls.append(YOLO(inits.control).model.state_dict())
    # the control's start is the same whichever teacher there is: it owes the teacher nothing
    assert controls[0].keys() == controls[1].keys()
    assert all(torch.equal(controls[0][k], controls[1][k]) for k in controls[0])
    no_source = student_inits(params, teacher, tmp_path / "r", None)
    assert (
        no_source.control is None and "control" not in no_source.pruning
    )  # random init of the student yaml


def test_a_missing_checkpoint_is_named(tmp_path: Path) -> None:
    with pytest.raises(VigilError, match="not found") as err:
        prune_checkpoint(tmp_path / "nope.pt", "yolov8n.yaml", tmp_path / "out.pt")
    assert "nope.pt" in err.value.render()
