"""`vigil queue accept`: a Label Studio export of the queue's tasks → a new dataset version.

The new folder is the old dataset with each finished task's image turned labelled: its YOLO label
file written from the person's boxes, and its manifest line marked `labelled: true`,
`label_source: "human"`, `label_task` (export file and task id); any per-object list in `objects`
(the distances) becomes one `null` per new box, since the person gave boxes, not distances. Every
other file is copied unchanged (untouched manifest lines byte for byte), and PROVENANCE.json records
the accept. The import writer's rules hold: the export is read and checked whole first, `--out` is
written atomically and may neither hold nor lie in an input, `--force` replaces only a folder vigil
wrote, and the old dataset is only read. The result must pass `vigil data check` before it is moved
into place; otherwise nothing is written.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vigil import __version__
from vigil.atomic import atomic_dir
from vigil.data.checks import CRITICAL, check_dataset
from vigil.data.distance import DistanceParams
from vigil.data.importers.common import load_json
from vigil.data.importers.output import MARKER, PROVENANCE, marker, prepare_out, writing
from vigil.data.importers.writer import json_text
from vigil.data.layout import MANIFEST, Box, label_rel_for, read_classes
from vigil.errors import VigilError
from vigil.params import ValidateParams
from vigil.queue.labelstudio import HumanLabels, read_export
from vigil.queue.pool import pool_sizes


@dataclass(frozen=True)
class Accepted:
    out: Path
    images: int
    boxes: Counter[str]
    unlabelled: list[str]  # task ids left in the pool (no annotation, or only skipped ones)

    def render(self) -> str:
        lines = [
            f"accepted {self.images} images ({sum(self.boxes.values())} boxes) into {self.out}"
        ]
        lines += [f"  {name}: {n}" for name, n in self.boxes.items()]
        if self.unlabelled:
            lines.append(
                f"left in the pool (not labelled in the export): {len(self.unlabelled)} tasks, "
                f"e.g. id={', id='.join(self.unlabelled[:3])}"
            )
        lines.append(
            f"next: make it the pipeline's data/ (rm -rf data && mv {self.out} data), "
            "then dvc add data && dvc repro (docs/QUEUE.md)"
        )
        return "\n".join(lines)


def label_lines(labels: HumanLabels, size: tuple[int, int]) -> list[str]:
    """The YOLO lines of one task's boxes (class cx cy w h, normalized)."""
    width, height = size
    return [
        Box(cls, (x + w / 2) / width, (y + h / 2) / height, w / width, h / height).to_line()
        for cls, x, y, w, h in labels.boxes
    ]


def labelled_record(record: dict[str, Any], labels: HumanLabels, source: str) -> dict[str, Any]:
    """A pool image's manifest line once a person has labelled it."""
    out = {
        **record,
        "labelled": True,
        "label_source": "human",
        "label_task": f"{source}#{labels.task}",
    }
    objects = record.get("objects")
    if isinstance(objects, dict):
        out["objects"] = {
            k: [None] * len(labels.boxes) if isinstance(v, list) else v for k, v in objects.items()
        }
    return out


def _manifest(data: Path, accepted: dict[str, HumanLabels], source: str) -> str:
    """manifest.jsonl with the accepted lines rewritten and every other line kept byte for byte."""
    lines = (data / MANIFEST).read_text(encoding="utf-8").splitlines(keepends=True)
    out = []
    for text in lines:
        stripped = text.strip()
        record = json.loads(stripped) if stripped else None
        if isinstance(record, dict) and record.get("image") in accepted:
            new = labelled_record(record, accepted[record["image"]], source)
            text = json.dumps(new, sort_keys=True, allow_nan=False) + "\n"
        out.append(text)
    return "".join(out)


def _provenance(data: Path, entry: dict[str, Any]) -> str:
    path = data / PROVENANCE
    try:
        old = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (ValueError, OSError):
        old = {}
    prov = old if isinstance(old, dict) else {}
    prov["accepted"] = [*prov.get("accepted", []), entry]
    return json_text(prov, PROVENANCE)


def _first_error(report: Any) -> VigilError:
    finding = next(f for f in report.findings if f.severity == CRITICAL)
    return VigilError(
        f"the new version would not pass `vigil data check`: {finding.render()}",
        hint="fix the dataset (`vigil data check` on --data) or the export; nothing was written",
    )


def accept(
    export: Path,
    data: Path,
    out: Path,
    *,
    validate: ValidateParams,
    distance: DistanceParams | None,
    force: bool,
) -> Accepted:
    """Write `data` plus the finished tasks of `export` as a new dataset at `out`."""
    data, export = Path(data), Path(export)
    if not (data / MANIFEST).is_file():
        raise VigilError(
            "not a dataset folder (no manifest.jsonl)",
            path=data,
            field="--data",
            hint="give the dataset the queue was ranked from, e.g. --data data",
        )
    classes = read_classes(data)
    sizes = pool_sizes(data)
    labels, unlabelled = read_export(
        load_json(export, hint="export the project as JSON"), export, classes, sizes
    )
    if not labels:
        raise VigilError(
            "the export holds no finished task",
            path=export,
            hint="label (submit) at least one task in Label Studio, then export again",
        )
    accepted = {item.image: item for item in labels}
    inputs = [data, export]
    real = prepare_out(out, force, inputs)
    manifest = _manifest(data, accepted, export.name)
    boxes = Counter({c: 0 for c in classes})
    for item in labels:
        boxes.update(classes[b[0]] for b in item.boxes)
    entry = {
        "by": f"vigil queue accept (vigil {__version__})",
        "export": export.name,
        "export_sha256": hashlib.sha256(export.read_bytes()).hexdigest(),
        "images": sorted(accepted),
        "tasks_unlabelled": unlabelled,
    }
    with writing(real, force, inputs), atomic_dir(real) as tmp:
        shutil.copytree(data, tmp, dirs_exist_ok=True)
        (tmp / MARKER).unlink(missing_ok=True)
        for image, item in accepted.items():
            path = tmp / label_rel_for(image)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(
                "".join(f"{line}\n" for line in label_lines(item, sizes[image])), encoding="utf-8"
            )
        (tmp / MANIFEST).write_text(manifest, encoding="utf-8")
        (tmp / PROVENANCE).write_text(_provenance(data, entry), encoding="utf-8")
        report = check_dataset(tmp, validate, distance=distance)
        if not report.passed:
            raise _first_error(report)
        (tmp / MARKER).write_text(json_text(marker("queue accept"), MARKER), encoding="utf-8")
    return Accepted(real, len(labels), boxes, unlabelled)
