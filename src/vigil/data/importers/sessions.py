"""Recorded sessions (a recording app's layout) → source records.

```
<session>/calibration/*.json                      intrinsics_<camera>.json, stereo_geometry.json, …
<session>/<pitch>/manifest.json                   pitch_id, cameras, size, fps, `frames`, group/strata fields
<session>/<pitch>/frames/<camera>/*.png           saved frames
<session>/<pitch>/detections/<camera>_detections.json
    {pitch_id, camera, detection_count, detections: [{frame_index, timestamp_ns, u_px, v_px, radius_px, confidence}]}
```

A frame is tied to its detections through its `manifest.json` `frames` entry (file name plus
frame_index and/or timestamp_ns): the recorder names frames by a save counter, not by frame index,
so a frame the manifest does not list is skipped (and counted). A detection becomes the box
[u-r, v-r, 2r, 2r] clipped to the frame. Detections below `--min-confidence` are recorded in the
manifest `ignore`, not labelled. The session id goes into `session` and is the default
driver_id/vehicle_id, so the split keeps a session together. Calibration files are copied verbatim to
`calibration/<session>/` (the manifest's `calibration` points there) and the camera's intrinsics are
carried into each frame's manifest line.
"""

from __future__ import annotations

import bisect
import json
from pathlib import Path
from typing import Any

from vigil.data.importers.common import (IgnoreRegion, SourceBox, SourceDataset, SourceImage, Skips, Where, check_box,
                                         image_size, number)
from vigil.data.layout import GROUPS, STRATA
from vigil.errors import VigilError
from vigil.progress import progress

FILE_KEYS = ("file", "path", "filename", "name", "image")
DETECTION_FIELDS = ("frame_index", "timestamp_ns", "u_px", "v_px", "radius_px", "confidence")
NOT_LISTED = "frame not listed in manifest.json `frames` (its detections cannot be matched)"


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise VigilError(f"not valid JSON ({exc})", path=path) from None


def find_sessions(src: Path) -> list[Path]:
    """`src` itself when it holds pitch folders (with frames/), else its children that do."""
    def is_session(p: Path) -> bool:
        return any((c / "frames").is_dir() for c in p.iterdir() if c.is_dir())
    if is_session(src):
        return [src]
    found = sorted(c for c in src.iterdir() if c.is_dir() and is_session(c))
    if not found:
        raise VigilError("no session folders (with <pitch>/frames/<camera>/*.png) found", path=src,
                         hint="point at a session folder or the folder holding sessions")
    return found


def read_detections(path: Path, camera: str, pitch_id: str | None) -> list[dict[str, Any]]:
    data = read_json(path)
    where = Where(path)
    if not isinstance(data, dict) or not isinstance(data.get("detections"), list):
        raise where.error("expected an object with a `detections` list", "detections")
    if str(data.get("camera", camera)) != camera:
        raise where.error(f"camera {data.get('camera')!r} but the file is named for {camera!r}", "camera")
    if pitch_id is not None and "pitch_id" in data and str(data["pitch_id"]) != pitch_id:
        raise where.error(f"pitch_id {data['pitch_id']!r} but manifest.json says {pitch_id!r}", "pitch_id")
    entries = data["detections"]
    if "detection_count" not in data or data["detection_count"] != len(entries):
        raise where.error(f"detection_count is {data.get('detection_count')!r} but `detections` holds "
                          f"{len(entries)} entries", "detection_count",
                          hint="the file is truncated or was edited: re-export it or fix the count")
    out = []
    for i, det in enumerate(entries):
        at = Where(path, item=f"detections[{i}]")
        if not isinstance(det, dict):
            raise at.error("a detection must be an object")
        missing = [k for k in DETECTION_FIELDS if k not in det]
        if missing:
            raise at.error(f"missing {missing}", missing[0])
        values = {k: number(det[k], at, k) for k in DETECTION_FIELDS}
        if values["radius_px"] <= 0:
            raise at.error(f"radius_px {det['radius_px']} is not positive", "radius_px")
        if not 0 <= values["confidence"] <= 1:
            raise at.error(f"confidence {det['confidence']} is not within [0, 1]", "confidence")
        out.append({**values, "frame_index": int(values["frame_index"]), "timestamp_ns": int(det["timestamp_ns"]),
                    "where": at})
    return out


def frame_entries(manifest: dict[str, Any], path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """(camera, file name) → the manifest's frame entry; `frames` is a list, or a mapping camera → list."""
    frames = manifest.get("frames", [])
    if isinstance(frames, dict):
        frames = [{**e, "camera": cam} for cam, entries in frames.items() for e in entries if isinstance(e, dict)]
    if not isinstance(frames, list):
        raise VigilError("`frames` must be a list (or a mapping camera → list)", path=path, field="frames")
    out = {}
    for i, entry in enumerate(frames):
        key = next((k for k in FILE_KEYS if isinstance(entry, dict) and k in entry), None)
        if key is None:
            continue
        name = Path(str(entry[key]).replace("\\", "/"))
        camera = str(entry.get("camera") or name.parent.name)
        if "frame_index" not in entry and "timestamp_ns" not in entry:
            raise VigilError(f"frame {name.as_posix()!r} has neither frame_index nor timestamp_ns", path=path,
                             field=f"frames[{i}]")
        out[(camera, name.name)] = entry
    return out


def _strata(manifest: dict[str, Any]) -> dict[str, Any]:
    pool = {**manifest, **{k: v for d in ("metadata", "strata", "groups") if isinstance(manifest.get(d), dict)
                           for k, v in manifest[d].items()}}
    return {k: pool[k] for k in (*GROUPS, *STRATA) if pool.get(k) not in (None, "")}


class DetectionIndex:
    """One camera's detections, looked up by frame_index or by nearest timestamp (within half a frame)."""

    def __init__(self, dets: list[dict[str, Any]], fps: float | None) -> None:
        self.by_index: dict[int, list[dict[str, Any]]] = {}
        for d in dets:
            self.by_index.setdefault(d["frame_index"], []).append(d)
        self.stamps = sorted(d["timestamp_ns"] for d in dets)
        self.by_stamp: dict[int, list[dict[str, Any]]] = {}
        for d in dets:
            self.by_stamp.setdefault(d["timestamp_ns"], []).append(d)
        self.tolerance = 0.5e9 / fps if fps else 0.0

    def match(self, entry: dict[str, Any]) -> list[dict[str, Any]]:
        if "frame_index" in entry:
            return self.by_index.get(int(entry["frame_index"]), [])
        ts = int(entry["timestamp_ns"])
        lo = bisect.bisect_left(self.stamps, ts - self.tolerance)
        hi = bisect.bisect_right(self.stamps, ts + self.tolerance)
        return [d for stamp in sorted(set(self.stamps[lo:hi])) for d in self.by_stamp[stamp]]


def read_pitch(pitch: Path, session: str, calib: dict[str, Any], cls: str, min_conf: float, skips: Skips,
               images: list[SourceImage]) -> None:
    mpath = pitch / "manifest.json"
    manifest = read_json(mpath) if mpath.is_file() else {}
    if not isinstance(manifest, dict):
        raise VigilError("manifest.json must be a JSON object", path=mpath)
    pitch_id = str(manifest.get("pitch_id", pitch.name))
    fps = float(manifest["fps"]) if isinstance(manifest.get("fps"), int | float) else None
    entries = frame_entries(manifest, mpath)
    has_detections = (pitch / "detections").is_dir()
    used: set[int] = set()
    dets_by_cam: dict[str, list[dict[str, Any]]] = {}
    for cam_dir in sorted(d for d in (pitch / "frames").iterdir() if d.is_dir()):
        camera = cam_dir.name
        det_file = pitch / "detections" / f"{camera}_detections.json"
        dets = read_detections(det_file, camera, pitch_id if "pitch_id" in manifest else None) \
            if det_file.is_file() else []
        dets_by_cam[camera] = dets
        index = DetectionIndex(dets, fps)
        for frame in sorted(p for p in cam_dir.iterdir() if p.suffix.lower() == ".png"):
            src_rel = f"{session}/{pitch.name}/frames/{camera}/{frame.name}"
            entry = entries.get((camera, frame.name))
            if not has_detections:
                skips.add("pitch has no detections/ folder (frames not labelled)", src_rel)
                continue
            if entry is None:
                skips.add(NOT_LISTED, src_rel)
                continue
            width, height = image_size(frame, Where(mpath, item=frame.name), "frames")
            image = SourceImage(frame, f"images/{session}/{pitch.name}/{camera}/{frame.name}", src_rel, width, height,
                                group=session, fields={
                                    **_strata(manifest), "session": session, "pitch_id": pitch_id, "camera": camera,
                                    **{k: entry[k] for k in ("frame_index", "timestamp_ns") if k in entry},
                                    **({"fps": fps} if fps else {}), "label_source": "detector",
                                    **({"calibration": f"calibration/{session}"} if calib else {}),
                                    **({"intrinsics": calib[f"intrinsics_{camera}"]}
                                       if f"intrinsics_{camera}" in calib else {})})
            for det in index.match(entry):
                used.add(id(det))
                r = det["radius_px"]
                x, y, w, h = check_box(det["u_px"] - r, det["v_px"] - r, 2 * r, 2 * r, width, height, det["where"],
                                       "u_px,v_px,radius_px", clip=True)
                attrs = {"confidence": det["confidence"], "radius_px": r}
                if det["confidence"] < min_conf:
                    image.ignore.append(IgnoreRegion(x, y, w, h, "confidence below --min-confidence", attrs))
                    skips.add("detection below --min-confidence (recorded in `ignore`)", det["where"])
                else:
                    image.boxes.append(SourceBox(cls, x, y, w, h, attrs))
            images.append(image)
    unused = [d for dets in dets_by_cam.values() for d in dets if id(d) not in used]
    if unused:
        skips.add("detection on a frame that was not saved as an image", unused[0]["where"], len(unused))


def read_sessions(src: Path, cls: str = "ball", min_confidence: float = 0.0) -> SourceDataset:
    if not 0.0 <= min_confidence <= 1.0:  # NaN fails every comparison too
        raise VigilError(f"{min_confidence!r} is not a confidence in [0, 1]", field="--min-confidence",
                         hint="e.g. --min-confidence 0.5")
    src = Path(src)
    if not src.is_dir():
        raise VigilError("sessions folder not found", path=src)
    ds = SourceDataset("sessions", src, [], [cls], notes={"sessions": {"class": cls, "min_confidence": min_confidence}})
    for session_dir in find_sessions(src):
        session = session_dir.name
        calib: dict[str, Any] = {}
        for path in sorted((session_dir / "calibration").glob("*.json")):
            calib[path.stem] = read_json(path)
            ds.extra_files.append((path, f"calibration/{session}/{path.name}"))
        pitches = sorted(p for p in session_dir.iterdir() if p.is_dir() and (p / "frames").is_dir())
        for pitch in progress(pitches, desc=f"read {session}"):
            read_pitch(pitch, session, calib, cls, min_confidence, ds.skips, ds.images)
    if not ds.images:
        raise VigilError("no frame could be imported", path=src,
                         hint="list each saved frame in its pitch's manifest.json `frames` with its frame_index")
    return ds
