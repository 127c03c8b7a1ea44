"""Recorded sessions importer: frames + detector JSON + manifest.json + calibration, in the recorder's layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from import_helpers import assert_boxes, assert_refused, check_passes, classes, manifest, run, write_image

SESSION = "session-2026-01-16_001"
P1, P2 = "session-001-pitch-001", "session-001-pitch-002"
T0 = 1_000_000_000_000
INTRINSICS = {"left": {"camera_id": "CAM-L", "fx": 800.0, "fy": 801.0, "cx": 48.0, "cy": 32.0,
                       "distortion_k1": -0.1, "distortion_k2": 0.01},
              "right": {"camera_id": "CAM-R", "fx": 790.0, "fy": 790.5, "cx": 47.0, "cy": 31.0,
                        "distortion_k1": -0.09, "distortion_k2": 0.0}}


def det(frame: int, u: float, v: float, r: float, conf: float) -> dict[str, Any]:
    return {"frame_index": frame, "timestamp_ns": T0 + frame * 16_666_667, "u_px": u, "v_px": v,
            "radius_px": r, "confidence": conf}


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2))


def detections(pitch: str, camera: str, entries: list[dict[str, Any]], count: int | None = None) -> dict[str, Any]:
    return {"pitch_id": pitch, "camera": camera, "detection_count": len(entries) if count is None else count,
            "detections": entries}


def session(root: Path, left_count: int | None = None) -> Path:
    s = root / SESSION
    for cam, values in INTRINSICS.items():
        write_json(s / "calibration" / f"intrinsics_{cam}.json", values)
    write_json(s / "calibration/stereo_geometry.json", {"baseline_ft": 2.5, "convergence_angle_deg": 3.0,
                                                        "camera_height_ft": 4.0, "distance_to_plate_ft": 60.5})
    # pitch 1: frames named by the recorder's save counter; manifest.json ties each to its frame_index
    frames1 = {("left", "pre_roll_00001.png"): 0, ("left", "uniform_00005.png"): 5,
               ("left", "pitch_00003_first.png"): 7, ("right", "uniform_00005.png"): 5}
    for i, (cam, name) in enumerate(frames1):
        write_image(s / P1 / "frames" / cam / name, 96, 64, seed=i)
    write_image(s / P1 / "frames/left/post_roll_last.png", 96, 64, seed=9)  # not listed → skipped
    write_json(s / P1 / "manifest.json", {
        "pitch_id": P1, "cameras": ["left", "right"], "width": 96, "height": 64, "fps": 60,
        "scenario": "night", "road_type": "campus", "stream": "cctv",
        "frames": [{"file": f"frames/{cam}/{name}", "camera": cam, "frame_index": idx,
                    "timestamp_ns": T0 + idx * 16_666_667} for (cam, name), idx in frames1.items()]})
    write_json(s / P1 / "detections/left_detections.json", detections(P1, "left", [
        det(5, 40.0, 30.0, 4.0, 0.9), det(5, 2.0, 60.0, 5.0, 0.8),     # second: clipped at left and bottom
        det(7, 70.5, 20.25, 3.5, 0.3),                                  # below --min-confidence 0.5
        det(99, 10.0, 10.0, 2.0, 0.9)], left_count))                     # frame 99 was not saved
    write_json(s / P1 / "detections/right_detections.json", detections(P1, "right", [det(5, 50.0, 31.0, 4.5, 0.95)]))
    # pitch 2: frames listed per camera, by timestamp only (matched within half a frame at 30 fps)
    write_image(s / P2 / "frames/left/uniform_00005.png", 96, 64, seed=11)
    write_json(s / P2 / "manifest.json", {"pitch_id": P2, "fps": 30, "frames": {
        "left": [{"file": "uniform_00005.png", "timestamp_ns": T0 + 5_000_000}]}})
    write_json(s / P2 / "detections/left_detections.json", detections(P2, "left", [det(0, 20.0, 20.0, 6.0, 0.7)]))
    return root


def test_session_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run("data", "import", "sessions", session(tmp_path / "rec"), "--out", out, "--min-confidence", "0.5",
                 "--defaults", "stream=cctv,scenario=day,road_type=campus")
    assert result.exit_code == 0, result.output
    assert classes(out) == ["ball"]
    base = f"images/{SESSION}/{P1}"
    assert_boxes(out, f"{base}/left/pre_roll_00001.png", [])
    assert_boxes(out, f"{base}/left/uniform_00005.png", [("ball", (36, 26, 8, 8)), ("ball", (0, 55, 7, 9))])
    assert_boxes(out, f"{base}/left/pitch_00003_first.png", [])
    assert_boxes(out, f"{base}/right/uniform_00005.png", [("ball", (45.5, 26.5, 9, 9))])
    assert_boxes(out, f"images/{SESSION}/{P2}/left/uniform_00005.png", [("ball", (14, 14, 12, 12))])
    m = manifest(out)
    assert len(m) == 5 and f"{base}/left/post_roll_last.png" not in m
    frame = m[f"{base}/left/uniform_00005.png"]
    assert (frame["session"], frame["pitch_id"], frame["camera"], frame["frame_index"]) == (SESSION, P1, "left", 5)
    assert frame["driver_id"] == frame["vehicle_id"] == SESSION                # a session stays in one split
    assert (frame["scenario"], frame["fps"]) == ("night", 60.0)                # manifest.json beats --defaults
    assert frame["intrinsics"] == INTRINSICS["left"]
    assert m[f"{base}/right/uniform_00005.png"]["intrinsics"]["camera_id"] == "CAM-R"
    assert frame["objects"]["confidence"] == [0.9, 0.8]
    low = m[f"{base}/left/pitch_00003_first.png"]["ignore"]
    assert [r["reason"] for r in low] == ["confidence below --min-confidence"] and low[0]["confidence"] == 0.3
    assert m[f"images/{SESSION}/{P2}/left/uniform_00005.png"]["scenario"] == "day"
    assert json.loads((out / frame["calibration"] / "stereo_geometry.json").read_text())["baseline_ft"] == 2.5
    assert "1 × frame not listed in manifest.json" in result.output
    assert "1 × detection on a frame that was not saved" in result.output
    check_passes(out)


def test_detection_count_disagreeing_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert_refused(run("data", "import", "sessions", session(tmp_path / "rec", left_count=5), "--out", out), out,
                   "left_detections.json", "[detection_count]", "detection_count is 5 but `detections` holds 4")


def test_bad_detection_entry_is_refused(tmp_path: Path) -> None:
    root = session(tmp_path / "rec")
    path = root / SESSION / P1 / "detections/right_detections.json"
    data = json.loads(path.read_text())
    data["detections"][0]["radius_px"] = -2
    path.write_text(json.dumps(data))
    out = tmp_path / "out"
    assert_refused(run("data", "import", "sessions", root, "--out", out), out, "right_detections.json",
                   "[detections[0] radius_px]", "not positive")
