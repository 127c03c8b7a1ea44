"""The `vigil` command line. Each command is a thin shell over a library function."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from vigil.cli_errors import user_errors
from vigil.data.hash_cache import DEFAULT_CACHE
from vigil.export.coreml_bench import DEFAULT_OUT as COREML_BENCH

app = typer.Typer(
    help="vigil: reproducible edge object detectors, from labelled images to a gated release.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(
    help="Build, check, hash, diff, split and import datasets in the canonical layout.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")
bench_app = typer.Typer(
    help="Time exported models on the machines they ship to.", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")
augment_app = typer.Typer(help="Named augmentation presets.", no_args_is_help=True)
app.add_typer(augment_app, name="augment")
# `vigil queue rank | accept`: the active-learning loop (docs/QUEUE.md)
from vigil.queue.cli import queue_app  # noqa: E402

app.add_typer(queue_app, name="queue")
# `vigil teacher …`: a prompted teacher from a local folder (docs/TEACHERS.md)
from vigil.teachers.cli import teacher_app  # noqa: E402

app.add_typer(teacher_app, name="teacher")


@data_app.command("build-sample")
@user_errors
def build_sample_cmd(
    out: Annotated[
        Path, typer.Option(help="Folder to write the sample into (replaced whole).")
    ] = Path("data"),
    cache: Annotated[
        Path, typer.Option(help="Where the Debian source packages are kept.")
    ] = Path.home() / ".cache/vigil/sources",
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
    labelled: Annotated[int, typer.Option(help="Labelled images.")] = 600,
    pool: Annotated[
        int, typer.Option(help="Unlabelled pool images (true boxes kept apart).")
    ] = 300,
) -> None:
    """Build the bundled sample dataset from pinned real sources (Debian packages, sha256-checked)."""
    from vigil.data.sample import SampleSpec, build_sample
    from vigil.data.sources import fetch_sources

    root = fetch_sources(cache)
    provenance = build_sample(root, out, SampleSpec(seed=seed, labelled=labelled, pool=pool))
    typer.echo(
        f"wrote {labelled} labelled + {pool} pool images to {out} "
        f"({len(provenance['vehicles'])} vehicles)"
    )


@data_app.command("check")
@user_errors
def check_cmd(
    folder: Annotated[Path, typer.Argument(help="A dataset folder in the canonical layout.")],
    params: Annotated[
        Path | None,
        typer.Option(
            help="params.yaml whose `validate` section sets allowed values "
            "and minimums; default: ./params.yaml, else the repository's."
        ),
    ] = None,
    docs: Annotated[
        Path | None,
        typer.Option(
            help="Write Great Expectations HTML data docs here, and findings.html: every "
            "finding with a thumbnail of its image, and coverage bars (self-contained, offline)."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the full report as JSON on stdout.")
    ] = False,
) -> None:
    """Validate a dataset: exit 0 when usable (warnings print as `warning: …`), 1 when rejected."""
    import json

    from vigil.data.checks import check_dataset, throughput
    from vigil.data.distance import DistanceParams
    from vigil.params import ValidateParams, default_params_file, load_section, load_yaml
    from vigil.release.gate_fit import check_gates_fit
    from vigil.release.params import GateParams

    params_file = params if params is not None else default_params_file()
    settings = load_section(params_file, "validate", ValidateParams)
    if "gate" in load_yaml(
        params_file
    ):  # gates naming strata the data cannot have fail here, not after training
        check_gates_fit(load_section(params_file, "gate", GateParams), settings.allowed.as_dict())
    distance = (
        load_section(params_file, "distance", DistanceParams)
        if "distance" in load_yaml(params_file)
        else None
    )
    report = check_dataset(folder, settings, docs_dir=docs, distance=distance)
    if docs is not None:
        from vigil.atomic import write_text_atomic
        from vigil.data.findings_page import PAGE, findings_html, minimums_of

        write_text_atomic(docs / PAGE, findings_html(folder, report, minimums_of(settings)))
    if as_json:
        typer.echo(json.dumps(report.summary(), indent=2, sort_keys=True))
    else:
        for finding in report.findings:
            typer.echo(finding.render())
        stats = report.stats
        verdict = "usable" if report.passed else "REJECTED"
        typer.echo(
            f"{folder}: {verdict} — {stats.get('images', 0)} images ({stats.get('labelled', 0)} labelled, "
            f"{stats.get('boxes', 0)} boxes), {sum(f.severity == 'critical' for f in report.findings)} errors, "
            f"{sum(f.severity == 'warning' for f in report.findings)} warnings, {throughput(report):.0f} images/s"
        )
    if not report.passed:
        raise typer.Exit(1)


@data_app.command("hash")
@user_errors
def hash_cmd(
    folder: Annotated[
        Path, typer.Argument(help="A dataset folder; every file under it is hashed.")
    ],
    files: Annotated[
        Path | None,
        typer.Option(
            help="Write the per-file manifest (JSON Lines: path, sha256, "
            "size, kind; sorted by path) here."
        ),
    ] = None,
    metrics: Annotated[
        Path | None,
        typer.Option(
            help="Write the summary (counts per kind, class and stratum; fingerprint) here as JSON."
        ),
    ] = None,
    workers: Annotated[int, typer.Option(help="Processes hashing files in parallel.")] = 2,
    cache: Annotated[
        Path,
        typer.Option(
            help="Incremental cache: files whose path, size and mtime match it are not re-read."
        ),
    ] = DEFAULT_CACHE,
) -> None:
    """Hash every file of a dataset (sha256, incremental) and summarize what it holds."""
    import time

    from vigil.data.summary import describe, hash_dataset

    start = time.perf_counter()
    result, summary = hash_dataset(
        folder, files_out=files, metrics_out=metrics, workers=workers, cache_path=cache
    )
    typer.echo(f"{folder}: " + describe(summary, result, time.perf_counter() - start))
    for path in (files, metrics):
        if path is not None:
            typer.echo(f"wrote {path}")


@data_app.command("pack")
@user_errors
def pack_cmd(
    folder: Annotated[Path, typer.Argument(help="A dataset folder in the canonical layout.")],
    out: Annotated[
        Path,
        typer.Option(
            help="The shards folder to write or update: one tar per session folder, the root "
            "files and index.jsonl (only changed shards are rewritten; replaced atomically)."
        ),
    ],
    workers: Annotated[int, typer.Option(help="Processes hashing files in parallel.")] = 2,
    cache: Annotated[
        Path,
        typer.Option(
            help="Incremental hash cache: files whose path, size and mtime match it are not re-read."
        ),
    ] = DEFAULT_CACHE,
) -> None:
    """Pack a dataset into deterministic tar shards for DVC to track (docs/SCALE.md)."""
    from vigil.data.shards import describe_pack, pack

    typer.echo(describe_pack(pack(folder, out, workers=workers, cache_path=cache)))


@data_app.command("unpack")
@user_errors
def unpack_cmd(
    shards: Annotated[Path, typer.Argument(help="A shards folder written by `vigil data pack`.")],
    out: Annotated[
        Path,
        typer.Option(
            help="The data folder to write (only changed shards are extracted; every member is "
            "checked before anything in it changes)."
        ),
    ],
) -> None:
    """Unpack tar shards into the canonical layout, refusing any member the index does not vouch for."""
    from vigil.data.shards import describe_unpack, unpack

    typer.echo(describe_unpack(unpack(shards, out)))


@data_app.command("diff")
@user_errors
def diff_cmd(
    old: Annotated[
        Path,
        typer.Argument(
            help="The old version: a dataset folder or a files.jsonl from `vigil data hash`."
        ),
    ],
    new: Annotated[
        Path,
        typer.Argument(
            help="The new version: a dataset folder or a files.jsonl from `vigil data hash`."
        ),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print added/removed/changed per kind as JSON on stdout.")
    ] = False,
    workers: Annotated[int, typer.Option(help="Processes hashing a folder argument.")] = 2,
    cache: Annotated[
        Path, typer.Option(help="Incremental hash cache used for folder arguments.")
    ] = DEFAULT_CACHE,
) -> None:
    """List the images, labels and other files added, removed or changed between two dataset versions (exit 0)."""
    import json

    from vigil.data.diff import diff_manifests, entries_of, format_diff, summary_line

    diff = diff_manifests(
        entries_of(old, workers=workers, cache_path=cache),
        entries_of(new, workers=workers, cache_path=cache),
    )
    if as_json:
        typer.echo(json.dumps(diff.to_dict(), indent=2, sort_keys=True))
        return
    listing = format_diff(diff)
    if listing:
        typer.echo(listing)
    typer.echo(f"{old} -> {new}: {summary_line(diff)}")


@data_app.command("split")
@user_errors
def split_cmd(
    folder: Annotated[Path, typer.Argument(help="A dataset folder in the canonical layout.")],
    out: Annotated[
        Path,
        typer.Option(
            help="Folder for train.txt, val.txt, test.txt and pool.txt, and "
            "quarantine.txt under the interlocked strategy (replaced whole; paths "
            "relative to the dataset folder)."
        ),
    ],
    metrics: Annotated[
        Path | None,
        typer.Option(
            help="Write the split metrics (counts per split, stratum and "
            "class; group_overlap; quarantine; warnings) here as JSON."
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Seed of the tie-breaking order and of the interlocked "
            "search; default: `seed` in the params file."
        ),
    ] = None,
    params: Annotated[
        Path | None,
        typer.Option(
            help="params.yaml whose `split` section sets fractions, group "
            "keys, strata and strategy; default: ./params.yaml, else the "
            "repository's."
        ),
    ] = None,
    files: Annotated[
        Path | None,
        typer.Option(
            help="Per-file manifest from `vigil data hash` (sha256 per image); "
            "default: hash the images now."
        ),
    ] = None,
    validated: Annotated[
        Path | None,
        typer.Option(help='Validation report JSON; refuse to split when it says "passed": false.'),
    ] = None,
) -> None:
    """Split labelled images into train/val/test by driver/vehicle groups (stratified); unlabelled go to pool.

    split.strategy components keeps every connected group whole; interlocked holds out drivers and
    vehicles together and quarantines the images whose driver and vehicle land in different splits.
    """
    from vigil.data.split import summary
    from vigil.data.split_io import run_split
    from vigil.params import SplitParams, default_params_file, load_section, load_seed

    params_file = params if params is not None else default_params_file()
    settings = load_section(params_file, "split", SplitParams)
    if seed is None:
        seed = load_seed(params_file)
    result = run_split(
        folder,
        out,
        settings,
        seed,
        files=files,
        validated=validated,
        metrics=metrics,
        protect=[params_file],
    )
    typer.echo(summary(result))
    typer.echo(f"wrote {out}" + (f" and {metrics}" if metrics is not None else ""))


# `vigil data import …` and `vigil data merge` (defined beside the importers; they use user_errors above)
from vigil.data.importers.cli import import_app, merge_cmd  # noqa: E402  (after data_app exists)

data_app.add_typer(import_app, name="import")
data_app.command("merge")(merge_cmd)


@app.command("report")
@user_errors
def report_cmd(
    base: Annotated[
        str,
        typer.Option(
            help="Git revision to compare with (e.g. origin/main, HEAD~1); it must name "
            "a commit (git rev-parse --verify), never start with '-'."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            help="Markdown (.md) file to write; plots go to <stem>_plots/ beside it. "
            "Checked writable before any work."
        ),
    ] = Path("reports/review.md"),
    repo: Annotated[Path, typer.Option(help="The vigil repository.")] = Path("."),
    coreml_bench: Annotated[
        Path | None,
        typer.Option(
            help=f"A `vigil bench coreml` JSON to show; default: {COREML_BENCH} "
            "in the repository when it exists."
        ),
    ] = None,
) -> None:
    """Write the pull-request review: gate verdict, metrics and params diff vs BASE, stratum drops, plots."""
    from vigil.review import build_report

    build_report(repo, base, out, coreml_bench=coreml_bench)
    typer.echo(f"wrote {out}")


@augment_app.command("preview")
@user_errors
def augment_preview_cmd(
    data: Annotated[Path, typer.Option(help="The dataset folder.")] = Path("data"),
    images: Annotated[
        Path, typer.Option("--list", help="A split list of images to show (first --count of it).")
    ] = Path("artifacts/split/train.txt"),
    count: Annotated[int, typer.Option(help="Rows: how many images.")] = 4,
    intensity: Annotated[
        float,
        typer.Option(help="Intensity of every preset when train.augment.presets names none."),
    ] = 0.6,
    out: Annotated[Path, typer.Option(help="PNG to write.")] = Path("reports/augment_preview.png"),
    params: Annotated[Path, typer.Option(help="params.yaml (train.augment.presets)")] = Path(
        "params.yaml"
    ),
) -> None:
    """A PNG grid of training images under each preset: the ones `train.augment.presets` names at
    their intensities, or every preset at --intensity. Look at it before training on them."""
    import cv2

    from vigil.atomic import write_bytes_atomic
    from vigil.detection.split_lists import read_split_list
    from vigil.errors import VigilError
    from vigil.models.augment_presets import PRESETS, preview_grid
    from vigil.models.inference import read_images
    from vigil.models.params import load_train_params

    if count < 1:
        raise VigilError("show at least one image", field="--count")
    if not 0 < intensity <= 1:
        raise VigilError(f"{intensity} is not in (0, 1]", field="--intensity")
    presets = dict(load_train_params(params)[0].augment.presets) or dict.fromkeys(
        PRESETS, intensity
    )
    for name in presets:
        if name not in PRESETS:
            raise VigilError(
                f"{name!r} is not a preset",
                field="train.augment.presets",
                hint=f"one of {', '.join(PRESETS)}",
            )
    rels = read_split_list(images)[:count]
    if not rels:
        raise VigilError("the list is empty", path=images)
    grid = preview_grid(read_images(data, rels), presets)
    ok, png = cv2.imencode(".png", grid)
    if not ok:
        raise VigilError("could not encode the grid", path=out)
    write_bytes_atomic(out, png.tobytes())
    typer.echo(f"wrote {out}: {len(rels)} images x {len(presets)} presets ({', '.join(presets)})")


@bench_app.command("coreml")
@user_errors
def bench_coreml_cmd(
    package: Annotated[
        Path,
        typer.Argument(help="The .mlpackage to time (the export stage writes FP16 and INT8 ones)."),
    ],
    iterations: Annotated[int, typer.Option(help="Timed predictions.")] = 100,
    warmup: Annotated[int, typer.Option(help="Untimed predictions first.")] = 10,
    compute_units: Annotated[
        str, typer.Option(help="all | cpu_only | cpu_and_gpu | cpu_and_ne (CoreML's choice).")
    ] = "all",
    out: Annotated[
        Path, typer.Option(help="JSON to write; `vigil report` shows it.")
    ] = COREML_BENCH,
) -> None:
    """Time a CoreML package's prediction on a Mac: mean / std / min / max ms over N iterations, as JSON.

    CoreML prediction needs macOS: anywhere else this exits 2 with one line and writes nothing.
    """
    from vigil.atomic import write_json_atomic
    from vigil.export.coreml_bench import benchmark, check_options, refuse_unless_macos
    from vigil.writable import check_output_file

    refuse_unless_macos()
    check_options(package, iterations, warmup, compute_units)
    check_output_file(out, "--out", suffix=".json", inputs=(package,))
    result = benchmark(package, iterations=iterations, warmup=warmup, compute_units=compute_units)
    write_json_atomic(out, result)
    lat = result["latency_ms"]
    typer.echo(
        f"{package}: mean {lat['mean']:.2f} ms, std {lat['std']:.2f}, min {lat['min']:.2f}, "
        f"max {lat['max']:.2f} over {iterations} predictions ({compute_units}); wrote {out}"
    )


@app.command("plots")
@user_errors
def plots_cmd(
    out: Annotated[
        Path,
        typer.Option(help="HTML file to write (one file: scripts and images inlined)."),
    ] = Path("reports/plots.html"),
    diff: Annotated[
        list[str] | None,
        typer.Option(
            help="Compare the workspace with this git revision (`dvc plots diff`); repeatable. "
            "Without it: the workspace alone (`dvc plots show`)."
        ),
    ] = None,
    repo: Annotated[Path, typer.Option(help="The vigil repository.")] = Path("."),
) -> None:
    """Every plot dvc.yaml declares as one self-contained HTML page that renders with no network."""
    from vigil.plots import build_plots_page

    page = build_plots_page(repo, out, diff or ())
    typer.echo(
        f"wrote {page.path}: {page.charts} charts, {page.images} images, "
        f"{page.bytes / 1e6:.1f} MB, no network needed"
    )


@app.command("profile")
@user_errors
def profile_cmd(
    profile: Annotated[
        Path, typer.Argument(help="A profile file, e.g. profiles/quick.yaml or profiles/ci.yaml.")
    ],
    params: Annotated[
        Path, typer.Option(help="params.yaml whose keys the profile must match.")
    ] = Path("params.yaml"),
    print0: Annotated[
        bool,
        typer.Option(
            "--print0",
            help="Print the arguments NUL-separated, for "
            "`vigil profile FILE --print0 | xargs -0 dvc exp run`: safe for any "
            "value, spaces and * included.",
        ),
    ] = False,
) -> None:
    """Print a profile as `dvc exp run` arguments: `dvc exp run $(vigil profile profiles/quick.yaml)`.

    The shell splits `$(…)` on spaces and expands `*`, `?` and `[…]` in it, and no quoting survives
    that, so in this form a value holding a space or one of those characters is refused, naming its
    key. `--print0` prints the same arguments NUL-separated instead, for `xargs -0`, with any value.
    A key params.yaml lacks, or a value where params.yaml has a section (`train: 3`), is refused.
    """
    from vigil.profiles import set_arguments

    args = set_arguments(profile, params, shell=not print0)
    if print0:
        sys.stdout.write("".join(arg + "\0" for arg in args))
        sys.stdout.flush()
    else:
        typer.echo(" ".join(args))


@app.command("predict")
@user_errors
def predict_cmd(
    images: Annotated[list[Path], typer.Argument(help="Image files to run the detector on.")],
    engine: Annotated[
        str, typer.Option(help="torch | onnx | onnx-int8 (the same pipeline around each).")
    ] = "torch",
    model: Annotated[
        Path | None,
        typer.Option(
            help="Model file; default: the engine's file under models/. "
            "A PyTorch .pt is a pickle, which can run code: it loads only when "
            "dvc.lock lists it as a pipeline output or it is the pinned "
            "pretrained checkpoint. A model from elsewhere: export it to ONNX."
        ),
    ] = None,
    trust_pickle: Annotated[
        bool,
        typer.Option(
            "--trust-pickle",
            help="Load a .pt that neither dvc.lock nor the "
            "pinned sha256 vouches for. Only for files whose source you trust: "
            "unpickling can run any code the file holds.",
        ),
    ] = False,
    calibration: Annotated[
        Path | None,
        typer.Option(
            help="Calibration mapping to apply instead of the model's own (an ONNX model "
            "carries its own; PyTorch uses the student's models/calibration.json): calibrated "
            "scores, boxes kept at its operating threshold."
        ),
    ] = None,
    raw: Annotated[
        bool,
        typer.Option("--raw", help="Raw scores: no calibration (by default it is applied)."),
    ] = False,
    imgsz: Annotated[
        int | None,
        typer.Option(
            help="Input size, a multiple of 32 in [32, 4096]; default: the "
            "model's own (a static ONNX input allows only its own)."
        ),
    ] = None,
    conf: Annotated[
        float, typer.Option(help="Raw confidence floor before calibration, in [0, 1].")
    ] = 0.25,
    range_file: Annotated[
        Path | None,
        typer.Option(
            "--range",
            help="Range estimator (the range stage's models/range.json, applied by default when "
            'it exists): each kept box gets "range_m", its distance in metres.',
        ),
    ] = None,
    no_range: Annotated[
        bool, typer.Option("--no-range", help="No range_m, even when models/range.json exists.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="Write the JSON lines to this file (atomically) instead of stdout."),
    ] = None,
    draw: Annotated[
        Path | None,
        typer.Option(
            help="Also write each image with its (calibrated) detections drawn into this folder "
            'as <stem>.jpg; each JSON line names its file ("drawn").'
        ),
    ] = None,
) -> None:
    """Detect objects in images with any runnable engine; prints one JSON object per image.

    stdout holds only the JSON lines (library messages go to stderr). An image that cannot be read
    gets `{"image", "engine", "error"}` in its place and the others still run. Exit 0: every image
    done; 1: some image failed; 2: a bad option, model or calibration file (nothing run).
    """
    import json

    from vigil.json_stdout import json_only_stdout
    from vigil.writable import check_output_file

    if out is not None:
        inputs = tuple(p for p in (*images, model, calibration, range_file) if p is not None)
        check_output_file(out, "--out", inputs=inputs)
    if draw is not None:
        from vigil.export.predict import check_draw_dir

        check_draw_dir(draw)
    failed, lines = 0, []
    with json_only_stdout() as stream:
        # ultralytics prints on import: imported inside the guard
        from vigil.export.predict import iter_predictions

        for record in iter_predictions(
            images,
            engine=engine,
            model=model,
            calibration=calibration,
            raw=raw,
            imgsz=imgsz,
            conf=conf,
            trust_pickle=trust_pickle,
            draw=draw,
            range_file=range_file,
            no_range=no_range,
        ):
            if "error" in record:
                failed += 1
                typer.echo(f"error: {record['error']}", err=True)
            line = json.dumps(record)
            if out is None:
                stream.write(line + "\n")
                stream.flush()
            else:
                lines.append(line + "\n")
    if out is not None:
        from vigil.atomic import write_text_atomic

        write_text_atomic(out, "".join(lines))
        typer.echo(f"wrote {out}", err=True)
    if failed:
        typer.echo(
            f'error: {failed} of {len(images)} images failed (their JSON lines carry "error")',
            err=True,
        )
        raise typer.Exit(1)


def main() -> None:  # the console entry point
    app(prog_name="vigil")


if __name__ == "__main__":
    main()
