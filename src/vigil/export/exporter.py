"""One way to run ultralytics' exporter: from a temporary copy, so the checkpoint's folder is never written."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from vigil.errors import VigilError
from vigil.models.inference import load_yolo


def ultralytics_export(weights: Path, out: Path, *, format: str, **options: Any) -> Path:
    """Export `weights` with `YOLO.export(format=…, **options)` and move the result to `out` (replaced)."""
    if not Path(weights).is_file():
        raise VigilError(
            "model checkpoint not found", path=weights, hint="run the stage that writes it"
        )
    with tempfile.TemporaryDirectory(prefix=f"vigil-{format}-") as tmp:
        local = Path(tmp) / "model.pt"
        shutil.copyfile(weights, local)
        written = load_yolo(local).export(format=format, verbose=False, **options)
        if out.is_dir():
            shutil.rmtree(out)
        else:
            out.unlink(missing_ok=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(written), out)
    return out
