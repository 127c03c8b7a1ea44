"""The bundled sample dataset: real Fashion-MNIST products composited onto real CCTV frames and photos.

Every box is exact because the builder placed the object. Groups are real structure, not labels on
noise: a *vehicle* is a contiguous chunk of the `vtest.avi` clip seen through its own crop window (or
a family of photos); a *driver* is a disjoint pool of product instances that recur across its
images. Some vehicles share drivers, so leakage between splits is possible and must be prevented.
The build is seeded and byte-reproducible for a given OpenCV/numpy version (on another CPU, OpenCV's
vectorised resize may move a few pixels of a few images by a grey level or two; labels and manifest
do not change).

Distance is physical: each class has a true size (its long side, `TRUE_SIZE_M`) and the sample is
seen through one camera (`CAMERA`: focal length in pixels, principal point at the centre), so an
object pasted with a long side of s pixels stands at `fx * size / s` metres. Each manifest line
carries the camera as `intrinsics` and each object's distance in `objects.distance` (metres).
"""

from __future__ import annotations

import gzip
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vigil.atomic import atomic_dir
from vigil.data import sources
from vigil.data.layout import CLASSES, MANIFEST, Box, label_rel_for
from vigil.errors import VigilError
from vigil.progress import progress

# Fashion-MNIST class id → our class name. Six classes a small detector can tell apart.
FMNIST_CLASSES: dict[int, str] = {0: "tshirt", 1: "trouser", 3: "dress", 7: "sneaker", 8: "bag", 9: "ankle_boot"}

# The true long side, in metres, of each class's products; and the one camera the sample is seen through.
TRUE_SIZE_M: dict[int, float] = {0: 0.70, 1: 1.00, 3: 1.10, 7: 0.30, 8: 0.40, 9: 0.30}
CAMERA_FOCAL_PX = 4000.0  # a 320-pixel-wide frame spans 4.6 degrees: a rifle scope's field of view


def camera(spec: SampleSpec) -> dict[str, float]:
    """The sample camera's intrinsics (pixels), as the recorded-sessions importer writes them."""
    return {"fx": CAMERA_FOCAL_PX, "fy": CAMERA_FOCAL_PX, "cx": spec.width / 2, "cy": spec.height / 2}


def distance_m(fm_cls: int, box_w: int, box_h: int) -> float:
    """How far an object of this class must be for its long side to span max(box_w, box_h) pixels."""
    return round(CAMERA_FOCAL_PX * TRUE_SIZE_M[fm_cls] / max(box_w, box_h), 2)


# Photo families (one vehicle each): road_type and member photos from opencv-doc.
PHOTO_FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "building": ("street", ("building.jpg", "home.jpg")),
    "leuven": ("street", ("leuvenA.jpg", "leuvenB.jpg")),
    "graffiti": ("street", ("graf1.png", "graf3.png")),
    "whale": ("indoor", ("rubberwhale1.png", "rubberwhale2.png")),
    "desk": ("indoor", ("stuff.jpg", "board.jpg")),
    "fruits": ("indoor", ("fruits.jpg", "box_in_scene.png")),
    "aero": ("nature", ("aero1.jpg", "aero3.jpg")),
    "squirrel": ("nature", ("squirrel_cls.jpg", "butterfly.jpg")),
    "pitch": ("nature", ("messi5.jpg",)),
    # the last families go to the unlabelled pool
    "plate": ("street", ("licenseplate_motion.jpg",)),
    "aloe": ("indoor", ("aloeL.jpg", "aloeR.jpg")),
    "court": ("indoor", ("basketball1.png", "basketball2.png")),
    "stereo": ("nature", ("left.jpg", "right.jpg")),
}
POOL_FAMILIES = 4
SCENARIOS: tuple[tuple[str, float], ...] = (("day", 0.5), ("dusk", 0.25), ("night", 0.25))


@dataclass(frozen=True)
class SampleSpec:
    """What the builder makes. Defaults are the bundled sample; tests use tiny ones."""

    seed: int = 0
    labelled: int = 600
    pool: int = 300
    width: int = 320
    height: int = 240
    min_size: int = 12
    max_size: int = 160
    max_objects: int = 5
    negative_fraction: float = 0.08
    stills_fraction: float = 0.3
    frames_per_vehicle: int = 21
    frame_gap: int = 4
    instances_per_class: int = 30
    jpeg_quality: int = 90


@dataclass
class Vehicle:
    vehicle_id: str
    stream: str
    road_type: str
    labelled: bool
    frames: list[int] = field(default_factory=list)      # cctv: frame indices
    photos: tuple[str, ...] = ()                          # stills: file names
    crop: tuple[float, float, float] = (1.0, 0.0, 0.0)    # cctv: zoom, x offset, y offset (fractions)
    drivers: list[str] = field(default_factory=list)      # own driver first, then a shared one


def load_idx(path: Path) -> np.ndarray:
    """Read a gzipped IDX file (the MNIST container) into an array."""
    with gzip.open(path, "rb") as handle:
        raw = handle.read()
    magic = int.from_bytes(raw[:4], "big")
    ndim = magic & 0xFF
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def read_frames(video: Path, indices: list[int]) -> dict[int, np.ndarray]:
    wanted = set(indices)
    capture = cv2.VideoCapture(str(video))
    frames: dict[int, np.ndarray] = {}
    index = 0
    while wanted - frames.keys():
        ok, frame = capture.read()
        if not ok:
            break
        if index in wanted:
            frames[index] = frame
        index += 1
    capture.release()
    missing = wanted - frames.keys()
    if missing:
        raise VigilError(f"could not decode frames {sorted(missing)[:5]}… of the clip", path=video)
    return frames


def crop_resize(image: np.ndarray, zoom: float, fx: float, fy: float, width: int, height: int) -> np.ndarray:
    """Take a window of `zoom` × the largest canvas-shaped window at offset (fx, fy), resized to the canvas."""
    h, w = image.shape[:2]
    scale = min(w / width, h / height) * zoom
    cw, ch = int(round(width * scale)), int(round(height * scale))
    x0 = int(round((w - cw) * fx))
    y0 = int(round((h - ch) * fy))
    window = image[y0:y0 + ch, x0:x0 + cw]
    return cv2.resize(window, (width, height), interpolation=cv2.INTER_AREA)


def tight_item(item: np.ndarray, threshold: int = 30) -> np.ndarray:
    """Crop a 28×28 product photo to the pixels brighter than `threshold` (its real extent)."""
    ys, xs = np.nonzero(item > threshold)
    return item[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]


def paste_item(canvas: np.ndarray, item: np.ndarray, x: int, y: int, size: int,
               colour: np.ndarray) -> tuple[int, int, int, int]:
    """Alpha-composite `item` (grey, intensity = alpha) with long side `size` at (x, y); returns its box."""
    ih, iw = item.shape
    scale = size / max(ih, iw)
    w, h = max(2, int(round(iw * scale))), max(2, int(round(ih * scale)))
    resized = cv2.resize(item, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255.0
    alpha = np.clip(resized * 1.8, 0.0, 1.0)[..., None]
    shade = (0.35 + 0.65 * resized)[..., None] * colour[None, None, :]
    region = canvas[y:y + h, x:x + w].astype(np.float32)
    canvas[y:y + h, x:x + w] = np.clip(region * (1 - alpha) + shade * alpha, 0, 255).astype(np.uint8)
    return x, y, w, h


def apply_scenario(image: np.ndarray, scenario: str, rng: np.random.Generator) -> np.ndarray:
    """Simulate dusk or night on the whole image (objects included); day leaves it unchanged."""
    if scenario == "day":
        return image
    x = image.astype(np.float32) / 255.0
    if scenario == "dusk":
        x = np.power(x, 1.3) * 0.7
        x *= np.array([0.8, 0.95, 1.1], dtype=np.float32)  # BGR: warmer
    elif scenario == "night":
        x = np.power(x, 1.5) * 0.55
        x *= np.array([1.15, 0.95, 0.8], dtype=np.float32)  # BGR: bluer
        x += rng.normal(0.0, 0.02, size=x.shape).astype(np.float32)
    else:
        raise ValueError(f"unknown scenario {scenario!r}")
    return np.clip(x * 255.0, 0, 255).astype(np.uint8)


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ax1, ay1, ax2, ay2 = a[0], a[1], a[0] + a[2], a[1] + a[3]
    bx1, by1, bx2, by2 = b[0], b[1], b[0] + b[2], b[1] + b[3]
    iw, ih = max(0, min(ax2, bx2) - max(ax1, bx1)), max(0, min(ay2, by2) - max(ay1, by1))
    inter = iw * ih
    return inter / float(a[2] * a[3] + b[2] * b[3] - inter)


def plan_vehicles(spec: SampleSpec, rng: np.random.Generator) -> list[Vehicle]:
    """Cut the clip into chunks (one camera window each) and name the photo families; pair some up."""
    vehicles: list[Vehicle] = []
    per = spec.frames_per_vehicle
    n_cctv_lab = math.ceil(spec.labelled * (1 - spec.stills_fraction) / per)
    n_cctv_pool = math.ceil(spec.pool * (1 - spec.stills_fraction) / per)
    if (n_cctv_lab + n_cctv_pool) * (per + spec.frame_gap) > 795:
        raise VigilError("the clip has 795 frames: too few for this many CCTV images",
                         hint="lower labelled/pool or frames_per_vehicle")
    start = 0
    for i in range(n_cctv_lab + n_cctv_pool):
        zoom = float(rng.uniform(0.55, 1.0))
        crop = (zoom, float(rng.uniform(0, 1)), float(rng.uniform(0, 1)))
        vehicles.append(Vehicle(f"v_cctv_{i:02d}", "cctv", "campus", i < n_cctv_lab,
                                frames=list(range(start, start + per)), crop=crop))
        start += per + spec.frame_gap
    names = list(PHOTO_FAMILIES)
    for j, name in enumerate(names):
        road_type, photos = PHOTO_FAMILIES[name]
        vehicles.append(Vehicle(f"v_photo_{name}", "stills", road_type, j < len(names) - POOL_FAMILIES,
                                photos=photos))
    # drivers: one per vehicle; every other pair of vehicles of the same kind shares its drivers
    for k, vehicle in enumerate(vehicles):
        vehicle.drivers = [f"d{k:02d}"]
    for kind in ("cctv", "stills"):
        for labelled in (True, False):
            group = [v for v in vehicles if v.stream == kind and v.labelled == labelled]
            for a, b in zip(group[0::4], group[1::4]):
                a.drivers.append(b.drivers[0])
                b.drivers.append(a.drivers[0])
    return vehicles


def driver_pools(drivers: list[str], fm_labels: np.ndarray, per_class: int,
                 rng: np.random.Generator) -> dict[str, dict[int, np.ndarray]]:
    """Give each driver its own disjoint pool of product instances per class."""
    pools: dict[str, dict[int, np.ndarray]] = {d: {} for d in drivers}
    for cls in FMNIST_CLASSES:
        candidates = rng.permutation(np.nonzero(fm_labels == cls)[0])
        need = per_class * len(drivers)
        if need > len(candidates):
            raise VigilError(f"Fashion-MNIST has {len(candidates)} items of class {cls}, {need} needed")
        for i, driver in enumerate(drivers):
            pools[driver][cls] = candidates[i * per_class:(i + 1) * per_class]
    return pools


def compose_image(background: np.ndarray, pool: dict[int, np.ndarray], fm_images: np.ndarray,
                  class_ids: dict[int, int], spec: SampleSpec,
                  rng: np.random.Generator) -> tuple[np.ndarray, list[Box], list[float]]:
    """Paste 0..max_objects products from one driver's pool; boxes are exact (normalized YOLO), and
    so is each one's distance (metres)."""
    canvas = background.copy()
    distances: list[float] = []
    n = 0 if rng.random() < spec.negative_fraction else int(rng.integers(1, spec.max_objects + 1))
    placed: list[tuple[int, int, int, int]] = []
    boxes: list[Box] = []
    lo, hi = math.log(spec.min_size), math.log(spec.max_size)
    for _ in range(n):
        fm_cls = int(rng.choice(list(FMNIST_CLASSES)))
        item = tight_item(fm_images[int(rng.choice(pool[fm_cls]))])
        size = int(round(math.exp(rng.uniform(lo, hi))))
        ih, iw = item.shape
        scale = size / max(ih, iw)
        w, h = max(2, int(round(iw * scale))), max(2, int(round(ih * scale)))
        if w >= spec.width or h >= spec.height:
            continue
        for _try in range(20):
            x = int(rng.integers(0, spec.width - w + 1))
            y = int(rng.integers(0, spec.height - h + 1))
            if all(_iou((x, y, w, h), other) < 0.15 for other in placed):
                break
        else:
            continue
        hue = int(rng.integers(0, 180))
        hsv = np.array([[[hue, int(rng.integers(60, 230)), int(rng.integers(170, 256))]]], dtype=np.uint8)
        colour = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0].astype(np.float32)
        box = paste_item(canvas, item, x, y, size, colour)
        placed.append(box)
        bx, by, bw, bh = box
        boxes.append(Box(class_ids[fm_cls], (bx + bw / 2) / spec.width, (by + bh / 2) / spec.height,
                         bw / spec.width, bh / spec.height))
        distances.append(distance_m(fm_cls, bw, bh))
    return canvas, boxes, distances


def _pick_scenario(rng: np.random.Generator) -> str:
    names, weights = zip(*SCENARIOS)
    return str(rng.choice(names, p=np.array(weights)))


def _read_photo(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise VigilError("source photo does not decode", path=path, hint="re-fetch the pinned sources")
    return image


def build_sample(source_root: Path, out: Path, spec: SampleSpec = SampleSpec()) -> dict[str, Any]:
    """Build the sample into `out` (atomically: the folder appears complete or not at all)."""
    rng = np.random.default_rng(spec.seed)
    opencv = source_root / sources.OPENCV_DATA
    fm_images = load_idx(source_root / sources.FMNIST_DATA / "train-images-idx3-ubyte.gz")
    fm_labels = load_idx(source_root / sources.FMNIST_DATA / "train-labels-idx1-ubyte.gz")
    class_ids = {fm: i for i, fm in enumerate(FMNIST_CLASSES)}
    vehicles = plan_vehicles(spec, rng)
    drivers = sorted({d for v in vehicles for d in v.drivers})
    pools = driver_pools(drivers, fm_labels, spec.instances_per_class, rng)
    frames = read_frames(opencv / "vtest.avi", [f for v in vehicles for f in v.frames])
    photos = {name: _read_photo(opencv / name) for v in vehicles for name in v.photos}

    jobs: list[tuple[Vehicle, int | None, bool]] = []  # (vehicle, frame index or None, labelled)
    for labelled, total in ((True, spec.labelled), (False, spec.pool)):
        group = [v for v in vehicles if v.labelled == labelled]
        n_stills = int(round(total * spec.stills_fraction))
        cctv = [(v, f) for v in group if v.stream == "cctv" for f in v.frames][: total - n_stills]
        stills = [v for v in group if v.stream == "stills"]
        jobs += [(v, f, labelled) for v, f in cctv]
        jobs += [(stills[i % len(stills)], None, labelled) for i in range(n_stills)]

    manifest: list[dict[str, Any]] = []
    counters = {True: 0, False: 0}
    with atomic_dir(out) as tmp:
        for vehicle, frame, labelled in progress(jobs, desc="composite sample", total=len(jobs)):
            if frame is not None:
                background = crop_resize(frames[frame], *vehicle.crop, spec.width, spec.height)
                source = f"opencv-doc:vtest.avi#frame={frame}"
            else:
                name = vehicle.photos[int(rng.integers(0, len(vehicle.photos)))]
                background = crop_resize(photos[name], float(rng.uniform(0.5, 1.0)), float(rng.uniform(0, 1)),
                                         float(rng.uniform(0, 1)), spec.width, spec.height)
                if rng.random() < 0.5:
                    background = np.ascontiguousarray(background[:, ::-1])
                source = f"opencv-doc:{name}"
            own, *shared = vehicle.drivers
            driver = shared[0] if shared and rng.random() < 0.25 else own
            image, boxes, distances = compose_image(background, pools[driver], fm_images, class_ids, spec, rng)
            scenario = _pick_scenario(rng)
            image = apply_scenario(image, scenario, rng)
            counters[labelled] += 1
            rel = f"images/{'lab' if labelled else 'pool'}/{counters[labelled]:06d}.jpg"
            ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, spec.jpeg_quality])
            assert ok
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(encoded.tobytes())
            label_text = "".join(b.to_line() + "\n" for b in boxes)
            label_rel = label_rel_for(rel) if labelled else "pool_truth/" + label_rel_for(rel).removeprefix("labels/")
            (tmp / label_rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / label_rel).write_text(label_text)
            manifest.append({"image": rel, "driver_id": driver, "vehicle_id": vehicle.vehicle_id,
                             "stream": vehicle.stream, "scenario": scenario, "road_type": vehicle.road_type,
                             "width": spec.width, "height": spec.height, "labelled": labelled, "source": source,
                             "intrinsics": camera(spec), "objects": {"distance": distances}})
        (tmp / MANIFEST).write_text("".join(json.dumps(m, sort_keys=True) + "\n" for m in manifest))
        (tmp / CLASSES).write_text("".join(name + "\n" for name in FMNIST_CLASSES.values()))
        provenance = _provenance(spec, vehicles)
        (tmp / "PROVENANCE.json").write_text(json.dumps(provenance, indent=2, sort_keys=True) + "\n")
    return provenance


def _provenance(spec: SampleSpec, vehicles: list[Vehicle]) -> dict[str, Any]:
    return {
        "builder": "vigil data build-sample (src/vigil/data/sample.py)",
        "spec": asdict(spec),
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "sources": [{"registry": "Debian bookworm", "package": p.name, "version": p.version,
                     "licence": p.licence, "files": p.files} for p in sources.PACKAGES],
        "classes": {name: f"Fashion-MNIST class {fm}" for fm, name in FMNIST_CLASSES.items()},
        "true_size_m": {name: TRUE_SIZE_M[fm] for fm, name in FMNIST_CLASSES.items()},
        "camera": camera(spec),
        "vehicles": [{"vehicle_id": v.vehicle_id, "stream": v.stream, "road_type": v.road_type,
                      "labelled": v.labelled, "drivers": v.drivers,
                      "frames": [v.frames[0], v.frames[-1]] if v.frames else None,
                      "photos": list(v.photos), "crop": list(v.crop) if v.frames else None} for v in vehicles],
        "pool_truth": "pool_truth/ holds the true boxes of the unlabelled pool: for measuring pseudo-labels only",
        "licence_note": "images composite Apache-2.0/BSD-3 OpenCV samples with MIT Fashion-MNIST items",
    }
