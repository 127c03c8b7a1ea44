"""Deterministic group split: train / val / test by connected groups, stratified; pool kept apart.

Labelled images that share a value of any group key (driver_id, vehicle_id, and `session` where the
manifest has one) or identical bytes (same sha256) form one component, and components are never cut:
that is what keeps a driver, a vehicle or a duplicated frame out of two splits. Components are placed
greedily, largest first (ties in a seeded order), each into the split where it lowers a cost that
weighs (1) each split's image count against its fraction, (2) the stratify values and the classes
against the same fractions, and (3) a penalty for a (split, value) cell left empty. A local search of
moves and swaps then polishes the result. `group_overlap` re-checks the final lists from the manifest
alone, independent of how they were made; any overlap fails the stage.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.atomic import atomic_dir, write_json_atomic
from vigil.data.layout import label_rel_for, read_classes, read_labels, read_manifest, resolve_inside
from vigil.data.sources import sha256_file
from vigil.errors import VigilError
from vigil.params import SplitParams

SPLITS: tuple[str, ...] = ("train", "val", "test")
POOL = "pool"
LIST_FILES: frozenset[str] = frozenset(f"{name}.txt" for name in (*SPLITS, POOL))
IMPLICIT_GROUP_KEYS: tuple[str, ...] = ("session",)  # grouped on whenever a manifest line has it
FRACTION_TOLERANCE = 1e-6
SIZE_WEIGHT = 2.0              # image counts weigh as much as the strata and the classes together
EMPTY_SPLIT_PENALTY = 1000.0   # a split with a positive fraction never ends empty if avoidable
EMPTY_CELL_PENALTY = 0.1       # an empty (split, value) cell is worth ~15 points of fraction error
FAR_OFF_SPLIT = 0.2            # warn when a split's share of images is off its target by >20 % (relative)
FAR_OFF_CELL = 0.5             # … and a (split, value) share by >50 % (relative)
FAR_OFF_MIN = 2                # … and by at least this many images or boxes (tiny values are noise)
SWAP_LIMIT = 300               # above this many components the polish tries moves only (swaps are O(n²))
MAX_PASSES = 20


@dataclass(frozen=True)
class ImageInfo:
    """One manifest image with what the split needs: its record, content digest and box classes."""

    path: str
    record: Mapping[str, Any]
    digest: str
    classes: tuple[int, ...] = ()   # one class id per box
    labelled: bool = True


@dataclass
class GroupOverlap:
    """Group values (per key) and identical-content pairs found in more than one split."""

    per_key: dict[str, int]
    content_pairs: int
    examples: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.per_key.values()) + self.content_pairs

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "per_key": dict(self.per_key), "content_pairs": self.content_pairs}


@dataclass
class SplitResult:
    lists: dict[str, list[str]]     # train/val/test/pool → sorted image paths
    metrics: dict[str, Any]
    warnings: list[str]


# ---------------------------------------------------------------- params and groups


def group_value(record: Mapping[str, Any], key: str) -> str | None:
    """The value an image is grouped on for `key`; absent, null or empty means no group."""
    value = record.get(key)
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def effective_group_keys(keys: Sequence[str], records: Iterable[Mapping[str, Any]]) -> list[str]:
    """The configured group keys plus the implicit ones (`session`) that some manifest line has."""
    present = {k for r in records for k in r}
    return list(keys) + [k for k in IMPLICIT_GROUP_KEYS if k in present and k not in keys]


def check_params(params: SplitParams, records: Sequence[Mapping[str, Any]]) -> None:
    """Refuse fractions that are negative or do not sum to 1, and keys no manifest line has."""
    fractions = {name: getattr(params, name) for name in SPLITS}
    for name, value in fractions.items():
        if value < 0:
            raise VigilError(f"fraction {value} is negative", field=f"split.{name}",
                             hint="use fractions in [0, 1] that sum to 1")
    total = sum(fractions.values())
    if abs(total - 1.0) > FRACTION_TOLERANCE:
        raise VigilError(f"train + val + test = {total:g}, not 1", field="split",
                         hint="make the three fractions sum to 1")
    present = {k for r in records for k in r}
    for section, keys in (("group_keys", params.group_keys), ("stratify", params.stratify)):
        for key in keys:
            if key not in present:
                raise VigilError(f"no manifest line has the key {key!r}", field=f"split.{section}",
                                 hint=f"use keys the manifest has: {', '.join(sorted(present))}")


def _components(images: Sequence[ImageInfo], keys: Sequence[str]) -> list[list[int]]:
    """Union-find: images sharing any group value or a sha256 end in one component."""
    parent = list(range(len(images)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[tuple[str, str], int] = {}
    for i, image in enumerate(images):
        links = [(k, v) for k in keys if (v := group_value(image.record, k)) is not None]
        for link in [*links, ("\0sha256", image.digest)]:
            j = first.setdefault(link, i)
            parent[find(i)] = find(j)
    members: dict[int, list[int]] = defaultdict(list)
    for i in range(len(images)):
        members[find(i)].append(i)
    return sorted(members.values(), key=lambda m: images[m[0]].path)


# ---------------------------------------------------------------- the overlap check


def group_overlap(lists: Mapping[str, Sequence[str]], images: Mapping[str, ImageInfo],
                  keys: Sequence[str]) -> GroupOverlap:
    """Count, from the final lists alone, group values and identical bytes shared across splits."""
    seen: dict[str, dict[str, set[str]]] = {k: defaultdict(set) for k in keys}
    by_digest: dict[str, Counter[str]] = defaultdict(Counter)
    for split in SPLITS:
        for path in lists.get(split, ()):
            image = images[path]
            for key in keys:
                if (value := group_value(image.record, key)) is not None:
                    seen[key][value].add(split)
            by_digest[image.digest][split] += 1
    per_key: dict[str, int] = {}
    examples: list[str] = []
    for key in keys:
        shared = sorted(v for v, where in seen[key].items() if len(where) > 1)
        per_key[key] = len(shared)
        examples += [f"{key}={v} in {'+'.join(s for s in SPLITS if s in seen[key][v])}" for v in shared[:3]]
    pairs = 0
    for digest, counts in sorted(by_digest.items()):
        n = [counts[s] for s in SPLITS]
        crossing = n[0] * n[1] + n[0] * n[2] + n[1] * n[2]
        if crossing and len(examples) < 9:
            examples.append(f"sha256 {digest[:12]}… in {'+'.join(s for s in SPLITS if counts[s])}")
        pairs += crossing
    return GroupOverlap(per_key, pairs, examples)


def check_group_overlap(overlap: GroupOverlap) -> None:
    """Fail when any group or identical image sits in two splits."""
    if overlap.total:
        raise VigilError(f"group_overlap is {overlap.total} (per key {overlap.per_key}, identical-content "
                         f"pairs {overlap.content_pairs}), e.g. {'; '.join(overlap.examples)}",
                         field="group_overlap", hint="the split lists leak groups across splits; do not train on them")


# ---------------------------------------------------------------- assignment


class _Balance:
    """Per-split counts over dimensions (images, stratum values, classes) and the cost of them."""

    def __init__(self, totals: list[int], weights: list[float], fractions: list[float]) -> None:
        self.totals, self.weights, self.fractions = totals, weights, fractions
        self.counts = [[0] * len(totals) for _ in fractions]

    def cell(self, s: int, d: int, c: int) -> float:
        target = self.fractions[s] * self.totals[d]
        cost = self.weights[d] * ((c - target) / self.totals[d]) ** 2
        if c == 0 and self.fractions[s] > 0:
            cost += EMPTY_SPLIT_PENALTY if d == 0 else EMPTY_CELL_PENALTY
        return cost

    def delta(self, s: int, change: Mapping[int, int]) -> float:
        row = self.counts[s]
        return sum(self.cell(s, d, row[d] + v) - self.cell(s, d, row[d]) for d, v in change.items() if v)

    def apply(self, s: int, change: Mapping[int, int]) -> None:
        for d, v in change.items():
            self.counts[s][d] += v


def _diff(a: Mapping[int, int], b: Mapping[int, int]) -> dict[int, int]:
    """a − b over sparse count vectors."""
    out = dict(a)
    for d, v in b.items():
        out[d] = out.get(d, 0) - v
    return out


def _assign(vectors: list[dict[int, int]], order: list[int], balance: _Balance, active: list[int]) -> list[int]:
    """Greedy placement in `order`, then moves and swaps while they lower the cost."""
    where = [-1] * len(vectors)
    for c in order:
        best = min(active, key=lambda s: (balance.delta(s, vectors[c]), s))
        balance.apply(best, vectors[c])
        where[c] = best
    negated = [{d: -v for d, v in vec.items()} for vec in vectors]
    for _ in range(MAX_PASSES):
        improved = False
        for c in order:
            a = where[c]
            moves = [(balance.delta(a, negated[c]) + balance.delta(b, vectors[c]), b) for b in active if b != a]
            gain, b = min(moves, default=(0.0, a))
            if gain < -1e-12:
                balance.apply(a, negated[c])
                balance.apply(b, vectors[c])
                where[c], improved = b, True
        if len(vectors) <= SWAP_LIMIT:
            for i, c in enumerate(order):
                for e in order[i + 1:]:
                    a, b = where[c], where[e]
                    if a == b:
                        continue
                    to_a, to_b = _diff(vectors[e], vectors[c]), _diff(vectors[c], vectors[e])
                    if balance.delta(a, to_a) + balance.delta(b, to_b) < -1e-12:
                        balance.apply(a, to_a)
                        balance.apply(b, to_b)
                        where[c], where[e], improved = b, a, True
        if not improved:
            break
    return where


def group_split(images: Sequence[ImageInfo], class_names: Sequence[str], params: SplitParams,
                seed: int) -> SplitResult:
    """Split labelled images into train/val/test by whole group components; unlabelled go to pool."""
    records = [im.record for im in images]
    check_params(params, records)
    keys = effective_group_keys(params.group_keys, records)
    labelled = sorted((im for im in images if im.labelled), key=lambda im: im.path)
    pool = sorted((im for im in images if not im.labelled), key=lambda im: im.path)
    fractions = [float(getattr(params, s)) for s in SPLITS]
    active = [s for s, f in enumerate(fractions) if f > 0]
    components = _components(labelled, keys)
    if len(components) < len(active):
        raise VigilError(f"{len(labelled)} labelled images form only {len(components)} group component(s), "
                         f"fewer than the {len(active)} splits to fill", field="split.group_keys",
                         hint="add labelled images from more drivers/vehicles, or set an unneeded fraction to 0")

    # dimensions: 0 = images, then each stratum value, then each class (boxes)
    strata = {k: sorted({v for im in labelled if (v := group_value(im.record, k)) is not None})
              for k in params.stratify}
    dims: list[tuple[str, str]] = [("images", "")] + [(k, v) for k in strata for v in strata[k]]
    index = {dim: d for d, dim in enumerate(dims)}
    class_dim = {cls: len(dims) + cls for cls in range(len(class_names))}
    dims += [("class", name) for name in class_names]
    vectors: list[dict[int, int]] = []
    for members in components:
        vec: Counter[int] = Counter({0: len(members)})
        for i in members:
            im = labelled[i]
            vec.update(index[(k, v)] for k in strata if (v := group_value(im.record, k)) is not None)
            vec.update(class_dim[cls] for cls in im.classes)
        vectors.append(dict(vec))
    totals = [sum(vec.get(d, 0) for vec in vectors) for d in range(len(dims))]
    weights = [SIZE_WEIGHT] + [0.0] * (len(dims) - 1)
    for k, values in strata.items():
        for v in values:
            weights[index[(k, v)]] = 1.0 / (len(strata) * len(values))
    present = [d for d in class_dim.values() if totals[d]]
    for d in present:
        weights[d] = 1.0 / len(present)
    balance = _Balance([max(t, 1) for t in totals], weights, fractions)

    rng = random.Random(seed)
    tiebreak = [rng.random() for _ in components]
    order = sorted(range(len(components)), key=lambda c: (-len(components[c]), tiebreak[c]))
    where = _assign(vectors, order, balance, active)

    lists = {s: sorted(labelled[i].path for c, members in enumerate(components) if SPLITS[where[c]] == s
                       for i in members) for s in SPLITS}
    lists[POOL] = [im.path for im in pool]
    by_path = {im.path: im for im in images}
    overlap = group_overlap(lists, by_path, keys)
    warnings = _warnings(dims, totals, balance.counts, fractions, vectors, where, components)
    leaks = pool_test_leaks(pool, [by_path[p] for p in lists["test"]], keys)
    if leaks:
        examples = "; ".join(f"{p} ({why})" for p, why in leaks[:3])
        warnings.append(f"pool: {len(leaks)} unlabelled image(s) share a group or identical bytes with test "
                        f"images, e.g. {examples} — keep them out of pseudo-labelled training data")
    metrics = _metrics(lists, by_path, class_names, strata, where, fractions, overlap, warnings, keys, params, seed)
    metrics["splits"][POOL]["shares_group_with_test"] = len(leaks)
    check_group_overlap(overlap)
    return SplitResult(lists, metrics, warnings)


# ---------------------------------------------------------------- report


def _warnings(dims: list[tuple[str, str]], totals: list[int], counts: list[list[int]], fractions: list[float],
              vectors: list[dict[int, int]], where: list[int], components: list[list[int]]) -> list[str]:
    """Every split far off its fraction and every (split, value) cell empty or far off, with the reason."""
    out: list[str] = []
    largest = max(len(m) for m in components)
    for s, name in enumerate(SPLITS):
        f = fractions[s]
        if f <= 0:
            continue
        share = counts[s][0] / totals[0]
        if abs(share - f) > FAR_OFF_SPLIT * f:
            out.append(f"{name}: {share:.3f} of the labelled images, target {f:.3f} — groups are coarse "
                       f"({len(components)} components, the largest {largest} images)")
        for d in range(1, len(dims)):
            key, value = dims[d]
            if not totals[d]:
                continue
            what = f"class {value!r}" if key == "class" else f"{key}={value}"
            unit = "boxes" if key == "class" else "images"
            holders = [c for c, vec in enumerate(vectors) if vec.get(d)]
            c = counts[s][d]
            if c == 0:
                if len(holders) < sum(1 for x in fractions if x > 0):
                    why = f"its {totals[d]} {unit} lie in only {len(holders)} group component(s)"
                else:
                    places = ", ".join(sorted({SPLITS[where[h]] for h in holders}))
                    why = (f"its {len(holders)} components all went to {places}: "
                           f"moving one here would put the split fractions further off")
                out.append(f"{name}: no {what} ({why})")
            elif abs(c / totals[d] - f) > FAR_OFF_CELL * f and abs(c - f * totals[d]) >= FAR_OFF_MIN:
                out.append(f"{name}: {c} of {totals[d]} {what} {unit} ({c / totals[d]:.3f}, target {f:.3f}) — "
                           f"they lie in {len(holders)} group component(s), the largest "
                           f"{max(vectors[h][d] for h in holders)} {unit}")
    missing = [value for (key, value), t in zip(dims, totals) if key == "class" and not t]
    if missing:
        out.append(f"classes with no boxes in the labelled images: {', '.join(missing)}")
    return out


def pool_test_leaks(pool: Sequence[ImageInfo], test: Sequence[ImageInfo], keys: Sequence[str]) -> list[tuple[str, str]]:
    """Pool images sharing a group value or identical bytes with a test image: (path, what is shared)."""
    test_values = {(k, v) for im in test for k in keys if (v := group_value(im.record, k)) is not None}
    test_values |= {("sha256", im.digest) for im in test}
    hits: list[tuple[str, str]] = []
    for im in pool:
        links = [(k, v) for k in keys if (v := group_value(im.record, k)) is not None] + [("sha256", im.digest)]
        shared = [f"{k}={v[:12] if k == 'sha256' else v}" for k, v in links if (k, v) in test_values]
        if shared:
            hits.append((im.path, ", ".join(shared)))
    return hits


def _metrics(lists: Mapping[str, list[str]], by_path: Mapping[str, ImageInfo], class_names: Sequence[str],
             strata: Mapping[str, list[str]], where: list[int], fractions: list[float], overlap: GroupOverlap,
             warnings: list[str], keys: list[str], params: SplitParams, seed: int) -> dict[str, Any]:
    total = sum(len(lists[s]) for s in SPLITS)
    splits: dict[str, Any] = {}
    for s, name in enumerate(SPLITS):
        ims = [by_path[p] for p in lists[name]]
        boxes: Counter[int] = Counter(cls for im in ims for cls in im.classes)
        holders: Counter[int] = Counter(cls for im in ims for cls in set(im.classes))
        splits[name] = {
            "images": len(ims),
            "boxes": sum(boxes.values()),
            "negatives": sum(1 for im in ims if not im.classes),
            "components": sum(1 for w in where if w == s),
            "fraction": round(len(ims) / total, 4) if total else 0.0,
            "target": fractions[s],
            "per_stratum": {k: {v: sum(1 for im in ims if group_value(im.record, k) == v) for v in values}
                            for k, values in strata.items()},
            "per_class": {n: {"boxes": boxes[c], "images": holders[c]} for c, n in enumerate(class_names)},
        }
    splits[POOL] = {"images": len(lists[POOL]), "shares_group_with_test": 0}
    return {
        "seed": seed,
        "group_keys": keys,
        "stratify": list(params.stratify),
        "labelled_images": total,
        "components": len(where),
        "splits": splits,
        "group_overlap": overlap.to_json(),
        "warnings": warnings,
    }


# ---------------------------------------------------------------- I/O around the pure core


def read_file_digests(path: Path) -> dict[str, str]:
    """path → sha256 from the hash stage's files.jsonl."""
    if not path.is_file():
        raise VigilError("per-file manifest not found", path=path, hint="run the hash stage first (dvc repro hash)")
    out: dict[str, str] = {}
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not text.strip():
            continue
        try:
            entry = json.loads(text)
            out[str(entry["path"])] = str(entry["sha256"])
        except (json.JSONDecodeError, KeyError, TypeError):
            raise VigilError("not a JSON object with 'path' and 'sha256'", path=path, line=number,
                             hint="re-run the hash stage") from None
    return out


def load_images(root: Path, files: Path | None = None) -> tuple[list[ImageInfo], list[str]]:
    """Read manifest, classes, labels and digests (from `files`, else hashed now) of a canonical folder."""
    root = Path(root)
    class_names = read_classes(root)
    digests = read_file_digests(files) if files is not None else None
    images: list[ImageInfo] = []
    seen: set[str] = set()
    manifest = root / "manifest.jsonl"
    for number, record in enumerate(read_manifest(root), start=1):
        rel = record.get("image")
        if not isinstance(rel, str):
            raise VigilError("missing or non-string 'image'", path=manifest, line=number, field="image")
        if rel in seen:
            raise VigilError(f"image {rel!r} is listed twice", path=manifest, line=number, field="image",
                             hint="run `vigil data check` on the folder")
        seen.add(rel)
        labelled = record.get("labelled", True)
        if not isinstance(labelled, bool):
            raise VigilError(f"'labelled' is {labelled!r}, not true/false", path=manifest, line=number,
                             field="labelled")
        if digests is None:
            digest = sha256_file(resolve_inside(root, rel))
        elif rel in digests:
            digest = digests[rel]
        else:
            raise VigilError(f"image {rel!r} is not in the per-file manifest", path=files,
                             hint="re-run the hash stage so it covers the current data")
        classes: tuple[int, ...] = ()
        label = resolve_inside(root, label_rel_for(rel))
        if labelled and label.is_file():  # no label file = a negative image (YOLO convention)
            boxes = read_labels(label)
            bad = next((b.cls for b in boxes if not 0 <= b.cls < len(class_names)), None)
            if bad is not None:
                raise VigilError(f"class id {bad} is outside classes.txt (0..{len(class_names) - 1})", path=label)
            classes = tuple(b.cls for b in boxes)
        images.append(ImageInfo(rel, record, digest, classes, labelled))
    return images, class_names


def require_validated(path: Path) -> None:
    """Refuse to split data the validate stage failed (its metrics JSON says `"passed": false`)."""
    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VigilError("validation report not found", path=path, hint="run the validate stage first") from None
    except json.JSONDecodeError as exc:
        raise VigilError(f"not valid JSON ({exc.msg})", path=path, hint="re-run the validate stage") from None
    passed = report.get("passed") if isinstance(report, dict) else None
    if passed is False:
        raise VigilError("the dataset failed validation; refusing to split it", path=path, field="passed",
                         hint="fix the critical findings listed there (vigil data check) and re-run")
    if passed is not True:
        raise VigilError("the validation report has no boolean 'passed'", path=path, field="passed",
                         hint="re-run the validate stage")


def _check_out(out: Path, root: Path) -> None:
    """`out` is replaced whole: refuse the dataset itself, a folder above it, or one holding other files."""
    out_r, root_r = out.resolve(), root.resolve()
    if out_r == root_r or out_r in root_r.parents:
        raise VigilError("the output folder would replace the dataset folder", path=out,
                         hint="write the split lists to a folder of their own, e.g. artifacts/split")
    if out.exists():
        if not out.is_dir():
            raise VigilError("the output path exists and is not a folder", path=out)
        others = sorted(p.name for p in out.iterdir() if p.name not in LIST_FILES)
        if others:
            raise VigilError(f"the output folder holds other files ({', '.join(others[:3])}); it is replaced whole",
                             path=out, hint="choose an empty or new folder")


def write_split(result: SplitResult, out: Path, metrics: Path | None) -> None:
    """Write the four lists as one folder (atomically), then the metrics JSON."""
    with atomic_dir(out) as tmp:
        for name in (*SPLITS, POOL):
            (tmp / f"{name}.txt").write_text("".join(f"{p}\n" for p in result.lists[name]), encoding="utf-8")
    if metrics is not None:
        write_json_atomic(metrics, result.metrics)


def run_split(root: Path, out: Path, params: SplitParams, seed: int, *, files: Path | None = None,
              validated: Path | None = None, metrics: Path | None = None) -> SplitResult:
    """The whole stage: check the validation verdict, read, split, write."""
    if validated is not None:
        require_validated(validated)
    _check_out(Path(out), Path(root))
    images, class_names = load_images(Path(root), files)
    result = group_split(images, class_names, params, seed)
    write_split(result, Path(out), metrics)
    return result


def summary(result: SplitResult) -> str:
    """A few lines for the terminal."""
    m = result.metrics["splits"]
    lines = [f"{s:5s} {m[s]['images']:6d} images {m[s]['boxes']:6d} boxes {m[s]['negatives']:5d} negatives "
             f"{m[s]['components']:4d} components  ({m[s]['fraction']:.3f}, target {m[s]['target']:.3f})"
             for s in SPLITS]
    lines.append(f"pool  {m[POOL]['images']:6d} images; group_overlap {result.metrics['group_overlap']['total']}")
    lines += [f"warning: {w}" for w in result.warnings]
    return "\n".join(lines)
