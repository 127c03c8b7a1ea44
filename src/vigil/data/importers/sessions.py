"""Recorded sessions (a recording app's layout) → source records.

```
<session>/calibration/*.json                      intrinsics_<camera>.json, stereo_geometry.json, …
<session>/<pitch>/manifest.json                   pitch_id, fps, group/strata fields, performance_metrics,
                                                  and optionally a `frames` list
<session>/<pitch>/frames/<camera>/*.png           saved frames
<session>/<pitch>/detections/<camera>_detections.json
    {pitch_id, camera, detection_count,
     detections: [{frame_index, timestamp_ns, u_px, v_px, radius_px, confidence}]}
<session>/<pitch>/observations/stereo_observations.json   {pitch_id, observation_count, observations: […]}
```

Two forms. With a `frames` list in manifest.json, each listed frame is tied to its detections by its
frame_index (or its timestamp_ns, within half a frame at `fps`) and an unlisted frame is skipped. Without
one — the recorder as it writes — frames are tied by the save counter in their names
(vigil.data.importers.session_frames). A detection becomes the box [u-r, v-r, 2r, 2r] clipped to the
frame; below `--min-confidence` it goes to the manifest `ignore`.

A frame without detections is a negative only where the detector ran on its camera in that pitch: its
`<camera>_detections.json` exists, or the manifest's performance_metrics counts 0 detections for that
camera. Elsewhere (and where the counters cannot be tied) the frame is imported unlabelled
(`labelled: false`, the pool), never as a false negative. The two cameras' frames of one instant are
paired (`stereo_pair`, by timestamp, else by save counter). The session id is `session` and the default
driver_id/vehicle_id, so a session stays in one split. Calibration files are copied to
`calibration/<session>/` (the camera's intrinsics also go into each frame's line),
stereo_observations.json to `observations/<session>/<pitch>/`, and the manifest's performance_metrics
into PROVENANCE.json.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from vigil.data.importers.common import (
    IgnoreRegion,
    SourceBox,
    SourceDataset,
    SourceImage,
    Where,
    check_box,
    check_tree,
    image_size,
    inside,
    load_json,
)
from vigil.data.importers.session_frames import (
    Frame,
    SavedFile,
    frame_period_ns,
    name_kind,
    pair_cameras,
    recorder_frames,
    tie_counters,
    timestamp_of,
)
from vigil.data.importers.session_records import (
    DetectionIndex,
    list_entries,
    manifest_fps,
    manifest_strata,
    plain_name,
    read_detections,
)
from vigil.errors import VigilError
from vigil.progress import progress

NOT_LISTED = "frame not listed in manifest.json `frames` (its detections cannot be matched)"
NO_DETECTOR = "frame imported unlabelled: no detector output for its camera in that pitch"
UNTIED = "frame imported unlabelled: its save counter cannot be tied to the detections' frame_index"
NOT_RECORDER = "frame imported unlabelled: its name is none the recorder writes (no counter)"
NOT_SAVED = "detection on a frame that was not saved as an image"


def find_sessions(src: Path) -> list[Path]:
    """`src` itself when it holds pitch folders (with frames/), else its children that do."""

    def is_session(p: Path) -> bool:
        return any((c / "frames").is_dir() for c in p.iterdir() if c.is_dir())

    if is_session(src):
        return [src]
    found = sorted(c for c in src.iterdir() if c.is_dir() and is_session(c))
    if not found:
        raise VigilError(
            "no session folders (with <pitch>/frames/<camera>/*.png) found",
            path=src,
            hint="point at a session folder or the folder holding sessions",
        )
    return found


class Pitch:
    """One pitch folder: its manifest, each camera's detections and whether the detector ran on it."""

    def __init__(self, root: Path, path: Path, session: str) -> None:
        self.root, self.path, self.session = root, path, session
        self.name = plain_name(path.name, path)
        mpath = path / "manifest.json"
        manifest = (
            load_json(inside(root, mpath, Where(mpath), "manifest")) if mpath.is_file() else {}
        )
        if not isinstance(manifest, dict):
            raise VigilError("manifest.json must be a JSON object", path=mpath)
        self.manifest, self.mpath = manifest, mpath
        self.pitch_id = str(manifest.get("pitch_id", path.name))
        self.fps = manifest_fps(manifest, mpath)
        self.cameras = sorted(
            plain_name(d.name, d) for d in (path / "frames").iterdir() if d.is_dir()
        )
        self.detections: dict[str, list[dict[str, Any]] | None] = {}
        for camera in sorted({*self.cameras, *self._detection_cameras()}):
            det = path / "detections" / f"{camera}_detections.json"
            known = det.is_file()
            self.detections[camera] = (
                read_detections(
                    inside(root, det, Where(det), "detections"),
                    camera,
                    self.pitch_id if "pitch_id" in manifest else None,
                )
                if known
                else None
            )
        self.raw_metrics = manifest.get("performance_metrics")  # kept verbatim in the provenance
        if self.raw_metrics is not None:
            try:
                json.dumps(self.raw_metrics, allow_nan=False)
            except ValueError:
                raise VigilError(
                    "holds NaN or infinity, which JSON cannot carry",
                    path=mpath,
                    field="performance_metrics",
                    hint="write null instead",
                ) from None
        metrics = self.raw_metrics
        self.metrics = metrics if isinstance(metrics, dict) else None
        self.tie: dict[str, str] = {}  # camera → how its frames were tied to the detections

    def _detection_cameras(self) -> list[str]:
        folder = self.path / "detections"
        if not folder.is_dir():
            return []
        return [
            p.name.removesuffix("_detections.json")
            for p in folder.glob("*_detections.json")
            if p.is_file()
        ]

    def detector_ran(self, camera: str) -> bool:
        """Its detections file exists, or performance_metrics counts 0 detections for this camera."""
        if self.detections.get(camera) is not None:
            return True
        quality = (self.metrics or {}).get("detection_quality")
        count = quality.get(f"{camera}_camera_detections") if isinstance(quality, dict) else None
        return isinstance(count, int) and not isinstance(count, bool) and count == 0

    def frame_files(self, camera: str) -> list[Path]:
        folder = self.path / "frames" / camera
        return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and p.is_file())


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _recorder_form(pitch: Pitch, ds: SourceDataset) -> dict[str, list[Frame]]:
    """Frames tied by the save counters in their names (no frames list)."""
    out: dict[str, list[Frame]] = {}
    how: dict[str, str] = {}
    for camera in pitch.cameras:
        saved = []
        for path in pitch.frame_files(camera):
            kind, counter = name_kind(plain_name(path.stem, path))
            saved.append(SavedFile(path, kind, counter, _digest(path)))
        frames = recorder_frames(camera, saved)
        dets = pitch.detections.get(camera)
        if dets is not None:
            tied = tie_counters(frames, dets)
            how[camera] = (
                tied or "not tied: the pitch_*_last frames and the detection frames disagree"
            )
        elif pitch.detector_ran(camera):  # ran and found nothing: every frame is a negative
            for fr in frames:
                fr.tied = True
            how[camera] = "no detections (performance_metrics: 0 for this camera)"
        out[camera] = frames
    pitch.tie = how
    return out


def _list_form(pitch: Pitch, ds: SourceDataset) -> dict[str, list[Frame]]:
    """Frames tied by their manifest.json `frames` entries (today's form); an unlisted frame is skipped."""
    entries = list_entries(pitch.manifest, pitch.mpath)
    out: dict[str, list[Frame]] = {}
    for camera in pitch.cameras:
        dets = pitch.detections.get(camera)
        index = DetectionIndex(dets or [], pitch.fps)
        frames = []
        for path in pitch.frame_files(camera):
            plain_name(path.name, path)
            entry = entries.get((camera, path.name))
            if entry is None:
                ds.skips.add(
                    NOT_LISTED, f"{pitch.session}/{pitch.name}/frames/{camera}/{path.name}"
                )
                continue
            frame = Frame(
                camera,
                [SavedFile(path, "listed", None, "")],
                None,
                entry.get("frame_index"),
                entry.get("timestamp_ns"),
            )
            if dets is not None:
                frame.detections, frame.tied = index.match(entry), True
            else:
                frame.tied = pitch.detector_ran(camera)
            frames.append(frame)
        out[camera] = frames
    pitch.tie = {
        c: "manifest.json `frames` (frame_index, else timestamp_ns)" for c in pitch.cameras
    }
    return out


def _src_rel(pitch: Pitch, frame: Frame) -> str:
    return f"{pitch.session}/{pitch.name}/frames/{frame.camera}/{frame.path.name}"


def _rel(pitch: Pitch, frame: Frame) -> str:
    return f"images/{pitch.session}/{pitch.name}/{frame.camera}/{frame.path.name}"


def _pair(pitch: Pitch, frames: dict[str, list[Frame]]) -> None:
    """Pair the two cameras (only where a pitch has exactly two)."""
    if len(frames) != 2:
        return
    (_, left), (_, right) = sorted(frames.items())
    periods = [
        p for c in frames if (p := frame_period_ns(pitch.detections.get(c) or [])) is not None
    ]
    period = 1e9 / pitch.fps if pitch.fps else (min(periods) if periods else 0.0)
    pair_cameras(left, right, period / 2)


def _image(
    pitch: Pitch,
    frame: Frame,
    calib: dict[str, Any],
    cls: str,
    min_conf: float,
    max_side: int | None,
    ds: SourceDataset,
) -> SourceImage:
    width, height = image_size(frame.path, Where(frame.path), "frames", max_side=max_side)
    camera = frame.camera
    labelled = frame.tied  # detections known: a negative only where the detector ran
    fields: dict[str, Any] = {
        **manifest_strata(pitch.manifest),
        "session": pitch.session,
        "pitch_id": pitch.pitch_id,
        "camera": camera,
        **{
            k: v
            for k, v in (
                ("frame_index", frame.frame_index),
                ("timestamp_ns", timestamp_of(frame)),
                ("save_counter", frame.counter),
            )
            if v is not None
        },
        **({"fps": pitch.fps} if pitch.fps else {}),
        "label_source": "detector" if labelled else "none",
        **({"calibration": f"calibration/{pitch.session}"} if calib else {}),
        **(
            {"intrinsics": calib[f"intrinsics_{camera}"]} if f"intrinsics_{camera}" in calib else {}
        ),
    }
    if len(frame.files) > 1:
        fields["also_saved_as"] = [f.path.name for f in frame.files[1:]]
    if frame.pair is not None:
        fields["stereo_pair"], fields["stereo_pair_by"] = _rel(pitch, frame.pair[0]), frame.pair[1]
    image = SourceImage(
        frame.path,
        _rel(pitch, frame),
        _src_rel(pitch, frame),
        width,
        height,
        group=pitch.session,
        fields=fields,
        labelled=labelled,
    )
    if not labelled:
        reason = (
            NO_DETECTOR
            if pitch.detections.get(camera) is None
            else NOT_RECORDER
            if frame.files[0].kind == "other"
            else UNTIED
        )
        ds.skips.add(reason, image.src_rel)
    for det in frame.detections:
        r = det["radius_px"]
        x, y, w, h = check_box(
            det["u_px"] - r,
            det["v_px"] - r,
            2 * r,
            2 * r,
            width,
            height,
            det["where"],
            "u_px,v_px,radius_px",
            clip=True,
        )
        attrs = {"confidence": det["confidence"], "radius_px": r}
        if det["confidence"] < min_conf:
            image.ignore.append(
                IgnoreRegion(x, y, w, h, "confidence below --min-confidence", attrs)
            )
            ds.skips.add("detection below --min-confidence (recorded in `ignore`)", det["where"])
        else:
            image.boxes.append(SourceBox(cls, x, y, w, h, attrs))
    return image


def read_pitch(
    root: Path,
    path: Path,
    session: str,
    calib: dict[str, Any],
    cls: str,
    min_conf: float,
    max_side: int | None,
    ds: SourceDataset,
) -> None:
    pitch = Pitch(root, path, session)
    listed = bool(pitch.manifest.get("frames"))
    frames = _list_form(pitch, ds) if listed else _recorder_form(pitch, ds)
    _pair(pitch, frames)
    used: set[int] = set()
    for camera_frames in frames.values():
        for frame in camera_frames:
            used.update(id(d) for d in frame.detections)
            ds.images.append(_image(pitch, frame, calib, cls, min_conf, max_side, ds))
    unused = [d for dets in pitch.detections.values() for d in dets or [] if id(d) not in used]
    if unused:
        ds.skips.add(NOT_SAVED, unused[0]["where"], len(unused))
    note: dict[str, Any] = {
        "form": "frames list" if listed else "recorder (frame names)",
        "pitch_id": pitch.pitch_id,
        "tie": pitch.tie,
        "detector_ran": {c: pitch.detector_ran(c) for c in pitch.cameras},
    }
    if pitch.raw_metrics is not None:
        note["performance_metrics"] = pitch.raw_metrics
    observations = path / "observations" / "stereo_observations.json"
    if observations.is_file():
        data = load_json(inside(root, observations, Where(observations), "observations"))
        if not isinstance(data, dict):
            raise VigilError("stereo_observations.json must be a JSON object", path=observations)
        rel = f"observations/{session}/{pitch.name}/stereo_observations.json"
        ds.extra_files.append((observations, rel))
        found = data.get("observations")
        note["stereo_observations"] = {
            "file": rel,
            "observations": len(found) if isinstance(found, list) else None,
        }
    ds.notes["sessions"]["pitches"][f"{session}/{pitch.name}"] = note


def read_sessions(
    src: Path, cls: str = "ball", min_confidence: float = 0.0, max_side: int | None = None
) -> SourceDataset:
    if not 0.0 <= min_confidence <= 1.0:  # NaN fails every comparison too
        raise VigilError(
            f"{min_confidence!r} is not a confidence in [0, 1]",
            field="--min-confidence",
            hint="e.g. --min-confidence 0.5",
        )
    src = Path(src)
    if not src.is_dir():
        raise VigilError("sessions folder not found", path=src)
    check_tree(src, src, "sessions")
    ds = SourceDataset(
        "sessions",
        src,
        [],
        [cls],
        notes={"sessions": {"class": cls, "min_confidence": min_confidence, "pitches": {}}},
    )
    for session_dir in find_sessions(src):
        session = plain_name(session_dir.resolve().name or "session", session_dir)
        calib: dict[str, Any] = {}
        for path in sorted((session_dir / "calibration").glob("*.json")):
            calib[path.stem] = load_json(inside(src, path, Where(path), "calibration"))
            ds.extra_files.append((path, f"calibration/{session}/{plain_name(path.name, path)}"))
        pitches = sorted(p for p in session_dir.iterdir() if p.is_dir() and (p / "frames").is_dir())
        for pitch in progress(pitches, desc=f"read {session}"):
            read_pitch(src, pitch, session, calib, cls, min_confidence, max_side, ds)
    if not ds.images:
        raise VigilError(
            "no frame could be imported",
            path=src,
            hint="put the saved frames under <session>/<pitch>/frames/<camera>/*.png",
        )
    return ds
