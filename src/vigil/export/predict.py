"""`vigil predict`: one interface over every runnable engine, with the calibration mapping applied.

Every engine goes through the same letterbox and NMS (`vigil.export.pipeline`); the raw scores are
then mapped by the calibration (`vigil.release.mapping`, from the box's score, class and geometry)
and the boxes kept are those the mapping keeps at its operating threshold — so one image gives the
same calibrated boxes whatever the engine, up to the engine's numerical difference.

Which calibration, by default: an ONNX model's own (`vigil.calibration` metadata, written by the
export stage); for PyTorch, the release student's `models/calibration.json`. `--calibration FILE`
overrides either, `--raw` switches calibration off; a model with none is an error naming both.

Range: with `models/range.json` (the range stage's) present, or `--range FILE`, every kept box also
gets `range_m`, its distance in metres (null where the estimator has none); `--no-range` omits it.

Options, the model and the mapping are checked before any image is read (a bad one is one clear
error); an image that cannot be read or run is a per-image error record, so the others still count.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vigil.atomic import write_bytes_atomic
from vigil.detection.draw import DETECTION, Mark, draw_marks, encode_jpeg
from vigil.errors import VigilError
from vigil.export.embedded_calibration import calibrate_image, from_metadata, read_calibration
from vigil.export.engines import ENGINES, open_engine
from vigil.export.pipeline import detect
from vigil.models.inference import Inference
from vigil.range.range_file import RangeRuntime, open_range, read_range

DEFAULT_MODELS: dict[str, Path] = {
    "torch": Path("models/student/best.pt"),
    "onnx": Path("models/export/model.onnx"),
    "onnx-int8": Path("models/export/model_int8.onnx"),
}
DEFAULT_CALIBRATION = Path(
    "models/calibration.json"
)  # the student's: what torch applies by default
DEFAULT_RANGE = Path("models/range.json")  # the range stage's: applied by default when present
STRIDE = 32  # the detector's largest stride: the letterboxed side must be a multiple of it
MAX_IMGSZ = 4096  # a larger input is a typo, and its activations would not fit in memory
MAX_IMAGE_SIDE = 16384  # a header claiming more is refused before decoding (a decompression bomb)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_options(engine: str, imgsz: int | None, conf: float, iou: float, max_det: int) -> None:
    """Range checks, before any file is opened: each failure names its option."""
    if engine not in ENGINES:
        raise VigilError(
            f"unknown engine {engine!r}", field="--engine", hint=f"choose from {', '.join(ENGINES)}"
        )
    for name, value in (("--conf", conf), ("--iou", iou)):
        if not (_number(value) and 0.0 <= value <= 1.0):
            raise VigilError(f"{value!r} is not a score in [0, 1]", field=name, hint="e.g. 0.25")
    if isinstance(max_det, bool) or not isinstance(max_det, int) or max_det < 1:
        raise VigilError(f"{max_det!r} is not a positive count", field="--max-det")
    if imgsz is not None:
        check_imgsz(imgsz, "--imgsz")


def check_imgsz(imgsz: Any, field: str, path: Path | None = None) -> int:
    if (
        isinstance(imgsz, bool)
        or not isinstance(imgsz, int)
        or not STRIDE <= imgsz <= MAX_IMGSZ
        or imgsz % STRIDE
    ):
        raise VigilError(
            f"input size {imgsz!r} is not a multiple of {STRIDE} in [{STRIDE}, {MAX_IMGSZ}]",
            path=path,
            field=field,
            hint="e.g. --imgsz 320 (leave it out to use the model's own)",
        )
    return imgsz


def read_image(path: Path) -> np.ndarray:
    """BGR array of an image file (any path, spaces and non-ASCII allowed); the header is checked first."""
    import cv2
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise VigilError("image missing (or not a file)", path=path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise VigilError(f"cannot read the image: {exc.strerror or exc}", path=path) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore"
            )  # PIL's DecompressionBombWarning: the size is judged below
            with Image.open(io.BytesIO(data)) as header:
                size = header.size
    except Image.DecompressionBombError:
        size = (MAX_IMAGE_SIDE + 1, MAX_IMAGE_SIDE + 1)
    except Exception:  # a format PIL does not know: OpenCV decides below
        size = (0, 0)
    if max(size) > MAX_IMAGE_SIDE:
        raise VigilError(
            f"the image claims more than {MAX_IMAGE_SIDE} pixels a side {size}",
            path=path,
            hint="a hostile or corrupt header; resize the image",
        )
    try:
        array = (
            cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR) if data else None
        )
    except cv2.error:
        array = None
    if array is None:
        raise VigilError(
            "not a decodable image", path=path, hint="give a JPEG, PNG, BMP or TIFF file"
        )
    return array


def probe(runner: Any, settings: Inference, model: Path) -> None:
    """One blank image through the model: it must run at this size and answer like a detector."""
    try:
        raw = np.asarray(
            runner.forward(np.zeros((1, 3, settings.imgsz, settings.imgsz), dtype=np.float32))
        )
    except Exception as exc:  # torch / onnxruntime refuse a wrong input in many ways
        first = str(exc).strip().splitlines()
        raise VigilError(
            f"the model does not run at input size {settings.imgsz} "
            f"({first[0][:200] if first else type(exc).__name__})",
            path=model,
            field="--imgsz",
            hint="leave --imgsz out to use the model's own",
        ) from None
    names = getattr(runner, "names", None)
    classes = raw.shape[1] - 4 if raw.ndim == 3 and raw.shape[0] == 1 else 0
    if classes < 1 or (names is not None and classes != len(names)):
        raise VigilError(
            f"not a YOLO detector: its output is {tuple(raw.shape)}, not (1, 4 + classes, boxes)",
            path=model,
        )


def _record(
    path: Path,
    engine: str,
    mapping: dict[str, Any] | None,
    dets: Any,
    shape: tuple[int, ...],
    source: str | None,
    ranging: RangeRuntime | None = None,
    image: np.ndarray | None = None,
) -> dict[str, Any]:
    scores = dets.scores
    keep = np.ones(len(scores), dtype=bool)
    if mapping is not None:
        calibrated, keep = calibrate_image(mapping, dets, width=shape[1], height=shape[0])
        scores = calibrated.scores
    record: dict[str, Any] = {
        "image": str(path),
        "engine": engine,
        "calibrated": mapping is not None,
        "calibration": source,
        "detections": [
            {
                "xyxy": [round(float(v), 2) for v in box],
                "score": round(float(s), 5),
                "raw_score": round(float(r), 5),
                "class": int(c),
            }
            for box, s, r, c, k in zip(
                dets.boxes, scores, dets.scores, dets.classes, keep, strict=True
            )
            if k
        ],
    }
    if ranging is not None and image is not None:
        metres = ranging.metres(image, dets.boxes[keep], dets.classes[keep])
        kept: list[dict[str, Any]] = record["detections"]
        for det, value in zip(kept, metres, strict=True):
            det["range_m"] = round(float(value), 3) if np.isfinite(value) else None
        record["range"] = ranging.source
    return record


def range_runtime(range_file: Path | None, no_range: bool, repo: Path) -> RangeRuntime | None:
    """The range estimator to apply: `--range FILE`, else models/range.json when present; None = no range."""
    if no_range and range_file is not None:
        raise VigilError("--no-range and --range FILE contradict", field="--no-range")
    if no_range:
        return None
    path = range_file if range_file is not None else Path(repo) / DEFAULT_RANGE
    if range_file is None and not path.is_file():
        return None
    return open_range(read_range(path), path, repo)


def class_names(runner: Any) -> dict[int, str]:
    """The engine's class names: a checkpoint's own, or those ultralytics writes into an ONNX file's
    metadata; empty when neither says (the drawing then labels class ids)."""
    names = getattr(runner, "names", None)
    if isinstance(names, dict):
        return {int(k): str(v) for k, v in names.items()}
    session = getattr(runner, "session", None)
    if session is not None:
        import ast

        try:
            meta = ast.literal_eval(session.get_modelmeta().custom_metadata_map.get("names", "{}"))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return {}
        if isinstance(meta, dict):
            return {int(k): str(v) for k, v in meta.items() if isinstance(k, int)}
    return {}


def check_draw_dir(path: Path) -> Path:
    """`--draw`: a folder images can be written into (created when missing), checked before any work."""
    from vigil.writable import check_output_file

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise VigilError(
            "exists and is not a folder",
            path=path,
            field="--draw",
            hint="give a folder, e.g. out/drawn",
        )
    check_output_file(path / "probe.jpg", "--draw")
    return path


def drawing_name(path: Path, taken: set[str]) -> str:
    """`<stem>.jpg`, or `<stem>-2.jpg`, `-3`… when an earlier input had the same stem."""
    stem, n = Path(path).stem or "image", 1
    name = f"{stem}.jpg"
    while name in taken:
        n += 1
        name = f"{stem}-{n}.jpg"
    taken.add(name)
    return name


def draw_record(image: np.ndarray, record: dict[str, Any], names: dict[int, str]) -> bytes:
    """JPEG bytes of `image` with the record's detections drawn, labelled `class score` (calibrated)."""
    marks = [
        Mark(
            tuple(d["xyxy"]),
            DETECTION,
            f"{names.get(d['class'], str(d['class']))} {d['score']:.2f}",
        )
        for d in record["detections"]
    ]
    return encode_jpeg(draw_marks(image, marks))


def default_calibration(
    engine: str, runner: Any, model: Path, explicit_model: bool, repo: Path
) -> tuple[dict[str, Any], str]:
    """The calibration a model comes with (and where it came from); an error when it has none."""
    if engine != "torch":
        mapping = from_metadata(runner.metadata, model)
        if mapping is None:
            raise VigilError(
                "the model carries no calibration (no vigil.calibration metadata)",
                path=model,
                field="--calibration",
                hint="export it with the export stage, give --calibration FILE, or --raw",
            )
        return mapping, f"{model} (metadata)"
    student = Path(repo) / DEFAULT_MODELS["torch"]
    if explicit_model and Path(model).resolve() != student.resolve():
        raise VigilError(
            "a PyTorch checkpoint carries no calibration, and models/calibration.json is the "
            "release student's",
            path=model,
            field="--calibration",
            hint="give --calibration FILE fitted for this model, or --raw",
        )
    path = Path(repo) / DEFAULT_CALIBRATION
    if not path.is_file():
        raise VigilError(
            "the student's calibration is missing",
            path=path,
            field="--calibration",
            hint="`dvc pull` or `dvc repro calibrate`, give --calibration FILE, or --raw",
        )
    return read_calibration(path), str(path)


def iter_predictions(
    images: Sequence[Path],
    *,
    engine: str,
    model: Path | None = None,
    calibration: Path | None = None,
    raw: bool = False,
    imgsz: int | None = None,
    conf: float = 0.25,
    iou: float = 0.7,
    max_det: int = 100,
    trust_pickle: bool = False,
    repo: Path = Path("."),
    draw: Path | None = None,
    range_file: Path | None = None,
    no_range: bool = False,
) -> Iterator[dict[str, Any]]:
    """One record per image, in order: its detections, or `{"image", "engine", "error"}` when it failed.

    With `draw`, each image is also written there with its detections drawn, and its record names
    the file (`"drawn"`).
    Scores are calibrated by `calibration`, else by the model's own calibration; `raw` = not at all.
    Each kept box gets `range_m` from `range_file`, else from models/range.json when it exists
    (`no_range`: never).
    """
    check_options(engine, imgsz, conf, iou, max_det)
    ranging = range_runtime(range_file, no_range, repo)
    if raw and calibration is not None:
        raise VigilError("--raw (no calibration) and --calibration FILE contradict", field="--raw")
    mapping = read_calibration(calibration) if calibration is not None else None
    source = None if calibration is None else str(calibration)
    model_path = Path(model or DEFAULT_MODELS[engine])
    runner = open_engine(engine, model_path, trust_pickle=trust_pickle, repo=repo)
    if mapping is None and not raw:
        mapping, source = default_calibration(engine, runner, model_path, model is not None, repo)
    fixed = runner.imgsz
    if imgsz is None and fixed is None:
        raise VigilError(
            "the model does not record its input size",
            path=model_path,
            field="--imgsz",
            hint="give --imgsz",
        )
    if imgsz is not None and engine != "torch" and fixed is not None and imgsz != fixed:
        raise VigilError(
            f"the ONNX input is fixed at {fixed}x{fixed}",
            path=model_path,
            field="--imgsz",
            hint=f"leave --imgsz out or give {fixed}",
        )
    size = check_imgsz(
        imgsz if imgsz is not None else fixed,
        "--imgsz" if imgsz is not None else "imgsz",
        None if imgsz is not None else model_path,
    )
    settings = Inference(size, conf, iou, max_det)
    probe(runner, settings, model_path)
    names, taken = class_names(runner), set[str]()
    for path in images:
        try:
            array = read_image(Path(path))
            dets = detect(runner, array, settings)
        except VigilError as exc:
            yield {"image": str(path), "engine": engine, "error": exc.render()}
            continue
        except Exception as exc:  # one image must not lose the others' results
            yield {
                "image": str(path),
                "engine": engine,
                "error": VigilError(
                    f"the detector failed on it ({type(exc).__name__}: {exc})", path=path
                ).render(),
            }
            continue
        record = _record(Path(path), engine, mapping, dets, array.shape, source, ranging, array)
        if draw is not None:
            drawn = Path(draw) / drawing_name(Path(path), taken)
            write_bytes_atomic(drawn, draw_record(array, record, names))
            record["drawn"] = str(drawn)
        yield record


def predict_files(images: Sequence[Path], **options: Any) -> list[dict[str, Any]]:
    """Per image: its detections `{xyxy, score, raw_score, class}` (score calibrated unless `raw`)."""
    return list(iter_predictions(images, **options))
