"""The dataset checks behind the `validate` stage and `vigil data check DIR`.

Great Expectations suites (see `expectations.py`) check fields, types, value sets, boxes and
coverage; the rest is checked here because it is about bytes and files, not tables: every image
decodes by its content and matches its recorded size (absurd header sizes are refused before
decoding), no path escapes the dataset root, every manifest line is UTF-8 JSON, labels and images
pair up, and the same (or nearly the same) picture does not sit under two drivers or vehicles.
Every finding names the file, the line and the field, the rule, and what to do. Nothing is written
into the dataset.
"""

from __future__ import annotations

import hashlib
import io
import math
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vigil.data.layout import (CLASSES, GROUPS, IMAGES, LABELS, MANIFEST, REQUIRED_FIELDS, STRATA,
                               is_safe_relpath, label_rel_for, list_images, list_label_files,
                               parse_label_line, parse_manifest, read_classes)
from vigil.errors import VigilError
from vigil.params import ValidateParams
from vigil.progress import progress

CRITICAL = "critical"
WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    severity: str
    rule: str
    path: str
    message: str
    hint: str
    line: int | None = None
    field: str | None = None

    def render(self) -> str:
        where = self.path + (f":{self.line}" if self.line is not None else "")
        where += f" [{self.field}]" if self.field else ""
        prefix = "warning" if self.severity == WARNING else "error"
        return f"{prefix}: {where}: {self.message} ({self.rule}) — {self.hint}"


@dataclass
class ImageInfo:
    rel: str
    width: int = 0
    height: int = 0
    sha256: str = ""
    phash: bytes = b""
    error: tuple[str, str, str] | None = None  # (rule, message, hint)


@dataclass
class Report:
    root: str
    findings: list[Finding] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not any(f.severity == CRITICAL for f in self.findings)

    def add(self, severity: str, rule: str, path: str, message: str, hint: str,
            line: int | None = None, field: str | None = None) -> None:
        self.findings.append(Finding(severity, rule, path, message, hint, line, field))

    def summary(self) -> dict[str, Any]:
        """The metrics document: verdict, counts per rule and the findings (sorted, deterministic)."""
        rules = Counter(f"{f.severity}:{f.rule}" for f in self.findings)
        ordered = sorted(self.findings, key=lambda f: (f.severity != CRITICAL, f.path, f.line or 0, f.rule))
        return {"passed": self.passed,
                "critical": sum(f.severity == CRITICAL for f in self.findings),
                "warnings": sum(f.severity == WARNING for f in self.findings),
                "rules": dict(sorted(rules.items())), **self.stats,
                "findings": [asdict(f) for f in ordered[:500]],
                "findings_truncated": max(0, len(ordered) - 500)}


def perceptual_hash(gray: np.ndarray) -> bytes:
    """64-bit DCT perceptual hash: robust to re-encoding, resizing and small edits."""
    import cv2

    small = cv2.resize(gray.astype(np.float32), (32, 32), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:8, :8].flatten()
    bits = low > np.median(low[1:])
    return np.packbits(bits).tobytes()


def inspect_image(root: Path, rel: str, max_side: int) -> ImageInfo:
    """Read one image by its content: header size first (refuse absurd ones), then a full decode."""
    from PIL import Image, UnidentifiedImageError

    # Pillow's own bomb guard would make an absurd header look like "not an image"; we enforce
    # `max_side` on the header ourselves, before any pixel is decoded.
    Image.MAX_IMAGE_PIXELS = None
    info = ImageInfo(rel)
    try:
        data = (root / rel).read_bytes()
    except OSError as exc:
        info.error = ("image_unreadable", f"cannot read the file ({exc.strerror})", "check the file's permissions")
        return info
    info.sha256 = hashlib.sha256(data).hexdigest()
    if not data:
        info.error = ("image_decode", "the file is empty", "replace it with the real image or remove it and its manifest line")
        return info
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width <= 0 or height <= 0 or width > max_side or height > max_side:
                info.error = ("image_header_size", f"the header claims {width}x{height} pixels (limit {max_side})",
                              "the file is corrupt or hostile; re-export it (or raise validate.max_image_side)")
                return info
            image.load()
            gray = np.asarray(image.convert("L"))
    except UnidentifiedImageError:
        info.error = ("image_decode", "not an image (its content matches no image format)",
                      "replace it with the real image or remove it and its manifest line")
        return info
    except (OSError, ValueError, SyntaxError) as exc:
        info.error = ("image_decode", f"does not decode ({exc})", "the file is truncated or corrupt; re-export it")
        return info
    info.width, info.height = width, height
    info.phash = perceptual_hash(gray)
    return info


def near_duplicate_pairs(hashes: list[bytes], max_bits: int) -> list[tuple[int, int, int]]:
    """Pairs (i, j, distance) of 64-bit hashes within `max_bits`, searched with a faiss binary index."""
    import faiss

    if len(hashes) < 2:
        return []
    codes = np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(len(hashes), 8)
    index = faiss.IndexBinaryFlat(64)
    index.add(codes)
    lims, distances, ids = index.range_search(codes, max_bits + 1)
    pairs = []
    for i in range(len(hashes)):
        for k in range(lims[i], lims[i + 1]):
            j = int(ids[k])
            if j > i:
                pairs.append((i, j, int(distances[k])))
    return pairs


def _label_rows(root: Path, rel: str, report: Report) -> list[dict[str, Any]]:
    rows = []
    text_bytes = (root / rel).read_bytes()
    try:
        text = text_bytes.decode("utf-8")
    except UnicodeDecodeError:
        report.add(CRITICAL, "label_syntax", rel, "not valid UTF-8 text", "label files are plain text: class cx cy w h")
        return rows
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            box = parse_label_line(line)
        except ValueError as exc:
            report.add(CRITICAL, "label_syntax", rel, str(exc), "each line is `class cx cy w h` (YOLO, normalized)",
                       line=number)
            continue
        rows.append({"file": rel, "line": number, "class_id": box.cls, "cx": box.cx, "cy": box.cy,
                     "w": box.w, "h": box.h})
    return rows


def _finish_label_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["file", "line", "class_id", "cx", "cy", "w", "h"])
    frame["class_id"] = frame["class_id"].astype("Int64")
    for col in ("cx", "cy", "w", "h"):
        frame[col] = frame[col].astype(float)
        frame.loc[~np.isfinite(frame[col]), col] = np.nan
    frame["x_min"] = frame.cx - frame.w / 2
    frame["x_max"] = frame.cx + frame.w / 2
    frame["y_min"] = frame.cy - frame.h / 2
    frame["y_max"] = frame.cy + frame.h / 2
    overlap_w = (frame.x_max.clip(upper=1) - frame.x_min.clip(lower=0)).clip(lower=0)
    overlap_h = (frame.y_max.clip(upper=1) - frame.y_min.clip(lower=0)).clip(lower=0)
    frame["inside"] = overlap_w * overlap_h
    return frame


def _check_disk_paths(root: Path, report: Report) -> None:
    """Nothing on disk under images/ or labels/ may link outside the dataset root."""
    base = root.resolve()
    for sub in (IMAGES, LABELS):
        folder = root / sub
        if not folder.is_dir():
            continue
        for path in folder.rglob("*"):
            if path.is_symlink():
                target = path.resolve()
                if base not in target.parents:
                    report.add(CRITICAL, "path_escape", path.relative_to(root).as_posix(),
                               f"a symlink pointing outside the dataset ({target})",
                               "copy the file into the dataset folder instead of linking out of it")


def check_dataset(root: Path, params: ValidateParams = ValidateParams(), docs_dir: Path | None = None,
                  expected_sha: dict[str, str] | None = None) -> Report:
    """Run every check on a canonical dataset folder; never modifies it.

    `expected_sha` (path → sha256, from the hash stage's per-file manifest) makes an image that
    changed since it was hashed a critical finding, so the graph never validates other bytes than
    it hashed. `docs_dir` receives Great Expectations data docs (HTML).
    """
    started = time.perf_counter()
    root = Path(root)
    report = Report(root=str(root))
    if not root.is_dir():
        raise VigilError("not a folder", path=root, hint="pass the dataset folder (with images/, labels/, manifest.jsonl)")
    try:
        class_names = read_classes(root)
    except VigilError as exc:
        report.add(CRITICAL, "classes_file", CLASSES, exc.message, exc.hint or "", line=exc.line)
        class_names = []
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        report.add(CRITICAL, "manifest_missing", MANIFEST, "manifest.jsonl is missing",
                   "write one JSON object per image (image, driver_id, vehicle_id, stream, scenario, road_type)")
        report.seconds = time.perf_counter() - started
        return report
    parsed = parse_manifest(manifest_path)
    for line, message in parsed.errors:
        report.add(CRITICAL, "manifest_json", MANIFEST, message, "each line must be one JSON object in UTF-8", line=line)
    _check_disk_paths(root, report)

    records = {m.line: m.record for m in parsed.lines}
    images_on_disk = set(list_images(root))
    listed: dict[str, int] = {}  # image rel → manifest line
    for line, record in records.items():
        rel = record.get("image")
        if not isinstance(rel, str):
            continue  # the GE suite reports missing / non-string image fields
        if not is_safe_relpath(rel) or ((root / rel).resolve() != root.resolve() / rel and
                                        root.resolve() not in (root / rel).resolve().parents):
            report.add(CRITICAL, "path_escape", MANIFEST, f"image path {rel!r} is absolute or leaves the dataset",
                       "use a path relative to the dataset folder, without '..'", line=line, field="image")
            continue
        if not (root / rel).is_file():
            report.add(CRITICAL, "image_missing", MANIFEST, f"image {rel!r} does not exist",
                       "add the file or remove the line", line=line, field="image")
            continue
        listed.setdefault(rel, line)
    for rel in sorted(images_on_disk - set(listed)):
        if not any(r.get("image") == rel for r in records.values()):
            report.add(WARNING, "image_unlisted", rel, "image has no manifest line, so it is ignored",
                       "add a manifest line with its driver, vehicle and strata")

    # images: decode by content, in parallel
    rels = sorted(listed)
    with ThreadPoolExecutor(max_workers=max(1, params.workers)) as pool:
        infos = list(progress(pool.map(lambda r: inspect_image(root, r, params.max_image_side), rels),
                              desc="decode images", total=len(rels)))
    by_rel = {info.rel: info for info in infos}
    for info in infos:
        if expected_sha is not None and info.sha256 and expected_sha.get(info.rel) != info.sha256:
            report.add(CRITICAL, "hash_mismatch", info.rel, "the file differs from the hash stage's manifest",
                       "re-run `dvc repro` so hash and validate see the same data")
        if info.error:
            rule, message, hint = info.error
            report.add(CRITICAL, rule, info.rel, message, hint)
            continue
        record = records[listed[info.rel]]
        for key, actual in (("width", info.width), ("height", info.height)):
            recorded = record.get(key)
            if isinstance(recorded, int) and not isinstance(recorded, bool) and recorded != actual:
                report.add(CRITICAL, "image_size_mismatch", MANIFEST,
                           f"{info.rel}: manifest says {key} {recorded}, the image is {actual}",
                           "fix the manifest or drop width/height to have them read from the image",
                           line=listed[info.rel], field=key)

    # labels: pair with images, parse, collect rows for the GE suite
    labelled_rels = [r for r in rels if records[listed[r]].get("labelled", True) is not False]
    label_rows: list[dict[str, Any]] = []
    expected_labels = {label_rel_for(r): r for r in labelled_rels}
    negatives = 0
    for rel in labelled_rels:
        label = label_rel_for(rel)
        if not (root / label).is_file():
            report.add(CRITICAL, "label_missing", rel, f"no label file {label}",
                       "write an empty label file if the image truly has no object, or mark it \"labelled\": false")
            continue
        rows = _label_rows(root, label, report)
        negatives += not rows
        label_rows += rows
    all_images = {label_rel_for(r) for r in images_on_disk}
    for label in list_label_files(root):
        if label not in expected_labels:
            reason = "its image is not in the manifest or marked unlabelled" if label in all_images else "no image matches it"
            report.add(WARNING, "label_orphan", label, f"label file is not used: {reason}",
                       "remove it, or add the image and its manifest line")

    labels = _finish_label_frame(label_rows)
    manifest_frame = pd.DataFrame([records[line] for line in sorted(records)], index=sorted(records))
    for col in REQUIRED_FIELDS:
        if col in manifest_frame:
            manifest_frame[col] = manifest_frame[col].astype(object).where(manifest_frame[col].notna(), None)
    coverage = _coverage_frame(manifest_frame, labels, class_names, labelled_rels, listed)

    if not records:
        report.add(CRITICAL, "dataset_empty", MANIFEST, "the dataset has no images",
                   "add images and their manifest lines")
    elif not labelled_rels:
        report.add(CRITICAL, "dataset_empty", MANIFEST, "no labelled image decodes", "fix the errors above")

    from vigil.data.expectations import run_suites

    parameters = {
        "allowed_stream": params.allowed.stream, "allowed_scenario": params.allowed.scenario,
        "allowed_road_type": params.allowed.road_type, "max_image_side": params.max_image_side,
        "class_ids": list(range(len(class_names))), "min_per_class": params.min_per_class,
        "min_per_stratum": params.min_per_stratum, "edge_low": -params.edge_tolerance,
        "edge_high": 1 + params.edge_tolerance,
    }
    frames = {"manifest": manifest_frame, "labels": labels, "coverage": coverage}
    for failure in run_suites(frames, parameters, docs_dir):
        frame = frames[_suite_of(failure.rule, frames)]
        if failure.exception or not failure.rows:
            where = MANIFEST if frame is manifest_frame else (LABELS if frame is labels else "dataset")
            report.add(failure.severity, failure.rule, where,
                       failure.exception or f"expectation {failure.expectation} failed", failure.hint,
                       field=failure.field)
            continue
        for row, value in zip(failure.rows, failure.values + [None] * len(failure.rows)):
            if frame is manifest_frame:
                report.add(failure.severity, failure.rule, MANIFEST, f"value {value!r}", failure.hint,
                           line=int(row), field=failure.field)
            elif frame is labels:
                item = labels.loc[row]
                report.add(failure.severity, failure.rule, str(item.file), f"value {value!r}", failure.hint,
                           line=int(item.line), field=failure.field)
            else:
                item = coverage.loc[row]
                report.add(failure.severity, failure.rule, "dataset",
                           f"{item.key} {item.value!r} has {int(item['count'])}", failure.hint, field=str(item.key))

    _check_leakage(records, listed, by_rel, params, report)
    report.stats = {
        "images": len(rels), "labelled": len(labelled_rels), "unlabelled": len(rels) - len(labelled_rels),
        "boxes": int(len(labels)), "negatives": negatives, "classes": len(class_names),
    }
    report.seconds = time.perf_counter() - started
    return report


def _suite_of(rule: str, frames: dict[str, pd.DataFrame]) -> str:
    if rule.startswith("manifest_"):
        return "manifest"
    if rule.startswith("coverage_"):
        return "coverage"
    return "labels"


def _coverage_frame(manifest: pd.DataFrame, labels: pd.DataFrame, class_names: list[str],
                    labelled_rels: list[str], listed: dict[str, int]) -> pd.DataFrame:
    rows = []
    counts = labels["class_id"].value_counts(dropna=True) if len(labels) else pd.Series(dtype=int)
    for cid, name in enumerate(class_names):
        rows.append({"kind": "class", "key": "class", "value": name, "count": int(counts.get(cid, 0))})
    lines = [listed[r] for r in labelled_rels]
    subset = manifest.loc[lines] if lines else manifest.iloc[0:0]
    for key in STRATA:
        if key in subset:
            for value, count in sorted(subset[key].dropna().astype(str).value_counts().items()):
                rows.append({"kind": "stratum", "key": key, "value": value, "count": int(count)})
    return pd.DataFrame(rows, columns=["kind", "key", "value", "count"])


def _check_leakage(records: dict[int, dict[str, Any]], listed: dict[str, int], by_rel: dict[str, ImageInfo],
                   params: ValidateParams, report: Report) -> None:
    """Identical bytes (critical) or near-identical pictures (warning) under two drivers or vehicles."""
    good = [info for info in by_rel.values() if not info.error]
    groups = {info.rel: tuple(str(records[listed[info.rel]].get(k)) for k in GROUPS) for info in good}
    by_sha: dict[str, list[str]] = {}
    for info in good:
        by_sha.setdefault(info.sha256, []).append(info.rel)
    for rels in by_sha.values():
        first = rels[0]
        for other in rels[1:]:
            if groups[other] != groups[first]:
                report.add(CRITICAL, "leak_identical", other,
                           f"identical bytes to {first} but under driver/vehicle {groups[other]} vs {groups[first]}",
                           "an image may belong to one driver and one vehicle: remove the copy or fix its ids",
                           line=listed[other], field="driver_id vehicle_id")
    pairs = near_duplicate_pairs([info.phash for info in good], params.near_duplicate_bits)
    for i, j, distance in pairs:
        a, b = good[i].rel, good[j].rel
        # pairs sharing a driver or a vehicle already stay in one split; the others can leak
        if good[i].sha256 != good[j].sha256 and not set(groups[a]) & set(groups[b]):
            report.add(WARNING, "leak_near_duplicate", b,
                       f"near-duplicate of {a} ({distance}/64 bits apart) sharing neither driver nor vehicle",
                       "check the two are different scenes; if not, give them the same driver and vehicle",
                       line=listed[b], field="driver_id vehicle_id")


def throughput(report: Report) -> float:
    images = report.stats.get("images", 0)
    return images / report.seconds if report.seconds > 0 else math.inf
