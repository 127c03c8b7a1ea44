"""`train.device: 0,1,…` reaches ultralytics' `model.train(device=…)` unchanged, teacher and student (issue #15 §4).

ultralytics starts its own DDP when the device string names several GPUs (`BaseTrainer`: world size
= `len(device.split(","))`), so vigil only has to hand the value over untouched. These tests follow
it from params.yaml's text through `load_train_params` / `load_distill_params`, `ultralytics_args`,
`train_detector` (fresh and resumed runs) and `run_job` to the keyword arguments of `model.train`,
with the model replaced by a recorder that stops before any training: no GPU, no training, seconds.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest

from repo_params import PARAMS
from test_models_train import make_images, paths_for, tiny_params
from vigil.errors import VigilError
from vigil.models.params import load_train_params
from vigil.models.yolo import configure_ultralytics

REPO = Path(__file__).resolve().parents[1]
MULTI = "0,1"


@pytest.fixture(scope="module", autouse=True)
def ultralytics_here(tmp_path_factory: pytest.TempPathFactory) -> None:
    configure_ultralytics(tmp_path_factory.mktemp("ultralytics-settings"))


class Reached(Exception):
    """Raised by the recorder instead of training: the arguments got as far as `model.train`."""


class Recorder:
    """Stands in for `ultralytics.YOLO`: keeps what `train` is called with and the callbacks added."""

    calls: list[dict[str, Any]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.callbacks: dict[str, list[Any]] = {}

    def add_callback(self, event: str, func: Any) -> None:
        self.callbacks.setdefault(event, []).append(func)

    def train(self, **kwargs: Any) -> None:
        Recorder.calls.append({**kwargs, "_callbacks": self.callbacks})
        raise Reached


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> type[Recorder]:
    """Every model train_detector builds (fresh) or reopens (resume) is a Recorder."""
    import ultralytics

    import vigil.models.train as train_module

    Recorder.calls = []
    monkeypatch.setattr(train_module, "build_model", lambda *a, **k: Recorder())
    monkeypatch.setattr(ultralytics, "YOLO", Recorder)
    return Recorder


def params_text(tmp_path: Path, device_line: str, extra: dict[str, str] | None = None) -> Path:
    """params.yaml with the `train.device` line replaced by `device_line` (as a person would type it)."""
    text = PARAMS.read_text()
    pattern = re.compile(r"^(  device:) cpu(\s)", re.M)
    assert len(pattern.findall(text)) == 1, (
        "params.yaml's train.device line moved: update this test"
    )
    text = pattern.sub(lambda m: f"  device: {device_line}{m.group(2)}", text)
    for old, new in (extra or {}).items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


# --- params.yaml → TrainParams ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [("0,1", "0,1"), ('"0,1"', "0,1"), ("0,1,2,3", "0,1,2,3"), ("'0'", "0"), ("cpu", "cpu")],
)
def test_device_strings_load_as_written(tmp_path: Path, line: str, expected: str) -> None:
    params, _ = load_train_params(params_text(tmp_path, line))
    assert params.device == expected and type(params.device) is str


@pytest.mark.parametrize(("line", "expected"), [("0", 0), ("1", 1), ("[0, 1]", [0, 1])])
def test_a_bare_int_or_a_list_loads_as_ultralytics_takes_it(
    tmp_path: Path, line: str, expected: object
) -> None:
    # `device: 0` and `dvc exp run -S train.device=0` give YAML an int; `[0, 1]` a list: ultralytics'
    # select_device takes both, so vigil passes them on unchanged
    from vigil.models.train import ultralytics_args

    params, _ = load_train_params(params_text(tmp_path, line))
    assert params.device == expected and type(params.device) is type(expected)
    assert ultralytics_args(params, 0)["device"] == expected


@pytest.mark.parametrize("line", ["[]", "-1", "[0, -1]", "[cpu]", "1.5", "true"])
def test_a_device_that_is_no_device_is_refused_naming_the_key(tmp_path: Path, line: str) -> None:
    with pytest.raises(VigilError) as info:
        load_train_params(params_text(tmp_path, line))
    assert info.value.field == "train.device"


# --- TrainParams → model.train(**kwargs): the teacher ---------------------------------------------------


def test_ultralytics_args_carry_the_device_string_as_is() -> None:
    from vigil.models.train import ultralytics_args

    args = ultralytics_args(tiny_params(device=MULTI), 0)
    assert args["device"] == MULTI and type(args["device"]) is str


def test_a_fresh_teacher_run_hands_the_device_to_model_train(
    tmp_path: Path, recorder: type[Recorder]
) -> None:
    from vigil.models.train import train_detector

    root = make_images(tmp_path / "data")
    with pytest.raises(Reached):
        train_detector(tiny_params(device=MULTI), 0, paths_for(root, tmp_path / "ws"))
    (call,) = recorder.calls
    assert call["device"] == MULTI and "resume" not in call


def test_a_resumed_teacher_run_hands_the_device_to_model_train(
    tmp_path: Path, recorder: type[Recorder], monkeypatch: pytest.MonkeyPatch
) -> None:
    import vigil.models.train as train_module

    root = make_images(tmp_path / "data")
    paths = paths_for(root, tmp_path / "ws")
    with pytest.raises(Reached):  # a first run writes the fingerprint, then "dies"
        train_module.train_detector(tiny_params(device=MULTI), 0, paths)
    monkeypatch.setattr(
        train_module, "is_resumable", lambda path: True
    )  # as if last.pt held epoch 1
    with pytest.raises(Reached):
        train_module.train_detector(tiny_params(device=MULTI), 0, paths)
    first, resumed = recorder.calls
    assert resumed["resume"] is True and resumed["device"] == MULTI == first["device"]


def test_the_train_stage_script_hands_params_yaml_device_to_model_train(
    tmp_path: Path, recorder: type[Recorder]
) -> None:
    """The whole teacher path: params.yaml text → stages/train.py → train_detector → model.train."""
    spec = importlib.util.spec_from_file_location("stage_train", REPO / "stages" / "train.py")
    assert spec is not None and spec.loader is not None
    stage = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stage)
    root = make_images(tmp_path / "data")
    params = params_text(
        tmp_path, "0,1", {"model: yolov8s.yaml": "model: yolov8n.yaml", "imgsz: 320": "imgsz: 64"}
    )
    ws = tmp_path / "ws"
    with pytest.raises(Reached):
        stage.main(
            data=root,
            split=root / "split",
            init=None,
            weights=ws / "best.pt",
            metrics=ws / "train.json",
            live=ws / "live",
            run_dir=ws / "run",
            fresh=False,
            params=params,
        )
    (call,) = recorder.calls
    assert call["device"] == "0,1" and call["imgsz"] == 64


def test_the_callbacks_added_for_training_survive_cloudpickle_as_ddp_needs(
    tmp_path: Path, recorder: type[Recorder]
) -> None:
    """ultralytics' DDP launcher cloudpickles `trainer.callbacks` for its workers (utils/dist.py)."""
    import cloudpickle

    from vigil.models.train import train_detector

    root = make_images(tmp_path / "data")
    with pytest.raises(Reached):
        train_detector(tiny_params(device=MULTI), 0, paths_for(root, tmp_path / "ws"))
    callbacks = recorder.calls[0]["_callbacks"]
    assert callbacks and all(callbacks.values())
    restored = cloudpickle.loads(cloudpickle.dumps(callbacks))
    assert set(restored) == set(callbacks)


# --- DistillParams → model.train(**kwargs): the student and the control ------------------------------


def distill_world(tmp_path: Path) -> tuple[Path, Path]:
    root = make_images(tmp_path / "data")
    teacher = tmp_path / "teacher.pt"
    teacher.write_bytes(b"a teacher checkpoint stand-in")
    return root, teacher


@pytest.mark.parametrize(
    ("line", "overrides"),
    [("0,1", "overrides: {}"), ("cpu", 'overrides: {device: "0,1"}')],
    ids=["train.device", "distill.overrides.device"],
)
def test_student_and_control_hand_the_device_to_model_train(
    tmp_path: Path, recorder: type[Recorder], line: str, overrides: str
) -> None:
    from vigil.models.distill import (
        DistillPaths,
        base_lists,
        control_job,
        distill,
        load_distill_params,
        run_job,
    )

    params_path = params_text(
        tmp_path,
        line,
        {
            "overrides: {}": overrides,
            "init: pruned_teacher": "init: weights",
            "use_pool: true": "use_pool: false",
        },
    )
    params, seed = load_distill_params(params_path)
    assert params.device == MULTI and params.dis > 0
    root, teacher = distill_world(tmp_path)
    ws = tmp_path / "ws"
    paths = DistillPaths(
        data=root,
        split=root / "split",
        pool_truth=root / "pool_truth",
        teacher=teacher,
        pretrained=None,
        student=ws / "student.pt",
        control=ws / "control.pt",
        metrics=ws / "distill.json",
        live=ws / "live",
        run_dir=ws / "runs",
    )
    with pytest.raises(Reached):  # the stage's own path: the student trains first
        distill(params, seed, paths)
    with pytest.raises(Reached):
        run_job(
            control_job(params, base_lists(paths.split, params, seed), None),
            seed,
            root,
            ws / "runs" / "control",
            paths.control,
            ws / "live" / "control",
        )
    student, control = recorder.calls
    assert student["distill_model"] == str(teacher.resolve())  # the student really is distilled
    assert "distill_model" not in control
    assert student["device"] == MULTI and control["device"] == MULTI


# --- DDP workers ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rank", "writes"), [(None, True), ("0", True), ("1", False), ("3", False)]
)
def test_only_rank_zero_logs_curves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rank: str | None, writes: bool
) -> None:
    from types import SimpleNamespace

    from vigil.models.live import LiveLogger

    logger = LiveLogger(tmp_path / "live", resume=False)
    callbacks = logger.callbacks()  # built in the launching process, then pickled to every worker
    if rank is None:  # no DDP: one process
        monkeypatch.delenv("RANK", raising=False)
    else:  # what torch.distributed.run sets in each worker
        monkeypatch.setenv("RANK", rank)
        monkeypatch.setenv("LOCAL_RANK", rank)
    trainer = SimpleNamespace(
        epochs=2,
        start_epoch=0,
        epoch=0,
        args=SimpleNamespace(imgsz=64, batch=4),
        tloss=None,
        metrics={"metrics/mAP50(B)": 0.5},
        lr={"lr/pg0": 0.01},
        label_loss_items=lambda loss, prefix="train": {f"{prefix}/box_loss": 1.0},
    )
    for event in (
        "on_train_start",
        "on_train_epoch_start",
        "on_train_epoch_end",
        "on_fit_epoch_end",
    ):
        for func in callbacks[event]:
            func(trainer)
    written = sorted(p.name for p in (tmp_path / "live").rglob("*") if p.is_file())
    if writes:
        assert "mAP50B.tsv" in written or any("mAP50" in n for n in written), written
    else:
        assert written == []


def test_under_ddp_the_val_block_comes_from_the_best_epoch_of_results_csv() -> None:
    from vigil.models.train import summarize

    rows = [
        {
            "epoch": 1.0,
            "metrics/mAP50(B)": 0.4,
            "metrics/mAP50-95(B)": 0.2,
            "metrics/precision(B)": 0.5,
            "metrics/recall(B)": 0.3,
        },
        {
            "epoch": 2.0,
            "metrics/mAP50(B)": 0.6,
            "metrics/mAP50-95(B)": 0.3,
            "metrics/precision(B)": 0.7,
            "metrics/recall(B)": 0.4,
        },
    ]
    ddp = summarize(
        {}, rows, [1.0, 1.0], 2.0, False
    )  # the launching process's trainer.metrics: None
    assert ddp["val"] == {"map50": 0.6, "map50_95": 0.3, "precision": 0.7, "recall": 0.4}
    assert ddp["best_epoch"] == 2
    final = {
        "metrics/mAP50(B)": 0.61,
        "metrics/mAP50-95(B)": 0.31,
    }  # one process: its final validation
    assert summarize(final, rows, [1.0], 2.0, False)["val"]["map50"] == 0.61
