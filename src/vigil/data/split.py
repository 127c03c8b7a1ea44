"""Deterministic group split: train / val / test by connected groups, stratified; pool kept apart.

Labelled images that share a value of any group key (driver_id, vehicle_id, and `session` where the
manifest has one) or identical bytes (same sha256) form one component, and components are never cut:
that is what keeps a driver, a vehicle or a duplicated frame out of two splits. Components are placed
greedily, largest first (ties in a seeded order), each into the split where it lowers a cost that
weighs (1) each split's image count against its fraction, (2) the stratify values and the classes
against the same fractions, and (3) a penalty for a (split, value) cell left empty. A local search of
moves and swaps then polishes the result. `group_overlap` re-checks the final lists from the manifest
alone, independent of how they were made; any overlap fails the stage. A component whose images carry
a `source_split` (the dataset's own split, VisDrone `--keep-split`) is kept there, and the rest are
balanced around it.

This is `split.strategy: components`. When drivers drive several vehicles the ids can join every image
into one component; `split.strategy: interlocked` (vigil.data.split_interlocked) handles that case, and
vigil.data.split_io reads the dataset, picks the strategy and writes the lists.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vigil.errors import VigilError
from vigil.params import SplitParams

SPLITS: tuple[str, ...] = ("train", "val", "test")
POOL = "pool"
QUARANTINE = "quarantine"  # `interlocked` only: images never trained on and never scored
LIST_FILES: frozenset[str] = frozenset(f"{name}.txt" for name in (*SPLITS, POOL, QUARANTINE))
IMPLICIT_GROUP_KEYS: tuple[str, ...] = ("session",)  # grouped on whenever a manifest line has it
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
    lists: dict[str, list[str]]     # train/val/test/pool (+ quarantine if `interlocked`) → sorted paths
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
    """Refuse keys no manifest line has (SplitParams itself refuses bad fractions and strategies)."""
    present = {k for r in records for k in r}
    named = [("group_keys", params.group_keys), ("stratify", params.stratify)]
    if params.strategy == "interlocked":
        named.append(("interlock_keys", params.interlock_keys))
    for section, keys in named:
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


def _assign(vectors: list[dict[int, int]], order: list[int], balance: _Balance, active: list[int],
            pinned: Mapping[int, int] | None = None) -> list[int]:
    """Greedy placement in `order`, then moves and swaps while they lower the cost; a `pinned`
    component (component → split index) is placed first and never moved."""
    where = [-1] * len(vectors)
    for c, s in (pinned or {}).items():
        balance.apply(s, vectors[c])
        where[c] = s
    order = [c for c in order if c not in (pinned or {})]
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


@dataclass
class Dimensions:
    """What the balance counts per split: dim 0 = images, then each stratum value, then each class's boxes."""

    names: list[tuple[str, str]]
    strata: dict[str, list[str]]
    index: dict[tuple[str, str], int]
    class_dim: dict[int, int]

    @classmethod
    def of(cls, labelled: Sequence[ImageInfo], class_names: Sequence[str],
           stratify: Sequence[str]) -> Dimensions:
        strata = {k: sorted({v for im in labelled if (v := group_value(im.record, k)) is not None})
                  for k in stratify}
        names: list[tuple[str, str]] = [("images", "")] + [(k, v) for k in strata for v in strata[k]]
        index = {dim: d for d, dim in enumerate(names)}
        class_dim = {c: len(names) + c for c in range(len(class_names))}
        names += [("class", name) for name in class_names]
        return cls(names, strata, index, class_dim)

    def vector(self, images: Iterable[ImageInfo]) -> dict[int, int]:
        """Sparse counts of a set of images over the dimensions."""
        vec: Counter[int] = Counter()
        for im in images:
            vec[0] += 1
            vec.update(self.index[(k, v)] for k in self.strata
                       if (v := group_value(im.record, k)) is not None)
            vec.update(self.class_dim[c] for c in im.classes)
        return dict(vec)

    def weights(self, totals: Sequence[int], size_weight: float) -> list[float]:
        """Images weigh `size_weight`; the strata share 1 and the classes present share 1."""
        weights = [size_weight] + [0.0] * (len(self.names) - 1)
        for k, values in self.strata.items():
            for v in values:
                weights[self.index[(k, v)]] = 1.0 / (len(self.strata) * len(values))
        present = [d for d in self.class_dim.values() if totals[d]]
        for d in present:
            weights[d] = 1.0 / len(present)
        return weights


def interlock_hint(params: SplitParams) -> str:
    """Where to go when whole groups cannot be split: the interlocked strategy."""
    keys = ", ".join(params.interlock_keys)
    return (f"if drivers drive several vehicles, set split.strategy: interlocked (interlock_keys: [{keys}]): "
            "it holds out drivers and vehicles together and quarantines the images between them; "
            "else add labelled images from more groups, or set an unneeded fraction to 0")


SOURCE_SPLIT = "source_split"  # an importer's record of the dataset's own split (VisDrone --keep-split)


def kept_splits(labelled: Sequence[ImageInfo], components: Sequence[Sequence[int]],
                fractions: Sequence[float]) -> dict[int, int]:
    """Component → split index for the components whose images carry a `source_split`: the
    dataset's own split is kept, and only the other components are balanced around it."""
    pinned: dict[int, int] = {}
    for c, members in enumerate(components):
        values = {v for i in members if (v := labelled[i].record.get(SOURCE_SPLIT)) is not None}
        if not values:
            continue
        bad = sorted(str(v) for v in values if v not in SPLITS)
        if bad:
            raise VigilError(f"{SOURCE_SPLIT} {bad[0]!r} of {labelled[members[0]].path} is not a split",
                             field=SOURCE_SPLIT, hint=f"use one of {', '.join(SPLITS)}")
        if len(values) > 1:
            raise VigilError(f"one group holds images of the dataset's own {' and '.join(sorted(values))} "
                             f"splits (e.g. {labelled[members[0]].path}), so both cannot be kept",
                             field="split.group_keys",
                             hint="group by keys that do not cross the dataset's splits, or import without "
                                  "--keep-split")
        (value,) = values
        if fractions[SPLITS.index(value)] <= 0:
            raise VigilError(f"images keep their {value!r} split but split.{value} is 0",
                             field=f"split.{value}", hint=f"give split.{value} a share above 0")
        pinned[c] = SPLITS.index(value)
    return pinned


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
                         hint=interlock_hint(params))

    dims = Dimensions.of(labelled, class_names, params.stratify)
    vectors = [dims.vector(labelled[i] for i in members) for members in components]
    totals = [sum(vec.get(d, 0) for vec in vectors) for d in range(len(dims.names))]
    balance = _Balance([max(t, 1) for t in totals], dims.weights(totals, SIZE_WEIGHT), fractions)

    rng = random.Random(seed)
    tiebreak = [rng.random() for _ in components]
    order = sorted(range(len(components)), key=lambda c: (-len(components[c]), tiebreak[c]))
    where = _assign(vectors, order, balance, active, kept_splits(labelled, components, fractions))

    lists = {s: sorted(labelled[i].path for c, members in enumerate(components) if SPLITS[where[c]] == s
                       for i in members) for s in SPLITS}
    lists[POOL] = [im.path for im in pool]
    warnings = balance_warnings(dims.names, totals, balance.counts, fractions, vectors, where, components)
    return finish(images, lists, warnings, keys, class_names, dims.strata, where, params, seed, "components")


def finish(images: Sequence[ImageInfo], lists: dict[str, list[str]], warnings: list[str], keys: list[str],
           class_names: Sequence[str], strata: Mapping[str, list[str]], where: list[int], params: SplitParams,
           seed: int, strategy: str) -> SplitResult:
    """Both strategies end here: the overlap re-check from the lists alone, the pool check, the metrics."""
    by_path = {im.path: im for im in images}
    overlap = group_overlap(lists, by_path, keys)
    pool = [by_path[p] for p in lists[POOL]]
    leaks = pool_test_leaks(pool, [by_path[p] for p in lists["test"]], keys)
    if leaks:
        examples = "; ".join(f"{p} ({why})" for p, why in leaks[:3])
        warnings.append(f"pool: {len(leaks)} unlabelled image(s) share a group or identical bytes with test "
                        f"images, e.g. {examples} — keep them out of pseudo-labelled training data")
    fractions = [float(getattr(params, s)) for s in SPLITS]
    metrics = _metrics(lists, by_path, class_names, strata, where, fractions, overlap, warnings, keys, params, seed)
    metrics["strategy"] = strategy
    metrics["splits"][POOL]["shares_group_with_test"] = len(leaks)
    check_group_overlap(overlap)
    return SplitResult(lists, metrics, warnings)


# ---------------------------------------------------------------- report


def balance_warnings(dims: list[tuple[str, str]], totals: list[int], counts: list[list[int]],
                     fractions: list[float], vectors: list[dict[int, int]], where: list[int],
                     components: list[list[int]]) -> list[str]:
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
    missing = [value for (key, value), t in zip(dims, totals, strict=True) if key == "class" and not t]
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


def summary(result: SplitResult) -> str:
    """A few lines for the terminal."""
    m = result.metrics["splits"]
    lines = [f"{s:5s} {m[s]['images']:6d} images {m[s]['boxes']:6d} boxes {m[s]['negatives']:5d} negatives "
             f"{m[s]['components']:4d} components  ({m[s]['fraction']:.3f}, target {m[s]['target']:.3f})"
             for s in SPLITS]
    lines.append(f"pool  {m[POOL]['images']:6d} images; group_overlap {result.metrics['group_overlap']['total']}")
    quarantine = result.metrics.get(QUARANTINE)
    if quarantine is not None:
        lines.append(f"quarantine {quarantine['images']} images ({quarantine['share']:.3f} of the labelled "
                     "ones: their two interlock keys in different splits; never trained on, never scored)")
    lines += [f"warning: {w}" for w in result.warnings]
    return "\n".join(lines)
