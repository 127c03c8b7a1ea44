"""Recorded frames tied to the detector's output: the recorder's own file names, and stereo pairs.

The recorder (its FrameExtractor, ../shared/users/004_*) saves key frames per pitch and camera under a
per-camera save counter n: 1 for the first frame it sees, advanced once per frame. It writes no list:

    pre_roll_00001.png     the first frame, before the pitch starts             counter 1
    uniform_NNNNN.png      every k-th frame                                    counter NNNNN
    pitch_NNNNN_last.png   EVERY frame with a detection (the name moves with    counter NNNNN
                           the counter, so no `_last` is ever overwritten)
    pitch_NNNNN_first.png  the first detection frame after the pitch started,   counter NNNNN+1
                           named before the counter advances: the same picture
                           as pitch_{NNNNN+1}_last
    post_roll_last.png     the first frame after the pitch ended               no counter

So one frame may be saved under several names: files with identical bytes and a compatible counter are
one frame, imported once (the other names kept in `also_saved_as`). Detections carry the camera's
`frame_index`, not the counter. Because every detection frame gets a `_last`, the k-th `_last` counter
is the k-th detection frame_index (the order tie); a counter with no `_last` had no detection. The
order tie must be consistent: the frame index may skip frames the recorder never saw, but between two
`_last` frames the counter never advances more than the index. When the counts differ or the order
is inconsistent (frames deleted or renamed, saving switched on late), the one constant offset counter →
frame_index that puts every `_last` on a detection frame is used if it is the only one; else the
camera's frames cannot be tied and are imported unlabelled.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NAMES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("pre_roll", re.compile(r"pre_roll_(\d+)")),
    ("first", re.compile(r"pitch_(\d+)_first")),
    ("last", re.compile(r"pitch_(\d+)_last")),
    ("uniform", re.compile(r"uniform_(\d+)")),
    ("post_roll", re.compile(r"post_roll_last")),
)
PRIORITY = (
    "uniform",
    "pre_roll",
    "last",
    "first",
    "post_roll",
    "other",
)  # the name a frame is imported under


@dataclass
class SavedFile:
    path: Path
    kind: str  # pre_roll | first | last | uniform | post_roll | other
    number: int | None  # the counter written in the name
    digest: str


@dataclass
class Frame:
    """One picture of one camera, with what is known about it (from the frames list or from its names)."""

    camera: str
    files: list[
        SavedFile
    ]  # the first is imported, the others are the same picture under other names
    counter: int | None = None
    frame_index: int | None = None
    timestamp_ns: int | None = None
    detections: list[dict[str, Any]] = field(default_factory=list)
    tied: bool = (
        False  # its detections are known (possibly none): a negative only if the detector ran
    )
    pair: tuple[Frame, str] | None = (
        None  # the other camera's frame of the same instant, and by what
    )

    @property
    def path(self) -> Path:
        return self.files[0].path

    @property
    def detection_frame(self) -> bool:
        return any(f.kind == "last" for f in self.files)


def name_kind(stem: str) -> tuple[str, int | None]:
    """The FrameExtractor name of a file stem: (kind, counter in the name)."""
    for kind, pattern in NAMES:
        found = pattern.fullmatch(stem)
        if found:
            return kind, int(found.group(1)) if found.groups() else None
    return "other", None


def recorder_frames(camera: str, files: Sequence[SavedFile]) -> list[Frame]:
    """Group one camera's saved files into frames by their save counter and their bytes."""
    lasts = {f.number for f in files if f.kind == "last" and f.number is not None}
    counted: dict[str, set[int]] = defaultdict(
        set
    )  # digest → counters of the names that carry one directly
    for f in files:
        if f.kind in ("last", "uniform", "pre_roll") and f.number is not None:
            counted[f.digest].add(f.number)
    frames: dict[tuple[Any, str], Frame] = {}
    for f in sorted(files, key=lambda f: (PRIORITY.index(f.kind), f.path.name)):
        counter = _counter(f, counted.get(f.digest, set()), lasts)
        key = (counter if counter is not None else f.path.name, f.digest)
        if key in frames:
            frames[key].files.append(f)
        else:
            frames[key] = Frame(camera, [f], counter)
    return sorted(
        frames.values(), key=lambda fr: (fr.counter is None, fr.counter or 0, fr.path.name)
    )


def _counter(f: SavedFile, twins: set[int], lasts: set[int]) -> int | None:
    if f.kind in ("last", "uniform", "pre_roll"):
        return f.number
    if f.kind == "first" and f.number is not None:
        n = f.number
        for candidate in (
            n + 1,
            n,
        ):  # its identical `_last` twin, else the one that is a detection frame
            if candidate in twins:
                return candidate
        return n if n in lasts and n + 1 not in lasts else n + 1
    if f.kind == "post_roll" and twins:
        return max(twins)
    return None


def tie_counters(frames: Sequence[Frame], detections: Sequence[dict[str, Any]]) -> str | None:
    """Give each frame its frame_index and detections from the counters; say how (None: they cannot be)."""
    by_index: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for det in detections:
        by_index[det["frame_index"]].append(det)
    indexes = sorted(by_index)
    lasts = sorted({fr.counter for fr in frames if fr.counter is not None and fr.detection_frame})
    mapping: dict[int, int] = {}
    offset: int | None = None
    if len(lasts) == len(indexes) and _consistent(lasts, indexes):
        mapping = dict(zip(lasts, indexes, strict=True))
        offsets = {i - c for c, i in mapping.items()}
        offset = next(iter(offsets)) if len(offsets) == 1 else None
        complete = True
        how = "the k-th pitch_*_last frame is the k-th detection frame" + (
            f" (frame_index = counter {offset:+d})" if offset is not None else ""
        )
    else:
        candidates = {i - lasts[0] for i in indexes} if lasts else set()
        valid = [o for o in sorted(candidates) if all(c + o in by_index for c in lasts)]
        if len(valid) != 1:
            return None
        offset, complete = valid[0], False
        how = f"frame_index = counter {offset:+d} (the only offset putting each pitch_*_last on a detection)"
    for fr in frames:
        if fr.counter is None:
            fr.tied = complete and all(
                f.kind == "post_roll" for f in fr.files
            )  # no `_last` twin: no detection
            continue
        index = mapping.get(fr.counter, fr.counter + offset if offset is not None else None)
        if (
            index is None
        ):  # offsets vary and this counter had no `_last`: no detection, index unknown
            fr.tied = True
            continue
        fr.frame_index, fr.detections, fr.tied = index, by_index.get(index, []), True
    return how


def _consistent(counters: Sequence[int], indexes: Sequence[int]) -> bool:
    """The camera can skip frames the recorder never sees, never the reverse: Δframe_index ≥ Δcounter."""
    pairs = list(zip(counters, indexes, strict=True))
    return all(i2 - i1 >= c2 - c1 for (c1, i1), (c2, i2) in zip(pairs, pairs[1:], strict=False))


def timestamp_of(frame: Frame) -> int | None:
    """The frame's own timestamp, else its detections' (all of one frame share its capture time)."""
    if frame.timestamp_ns is not None:
        return frame.timestamp_ns
    return min((d["timestamp_ns"] for d in frame.detections), default=None)


def frame_period_ns(detections: Sequence[dict[str, Any]]) -> float | None:
    """The camera's frame period from its detections: median of Δtimestamp / Δframe_index."""
    points = sorted({(d["frame_index"], d["timestamp_ns"]) for d in detections})
    steps = sorted(
        (t2 - t1) / (i2 - i1)
        for (i1, t1), (i2, t2) in zip(points, points[1:], strict=False)
        if i2 > i1 and t2 > t1
    )
    return steps[len(steps) // 2] if steps else None


def pair_cameras(left: Sequence[Frame], right: Sequence[Frame], tolerance_ns: float) -> None:
    """Pair the two cameras' frames of one instant: by timestamp (within the tolerance), else by counter.

    Nearest pairs first, each frame in one pair at most. The recorder advances both counters once per
    frame, so equal counters are the same instant when no timestamp says otherwise.
    """
    candidates: list[tuple[float, int, int, str]] = []
    for i, a in enumerate(left):
        for j, b in enumerate(right):
            ta, tb = timestamp_of(a), timestamp_of(b)
            if ta is not None and tb is not None:
                if abs(ta - tb) <= tolerance_ns:
                    candidates.append((abs(ta - tb), i, j, "timestamp"))
            elif a.counter is not None and a.counter == b.counter:
                candidates.append((float("inf"), i, j, "counter"))
    taken_left: set[int] = set()
    taken_right: set[int] = set()
    for _, i, j, how in sorted(candidates):
        if i not in taken_left and j not in taken_right:
            taken_left.add(i)
            taken_right.add(j)
            left[i].pair, right[j].pair = (right[j], how), (left[i], how)
