"""`vigil queue rank | accept`: the labelling loop's two commands (docs/QUEUE.md)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from vigil.cli_errors import user_errors

queue_app = typer.Typer(
    help="Active learning: rank the unlabelled pool for people to label, take their labels back.",
    no_args_is_help=True,
)
STUDENT = Path("models/student/best.pt")
TEACHER = Path("models/teacher/best.pt")
CALIBRATION = Path("models/calibration.json")  # the student's: applied when ranking the student
POOL = Path("artifacts/split/pool.txt")
LOCAL_FILES = (
    "/data/local-files/?d="  # Label Studio's local-files URL (document root: the queue folder)
)


@queue_app.command("rank")
@user_errors
def rank_cmd(
    out: Annotated[
        Path, typer.Option(help="The queue folder to write (never inside --data).")
    ] = Path("queue"),
    data: Annotated[Path, typer.Option(help="The dataset whose pool is ranked.")] = Path("data"),
    pool: Annotated[Path, typer.Option(help="The pool list (the split stage's).")] = POOL,
    method: Annotated[
        str | None,
        typer.Option(
            help="low_confidence | disagreement | random; default: params.yaml queue.method."
        ),
    ] = None,
    top: Annotated[int | None, typer.Option(help="Images queued; default: queue.top.")] = None,
    student: Annotated[Path, typer.Option(help="The deployed student checkpoint.")] = STUDENT,
    teacher: Annotated[Path, typer.Option(help="The teacher checkpoint (disagreement).")] = TEACHER,
    calibration: Annotated[
        Path | None,
        typer.Option(
            help="Calibration of the student; default: models/calibration.json for the default student."
        ),
    ] = None,
    raw: Annotated[bool, typer.Option("--raw", help="Rank raw scores (no calibration).")] = False,
    image_url: Annotated[str, typer.Option(help="Prefix of each task's image URL.")] = LOCAL_FILES,
    params: Annotated[
        Path | None, typer.Option(help="params.yaml (queue, calibrate, evaluate, seed).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Replace --out if vigil wrote it.")] = False,
) -> None:
    """Rank the pool by what a person should label first; write the top N as Label Studio tasks."""
    from vigil.data.layout import read_classes
    from vigil.errors import VigilError
    from vigil.export.embedded_calibration import read_calibration
    from vigil.metrics.params import EvaluateParams
    from vigil.params import default_params_file, load_section, load_seed
    from vigil.queue.folder import write_queue
    from vigil.queue.params import METHODS, QueueParams
    from vigil.queue.pool import listed_pool, pool_sizes
    from vigil.queue.rank import Models, rank_pool
    from vigil.release.params import CalibrateParams

    params_file = params if params is not None else default_params_file()
    settings = load_section(params_file, "queue", QueueParams)
    if method is not None and method not in METHODS:
        raise VigilError(
            f"unknown method {method!r}", field="--method", hint=f"choose from {', '.join(METHODS)}"
        )
    if top is not None and top < 1:
        raise VigilError(f"{top} is not a positive count", field="--top", hint="e.g. --top 50")
    settings = dataclasses.replace(
        settings, method=method or settings.method, top=top or settings.top
    )
    if raw and calibration is not None:
        raise VigilError("--raw (no calibration) and --calibration FILE contradict", field="--raw")
    if calibration is None and not raw and student == STUDENT and CALIBRATION.is_file():
        calibration = CALIBRATION
    evaluate = load_section(params_file, "evaluate", EvaluateParams)
    models = Models(
        student=student,
        teacher=teacher if settings.method == "disagreement" else None,
        mapping=read_calibration(calibration) if calibration is not None else None,
        threshold=load_section(params_file, "calibrate", CalibrateParams).operating_threshold,
        nms_iou=evaluate.iou,
        max_det=evaluate.max_det,
    )
    classes, sizes = read_classes(data), pool_sizes(data)
    images = listed_pool(pool, sizes)
    inputs = [data, pool, student] + ([teacher] if models.teacher else [])
    from vigil.data.importers.output import prepare_out

    prepare_out(out, force, inputs)  # refused before any model runs
    ranking = rank_pool(data, images, sizes, classes, settings, models, load_seed(params_file))
    about = {
        "method": settings.method,
        "top": settings.top,
        "conf": settings.conf,
        "iou": settings.iou,
        "seed": load_seed(params_file),
        "pool": len(images),
        "data": str(data),
        "student": str(student),
        "teacher": str(models.teacher) if models.teacher else None,
        "calibration": str(calibration) if calibration is not None else None,
        "model_version": f"vigil:{student.name}"
        + ("+calibrated" if calibration is not None else ""),
    }
    written = write_queue(
        out,
        data,
        ranking,
        top=settings.top,
        classes=classes,
        sizes=sizes,
        margin=settings.crop_margin,
        url=image_url,
        about=about,
        force=force,
        inputs=inputs,
    )
    n = min(settings.top, len(images))
    typer.echo(
        f"queued {n} of {len(images)} pool images ({settings.method}, "
        f"{'calibrated' if calibration is not None else 'raw'} scores) into {written}: "
        f"scores {ranking.scores[0]:.3f} … {ranking.scores[n - 1]:.3f}"
    )
    typer.echo(
        f"next: import {written}/tasks.json into Label Studio with {written}/labeling_config.xml, "
        "label, export as JSON, then `vigil queue accept EXPORT.json --data DATA --out NEWDIR`"
    )


@queue_app.command("accept")
@user_errors
def accept_cmd(
    export: Annotated[
        Path, typer.Argument(help="Label Studio's JSON export of the queue's tasks.")
    ],
    out: Annotated[Path, typer.Option(help="The new dataset version (a new folder).")],
    data: Annotated[Path, typer.Option(help="The dataset the queue was ranked from.")] = Path(
        "data"
    ),
    params: Annotated[Path | None, typer.Option(help="params.yaml (validate, distance).")] = None,
    force: Annotated[bool, typer.Option(help="Replace --out if vigil wrote it.")] = False,
) -> None:
    """Write --data with the finished tasks' images labelled (label_source: human) as a new dataset."""
    from vigil.data.distance import DistanceParams
    from vigil.params import ValidateParams, default_params_file, load_section, load_yaml
    from vigil.queue.accept import accept

    params_file = params if params is not None else default_params_file()
    validate = load_section(params_file, "validate", ValidateParams)
    distance = (
        load_section(params_file, "distance", DistanceParams)
        if "distance" in load_yaml(params_file)
        else None
    )
    result = accept(export, data, out, validate=validate, distance=distance, force=force)
    typer.echo(result.render())
