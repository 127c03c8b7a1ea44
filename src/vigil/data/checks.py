"""The dataset checks behind the `validate` stage and `vigil data check DIR`.

Great Expectations suites (see `expectations.py`) check fields, types, value sets, boxes and
coverage; the rest is checked here because it is about bytes and files, not tables: every image
decodes by its content and matches its recorded size (`image_inspection.py`), no path escapes the
dataset root, every manifest, label and split-list line is UTF-8, labels and images pair up, split
lists name images that exist, and the same picture does not sit under two drivers or vehicles
(`leakage.py`). Every finding names the file, the line and the field, the rule, and what to do.
Nothing is written into the dataset.

Validation is deterministic: images are judged in parallel but collected by path, the tables handed
to Great Expectations never make one of its metrics raise (its graph resolves metrics in set order,
so an exception there fails a run-dependent set of expectations), and the findings are sorted.
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd

from vigil.data.findings import CRITICAL, WARNING, Finding, Report
from vigil.data.image_inspection import ImageInfo, inspect_image
from vigil.data.label_rows import label_frame, read_label_rows
from vigil.data.layout import (
    CLASSES,
    GROUPS,
    IMAGE_SUFFIXES,
    IMAGES,
    LABELS,
    MANIFEST,
    STRATA,
    is_inside,
    is_safe_relpath,
    label_rel_for,
    list_images,
    list_label_files,
    parse_manifest,
    read_classes,
)
from vigil.data.leakage import LeakCandidate, find_leaks, near_duplicate_pairs
from vigil.data.manifest_frame import manifest_frame
from vigil.data.split_list_checks import check_split_lists
from vigil.errors import VigilError
from vigil.data.distance import DistanceParams, distance_problem, has_distances, images_per_bin
from vigil.params import ValidateParams
from vigil.progress import progress

__all__ = [
    "CRITICAL",
    "WARNING",
    "Finding",
    "Report",
    "check_dataset",
    "near_duplicate_pairs",
    "throughput",
]

Inspected = tuple[ImageInfo, str, bytes | None]  # the image, its label path, the label's bytes
MapFn = Callable[[Callable[[str], Inspected], list[str]], Iterable[Inspected]]
LABEL_BYTES = 1 << 20  # label files up to this size come back from the workers with the image
PARALLEL_MIN = 2048  # images below which one process decodes them (a pool costs more than it saves)


@dataclass
class Listing:
    """The manifest as read: records by line, and each usable image path with its (first) line."""

    records: dict[int, dict[str, Any]]
    listed: dict[str, int] = field(default_factory=dict)

    def record(self, rel: str) -> dict[str, Any]:
        return self.records[self.listed[rel]]


@dataclass
class Tree:
    """One walk of images/ and labels/: the regular files found, and whether a symlink was met.

    Without a symlink anywhere under them (the common case), a safe relative path under images/ or
    labels/ cannot resolve outside the dataset, and a file exists exactly when the walk saw it: the
    per-image `resolve` and `stat` calls (most of the listing's time at 100k images) are answered from
    this set. With one, every check takes the careful path through the file system.
    """

    files: set[str] = field(default_factory=set)
    links: bool = False

    def covers(self, rel: str) -> bool:
        # only a path in the walk's own spelling (no `//`, `./`, trailing `/`) is looked up in the set
        return (
            not self.links
            and rel.startswith((IMAGES + "/", LABELS + "/"))
            and PurePosixPath(rel).as_posix() == rel
        )

    def is_file(self, root: Path, rel: str) -> bool:
        return rel in self.files if self.covers(rel) else (root / rel).is_file()

    def is_inside(self, root: Path, rel: str) -> bool:
        return is_safe_relpath(rel) if self.covers(rel) else is_inside(root, rel)

    def images(self, root: Path) -> list[str]:
        if self.links:
            return list_images(root)
        return sorted(
            r
            for r in self.files
            if r.startswith(IMAGES + "/") and os.path.splitext(r)[1].lower() in IMAGE_SUFFIXES
        )

    def label_files(self, root: Path) -> list[str]:
        if self.links:
            return list_label_files(root)
        return sorted(r for r in self.files if r.startswith(LABELS + "/") and r.endswith(".txt"))


def _walk(root: Path) -> Tree:
    tree = Tree()
    for sub in (IMAGES, LABELS):
        top = root / sub
        if top.is_symlink():
            tree.links = True
            continue
        stack = [(str(top), sub + "/")] if top.is_dir() else []
        while stack:
            folder, prefix = stack.pop()
            try:
                with os.scandir(folder) as listing:
                    items = list(listing)
            except OSError:
                tree.links = True  # unlistable: let the careful path report what it finds
                continue
            for item in items:
                if item.is_symlink():
                    tree.links = True
                elif item.is_dir(follow_symlinks=False):
                    stack.append((item.path, prefix + item.name + "/"))
                elif item.is_file(follow_symlinks=False):
                    tree.files.add(prefix + item.name)
    return tree


def _check_disk_paths(root: Path, report: Report, tree: Tree) -> None:
    """Nothing on disk under images/ or labels/ may link outside the dataset root."""
    if not tree.links:
        return
    base = root.resolve()
    for sub in (IMAGES, LABELS):
        folder = root / sub
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if not path.is_symlink():
                continue
            try:
                target = path.resolve(strict=True)
                where = f"a symlink pointing outside the dataset ({target})"
            except (OSError, RuntimeError):
                target, where = None, "a symlink that loops or leads nowhere"
            if target is None or base not in target.parents:
                report.add(
                    CRITICAL,
                    "path_escape",
                    path.relative_to(root).as_posix(),
                    where,
                    "copy the file into the dataset folder instead of linking out of it",
                )


def _read_listing(root: Path, report: Report, tree: Tree) -> Listing:
    """Parse manifest.jsonl; record each image that is inside the dataset and exists."""
    parsed = parse_manifest(root / MANIFEST)
    for line, message in parsed.errors:
        report.add(
            CRITICAL,
            "manifest_json",
            MANIFEST,
            message,
            "each line must be one JSON object in UTF-8",
            line=line,
        )
    listing = Listing({m.line: m.record for m in parsed.lines})
    for line, record in sorted(listing.records.items()):
        rel = record.get("image")
        if not isinstance(rel, str):
            continue  # the GE suite reports missing / non-string image fields
        if not tree.is_inside(root, rel):
            report.add(
                CRITICAL,
                "path_escape",
                MANIFEST,
                f"image path {rel!r} is absolute or leaves the dataset",
                "use a path relative to the dataset folder, without '..'",
                line=line,
                field="image",
            )
        elif not tree.is_file(root, rel):
            report.add(
                CRITICAL,
                "image_missing",
                MANIFEST,
                f"image {rel!r} does not exist",
                "add the file or remove the line",
                line=line,
                field="image",
            )
        else:
            listing.listed.setdefault(rel, line)
        labelled = record.get("labelled", True)
        if not isinstance(labelled, bool):
            report.add(
                CRITICAL,
                "manifest_field_type",
                MANIFEST,
                f"value {labelled!r}",
                '"labelled" is true or false (leave it out for true)',
                line=line,
                field="labelled",
            )
    named = {r.get("image") for r in listing.records.values() if isinstance(r.get("image"), str)}
    for rel in tree.images(root):
        if rel not in named:
            report.add(
                WARNING,
                "image_unlisted",
                rel,
                "image has no manifest line, so it is ignored",
                "add a manifest line with its driver, vehicle and strata",
            )
    return listing


def _inspect_one(
    root: str, max_side: int, min_side: int, rel: str
) -> tuple[ImageInfo, str, bytes | None]:
    """One image judged, and its label file's bytes (None when unreadable or absent: the main
    process then reads it and names the problem). Module level, so a worker process gets it by name."""
    info = inspect_image(Path(root) / rel, max_side=max_side, min_side=min_side, rel=rel)
    label = label_rel_for(rel)
    try:
        with open(os.path.join(root, label), "rb") as handle:
            raw = handle.read(LABEL_BYTES + 1)
    except OSError:
        raw = None
    return info, label, raw if raw is not None and len(raw) <= LABEL_BYTES else None


def _process_map(workers: int) -> MapFn:
    """Decode in `workers` processes (the GIL binds threads in PIL's Python and in the hashing);
    chunks of images per task, so at 100k images the pool's own cost stays small. Few images, or
    one worker: decoded here."""

    def run(fn: Callable[[str], Inspected], items: list[str]) -> Iterator[Inspected]:
        if workers <= 1 or len(items) < PARALLEL_MIN:
            yield from map(fn, items)
            return
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        chunk = max(1, min(256, len(items) // (workers * 16)))
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
        try:
            yield from pool.map(fn, items, chunksize=chunk)
        finally:  # stopped early (an error, Ctrl-C): the chunks not started are dropped
            pool.shutdown(wait=True, cancel_futures=True)

    return run


def _inspect_images(
    root: Path,
    listing: Listing,
    params: ValidateParams,
    report: Report,
    expected_sha: dict[str, str] | None,
    map_fn: MapFn | None,
    texts: dict[str, bytes],
    label_of: dict[str, str],
) -> dict[str, ImageInfo]:
    """Decode every listed image in parallel; results are keyed by path, whatever order they finish in.
    Label files read on the way land in `texts` (label path → bytes), each image's label path in
    `label_of` (computed once, in the worker)."""
    rels = sorted(listing.listed)
    one = functools.partial(
        _inspect_one, str(root), params.max_image_side, params.min_image_side
    )
    mapper = map_fn or _process_map(params.workers)
    by_rel: dict[str, ImageInfo] = {}
    for info, label, raw in progress(mapper(one, rels), desc="decode images", total=len(rels)):
        by_rel[info.rel] = info
        label_of[info.rel] = label
        if raw is not None:
            texts[label] = raw
    for rel in rels:
        info = by_rel[rel]
        if expected_sha is not None and info.sha256 and expected_sha.get(rel) != info.sha256:
            report.add(
                CRITICAL,
                "hash_mismatch",
                rel,
                "the file differs from the hash stage's manifest",
                "re-run `dvc repro` so hash and validate see the same data",
            )
        if info.problem:
            report.add(CRITICAL, info.problem.rule, rel, info.problem.message, info.problem.hint)
            continue
        for key, actual in (("width", info.width), ("height", info.height)):
            recorded = listing.record(rel).get(key)
            if isinstance(recorded, int) and not isinstance(recorded, bool) and recorded != actual:
                report.add(
                    CRITICAL,
                    "image_size_mismatch",
                    MANIFEST,
                    f"{rel}: manifest says {key} {recorded}, the image is {actual}",
                    "fix the manifest or drop width/height to have them read from the image",
                    line=listing.listed[rel],
                    field=key,
                )
    return by_rel


def _read_labels(
    root: Path,
    listing: Listing,
    images: dict[str, ImageInfo],
    report: Report,
    tree: Tree,
    texts: dict[str, bytes],
    label_of: dict[str, str],
) -> tuple[list[str], pd.DataFrame, int]:
    """Pair labels with labelled images and parse them: (labelled images, label rows, negatives)."""
    labelled = [
        r for r in sorted(listing.listed) if listing.record(r).get("labelled", True) is not False
    ]
    rows: list[dict[str, Any]] = []
    negatives = 0
    for rel in labelled:
        label = label_of.get(rel) or label_rel_for(rel)
        if not tree.is_file(root, label):
            report.add(
                CRITICAL,
                "label_missing",
                rel,
                f"no label file {label}",
                'write an empty label file if the image truly has no object, or mark it "labelled": false',
            )
            continue
        found = read_label_rows(root, label, images[rel], report, texts.get(label))
        negatives += not found
        rows += found
    expected = {label_of.get(r) or label_rel_for(r) for r in labelled}
    on_disk = {label_of.get(r) or label_rel_for(r) for r in tree.images(root)}
    for label in tree.label_files(root):
        if label not in expected:
            reason = (
                "its image is not in the manifest or marked unlabelled"
                if label in on_disk
                else "no image matches it"
            )
            report.add(
                WARNING,
                "label_orphan",
                label,
                f"label file is not used: {reason}",
                "remove it, or add the image and its manifest line",
            )
    return labelled, label_frame(rows), negatives


def _check_distances(
    listing: Listing,
    labelled: list[str],
    labels: pd.DataFrame,
    distance: DistanceParams,
    report: Report,
) -> list[dict[str, Any]]:
    """Each labelled line's distances (one per label line, numbers ≥ 0: else a critical finding) and,
    when the dataset records any, one coverage row per distance bin (labelled images in it)."""
    per_file = labels["file"].value_counts() if len(labels) else pd.Series(dtype=int)
    pairs = []
    for rel in labelled:
        record = listing.record(rel)
        boxes = int(per_file.get(label_rel_for(rel), 0))
        problem = distance_problem(record, distance.field, boxes)
        if problem is not None:
            report.add(
                CRITICAL,
                "distance_value",
                MANIFEST,
                problem,
                f"give one distance in {distance.unit} (or null) per label line, in label order",
                line=listing.listed[rel],
                field=f"objects.{distance.field}",
            )
        pairs.append((record, boxes))
    if not has_distances([r for r, _ in pairs], distance.field):
        return []
    return [
        {"kind": "distance", "key": "distance", "value": name, "count": count}
        for name, count in images_per_bin(pairs, distance).items()
    ]


def _coverage_frame(
    manifest: pd.DataFrame, labels: pd.DataFrame, class_names: list[str], lines: list[int]
) -> pd.DataFrame:
    """One row per class (boxes) and per stratum value (labelled images)."""
    rows = []
    counts = labels["class_id"].value_counts(dropna=True) if len(labels) else pd.Series(dtype=int)
    for cid, name in enumerate(class_names):
        rows.append(
            {"kind": "class", "key": "class", "value": name, "count": int(counts.get(cid, 0))}
        )
    subset = manifest.loc[lines] if lines else manifest.iloc[0:0]
    for key in STRATA:
        if key in subset:
            for value, count in sorted(subset[key].dropna().astype(str).value_counts().items()):
                rows.append({"kind": "stratum", "key": key, "value": value, "count": int(count)})
    return pd.DataFrame(rows, columns=["kind", "key", "value", "count"])


def _run_expectations(
    frames: dict[str, pd.DataFrame],
    params: ValidateParams,
    class_names: list[str],
    docs_dir: Path | None,
    report: Report,
    min_images_per_bin: int = 0,
) -> None:
    """The GE suites; each unexpected row becomes a finding at its file and line."""
    from vigil.data.expectations import run_suites

    parameters = {
        "allowed_stream": params.allowed.stream,
        "allowed_scenario": params.allowed.scenario,
        "allowed_road_type": params.allowed.road_type,
        "max_image_side": params.max_image_side,
        "class_ids": list(range(len(class_names))),
        "min_per_class": params.min_per_class,
        "min_per_stratum": params.min_per_stratum,
        "min_images_per_bin": min_images_per_bin,
        "edge_low": -params.edge_tolerance,
        "edge_high": 1 + params.edge_tolerance,
        "min_box_side": params.min_box_side,
    }
    places = {"manifest": MANIFEST, "labels": LABELS, "coverage": "dataset"}
    for failure in run_suites(frames, parameters, docs_dir):
        frame = frames[failure.suite]
        if failure.exception or not failure.rows:
            report.add(
                failure.severity,
                failure.rule,
                places[failure.suite],
                failure.exception or f"expectation {failure.expectation} failed",
                failure.hint,
                field=failure.field,
            )
            continue
        for row, raw in zip(
            failure.rows, failure.values + [None] * len(failure.rows), strict=False
        ):
            value = (
                raw.item() if hasattr(raw, "item") else raw
            )  # numpy scalars print as plain numbers
            if failure.suite == "manifest":
                report.add(
                    failure.severity,
                    failure.rule,
                    MANIFEST,
                    f"value {value!r}",
                    failure.hint,
                    line=int(row),
                    field=failure.field,
                )
            elif failure.suite == "labels":
                item = frame.loc[row]
                report.add(
                    failure.severity,
                    failure.rule,
                    str(item.file),
                    f"value {value!r}",
                    failure.hint,
                    line=int(item.line),
                    field=failure.field,
                )
            else:
                item = frame.loc[row]
                report.add(
                    failure.severity,
                    failure.rule,
                    "dataset",
                    f"{item.key} {item.value!r} has {int(item['count'])}",
                    failure.hint,
                    field=str(item.key),
                )


def check_dataset(
    root: Path,
    params: ValidateParams,
    docs_dir: Path | None = None,
    expected_sha: dict[str, str] | None = None,
    *,
    map_fn: MapFn | None = None,
    distance: DistanceParams | None = None,
) -> Report:
    """Run every check on a canonical dataset folder; never modifies it.

    `expected_sha` (path → sha256, from the hash stage's per-file manifest) makes an image that
    changed since it was hashed a critical finding, so the graph never validates other bytes than
    it hashed. `docs_dir` receives Great Expectations data docs (HTML). `map_fn(fn, paths)` replaces
    the process pool that judges the images (tests use it to shuffle the order they finish in).
    `distance` checks each labelled line's per-object distances and the coverage of its bins.
    """
    started = time.perf_counter()
    root = Path(root)
    if not root.is_dir():
        raise VigilError(
            "not a folder",
            path=root,
            hint="pass the dataset folder (with images/, labels/, manifest.jsonl)",
        )
    report = Report(root=str(root))
    try:
        class_names = read_classes(root)
    except VigilError as exc:
        report.add(CRITICAL, "classes_file", CLASSES, exc.message, exc.hint or "", line=exc.line)
        class_names = []
    if not (root / MANIFEST).is_file():
        report.add(
            CRITICAL,
            "manifest_missing",
            MANIFEST,
            "manifest.jsonl is missing",
            "write one JSON object per image (image, driver_id, vehicle_id, stream, scenario, road_type)",
        )
        report.finish()
        report.seconds = time.perf_counter() - started
        return report
    tree = _walk(root)
    _check_disk_paths(root, report, tree)
    listing = _read_listing(root, report, tree)
    texts: dict[str, bytes] = {}
    label_of: dict[str, str] = {}
    images = _inspect_images(root, listing, params, report, expected_sha, map_fn, texts, label_of)
    labelled, labels, negatives = _read_labels(
        root, listing, images, report, tree, texts, label_of
    )
    check_split_lists(root, set(listing.listed), report)
    sizes = {
        listing.listed[rel]: (info.width, info.height)
        for rel, info in images.items()
        if not info.problem
    }
    manifest, problems = manifest_frame(listing.records, sizes)
    report.findings += problems
    coverage = _coverage_frame(manifest, labels, class_names, [listing.listed[r] for r in labelled])
    if distance is not None:
        bins = _check_distances(listing, labelled, labels, distance, report)
        coverage = pd.concat(
            [coverage, pd.DataFrame(bins, columns=coverage.columns)], ignore_index=True
        )
    if not listing.records:
        report.add(
            CRITICAL,
            "dataset_empty",
            MANIFEST,
            "the dataset has no images",
            "add images and their manifest lines",
        )
    elif not labelled:
        report.add(
            CRITICAL, "dataset_empty", MANIFEST, "no labelled image decodes", "fix the errors above"
        )
    frames = {"manifest": manifest, "labels": labels, "coverage": coverage}
    _run_expectations(
        frames,
        params,
        class_names,
        docs_dir,
        report,
        distance.min_images_per_bin if distance is not None else 0,
    )
    good = [info for info in images.values() if not info.problem]
    report.findings += find_leaks(
        [
            LeakCandidate(
                info.rel,
                listing.listed[info.rel],
                tuple(str(listing.record(info.rel).get(k)) for k in GROUPS),
                info.sha256,
                info.phash,
            )
            for info in good
        ],
        params.near_duplicate_bits,
    )
    report.coverage = coverage.to_dict("records")
    report.stats = {
        "images": len(listing.listed),
        "labelled": len(labelled),
        "unlabelled": len(listing.listed) - len(labelled),
        "boxes": int(len(labels)),
        "negatives": negatives,
        "classes": len(class_names),
    }
    report.finish()
    report.seconds = time.perf_counter() - started
    return report


def throughput(report: Report) -> float:
    images = report.stats.get("images", 0)
    return images / report.seconds if report.seconds > 0 else math.inf


def publish_validation(
    root: Path,
    params: ValidateParams,
    expected_sha: dict[str, str],
    metrics: Path,
    docs: Path,
    distance: DistanceParams | None = None,
) -> Report:
    """Check `root` and write the validate stage's outputs atomically: the GE data docs (gx/), the
    findings as text and as a self-contained page with thumbnails and coverage bars, the metrics."""
    from vigil.atomic import atomic_dir, write_json_atomic, write_text_atomic
    from vigil.data.findings_page import PAGE, findings_html, minimums_of

    with atomic_dir(docs) as tmp:
        report = check_dataset(
            root, params, docs_dir=tmp / "gx", expected_sha=expected_sha, distance=distance
        )
        write_text_atomic(tmp / "findings.txt", "".join(f.render() + "\n" for f in report.findings))
        write_text_atomic(tmp / PAGE, findings_html(root, report, minimums_of(params)))
    write_json_atomic(metrics, report.summary())
    return report
