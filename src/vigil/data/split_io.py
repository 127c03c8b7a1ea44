"""The split stage around the pure strategies: read the dataset, choose the strategy, write the lists.

Everything a user can get wrong here ends in one VigilError before anything is written: an input that
is not UTF-8 JSON, an output that would land in the dataset, on an input, on the working folder or
somewhere unwritable (`/proc`). The lists folder and the metrics JSON are written together: the lists
are only moved into place once the metrics file is written, so a failure leaves neither.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from vigil.atomic import atomic_dir, write_json_atomic
from vigil.data.layout import (
    label_rel_for,
    read_classes,
    read_labels,
    read_manifest,
    resolve_inside,
)
from vigil.data.sources import sha256_file
from vigil.data.split import (
    LIST_FILES,
    POOL,
    QUARANTINE,
    SPLITS,
    ImageInfo,
    SplitResult,
    group_split,
)
from vigil.data.split_interlocked import interlocked_split
from vigil.errors import VigilError
from vigil.params import SplitParams
from vigil.writable import check_output_file


def split_images(
    images: Sequence[ImageInfo], class_names: Sequence[str], params: SplitParams, seed: int
) -> SplitResult:
    """The strategy `split.strategy` names, on the images already read."""
    if params.strategy == "interlocked":
        return interlocked_split(images, class_names, params, seed)
    return group_split(images, class_names, params, seed)


# ---------------------------------------------------------------- reading


def _lines(path: Path, hint: str) -> Iterator[tuple[int, str]]:
    """(line number, text) of a UTF-8 text file; a missing, unreadable or non-UTF-8 file is one clear error."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise VigilError("file not found", path=path, hint=hint) from None
    except OSError as exc:
        raise VigilError(f"cannot read ({exc.strerror or exc})", path=path, hint=hint) from None
    for number, raw in enumerate(data.splitlines(), start=1):
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise VigilError(
                f"not UTF-8 text (byte {exc.start + 1} of the line)", path=path, line=number, hint=hint
            ) from None


def _json(text: str, path: Path, line: int | None, hint: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise VigilError(f"not valid JSON ({exc.msg})", path=path, line=line, hint=hint) from None
    except RecursionError:
        raise VigilError("JSON nested too deeply", path=path, line=line, hint=hint) from None


def read_file_digests(path: Path) -> dict[str, str]:
    """path → sha256 from the hash stage's files.jsonl."""
    hint = "re-run the hash stage (vigil data hash DIR --files …)"
    if not Path(path).is_file():
        raise VigilError(
            "per-file manifest not found", path=path, hint="run the hash stage first (dvc repro hash)"
        )
    out: dict[str, str] = {}
    for number, text in _lines(path, hint):
        if not text.strip():
            continue
        entry = _json(text, path, number, hint)
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("path"), str)
            and isinstance(entry.get("sha256"), str)
        ):
            raise VigilError(
                "not a JSON object with string 'path' and 'sha256'", path=path, line=number, hint=hint
            )
        out[entry["path"]] = entry["sha256"]
    return out


def load_images(root: Path, files: Path | None = None) -> tuple[list[ImageInfo], list[str]]:
    """Read manifest, classes, labels and digests (from `files`, else hashed now) of a canonical folder."""
    root = Path(root)
    try:
        return _load_images(root, files)
    except OSError as exc:  # an unreadable image or label, a folder where a file should be
        raise VigilError(
            f"cannot read ({exc.strerror or exc})",
            path=exc.filename or root,
            hint="run `vigil data check` on the folder",
        ) from None


def _load_images(root: Path, files: Path | None) -> tuple[list[ImageInfo], list[str]]:
    class_names = read_classes(root)
    digests = read_file_digests(files) if files is not None else None
    images: list[ImageInfo] = []
    seen: set[str] = set()
    manifest = root / "manifest.jsonl"
    for number, record in enumerate(read_manifest(root), start=1):
        rel = record.get("image")
        if not isinstance(rel, str):
            raise VigilError("missing or non-string 'image'", path=manifest, line=number, field="image")
        if rel in seen:
            raise VigilError(
                f"image {rel!r} is listed twice",
                path=manifest,
                line=number,
                field="image",
                hint="run `vigil data check` on the folder",
            )
        seen.add(rel)
        labelled = record.get("labelled", True)
        if not isinstance(labelled, bool):
            raise VigilError(
                f"'labelled' is {labelled!r}, not true/false", path=manifest, line=number, field="labelled"
            )
        if digests is None:
            digest = sha256_file(resolve_inside(root, rel))
        elif rel in digests:
            digest = digests[rel]
        else:
            raise VigilError(
                f"image {rel!r} is not in the per-file manifest",
                path=files,
                hint="re-run the hash stage so it covers the current data",
            )
        classes: tuple[int, ...] = ()
        label = resolve_inside(root, label_rel_for(rel))
        if labelled and label.is_file():  # no label file = a negative image (YOLO convention)
            boxes = read_labels(label)
            bad = next((b.cls for b in boxes if not 0 <= b.cls < len(class_names)), None)
            if bad is not None:
                raise VigilError(
                    f"class id {bad} is outside classes.txt (0..{len(class_names) - 1})", path=label
                )
            classes = tuple(b.cls for b in boxes)
        images.append(ImageInfo(rel, record, digest, classes, labelled))
    return images, class_names


def require_validated(path: Path) -> None:
    """Refuse to split data the validate stage failed (its metrics JSON says `"passed": false`)."""
    hint = "re-run the validate stage"
    if not Path(path).is_file():
        raise VigilError("validation report not found", path=path, hint="run the validate stage first")
    report = _json("\n".join(text for _, text in _lines(path, hint)), path, None, hint)
    passed = report.get("passed") if isinstance(report, dict) else None
    if passed is False:
        raise VigilError(
            "the dataset failed validation; refusing to split it",
            path=path,
            field="passed",
            hint="fix the critical findings listed there (vigil data check) and re-run",
        )
    if passed is not True:
        raise VigilError(
            "the validation report has no boolean 'passed'", path=path, field="passed", hint=hint
        )


# ---------------------------------------------------------------- writing


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_outputs(out: Path, metrics: Path | None, root: Path, inputs: Sequence[Path]) -> None:
    """Refuse outputs that would replace or touch the dataset, an input, the working folder or each other.

    `out` is replaced whole, so it must be a new folder or one holding only split lists.
    """
    out_r, root_r = Path(out).resolve(), Path(root).resolve()
    if _inside(root_r, out_r):
        raise VigilError(
            "the output folder would replace the dataset folder",
            path=out,
            field="--out",
            hint="write the split lists to a folder of their own, e.g. artifacts/split",
        )
    if _inside(out_r, root_r):
        raise VigilError(
            "the output folder lies inside the dataset folder (raw data is never modified)",
            path=out,
            field="--out",
            hint="write the split lists outside the dataset, e.g. artifacts/split",
        )
    if _inside(Path.cwd().resolve(), out_r):
        raise VigilError(
            "the output folder is the working folder (or holds it); it is replaced whole",
            path=out,
            field="--out",
            hint="name a folder of its own, e.g. --out split",
        )
    for given in inputs:
        if _inside(Path(given).resolve(), out_r):
            raise VigilError(
                f"the output folder would replace the input {given}",
                path=out,
                field="--out",
                hint="write the split lists to a folder of their own",
            )
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise VigilError("the output path exists and is not a folder", path=out, field="--out")
        others = sorted(p.name for p in out.iterdir() if p.name not in LIST_FILES)
        if others:
            raise VigilError(
                f"the output folder holds other files ({', '.join(others[:3])}); it is replaced whole",
                path=out,
                field="--out",
                hint="choose an empty or new folder",
            )
    if metrics is None:
        return
    metrics_r = Path(metrics).resolve()
    if _inside(metrics_r, root_r):
        raise VigilError(
            "the metrics file would be written inside the dataset folder",
            path=metrics,
            field="--metrics",
            hint="write it elsewhere, e.g. metrics/split.json",
        )
    if _inside(metrics_r, out_r):
        raise VigilError(
            "the metrics file would be written inside the output folder",
            path=metrics,
            field="--metrics",
            hint="the output folder holds only the split lists",
        )
    if any(metrics_r == Path(given).resolve() for given in inputs):
        raise VigilError("the metrics file would overwrite an input", path=metrics, field="--metrics")
    if metrics_r.is_dir():
        raise VigilError(
            "the metrics path is a folder",
            path=metrics,
            field="--metrics",
            hint="name a file, e.g. metrics/split.json",
        )
    check_output_file(metrics, "--metrics", inputs=tuple(inputs))


def probe_folder(out: Path) -> None:
    """Fail before any work when no folder can be made where `out` goes (`/proc`, a file in the way)."""
    ancestor = Path(os.path.abspath(out)).parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise VigilError(f"cannot create it: {ancestor} is not a folder", path=out, field="--out")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".vigil-write-probe.", suffix=".tmp", dir=ancestor))
    except OSError as exc:
        raise VigilError(
            f"cannot write here: {ancestor} ({exc.strerror or exc})",
            path=out,
            field="--out",
            hint="choose a writable location",
        ) from None


def write_split(result: SplitResult, out: Path, metrics: Path | None) -> None:
    """Write the lists as one folder and the metrics JSON; the lists move into place only after the metrics.

    The metrics file is written while the lists still sit in their temp folder, so when it cannot be
    written (an unwritable place, `/proc`) the lists are never moved into place either.
    """
    names = [*SPLITS, POOL] + ([QUARANTINE] if QUARANTINE in result.lists else [])
    out = Path(os.path.abspath(out))
    writing, option = out, "--out"
    try:
        with atomic_dir(out) as tmp:
            for name in names:
                (tmp / f"{name}.txt").write_text(
                    "".join(f"{p}\n" for p in result.lists[name]), encoding="utf-8"
                )
            if metrics is not None:
                writing, option = Path(metrics), "--metrics"
                write_json_atomic(metrics, result.metrics)
            writing, option = out, "--out"
    except OSError as exc:
        raise VigilError(
            f"cannot write here ({exc.strerror or exc})",
            path=writing,
            field=option,
            hint="choose a writable location",
        ) from None


def run_split(
    root: Path,
    out: Path,
    params: SplitParams,
    seed: int,
    *,
    files: Path | None = None,
    validated: Path | None = None,
    metrics: Path | None = None,
    protect: Sequence[Path] = (),
) -> SplitResult:
    """The whole stage: check the outputs and the validation verdict, read, split, write.

    `protect`: other inputs (the params file) no output may overwrite.
    """
    inputs = [p for p in (files, validated, *protect) if p is not None]
    check_outputs(Path(out), metrics, Path(root), inputs)
    probe_folder(Path(out))
    if validated is not None:
        require_validated(validated)
    images, class_names = load_images(Path(root), files)
    result = split_images(images, class_names, params, seed)
    write_split(result, Path(out), metrics)
    return result
