"""Interlocked split: the quarantined share of vigil's search next to the exhaustive optimum.

Generated fleets: every driver drives several vehicles (a home vehicle half the time, any other the
rest), each drive a few images of one scenario, so driver and vehicle ids join every image into one
group component (the components strategy refuses them). For each instance the table gives the share
of labelled images quarantined by `split.strategy: interlocked` (its seeded local search), by the
least-cost labelling found by enumerating every driver and vehicle labelling, and the least
quarantine any labelling reaches with every split within `interlock_tolerance` of its fraction
(strata ignored: a lower bound). Params: the repository's `split:` section.

    python benchmarks/interlock_split.py --sizes 5x4 6x5 7x5 8x6 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import replace
from pathlib import Path

from vigil.data.interlock_search import exhaustive
from vigil.data.split import Dimensions, ImageInfo, group_split
from vigil.data.split_interlocked import build_problem, interlocked_split
from vigil.errors import VigilError
from vigil.params import SplitParams, load_section

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["ball", "bat"]


def fleet(drivers: int, vehicles: int, seed: int) -> list[ImageInfo]:
    """Random driving: 3-8 drives per driver, each 2-8 images in one scenario, on the home vehicle or any."""
    rng = random.Random(seed)
    images: list[ImageInfo] = []
    for d in range(drivers):
        home = rng.randrange(vehicles)
        for _ in range(rng.randint(3, 8)):
            vehicle = home if rng.random() < 0.5 else rng.randrange(vehicles)
            scenario = rng.choice(["day", "dusk", "night"])
            for _ in range(rng.randint(2, 8)):
                i = len(images)
                record = {
                    "image": f"images/{i:05d}.jpg",
                    "driver_id": f"d{d}",
                    "vehicle_id": f"v{vehicle}",
                    "scenario": scenario,
                    "stream": "cctv",
                }
                classes = tuple(rng.randrange(len(CLASSES)) for _ in range(rng.randint(0, 3)))
                images.append(ImageInfo(record["image"], record, f"sha-{seed}-{i}", classes, True))
    return images


def row(drivers: int, vehicles: int, seed: int, params: SplitParams) -> list[str]:
    images = fleet(drivers, vehicles, seed)
    try:
        group_split(images, CLASSES, replace(params, strategy="components"), seed)
        components = "splits"
    except VigilError as exc:
        components = "refuses" if "only 1 group component" in exc.message else "error"
    start = time.perf_counter()
    try:
        result = interlocked_split(images, CLASSES, params, seed)
        ours, cost = result.metrics["quarantine"]["share"], result.metrics["interlock"]["cost"]
        ours_text, cost_text = f"{ours:.3f}", f"{cost:.4f}"
    except VigilError as exc:
        ours_text, cost_text = "refused", exc.message[:30]
    ours_s = time.perf_counter() - start
    labelled = sorted(images, key=lambda im: im.path)
    fractions = [params.train, params.val, params.test]
    problem = build_problem(
        labelled,
        params.interlock_keys,
        [],
        Dimensions.of(labelled, CLASSES, params.stratify),
        fractions,
        params.interlock_tolerance,
    )
    start = time.perf_counter()
    best = exhaustive(problem)
    exhaustive_s = time.perf_counter() - start
    return [
        f"{drivers}x{vehicles}",
        str(seed),
        str(len(images)),
        components,
        ours_text,
        f"{best.quarantined:.3f}",
        f"{best.min_quarantined:.3f}",
        cost_text,
        f"{round(best.cost, 6):.4f}",
        f"{ours_s:.1f}",
        f"{exhaustive_s:.1f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", nargs="+", default=["5x4", "6x5", "7x5", "8x6"], help="DRIVERSxVEHICLES"
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    args = parser.parse_args()
    params = replace(load_section(args.params, "split", SplitParams), strategy="interlocked")
    header = [
        "fleet",
        "seed",
        "images",
        "components",
        "quarantined (ours)",
        "(least cost)",
        "(least, fractions met)",
        "cost (ours)",
        "cost (optimum)",
        "ours s",
        "exhaustive s",
    ]
    print(
        f"fractions {params.train}/{params.val}/{params.test}, tolerance {params.interlock_tolerance}, "
        f"stratify {params.stratify}"
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for size in args.sizes:
        drivers, vehicles = (int(x) for x in size.lower().split("x"))
        for seed in args.seeds:
            print("| " + " | ".join(row(drivers, vehicles, seed, params)) + " |", flush=True)


if __name__ == "__main__":
    main()
