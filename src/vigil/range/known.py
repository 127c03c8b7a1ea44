"""Objects of known distance: a manifest line's `objects.<field>`, one value per label line, in metres.

The distance field and its unit come from params' `distance:` section; the value is converted to
metres here, once (`DistanceParams.metres_per_unit`). A null value is an object whose distance is
not known (it is left out); a list of the wrong length or a value that is not a positive number is
an error naming the manifest line and field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from vigil.data.distance import DistanceParams
from vigil.errors import VigilError


def known_distances(
    record: Mapping[str, Any],
    n_boxes: int,
    distance: DistanceParams,
    manifest: Path,
    line: int | None,
) -> np.ndarray:
    """(n_boxes,) distance in metres per label line of the image `record` describes; NaN = unknown."""
    objects = record.get("objects")
    values = objects.get(distance.field) if isinstance(objects, dict) else None
    field = f"objects.{distance.field}"
    if values is None:
        return np.full(n_boxes, np.nan)
    if not isinstance(values, list) or len(values) != n_boxes:
        size = len(values) if isinstance(values, list) else type(values).__name__
        raise VigilError(
            f"image {record.get('image')!r}: {size} distances for {n_boxes} label lines",
            path=manifest,
            line=line,
            field=field,
            hint="one value per label line, in label order (null when unknown)",
        )
    out = np.full(n_boxes, np.nan)
    for i, value in enumerate(values):
        if value is None:
            continue
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not (math.isfinite(value) and value > 0)
        ):
            raise VigilError(
                f"image {record.get('image')!r}: distance {value!r} is not a positive number",
                path=manifest,
                line=line,
                field=f"{field}[{i}]",
                hint=f"distances in {distance.unit} (distance.unit), or null when unknown",
            )
        out[i] = float(value) * distance.metres_per_unit
    return out
