"""`vigil teacher pseudo-label | score | lora | merge`: a prompted teacher from a local folder (docs/TEACHERS.md).

Values params.yaml already holds are read from it when an option is not given (the pseudo-label
confidence and NMS IoU from `distill`, the scoring floor and detection cap from `evaluate`), so a
prompted teacher labels and is scored by the same rules as the YOLO teacher.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from vigil.cli_errors import user_errors

teacher_app = typer.Typer(
    help="A prompted open-vocabulary teacher (Grounding DINO, OWLv2) from a local folder: label, score, LoRA, merge.",
    no_args_is_help=True,
)

ModelOpt = Annotated[
    Path,
    typer.Option("--model", help="The teacher folder (config.json, *.safetensors, processor)."),
]
DataOpt = Annotated[Path, typer.Option(help="The dataset (its classes.txt names the prompts).")]
ImagesOpt = Annotated[
    Path,
    typer.Option(help="A split list of image paths under --data (e.g. artifacts/split/pool.txt)."),
]
PromptsOpt = Annotated[
    Path | None,
    typer.Option(help="Prompt map (YAML/JSON): class name → prompt or list of prompts."),
]
AdapterOpt = Annotated[
    Path | None, typer.Option(help="A LoRA adapter folder written by `vigil teacher lora`.")
]
ParamsOpt = Annotated[Path | None, typer.Option(help="params.yaml (distill, evaluate).")]


def _images(data: Path, images: Path) -> list[str]:
    from vigil.data.layout import read_classes
    from vigil.detection.split_lists import read_split_list
    from vigil.errors import VigilError

    read_classes(data)  # a missing dataset is named before any model loads
    items = read_split_list(images)
    if not items:
        raise VigilError("the image list is empty", path=images, field="--images")
    return items


@teacher_app.command("pseudo-label")
@user_errors
def pseudo_label_cmd(
    model: ModelOpt,
    data: DataOpt,
    images: ImagesOpt,
    out: Annotated[
        Path, typer.Option(help="New folder: labels/<…>.txt per image + pseudo_labels.json.")
    ],
    prompts: PromptsOpt = None,
    adapter: AdapterOpt = None,
    conf: Annotated[
        float | None, typer.Option(help="Label confidence; default: distill.pseudo_conf.")
    ] = None,
    iou: Annotated[float | None, typer.Option(help="NMS IoU; default: distill.pseudo_iou.")] = None,
    params: ParamsOpt = None,
) -> None:
    """Pseudo-label images with the teacher, in the YOLO format the student trains on."""
    from vigil.data.importers.output import prepare_out
    from vigil.metrics.params import EvaluateParams
    from vigil.models.distill import DETECTION_FLOOR, load_distill_params
    from vigil.params import default_params_file, load_section
    from vigil.teachers.detect import DetectSettings
    from vigil.teachers.loading import load_teacher
    from vigil.teachers.prompts import load_prompts
    from vigil.teachers.pseudo_labels import (
        LabelSettings,
        label_record,
        pseudo_labels,
        write_pseudo_labels,
    )

    params_file = params if params is not None else default_params_file()
    distill, _ = load_distill_params(params_file)
    evaluate = load_section(params_file, "evaluate", EvaluateParams)
    conf = distill.pseudo_conf if conf is None else conf
    settings = LabelSettings(
        conf,
        DetectSettings(
            min(DETECTION_FLOOR, conf), distill.pseudo_iou if iou is None else iou, evaluate.max_det
        ),
    )
    listed = _images(data, images)
    asked = load_prompts(data, prompts)
    out = prepare_out(out, False, [data, model, images] + ([adapter] if adapter else []))
    teacher = load_teacher(model, adapter)
    labels = pseudo_labels(teacher, data, listed, asked, settings)
    write_pseudo_labels(out, labels, label_record(teacher, asked, settings, adapter))
    boxes = sum(text.count("\n") for text in labels.values())
    typer.echo(f"{boxes} pseudo-labels on {len(labels)} images (conf >= {conf}); wrote {out}")


@teacher_app.command("score")
@user_errors
def score_cmd(
    model: ModelOpt,
    data: DataOpt,
    images: ImagesOpt,
    prompts: PromptsOpt = None,
    adapter: AdapterOpt = None,
    out: Annotated[Path | None, typer.Option(help="Also write the metrics JSON here.")] = None,
    params: ParamsOpt = None,
) -> None:
    """Score the teacher on a labelled list (val) with vigil's COCO metrics; print mAP50-95 and mAP50."""
    from vigil.atomic import write_json_atomic
    from vigil.metrics.params import EvaluateParams
    from vigil.params import default_params_file, load_section
    from vigil.teachers.detect import DetectSettings
    from vigil.teachers.loading import load_teacher
    from vigil.teachers.prompts import load_prompts
    from vigil.teachers.val_score import score_teacher
    from vigil.writable import check_output_file

    evaluate = load_section(
        params if params is not None else default_params_file(), "evaluate", EvaluateParams
    )
    listed = _images(data, images)
    asked = load_prompts(data, prompts)
    if out is not None:
        check_output_file(out, "--out", suffix=".json")
    teacher = load_teacher(model, adapter)
    metrics = score_teacher(
        teacher, data, listed, asked, DetectSettings(evaluate.conf, evaluate.iou, evaluate.max_det)
    )
    if out is not None:
        write_json_atomic(out, metrics)
    typer.echo(
        json.dumps({k: metrics[k] for k in ("map50_95", "map50", "recall", "images", "boxes")})
    )


@teacher_app.command("lora")
@user_errors
def lora_cmd(
    model: ModelOpt,
    out: Annotated[
        Path, typer.Option(help="New folder for the adapter (adapter only + base sha256).")
    ],
    r: Annotated[int, typer.Option(help="LoRA rank.")] = 16,
    alpha: Annotated[int, typer.Option(help="LoRA alpha (scale = alpha / r).")] = 32,
    dropout: Annotated[float, typer.Option(help="LoRA dropout.")] = 0.05,
    target: Annotated[
        list[str] | None,
        typer.Option(
            help="A module name to wrap (repeat); default: the family's attention projections."
        ),
    ] = None,
    train_heads: Annotated[
        bool,
        typer.Option(
            "--train-heads", help="Also train the detection heads (saved with the adapter)."
        ),
    ] = False,
) -> None:
    """Wrap the teacher with LoRA adapters, print the trainable share, save the (fresh) adapter."""
    from vigil.data.importers.output import prepare_out
    from vigil.teachers.loading import load_teacher
    from vigil.teachers.lora import LoraSettings, save_adapter, wrap

    settings = LoraSettings(r, alpha, dropout, tuple(target) if target else None, train_heads)
    out = prepare_out(out, False, [model])
    teacher = load_teacher(model)
    wrapped, share = wrap(teacher.model, teacher.family, settings)
    typer.echo(share.line())
    save_adapter(wrapped, model, out, settings)
    typer.echo(f"wrote {out}")


@teacher_app.command("merge")
@user_errors
def merge_cmd(
    model: ModelOpt,
    adapter: Annotated[Path, typer.Option(help="The adapter folder (its base must be --model).")],
    out: Annotated[Path, typer.Option(help="New folder: the merged, plain transformers model.")],
) -> None:
    """Fold a LoRA adapter into its base and write a plain model folder (no peft needed to load it)."""
    from vigil.data.importers.output import prepare_out
    from vigil.teachers.lora import check_base, merge

    out = prepare_out(out, False, [model, adapter])
    check_base(adapter, model)
    merge(model, adapter, out)
    typer.echo(f"wrote {out}")
