"""Recorded sessions importer: frames + detector JSON + manifest.json + calibration, in the recorder's layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from import_helpers import (
    assert_boxes,
    assert_refused,
    check_passes,
    classes,
    manifest,
    run,
    write_image,
)

SESSION = "session-2026-01-16_001"
P1, P2 = "session-001-pitch-001", "session-001-pitch-002"
T0 = 1_000_000_000_000
INTRINSICS = {
    "left": {
        "camera_id": "CAM-L",
        "fx": 800.0,
        "fy": 801.0,
        "cx": 48.0,
        "cy": 32.0,
        "distortion_k1": -0.1,
        "distortion_k2": 0.01,
    },
    "right": {
        "camera_id": "CAM-R",
        "fx": 790.0,
        "fy": 790.5,
        "cx": 47.0,
        "cy": 31.0,
        "distortion_k1": -0.09,
        "distortion_k2": 0.0,
    },
}


def det(frame: int, u: float, v: float, r: float, conf: float) -> dict[str, Any]:
    return {
        "frame_index": frame,
        "timestamp_ns": T0 + frame * 16_666_667,
        "u_px": u,
        "v_px": v,
        "radius_px": r,
        "confidence": conf,
    }


def write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2))


def detections(
    pitch: str, camera: str, entries: list[dict[str, Any]], count: int | None = None
) -> dict[str, Any]:
    return {
        "pitch_id": pitch,
        "camera": camera,
        "detection_count": len(entries) if count is None else count,
        "detections": entries,
    }


def session(root: Path, left_count: int | None = None) -> Path:
    s = root / SESSION
    for cam, values in INTRINSICS.items():
        write_json(s / "calibration" / f"intrinsics_{cam}.json", values)
    write_json(
        s / "calibration/stereo_geometry.json",
        {
            "baseline_ft": 2.5,
            "convergence_angle_deg": 3.0,
            "camera_height_ft": 4.0,
            "distance_to_plate_ft": 60.5,
        },
    )
    # pitch 1: frames named by the recorder's save counter; manifest.json ties each to its frame_index
    frames1 = {
        ("left", "pre_roll_00001.png"): 0,
        ("left", "uniform_00005.png"): 5,
        ("left", "pitch_00003_first.png"): 7,
        ("right", "uniform_00005.png"): 5,
    }
    for i, (cam, name) in enumerate(frames1):
        write_image(s / P1 / "frames" / cam / name, 96, 64, seed=i)
    write_image(s / P1 / "frames/left/post_roll_last.png", 96, 64, seed=9)  # not listed → skipped
    write_json(
        s / P1 / "manifest.json",
        {
            "pitch_id": P1,
            "cameras": ["left", "right"],
            "width": 96,
            "height": 64,
            "fps": 60,
            "scenario": "night",
            "road_type": "campus",
            "stream": "cctv",
            "frames": [
                {
                    "file": f"frames/{cam}/{name}",
                    "camera": cam,
                    "frame_index": idx,
                    "timestamp_ns": T0 + idx * 16_666_667,
                }
                for (cam, name), idx in frames1.items()
            ],
        },
    )
    write_json(
        s / P1 / "detections/left_detections.json",
        detections(
            P1,
            "left",
            [
                det(5, 40.0, 30.0, 4.0, 0.9),
                det(5, 2.0, 60.0, 5.0, 0.8),  # second: clipped at left and bottom
                det(7, 70.5, 20.25, 3.5, 0.3),  # below --min-confidence 0.5
                det(99, 10.0, 10.0, 2.0, 0.9),
            ],
            left_count,
        ),
    )  # frame 99 was not saved
    write_json(
        s / P1 / "detections/right_detections.json",
        detections(P1, "right", [det(5, 50.0, 31.0, 4.5, 0.95)]),
    )
    # pitch 2: frames listed per camera, by timestamp only (matched within half a frame at 30 fps)
    write_image(s / P2 / "frames/left/uniform_00005.png", 96, 64, seed=11)
    write_json(
        s / P2 / "manifest.json",
        {
            "pitch_id": P2,
            "fps": 30,
            "frames": {"left": [{"file": "uniform_00005.png", "timestamp_ns": T0 + 5_000_000}]},
        },
    )
    write_json(
        s / P2 / "detections/left_detections.json",
        detections(P2, "left", [det(0, 20.0, 20.0, 6.0, 0.7)]),
    )
    return root


def test_session_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run(
        "data",
        "import",
        "sessions",
        session(tmp_path / "rec"),
        "--out",
        out,
        "--min-confidence",
        "0.5",
        "--defaults",
        "stream=cctv,scenario=day,road_type=campus",
    )
    assert result.exit_code == 0, result.output
    assert classes(out) == ["ball"]
    base = f"images/{SESSION}/{P1}"
    assert_boxes(out, f"{base}/left/pre_roll_00001.png", [])
    assert_boxes(
        out, f"{base}/left/uniform_00005.png", [("ball", (36, 26, 8, 8)), ("ball", (0, 55, 7, 9))]
    )
    assert_boxes(out, f"{base}/left/pitch_00003_first.png", [])
    assert_boxes(out, f"{base}/right/uniform_00005.png", [("ball", (45.5, 26.5, 9, 9))])
    assert_boxes(out, f"images/{SESSION}/{P2}/left/uniform_00005.png", [("ball", (14, 14, 12, 12))])
    m = manifest(out)
    assert len(m) == 5 and f"{base}/left/post_roll_last.png" not in m
    frame = m[f"{base}/left/uniform_00005.png"]
    assert (frame["session"], frame["pitch_id"], frame["camera"], frame["frame_index"]) == (
        SESSION,
        P1,
        "left",
        5,
    )
    assert frame["driver_id"] == frame["vehicle_id"] == SESSION  # a session stays in one split
    assert (frame["scenario"], frame["fps"]) == ("night", 60.0)  # manifest.json beats --defaults
    assert frame["intrinsics"] == INTRINSICS["left"]
    assert m[f"{base}/right/uniform_00005.png"]["intrinsics"]["camera_id"] == "CAM-R"
    assert frame["objects"]["confidence"] == [0.9, 0.8]
    low = m[f"{base}/left/pitch_00003_first.png"]["ignore"]
    assert [r["reason"] for r in low] == ["confidence below --min-confidence"] and low[0][
        "confidence"
    ] == 0.3
    assert m[f"images/{SESSION}/{P2}/left/uniform_00005.png"]["scenario"] == "day"
    assert (
        json.loads((out / frame["calibration"] / "stereo_geometry.json").read_text())["baseline_ft"]
        == 2.5
    )
    assert "1 × frame not listed in manifest.json" in result.output
    assert "1 × detection on a frame that was not saved" in result.output
    check_passes(out)


def test_detection_count_disagreeing_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert_refused(
        run("data", "import", "sessions", session(tmp_path / "rec", left_count=5), "--out", out),
        out,
        "left_detections.json",
        "[detection_count]",
        "detection_count is 5 but `detections` holds 4",
    )


def test_bad_detection_entry_is_refused(tmp_path: Path) -> None:
    root = session(tmp_path / "rec")
    path = root / SESSION / P1 / "detections/right_detections.json"
    data = json.loads(path.read_text())
    data["detections"][0]["radius_px"] = -2
    path.write_text(json.dumps(data))
    out = tmp_path / "out"
    assert_refused(
        run("data", "import", "sessions", root, "--out", out),
        out,
        "right_detections.json",
        "[detections[0] radius_px]",
        "not positive",
    )


# ---------------------------------------------------------------- the recorder's own layout (no frames list)

FRAME_NS = 16_666_667
STRATA = "stream=cctv,scenario=day,road_type=campus"


class Recorder:
    """The recorder of ../shared/users/004_* reduced to what it writes: FrameExtractor names, detections JSON.

    Its quirks are kept: one pre_roll/first/post_roll flag for both cameras, `pitch_N_first` named before
    the counter advances, a `pitch_N_last` for every detection frame, the same picture under several names.
    """

    def __init__(self, pitch: Path, interval: int = 5) -> None:
        self.pitch, self.interval = pitch, interval
        self.count = {"left": 0, "right": 0}
        self.saved: set[str] = set()
        self.dets: dict[str, list[dict[str, Any]]] = {"left": [], "right": []}
        self.started = self.ended = False

    def frame(
        self, camera: str, index: int, ts: int, seed: int, found: list[tuple[float, float, float]]
    ) -> None:
        for u, v, r in found:
            self.dets[camera].append(
                {
                    "frame_index": index,
                    "timestamp_ns": ts,
                    "u_px": u,
                    "v_px": v,
                    "radius_px": r,
                    "confidence": 0.9,
                }
            )

        def save(name: str) -> None:
            write_image(self.pitch / "frames" / camera / f"{name}.png", 96, 64, seed=seed)

        if not self.started and "pre_roll" not in self.saved:
            save("pre_roll_00001")
            self.saved.add("pre_roll")
        if self.started and found and "first" not in self.saved:
            save(f"pitch_{self.count[camera]:05d}_first")
            self.saved.add("first")
        self.count[camera] += 1
        if self.count[camera] % self.interval == 0:
            save(f"uniform_{self.count[camera]:05d}")
        if found:
            save(f"pitch_{self.count[camera]:05d}_last")
        if self.ended and "post_roll" not in self.saved:
            save("post_roll_last")
            self.saved.add("post_roll")

    def close(self, pitch_id: str, cameras: tuple[str, ...] = ("left", "right")) -> None:
        for camera in cameras:
            if self.dets[camera]:
                write_json(
                    self.pitch / "detections" / f"{camera}_detections.json",
                    detections(pitch_id, camera, self.dets[camera]),
                )


LEFT = {
    2: [(20.0, 20.0, 3.0)],
    4: [(30.0, 22.0, 3.0)],
    5: [(40.0, 24.0, 3.0)],
    7: [(60.0, 28.0, 3.0)],
}
RIGHT = {5: [(35.0, 24.0, 3.0)], 6: [(45.0, 26.0, 3.0)]}


def recorded(root: Path, metrics_right: int | None = None) -> Path:
    """A session of three pitches as the recorder writes them, no frames list anywhere.

    p1: both cameras with detections, observations and performance_metrics; p2: only the left camera has a
    detections file (the right: `metrics_right` detections in performance_metrics); p3: no detector output.
    """
    s = root / SESSION
    write_json(s / "calibration/stereo_geometry.json", {"baseline_ft": 2.5})
    for pitch, dets in (("p1", (LEFT, RIGHT)), ("p2", (LEFT, {})), ("p3", ({}, {}))):
        rec = Recorder(s / pitch)
        for i in range(12):
            rec.started, rec.ended = i >= 3, i >= 9
            for k, (camera, found) in enumerate(zip(("left", "right"), dets, strict=True)):
                ts = T0 + i * FRAME_NS + k * 2_000_000  # the right camera exposes 2 ms later
                seed = (
                    100 * k + i + 7 * int(pitch[1])
                )  # one picture per frame, and another per pitch
                rec.frame(camera, (1000, 5000)[k] + i, ts, seed, found=found.get(i, []))
        if pitch == "p1":
            rec.close(pitch)
            write_json(
                s / pitch / "observations/stereo_observations.json",
                {
                    "pitch_id": pitch,
                    "observation_count": 1,
                    "observations": [
                        {
                            "timestamp_ns": T0 + 5 * FRAME_NS,
                            "left_px": [40.0, 24.0],
                            "right_px": [35.0, 24.0],
                            "X_ft": 0.1,
                            "Y_ft": 3.0,
                            "Z_ft": 40.0,
                            "quality": 0.8,
                            "confidence": 0.9,
                        }
                    ],
                },
            )
            metrics = {
                "detection_quality": {
                    "left_camera_detections": 4,
                    "right_camera_detections": 2,
                    "stereo_observations": 1,
                    "frames_with_no_detection": 17,
                },
                "timing_accuracy": {"pre_roll_frames_captured": 3, "start_ns": T0},
            }
            write_json(
                s / pitch / "manifest.json",
                {"pitch_id": pitch, "scenario": "night", "performance_metrics": metrics},
            )
        elif pitch == "p2":
            rec.close(pitch)
            quality = {} if metrics_right is None else {"right_camera_detections": metrics_right}
            write_json(
                s / pitch / "manifest.json",
                {"pitch_id": pitch, "performance_metrics": {"detection_quality": quality}},
            )
    return root


def test_recorder_layout_is_read_as_written(tmp_path: Path) -> None:
    src = recorded(tmp_path / "rec", metrics_right=0)
    out = tmp_path / "out"
    result = run("data", "import", "sessions", src, "--out", out, "--defaults", STRATA)
    assert result.exit_code == 0, result.output
    m = manifest(out)
    base = f"images/{SESSION}/p1"
    left = {r["save_counter"]: r for rel, r in m.items() if rel.startswith(f"{base}/left/")}
    right = {r["save_counter"]: r for rel, r in m.items() if rel.startswith(f"{base}/right/")}
    # one image per frame: pitch_00004_first, uniform_00005 and pitch_00005_last are the same picture
    assert sorted(left) == [1, 3, 5, 6, 8, 10] and sorted(right) == [5, 6, 7, 10]
    assert left[5]["image"].endswith("uniform_00005.png")
    assert sorted(left[5]["also_saved_as"]) == ["pitch_00004_first.png", "pitch_00005_last.png"]
    assert left[10]["also_saved_as"] == ["post_roll_last.png"]
    # tied by the counter: the k-th pitch_*_last is the k-th detection frame (counter n = frame_index 999 + n)
    assert {n: r["frame_index"] for n, r in left.items()} == {n: 999 + n for n in left}
    assert_boxes(out, left[3]["image"], [("ball", (17, 17, 6, 6))])
    assert_boxes(out, left[5]["image"], [("ball", (27, 19, 6, 6))])  # the pitch_00004_first frame
    assert_boxes(out, left[6]["image"], [("ball", (37, 21, 6, 6))])
    assert_boxes(out, left[8]["image"], [("ball", (57, 25, 6, 6))])
    assert_boxes(out, right[6]["image"], [("ball", (32, 21, 6, 6))])
    for frame in (
        left[1],
        left[10],
        right[5],
        right[10],
    ):  # the detector ran on these cameras: negatives
        assert frame["labelled"] is True and "objects" not in frame
        assert_boxes(out, frame["image"], [])
    assert left[3]["timestamp_ns"] == T0 + 2 * FRAME_NS and left[3]["scenario"] == "night"
    # the two cameras paired: by timestamp where both frames have one, else by the save counter
    assert (left[6]["stereo_pair"], left[6]["stereo_pair_by"]) == (right[6]["image"], "timestamp")
    assert (right[6]["stereo_pair"], left[5]["stereo_pair_by"]) == (left[6]["image"], "counter")
    assert left[10]["stereo_pair"] == right[10]["image"] and "stereo_pair" not in left[8]
    # p2: right had no detections file but the metrics count 0 → negatives; p3: no detector → unlabelled
    p2_right = [r for rel, r in m.items() if rel.startswith(f"images/{SESSION}/p2/right/")]
    assert p2_right and all(r["labelled"] is True for r in p2_right)
    p3 = [r for rel, r in m.items() if rel.startswith(f"images/{SESSION}/p3/")]
    assert p3 and all(r["labelled"] is False and r["label_source"] == "none" for r in p3)
    assert not [p for p in (out / "labels").rglob("*.txt") if "/p3/" in p.as_posix()]
    # provenance: observations copied, performance_metrics kept
    observations = out / f"observations/{SESSION}/p1/stereo_observations.json"
    assert json.loads(observations.read_text())["observation_count"] == 1
    notes = json.loads((out / "PROVENANCE.json").read_text())["sessions"]["pitches"][
        f"{SESSION}/p1"
    ]
    assert notes["performance_metrics"]["detection_quality"]["frames_with_no_detection"] == 17
    rel = observations.relative_to(out).as_posix()
    assert notes["stereo_observations"] == {"file": rel, "observations": 1}
    assert notes["form"] == "recorder (frame names)" and "k-th pitch_*_last" in notes["tie"]["left"]
    assert "frame imported unlabelled: no detector output" in result.output
    check_passes(out)


def test_recorder_layout_unknown_detector_output_is_unlabelled_not_negative(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run("data", "import", "sessions", recorded(tmp_path / "rec"), "--out", out)
    assert result.exit_code == 0, result.output
    p2_right = [
        r for rel, r in manifest(out).items() if rel.startswith(f"images/{SESSION}/p2/right/")
    ]
    assert p2_right and all(
        r["labelled"] is False for r in p2_right
    )  # no file, and no count in the metrics
    out2 = tmp_path / "out2"
    result = run(
        "data", "import", "sessions", recorded(tmp_path / "rec2", metrics_right=0), "--out", out2
    )
    assert result.exit_code == 0, result.output
    p2_right = [
        r for rel, r in manifest(out2).items() if rel.startswith(f"images/{SESSION}/p2/right/")
    ]
    assert p2_right and all(r["labelled"] is True for r in p2_right)


def test_recorder_counters_that_cannot_be_tied_leave_frames_unlabelled(tmp_path: Path) -> None:
    src = recorded(tmp_path / "rec")
    left = src / SESSION / "p1/frames/left"
    for name in ("pitch_00003_last.png", "pitch_00006_last.png", "pitch_00008_last.png"):
        (left / name).unlink()  # one `_last` left: offsets 999 and 1000 both fit it
    (left / "pitch_00004_first.png").unlink()
    out = tmp_path / "out"
    result = run("data", "import", "sessions", src, "--out", out)
    assert result.exit_code == 0, result.output
    frames = [r for rel, r in manifest(out).items() if rel.startswith(f"images/{SESSION}/p1/left/")]
    assert frames and all(r["labelled"] is False for r in frames)
    assert "cannot be tied to the detections' frame_index" in result.output
    notes = json.loads((out / "PROVENANCE.json").read_text())["sessions"]["pitches"][
        f"{SESSION}/p1"
    ]
    assert notes["tie"]["left"].startswith("not tied")
    # two `_last` frames pin one offset: the others are found again, detections with no frame counted
    src2 = recorded(tmp_path / "rec2")
    for name in ("pitch_00003_last.png", "pitch_00008_last.png"):
        (src2 / SESSION / "p1/frames/left" / name).unlink()
    result = run("data", "import", "sessions", src2, "--out", tmp_path / "out2")
    assert result.exit_code == 0, result.output
    m = {
        r["save_counter"]: r
        for rel, r in manifest(tmp_path / "out2").items()
        if rel.startswith(f"images/{SESSION}/p1/left/")
    }
    assert m[6]["frame_index"] == 1005 and m[10]["labelled"] is True
    assert "2 × detection on a frame that was not saved" in result.output


@pytest.mark.parametrize(
    ("where", "field", "value", "message"),
    [
        ("detections", "timestamp_ns", "soon", "is not an integer"),
        ("detections", "timestamp_ns", 1.5, "is not an integer"),
        ("detections", "timestamp_ns", None, "is not an integer"),
        ("detections", "frame_index", "1e3", "is not an integer"),
        ("detections", "frame_index", True, "is not an integer"),
        ("detections", "frame_index", [5], "is not an integer"),
        ("detections", "frame_index", -1, "outside [0, 2^63)"),
        ("detections", "frame_index", 1e300, "outside [0, 2^63)"),
        ("detections", "u_px", "NaN", "not a finite number"),
        ("frames", "frame_index", 2.5, "is not an integer"),
        ("frames", "timestamp_ns", {"ns": 1}, "is not an integer"),
        ("fps", "fps", "fast", "is not a number"),
        ("fps", "fps", 0, "is not positive"),
    ],
)
def test_bad_session_values_are_one_line_naming_file_and_field(
    tmp_path: Path, where: str, field: str, value: Any, message: str
) -> None:
    root = session(tmp_path / "rec")
    if where == "detections":
        path = root / SESSION / P1 / "detections/left_detections.json"
        data = json.loads(path.read_text())
        data["detections"][1][field] = value
        item = f"[detections[1] {field}]"
    else:
        path = root / SESSION / P1 / "manifest.json"
        data = json.loads(path.read_text())
        if where == "frames":
            data["frames"][2][field] = value
            item = f"[frames[2] {field}]"
        else:
            data["fps"] = value
            item = "[fps]"
    text = json.dumps(data)
    path.write_text(text.replace('"NaN"', "NaN"))  # a bare NaN token, as Python's json writes it
    out = tmp_path / "out"
    assert_refused(
        run("data", "import", "sessions", root, "--out", out), out, path.name, item, message
    )


def test_session_json_not_utf8_or_nested_too_deep_is_one_line(tmp_path: Path) -> None:
    root = session(tmp_path / "rec")
    path = root / SESSION / P1 / "detections/right_detections.json"
    out = tmp_path / "out"
    path.write_bytes(b'{"camera": "r\xe9ght"}')
    assert_refused(
        run("data", "import", "sessions", root, "--out", out),
        out,
        "right_detections.json",
        "not UTF-8",
    )
    path.write_bytes(b"[" * 100_000)
    assert_refused(
        run("data", "import", "sessions", root, "--out", out),
        out,
        "right_detections.json",
        "nested too deep",
    )
    path.write_text(json.dumps(detections(P1, "right", [det(5, 50.0, 31.0, 4.5, 0.95)])))
    obs = root / SESSION / P1 / "observations/stereo_observations.json"
    obs.parent.mkdir()
    obs.write_text("[1, 2")
    assert_refused(
        run("data", "import", "sessions", root, "--out", out),
        out,
        "stereo_observations.json",
        "not valid JSON",
    )


def test_frames_list_form_without_detector_output_is_unlabelled(tmp_path: Path) -> None:
    root = session(tmp_path / "rec")
    (root / SESSION / P1 / "detections/right_detections.json").unlink()
    out = tmp_path / "out"
    result = run("data", "import", "sessions", root, "--out", out, "--defaults", STRATA)
    assert result.exit_code == 0, result.output
    right = manifest(out)[f"images/{SESSION}/{P1}/right/uniform_00005.png"]
    assert right["labelled"] is False
    assert not (out / f"labels/{SESSION}/{P1}/right/uniform_00005.txt").exists()
    assert manifest(out)[f"images/{SESSION}/{P1}/left/pre_roll_00001.png"]["labelled"] is True
    assert "1 × detection on a frame that was not saved" in result.output
    check_passes(out)


def test_a_frame_linked_from_outside_the_source_is_refused(tmp_path: Path) -> None:
    src = recorded(tmp_path / "rec")
    outside = write_image(tmp_path / "elsewhere.png", 96, 64, seed=3)
    (src / SESSION / "p1/frames/left/uniform_00015.png").symlink_to(outside)
    out = tmp_path / "out"
    assert_refused(
        run("data", "import", "sessions", src, "--out", out), out, "uniform_00015.png", "outside"
    )


def test_recorder_order_tie_must_be_consistent(tmp_path: Path) -> None:
    """A renamed `_last` keeps the counts equal; the order tie would give frame 8 the detections of 1005."""
    src = recorded(tmp_path / "rec")
    left = src / SESSION / "p1/frames/left"
    (left / "pitch_00006_last.png").rename(left / "pitch_90000_last.png")
    out = tmp_path / "out"
    result = run("data", "import", "sessions", src, "--out", out)
    assert result.exit_code == 0, result.output
    frames = [r for rel, r in manifest(out).items() if rel.startswith(f"images/{SESSION}/p1/left/")]
    assert frames and all(r["labelled"] is False for r in frames)


def test_bad_names_and_unwritable_metrics_are_one_line(tmp_path: Path) -> None:
    src = recorded(tmp_path / "rec")
    left = src / SESSION / "p1/frames/left"
    (left / "pitch_00006_last.png").rename(left / "a\nb.png")
    out = tmp_path / "out"
    assert_refused(
        run("data", "import", "sessions", src, "--out", out), out, "holds control characters"
    )
    src = recorded(tmp_path / "rec2")
    path = src / SESSION / "p1/manifest.json"
    text = path.read_text().replace(
        '"frames_with_no_detection": 17', '"frames_with_no_detection": NaN'
    )
    path.write_text(text)
    assert_refused(
        run("data", "import", "sessions", src, "--out", out),
        out,
        "manifest.json",
        "[performance_metrics]",
        "NaN",
    )
