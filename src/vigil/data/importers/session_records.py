"""The recorded session's JSON, read strictly: detections, a pitch manifest's frames list, fps, strata.

Every value a recorder writes is checked where it is read, so a bad one is one error naming the file,
the entry and the field: frame_index and timestamp_ns are non-negative integers (an integral JSON number
or a string of digits; 1.5, "1e3", true, null are refused), coordinates finite, radius positive,
confidence in [0, 1], fps a positive number, `detection_count` equal to the entries.
"""

from __future__ import annotations

import bisect
import math
import re
from pathlib import Path
from typing import Any

from vigil.data.importers.common import Where, load_json, number
from vigil.data.layout import GROUPS, STRATA
from vigil.errors import VigilError

FILE_KEYS = ("file", "path", "filename", "name", "image")
DETECTION_FIELDS = ("frame_index", "timestamp_ns", "u_px", "v_px", "radius_px", "confidence")
MAX_INT = 2**63 - 1
DIGITS = re.compile(r"\d+")


def integer(value: Any, where: Where, field: str) -> int:
    """A non-negative integer from JSON (an integral number, or a string of digits), or one clear error."""
    if isinstance(value, str) and DIGITS.fullmatch(value):
        out = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        out = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        out = int(value)
    else:
        raise where.error(f"{value!r} is not an integer", field, hint="a whole number, e.g. 41")
    if not 0 <= out <= MAX_INT:
        raise where.error(f"{value!r} is outside [0, 2^63)", field, hint="a whole number, e.g. 41")
    return out


def plain_name(name: str, path: Path) -> str:
    """A folder or file name the output uses: UTF-8, no control characters (named by its folder, so the
    error stays one printable line)."""
    shown = ascii(name)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise VigilError(
            f"the name {shown} is not UTF-8", path=ascii(str(path.parent))[1:-1], hint="rename it"
        ) from None
    if not name or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise VigilError(
            f"the name {shown} is empty or holds control characters",
            path=ascii(str(path.parent))[1:-1],
            hint="rename it",
        )
    return name


def read_detections(path: Path, camera: str, pitch_id: str | None) -> list[dict[str, Any]]:
    data = load_json(path, hint="re-export the detections")
    where = Where(path)
    if not isinstance(data, dict) or not isinstance(data.get("detections"), list):
        raise where.error("expected an object with a `detections` list", "detections")
    if str(data.get("camera", camera)) != camera:
        raise where.error(
            f"camera {data.get('camera')!r} but the file is named for {camera!r}", "camera"
        )
    if pitch_id is not None and "pitch_id" in data and str(data["pitch_id"]) != pitch_id:
        raise where.error(
            f"pitch_id {data['pitch_id']!r} but manifest.json says {pitch_id!r}", "pitch_id"
        )
    entries = data["detections"]
    if "detection_count" not in data or data["detection_count"] != len(entries):
        raise where.error(
            f"detection_count is {data.get('detection_count')!r} but `detections` holds "
            f"{len(entries)} entries",
            "detection_count",
            hint="the file is truncated or was edited: re-export it or fix the count",
        )
    out = []
    for i, det in enumerate(entries):
        at = Where(path, item=f"detections[{i}]")
        if not isinstance(det, dict):
            raise at.error("a detection must be an object")
        missing = [k for k in DETECTION_FIELDS if k not in det]
        if missing:
            raise at.error(f"missing {missing}", missing[0])
        values: dict[str, Any] = {
            k: number(det[k], at, k) for k in ("u_px", "v_px", "radius_px", "confidence")
        }
        values.update({k: integer(det[k], at, k) for k in ("frame_index", "timestamp_ns")})
        if values["radius_px"] <= 0:
            raise at.error(f"radius_px {det['radius_px']} is not positive", "radius_px")
        if not 0 <= values["confidence"] <= 1:
            raise at.error(f"confidence {det['confidence']} is not within [0, 1]", "confidence")
        out.append({**values, "where": at})
    return out


def list_entries(manifest: dict[str, Any], path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(camera, file name) → {frame_index, timestamp_ns}; `frames` is a list, or a mapping camera → list."""
    frames = manifest.get("frames", [])
    if isinstance(frames, dict):
        flat = []
        for cam, entries in frames.items():
            if not isinstance(entries, list):
                raise VigilError(f"frames[{cam!r}] must be a list", path=path, field="frames")
            flat += [{**e, "camera": cam} for e in entries if isinstance(e, dict)]
        frames = flat
    if not isinstance(frames, list):
        raise VigilError(
            "`frames` must be a list (or a mapping camera → list)", path=path, field="frames"
        )
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for i, entry in enumerate(frames):
        key = next(
            (k for k in FILE_KEYS if isinstance(entry, dict) and isinstance(entry.get(k), str)),
            None,
        )
        if key is None:
            continue
        at = Where(path, item=f"frames[{i}]")
        name = Path(entry[key].replace("\\", "/"))
        camera = str(entry.get("camera") or name.parent.name)
        if "frame_index" not in entry and "timestamp_ns" not in entry:
            raise at.error(f"frame {name.as_posix()!r} has neither frame_index nor timestamp_ns")
        out[(camera, name.name)] = {
            k: integer(entry[k], at, k) for k in ("frame_index", "timestamp_ns") if k in entry
        }
    return out


def manifest_strata(manifest: dict[str, Any]) -> dict[str, Any]:
    pool = {
        **manifest,
        **{
            k: v
            for d in ("metadata", "strata", "groups")
            if isinstance(manifest.get(d), dict)
            for k, v in manifest[d].items()
        },
    }
    return {
        k: pool[k]
        for k in (*GROUPS, *STRATA)
        if isinstance(pool.get(k), str | int) and pool[k] != ""
    }


def manifest_fps(manifest: dict[str, Any], path: Path) -> float | None:
    if "fps" not in manifest or manifest["fps"] is None:
        return None
    fps = number(manifest["fps"], Where(path), "fps")
    if fps <= 0:
        raise VigilError(f"fps {manifest['fps']!r} is not positive", path=path, field="fps")
    return fps


class DetectionIndex:
    """One camera's detections, looked up by frame_index or by nearest timestamp (within half a frame)."""

    def __init__(self, dets: list[dict[str, Any]], fps: float | None) -> None:
        self.by_index: dict[int, list[dict[str, Any]]] = {}
        self.by_stamp: dict[int, list[dict[str, Any]]] = {}
        for d in dets:
            self.by_index.setdefault(d["frame_index"], []).append(d)
            self.by_stamp.setdefault(d["timestamp_ns"], []).append(d)
        self.stamps = sorted(self.by_stamp)
        self.tolerance = 0.5e9 / fps if fps else 0.0

    def match(self, entry: dict[str, Any]) -> list[dict[str, Any]]:
        if "frame_index" in entry:
            return self.by_index.get(entry["frame_index"], [])
        ts = entry["timestamp_ns"]
        lo = bisect.bisect_left(self.stamps, ts - self.tolerance)
        hi = bisect.bisect_right(self.stamps, ts + self.tolerance)
        return [d for stamp in self.stamps[lo:hi] for d in self.by_stamp[stamp]]
