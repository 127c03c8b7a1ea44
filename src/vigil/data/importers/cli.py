"""`vigil data import …` and `vigil data merge`: thin typer shells over the importers.

Registered by vigil.cli.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vigil.cli_errors import user_errors
from vigil.data.importers import DEFAULT_MIN_PER_CLASS
from vigil.data.importers.output import file_errors, prepare_out
from vigil.errors import VigilError
from vigil.params import ValidateParams, default_params_file, load_section

if TYPE_CHECKING:
    from vigil.data.importers.common import SourceDataset

import_app = typer.Typer(
    no_args_is_help=True,
    help="Import a dataset in another tool's layout into the canonical one (images/, labels/, "
    "manifest.jsonl, classes.txt), ready for `vigil data check`. Nothing is written to --out unless "
    "the import succeeds. `imagefolder` (classifier data) writes its own classifier layout instead.\n\n"
    "Group and strata fields of each image, by precedence: the --metadata side file, then the source's own "
    "fields, then --defaults, then built-in defaults: driver_id = vehicle_id = the source's grouping "
    "(session, VisDrone video, COCO video_id, else the image itself) and stream = scenario = road_type = "
    "'unknown'. `vigil data check` accepts only the values in params.yaml validate.allowed, and the summary "
    "warns about any other: pass e.g. --defaults stream=cctv,scenario=day,road_type=street, or a --metadata "
    "file, or extend validate.allowed.",
)

Out = Annotated[
    Path,
    typer.Option(
        "--out",
        help="Folder to write the canonical dataset into (must be new or "
        "empty; --force replaces a folder vigil wrote, never one that "
        "holds an input).",
    ),
]
ClassMapOpt = Annotated[
    Path | None,
    typer.Option(
        "--class-map",
        help="YAML/JSON mapping `source class (name or id): target name`; null drops a class, "
        "`'*': null` drops every class not named; classes.txt follows the targets' order.",
    ),
]
Metadata = Annotated[
    Path | None,
    typer.Option(
        "--metadata",
        help="JSON Lines or CSV side file with one row per image, keyed by `image` (file name or "
        "relative path): driver_id, vehicle_id, stream, scenario, road_type and any other fields.",
    ),
]
Defaults = Annotated[
    list[str] | None,
    typer.Option(
        "--defaults",
        help="KEY=VALUE[,KEY=VALUE…] for every image that neither --metadata nor the source gives "
        "a value (repeatable), e.g. stream=cctv,scenario=day,road_type=street.",
    ),
]
Clip = Annotated[
    bool,
    typer.Option(
        "--clip",
        help="Clip boxes that stick out of the image (more than 1 px) instead of refusing them.",
    ),
]
Force = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Replace --out whole if it is not empty and vigil wrote it "
        "(it holds .vigil-output.json).",
    ),
]
DEFAULT_PARAMS = Path("params.yaml")
Params = Annotated[
    Path,
    typer.Option(
        "--params",
        help="params.yaml: validate.max_image_side and validate.workers "
        "for the image checks, validate.allowed for the strata "
        "warnings.",
    ),
]


def validate_settings(params: Path) -> tuple[Path, ValidateParams]:
    """The `validate` section: the image checks of an import are those of `vigil data check`.

    Without --params: the working directory's params.yaml, else the repository's (`default_params_file`).
    """
    if params == DEFAULT_PARAMS and not params.is_file():
        params = default_params_file()
    if not params.is_file():
        raise VigilError(
            "params file not found",
            path=params,
            field="--params",
            hint="pass --params path/to/params.yaml (its validate section sets the image checks)",
        )
    return params, load_section(params, "validate", ValidateParams)


def run_import(
    read: Callable[[int], SourceDataset],
    sources: list[Path],
    out: Path,
    class_map: Path | None,
    metadata: Path | None,
    defaults: list[str] | None,
    force: bool,
    params: Path,
    settings: dict[str, Any],
) -> None:
    """`read(max_image_side)` reads and checks the source; nothing is written unless all of it passes."""
    from vigil.data.importers.common import load_class_map  # imported here: `vigil data hash`
    from vigil.data.importers.metadata import parse_defaults  # and friends start faster
    from vigil.data.importers.writer import ImportOptions, write_dataset

    params, validate = validate_settings(params)
    cmap, parsed = load_class_map(class_map), parse_defaults(defaults)
    inputs = [*sources, *(p for p in (class_map, metadata, params) if p is not None)]
    real = prepare_out(out, force, inputs)
    opts = ImportOptions(
        out=real,
        validate=validate,
        class_map=cmap,
        metadata=metadata,
        defaults=parsed,
        force=force,
        params=params,
        inputs=inputs,
        settings={k: str(v) if isinstance(v, Path) else v for k, v in settings.items()},
    )
    with file_errors():
        summary = write_dataset(read(validate.max_image_side), opts)
    typer.echo(summary.render())


@import_app.command("coco")
@user_errors
def coco_cmd(
    instances: Annotated[Path, typer.Argument(help="COCO instances JSON (boxes, masks or both).")],
    images: Annotated[
        Path, typer.Option("--images", help="Folder the JSON's file_name paths are relative to.")
    ],
    out: Out,
    class_map: ClassMapOpt = None,
    metadata: Metadata = None,
    defaults: Defaults = None,
    clip: Clip = False,
    force: Force = False,
    params: Params = Path("params.yaml"),
) -> None:
    """COCO instances JSON: boxes, masks or both.

    Classes follow the categories (by id); an annotation without bbox gets its mask's tight box;
    iscrowd regions go
    to the manifest `ignore`; masks become YOLO-seg polygons in segments/;
    the detected mode (boxes, masks, both) and the student it suits are written to .mode_config.json."""
    from vigil.data.importers.coco import read_coco

    run_import(
        lambda side: read_coco(instances, images, clip, side),
        [images, instances],
        out,
        class_map,
        metadata,
        defaults,
        force,
        params,
        {"instances": instances, "images": images, "clip": clip},
    )


@import_app.command("voc")
@user_errors
def voc_cmd(
    src: Annotated[
        Path, typer.Argument(help="Folder holding the XML files (searched recursively).")
    ],
    out: Out,
    pixels: Annotated[
        str,
        typer.Option(
            "--pixels",
            help="Pixel convention of the XML: 'labelimg' "
            "(default; 0-based pixel edges, xmax = x + w) or 'voc' (the VOC "
            "devkit's 1-based inclusive pixels, w = xmax - xmin + 1).",
        ),
    ] = "labelimg",
    images: Annotated[
        Path | None,
        typer.Option(
            "--images", help="Where the images are, when not beside the XML or in JPEGImages/."
        ),
    ] = None,
    class_map: ClassMapOpt = None,
    metadata: Metadata = None,
    defaults: Defaults = None,
    clip: Clip = False,
    force: Force = False,
    params: Params = Path("params.yaml"),
) -> None:
    """Pascal VOC / LabelImg XML (pixel convention: --pixels, default labelimg).

    Class names are words (sorted into classes.txt); an XML without <size> has its size read from the image;
    <truncated>, <difficult> and <pose> are kept per object in the manifest."""
    from vigil.data.importers.voc import read_voc

    run_import(
        lambda side: read_voc(src, images, pixels, clip, side),
        [src] + ([images] if images else []),
        out,
        class_map,
        metadata,
        defaults,
        force,
        params,
        {"src": src, "pixels": pixels, "images": images, "clip": clip},
    )


@import_app.command("yolo")
@user_errors
def yolo_cmd(
    src: Annotated[
        Path,
        typer.Argument(
            help="Folder with images/, labels/, classes.txt (or data.yaml "
            "names) and optionally manifest.jsonl."
        ),
    ],
    out: Out,
    class_map: ClassMapOpt = None,
    metadata: Metadata = None,
    defaults: Defaults = None,
    clip: Clip = False,
    force: Force = False,
    params: Params = Path("params.yaml"),
) -> None:
    """YOLO folder: images/, labels/, classes.txt or data.yaml.

    The label path is the image path with images/ → labels/ and suffix → .txt; boxes touching
    the border are valid;
    YOLO-seg polygon lines keep their outline; the folder's own manifest.jsonl fields are kept."""
    from vigil.data.importers.yolo import read_yolo

    run_import(
        lambda side: read_yolo(src, clip, side),
        [src],
        out,
        class_map,
        metadata,
        defaults,
        force,
        params,
        {"src": src, "clip": clip},
    )


@import_app.command("visdrone")
@user_errors
def visdrone_cmd(
    src: Annotated[
        Path,
        typer.Argument(
            help="A VisDrone2019-DET-* folder (images/, annotations/) "
            "or the folder holding several."
        ),
    ],
    out: Out,
    class_map: ClassMapOpt = None,
    metadata: Metadata = None,
    defaults: Defaults = None,
    clip: Clip = False,
    keep_split: Annotated[
        bool,
        typer.Option(
            "--keep-split",
            help="Record VisDrone's own train/val/test split (from the folder names) as "
            "`source_split`; the split stage keeps it.",
        ),
    ] = False,
    force: Force = False,
    params: Params = Path("params.yaml"),
) -> None:
    """VisDrone-DET: images/ + annotations/ (x,y,w,h,score,class,truncation,occlusion).

    Class 0 (ignored regions) and score-0 boxes are kept out of the labels and recorded in the
    manifest `ignore`; classes 1-11 (pedestrian … others) map by name or number through --class-map; the video
    id in the file name is the default group."""
    from vigil.data.importers.visdrone import read_visdrone

    run_import(
        lambda side: read_visdrone(src, clip, side, keep_split),
        [src],
        out,
        class_map,
        metadata,
        defaults,
        force,
        params,
        {"src": src, "clip": clip, "keep_split": keep_split},
    )


@import_app.command("sessions")
@user_errors
def sessions_cmd(
    src: Annotated[
        Path, typer.Argument(help="A recorded session folder, or the folder holding several.")
    ],
    out: Out,
    cls: Annotated[
        str, typer.Option("--class", help="Class of every detection (the format carries none).")
    ] = "ball",
    min_confidence: Annotated[
        float,
        typer.Option(
            "--min-confidence",
            help="Detections below this go to the manifest `ignore`, not the labels.",
        ),
    ] = 0.0,
    class_map: ClassMapOpt = None,
    metadata: Metadata = None,
    defaults: Defaults = None,
    force: Force = False,
    params: Params = Path("params.yaml"),
) -> None:
    """Recorded sessions: frames + detector JSON + manifest.json + calibration, as the recorder writes them.

    frames/<camera>/*.png are tied to detections/<camera>_detections.json by the save counter in the
    recorder's names (pre_roll_00001, uniform_NNNNN, pitch_NNNNN_first/_last, post_roll_last), or through
    a manifest.json `frames` list where there is one; a detection (u, v, r) becomes the box
    (u-r, v-r, 2r, 2r) clipped to the frame. A frame without detections is a negative only where the
    detector ran on its camera, else it is imported unlabelled (the pool). The two cameras are paired
    (stereo_pair). The session is the default group (a session stays in one split); calibration is
    copied to calibration/<session>/, stereo_observations.json to observations/<session>/<pitch>/,
    performance_metrics into PROVENANCE.json."""
    from vigil.data.importers.sessions import read_sessions

    run_import(
        lambda side: read_sessions(src, cls, min_confidence, side),
        [src],
        out,
        class_map,
        metadata,
        defaults,
        force,
        params,
        {"src": src, "class": cls, "min_confidence": min_confidence},
    )


@user_errors
def merge_cmd(
    inputs: Annotated[
        list[Path], typer.Argument(help="Canonical dataset folders (e.g. imported ones).")
    ],
    out: Out,
    sample: Annotated[
        list[str] | None,
        typer.Option(
            "--sample",
            help="NAME=RATIO: keep that share of "
            "an input's images (NAME = its folder name), e.g. "
            "visdrone=0.3 (repeatable).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sampling.")] = 0,
    force: Force = False,
    params: Params = Path("params.yaml"),
) -> None:
    """Combine canonical datasets (e.g. imported ones), optionally sampling some.

    Each keeps its own images/<name>/ subfolder (unique file names), classes are
    united by name, and every manifest line gains `dataset` and `merged_from`."""
    from vigil.data.importers.merge import merge_datasets

    params, validate = validate_settings(params)
    real = prepare_out(out, force, [*inputs, params])
    with file_errors():
        summary = merge_datasets(inputs, real, sample, seed, validate, force, [*inputs, params])
    typer.echo(summary.render())


@import_app.command("imagefolder")
@user_errors
def imagefolder_cmd(
    src: Annotated[
        Path,
        typer.Argument(help="Classifier data: one folder per class (SKU), e.g. sku_cola/*.jpg."),
    ],
    out: Out,
    min_per_class: Annotated[
        int,
        typer.Option(
            "--min-per-class",
            min=0,
            help="Images a SKU needs; fewer prints a coverage warning naming the SKU and its count "
            "(0: no check).",
        ),
    ] = DEFAULT_MIN_PER_CLASS,
    group_by: Annotated[
        str | None,
        typer.Option(
            "--group-by",
            help="Regex searched in each image's path inside its SKU folder; its first group (else "
            "the match) is the manifest `group` a split keeps together, e.g. '^(.+)_\\d+\\.\\w+$' or "
            "'^([^/]+)/' (a subfolder per instance). Every image must match. Default: the image itself.",
        ),
    ] = None,
    metadata: Annotated[
        Path | None,
        typer.Option(
            "--metadata",
            help="JSON Lines or CSV side file keyed by `image` (<sku>/<file> or the file name): its "
            "fields, `group` included, go into the manifest rows.",
        ),
    ] = None,
    force: Force = False,
    params: Params = Path("params.yaml"),
) -> None:
    """ImageFolder classifier data (SRC/<sku>/…/*.jpg) into the sibling classifier layout.

    Writes classes.txt (the SKU folder names, sorted: line i is class id i), images/<sku>/… (byte copies),
    manifest.jsonl (image, class, class_id, width, height, sha256, group, source), .mode_config.json
    (mode classify), PROVENANCE.json. Hidden entries, files in SRC itself and non-image files are skipped
    and counted; the same image in two SKU folders is refused."""
    from vigil.data.importers.imagefolder import import_imagefolder

    params, validate = validate_settings(params)
    inputs = [src, *(p for p in (metadata, params) if p is not None)]
    real = prepare_out(out, force, inputs)
    with file_errors():
        summary = import_imagefolder(
            src,
            real,
            validate=validate,
            group_by=group_by,
            metadata=metadata,
            min_per_class=min_per_class,
            force=force,
            inputs=inputs,
            settings={
                "src": str(src),
                "group_by": group_by,
                "metadata": str(metadata) if metadata else None,
                "min_per_class": min_per_class,
            },
        )
    typer.echo(summary.render())
