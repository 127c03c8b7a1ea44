"""Group and strata fields for imported images: side file, the source's own fields, then defaults.

Precedence, per field: `--metadata` side file > the source's own manifest > `--defaults KEY=VALUE`
> built-in defaults (driver_id and vehicle_id = the importer's source grouping; stream, scenario,
road_type = "unknown"). `vigil data check` accepts only the values listed in params.yaml's
`validate.allowed`, so the import summary warns about every value outside them.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from vigil.data.importers.common import SourceImage, read_text
from vigil.data.layout import GROUPS, STRATA
from vigil.errors import VigilError
from vigil.params import AllowedValues

UNKNOWN = "unknown"
KEY_FIELDS: tuple[str, ...] = ("image", "file_name", "filename", "file")
RESERVED: frozenset[str] = frozenset({"image", "width", "height", "labelled", "objects", "ignore"})


def load_metadata(path: Path | None) -> dict[str, dict[str, Any]]:
    """JSON Lines or CSV (by suffix), one row per image, keyed by `image` (a file name or relative path)."""
    if path is None:
        return {}
    if not Path(path).is_file():
        raise VigilError("metadata file not found", path=path, field="--metadata")
    rows = _read_csv(path) if Path(path).suffix.lower() == ".csv" else _read_jsonl(path)
    out: dict[str, dict[str, Any]] = {}
    for line, row in rows:
        key_field = next((k for k in KEY_FIELDS if k in row), None)
        if key_field is None or not str(row[key_field]).strip():
            raise VigilError(
                "row has no image key",
                path=path,
                line=line,
                field="image",
                hint=f"name the image in one of the columns {', '.join(KEY_FIELDS)}",
            )
        key = str(row.pop(key_field)).strip().replace("\\", "/")
        if key in out:
            raise VigilError(f"image {key!r} appears twice", path=path, line=line, field="image")
        out[key] = {k: v for k, v in row.items() if k not in RESERVED and v not in ("", None)}
    return out


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for number, text in enumerate(read_text(path).split("\n"), start=1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except json.JSONDecodeError as exc:
            raise VigilError(
                f"not valid JSON ({exc.msg})",
                path=path,
                line=number,
                hint="one JSON object per line, or a .csv file with a header",
            ) from None
        except RecursionError:
            raise VigilError("JSON nested too deep", path=path, line=number) from None
        if not isinstance(row, dict):
            raise VigilError("a line must be a JSON object", path=path, line=number)
        rows.append((number, row))
    return rows


def _read_csv(path: Path) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    rows = []
    try:
        for row in reader:
            if None in row:
                raise VigilError(
                    f"{len(row[None]) + len(reader.fieldnames or [])} fields, the header names "
                    f"{len(reader.fieldnames or [])}",
                    path=path,
                    line=reader.line_num,
                    hint="quote values that hold commas",
                )
            rows.append((reader.line_num, dict(row)))
    except csv.Error as exc:
        raise VigilError(f"not valid CSV ({exc})", path=path, line=reader.line_num) from None
    return rows


def parse_defaults(pairs: list[str] | None) -> dict[str, str]:
    """`--defaults stream=cctv,scenario=day` (repeatable) → {"stream": "cctv", "scenario": "day"}."""
    out: dict[str, str] = {}
    for pair in (p.strip() for chunk in pairs or [] for p in chunk.split(",")):
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise VigilError(
                f"{pair!r} is not KEY=VALUE",
                field="--defaults",
                hint="e.g. --defaults stream=cctv,scenario=day,road_type=street",
            )
        if key.strip() in RESERVED:
            raise VigilError(f"{key.strip()!r} cannot be given a default", field="--defaults")
        out[key.strip()] = value.strip()
    return out


class MetadataIndex:
    """Looks images up in the side file by source path, output path, then file name (if unambiguous)."""

    def __init__(
        self, rows: dict[str, dict[str, Any]], images: list[SourceImage], path: Path | None
    ) -> None:
        self.rows = rows
        self.path = path
        self.used: set[str] = set()
        self.by_name: dict[str, int] = {}
        for image in images:
            name = Path(image.src_rel).name
            self.by_name[name] = self.by_name.get(name, 0) + 1

    def lookup(self, image: SourceImage) -> dict[str, Any]:
        for key in (image.src_rel, image.rel, image.rel.removeprefix("images/")):
            if key in self.rows:
                self.used.add(key)
                return self.rows[key]
        name = Path(image.src_rel).name
        if name in self.rows:
            if self.by_name.get(name, 0) > 1:
                raise VigilError(
                    f"row {name!r} matches {self.by_name[name]} images with that file name",
                    path=self.path,
                    field="image",
                    hint="key those rows by the relative path instead",
                )
            self.used.add(name)
            return self.rows[name]
        return {}

    def unused(self) -> list[str]:
        return sorted(set(self.rows) - self.used)


def manifest_fields(
    image: SourceImage, side: dict[str, Any], defaults: dict[str, str]
) -> dict[str, Any]:
    """The manifest line's group, strata and extra fields for one image, by the precedence above."""
    record: dict[str, Any] = {k: v for k, v in defaults.items()}
    for key in GROUPS:
        record.setdefault(key, image.group)
    for key in STRATA:
        record.setdefault(key, UNKNOWN)
    record.update({k: v for k, v in image.fields.items() if k not in RESERVED})
    record.update(side)
    for key in (*GROUPS, *STRATA):
        record[key] = str(record[key])
    return record


def strata_warnings(
    records: list[dict[str, Any]], allowed: AllowedValues, params: Path
) -> list[str]:
    """One warning naming every stratum value `vigil data check` would refuse (validate.allowed)."""
    bad = {
        key: sorted({str(r[key]) for r in records} - set(getattr(allowed, key))) for key in STRATA
    }
    bad = {k: v for k, v in bad.items() if v}
    if not bad:
        return []
    count = sum(1 for r in records if any(str(r[k]) in v for k, v in bad.items()))
    listed = "; ".join(f"{k} {v} (allowed {getattr(allowed, k)})" for k, v in bad.items())
    example = ",".join(f"{k}={getattr(allowed, k)[0]}" for k in bad if getattr(allowed, k))
    return [
        f"{count} images carry values `vigil data check` will refuse under {params} "
        f"validate.allowed: {listed}. "
        f"Pass --defaults {example} (or your values), or a --metadata file, or add the values to "
        f"validate.allowed"
    ]
