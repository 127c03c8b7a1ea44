"""The queue folder: the top N of a ranking, ready for Label Studio, written whole or not at all.

```
tasks.json            Label Studio import: one task per image, the student's guesses as predictions
labeling_config.xml   the labelling interface: RectangleLabels, one label per class (classes.txt)
images/RRR_NAME       each queued image (RRR: its rank), what Label Studio serves
crops/RRR_STEM/DD_cC.jpg  each guess cut out with `queue.crop_margin` of context (DD: detection, C: class id)
queue.json            how it was ranked, the whole ranking, and per queued image its guesses and crops
.vigil-output.json    vigil's marker (`--force` replaces only a folder holding it)
```

A task's `data.image` is `--image-url` + `images/RRR_NAME`: with Label Studio's local files
(`LOCAL_FILES_SERVING_ENABLED=true`, `LOCAL_FILES_DOCUMENT_ROOT` = the queue folder) the default
`/data/local-files/?d=` serves them. `data.vigil_image` keeps the dataset path `accept` reads back.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from vigil.atomic import atomic_dir
from vigil.data.importers.output import MARKER, marker, prepare_out, writing
from vigil.data.layout import resolve_inside
from vigil.detection.draw import encode_jpeg
from vigil.models.inference import iter_images
from vigil.queue.labelstudio import labeling_config, task
from vigil.queue.rank import Ranking

TASKS = "tasks.json"
CONFIG = "labeling_config.xml"
RECORD = "queue.json"


def crop_box(box: np.ndarray, size: tuple[int, int], margin: float) -> tuple[int, int, int, int]:
    """x1 y1 x2 y2 integer pixels of `box` grown by `margin` of its sides, inside the image, ≥ 1 px."""
    width, height = size
    x1, y1, x2, y2 = (float(v) for v in box)
    dx, dy = (x2 - x1) * margin, (y2 - y1) * margin
    left = int(np.clip(np.floor(x1 - dx), 0, width - 1))
    top = int(np.clip(np.floor(y1 - dy), 0, height - 1))
    right = int(np.clip(np.ceil(x2 + dx), left + 1, width))
    bottom = int(np.clip(np.ceil(y2 + dy), top + 1, height))
    return left, top, right, bottom


def _json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def write_queue(
    out: Path,
    data: Path,
    ranking: Ranking,
    *,
    top: int,
    classes: list[str],
    sizes: dict[str, tuple[int, int]],
    margin: float,
    url: str,
    about: dict[str, Any],
    force: bool,
    inputs: list[Path],
) -> Path:
    """Write the queue folder of `ranking`'s first `top` images at `out` (atomically); its path."""
    real = prepare_out(out, force, inputs)
    queued = ranking.images[:top]
    tasks, entries = [], []
    with writing(real, force, inputs), atomic_dir(real) as tmp:
        for r, (image, array) in enumerate(zip(queued, iter_images(data, queued), strict=True), 1):
            name = f"{r:03d}_{PurePosixPath(image).name}"
            (tmp / "images").mkdir(exist_ok=True)
            shutil.copyfile(resolve_inside(Path(data), image), tmp / "images" / name)
            g = ranking.guesses[image]
            dets = []
            for k, (box, score, raw, cls, kept) in enumerate(
                zip(
                    g.shown.boxes,
                    g.shown.scores,
                    g.raw.scores,
                    g.raw.classes,
                    g.deployed,
                    strict=True,
                )
            ):
                left, top_, right, bottom = crop_box(box, sizes[image], margin)
                crop = f"crops/{r:03d}_{PurePosixPath(image).stem}/{k:02d}_c{int(cls)}.jpg"
                (tmp / crop).parent.mkdir(parents=True, exist_ok=True)
                (tmp / crop).write_bytes(encode_jpeg(array[top_:bottom, left:right]))
                dets.append(
                    {
                        "xyxy": [round(float(v), 2) for v in box],
                        "score": round(float(score), 5),
                        "raw_score": round(float(raw), 5),
                        "class": int(cls),
                        "name": classes[int(cls)],
                        "deployed": bool(kept),
                        "crop": crop,
                    }
                )
            score = ranking.scores[r - 1]
            meta = {"rank": r, "score": round(score, 6), "method": about["method"]}
            tasks.append(
                task(
                    url + f"images/{name}",
                    image,
                    g.shown,
                    classes,
                    sizes[image],
                    about["model_version"],
                    meta,
                )
            )
            entries.append(
                {
                    "rank": r,
                    "image": image,
                    "file": f"images/{name}",
                    "score": round(score, 6),
                    "detections": dets,
                }
            )
        record = {
            **about,
            "queued": entries,
            "ranking": [
                {"image": i, "score": round(s, 6)}
                for i, s in zip(ranking.images, ranking.scores, strict=True)
            ],
        }
        (tmp / TASKS).write_text(_json(tasks), encoding="utf-8")
        (tmp / CONFIG).write_text(labeling_config(classes), encoding="utf-8")
        (tmp / RECORD).write_text(_json(record), encoding="utf-8")
        (tmp / MARKER).write_text(_json(marker("queue rank")), encoding="utf-8")
    return real
