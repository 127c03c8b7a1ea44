"""Stage `distill`: teacher pseudo-labels on the pool, a distilled student and its no-distillation control.

Both models train in this one stage (same yaml, init, seed, epochs and train list) so the gain from
distillation is measured in the same run. Each resumes by itself when stopped (`--fresh` to start over).
"""

from __future__ import annotations

from pathlib import Path

import typer

from vigil.cli_errors import user_errors
from vigil.models.distill import DistillPaths, distill, load_distill_params


@user_errors
def main(
    data: Path = typer.Option(..., help="The dataset folder (images/, labels/, classes.txt)."),
    split: Path = typer.Option(
        ..., help="Folder of the split lists (train.txt, val.txt, pool.txt)."
    ),
    pool_truth: Path = typer.Option(
        ..., help="Withheld true boxes of the pool (only to measure the pseudo-labels)."
    ),
    teacher: Path = typer.Option(..., help="The teacher checkpoint (models/teacher/best.pt)."),
    pretrained: Path | None = typer.Option(
        None, help="Teacher-free init weights (the control's); omit = random."
    ),
    student: Path = typer.Option(..., help="Where to write the student (models/student/best.pt)."),
    control: Path = typer.Option(..., help="Where to write the control (models/control/best.pt)."),
    metrics: Path = typer.Option(..., help="Where to write metrics/distill.json."),
    live: Path = typer.Option(
        ..., help="DVCLive folder; student/ and control/ go under it (plots/distill)."
    ),
    run_dir: Path = typer.Option(..., help="Persistent run folder (resume); not a DVC output."),
    fresh: bool = typer.Option(False, "--fresh", help="Ignore stopped runs and start over."),
    params: Path = typer.Option(
        Path("params.yaml"), help="params.yaml (sections `train` and `distill`, and `seed`)."
    ),
) -> None:
    settings, seed = load_distill_params(params)
    paths = DistillPaths(
        data=data,
        split=split,
        pool_truth=pool_truth,
        teacher=teacher,
        pretrained=pretrained,
        student=student,
        control=control,
        metrics=metrics,
        live=live,
        run_dir=run_dir,
    )
    result = distill(settings, seed, paths, resume=not fresh)
    pseudo = result["pseudo_labels"]
    if pseudo:
        print(
            f"distill: {pseudo['labels']} pseudo-labels on {pseudo['images']} pool images, "
            f"precision {pseudo['precision']:.3f}, recall {pseudo['recall']:.3f}"
        )
    for name in ("student", "control"):
        r = result[name]
        print(
            f"distill: {name} {r['epochs_run']} epochs ({r['seconds_per_epoch']:.0f} s each), "
            f"val mAP50 {r['val']['map50']:.3f}, mAP50-95 {r['val']['map50_95']:.3f}"
        )
    print(
        f"distill: KD gain (val mAP50-95) {result['kd_gain_val_map50_95']:+.4f} → {student}, {control}, {metrics}"
    )


if __name__ == "__main__":
    typer.run(main)
