"""manifest.jsonl as the table the Great Expectations `manifest` suite checks (index = line number).

Two things are settled here, before GE sees the table:
- `width` and `height` are optional (the layout's contract): absent or null, they are read from the
  image, so the size expectations hold every line to the same rule. A recorded value that is not an
  integer (a string, a bool, a fraction) is a finding on its line, and is left out of the table.
- A value no GE metric can handle (a list or an object where a string belongs) would make a metric
  raise, and GE then fails a run-dependent set of expectations. Such a value is a finding on its line
  here and reaches GE as its JSON text (hashable, comparable, printable).
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from vigil.data.findings import CRITICAL, Finding
from vigil.data.layout import MANIFEST, REQUIRED_FIELDS

SIZE_FIELDS: tuple[str, ...] = ("width", "height")
# larger recorded sizes are clamped (still far above any max_image_side) to stay exact floats
LARGEST = 2**53


def _scalar(value: Any) -> Any:
    """A list or object as its JSON text (hashable, printable), anything else as it is."""
    return json.dumps(value, sort_keys=True) if isinstance(value, (list, dict)) else value


def _field(record: dict[str, Any], key: str, line: int, problems: list[Finding]) -> Any:
    value = record.get(key)
    if isinstance(value, (list, dict)):
        problems.append(
            Finding(
                CRITICAL,
                "manifest_field_type",
                MANIFEST,
                f"value {_scalar(value)}",
                f"{key} is a string, not a JSON {type(value).__name__}",
                line=line,
                field=key,
            )
        )
    return _scalar(value)


def _size(
    record: dict[str, Any], key: str, line: int, decoded: int | None, problems: list[Finding]
) -> Any:
    value = record.get(key)
    if value is None:
        # read from the image (None when it does not decode: that has its own finding)
        return decoded
    if isinstance(value, int) and not isinstance(value, bool):
        return max(-LARGEST, min(LARGEST, value))
    problems.append(
        Finding(
            CRITICAL,
            "manifest_size_invalid",
            MANIFEST,
            f"value {_scalar(value)!r}",
            f"{key} is a whole number of pixels; leave it out to have it read from the image",
            line=line,
            field=key,
        )
    )
    return None


def manifest_frame(
    records: dict[int, dict[str, Any]], sizes: dict[int, tuple[int, int]]
) -> tuple[pd.DataFrame, list[Finding]]:
    """The table (one row per parsed line, every required and size column present) and the size findings.

    `sizes` maps a line to its image's decoded (width, height).
    """
    problems: list[Finding] = []
    rows = []
    lines = sorted(records)
    for line in lines:
        record = records[line]
        row = {
            key: _field(record, key, line, problems) if key in REQUIRED_FIELDS else _scalar(value)
            for key, value in record.items()
            if key not in SIZE_FIELDS
        }
        decoded = sizes.get(line)
        for i, key in enumerate(SIZE_FIELDS):
            row[key] = _size(record, key, line, decoded[i] if decoded else None, problems)
        rows.append(row)
    frame = pd.DataFrame(rows, index=lines)
    for col in REQUIRED_FIELDS:
        if col in frame:
            frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    for col in SIZE_FIELDS:
        frame[col] = (
            pd.to_numeric(frame[col], errors="coerce") if len(frame) else pd.Series(dtype=float)
        )
    return frame, problems
