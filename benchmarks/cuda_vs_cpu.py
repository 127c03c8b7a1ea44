"""Teacher epochs per minute and val mAP on CUDA against the CPU: one prepared script for a GPU machine.

    .venv/bin/python benchmarks/cuda_vs_cpu.py --data data --split artifacts/split --epochs 3
    .venv/bin/python benchmarks/cuda_vs_cpu.py --data /tmp/vigil-scale-100k --split /tmp/split100k \
        --devices cpu 0 0,1 --report reports/bench/cuda_vs_cpu.md

Trains the `train:` recipe of params.yaml (from `--init`, the pinned pretrained checkpoint by
default) for `--epochs` on each device of `--devices`, in fresh run folders under a temporary
directory (nothing of the repository is written but `--report`), through the same `train_detector`
the `train` stage calls: `0,1` is handed to ultralytics unchanged, which starts its DDP. Prints one
row per device: epochs per minute, seconds per epoch, val mAP50 and mAP50-95 of the last epoch, and
the device's name. A device that is not there (no CUDA) is reported as skipped, not failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from report_file import emit  # noqa: E402


def device_name(device: str) -> str | None:
    """What `device` is on this machine, or None when it is absent."""
    import torch

    if device == "cpu":
        from vigil.hardware import describe, one_line

        return one_line(describe())
    ids = [int(d) for d in device.split(",")]
    if not torch.cuda.is_available() or max(ids) >= torch.cuda.device_count():
        return None
    return " + ".join(torch.cuda.get_device_name(i) for i in ids)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=REPO / "data")
    parser.add_argument("--split", type=Path, default=REPO / "artifacts/split")
    parser.add_argument("--init", type=Path, default=REPO / "models/pretrained/yolov8s_fall.pt")
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--devices", nargs="+", default=["cpu", "0"])
    parser.add_argument("--report", type=Path)
    args = parser.parse_args(argv)

    from vigil.models.params import load_train_params
    from vigil.models.train import TrainPaths, train_detector

    params, seed = load_train_params(args.params)
    params = dataclasses.replace(params, epochs=args.epochs)
    rows = []
    with tempfile.TemporaryDirectory(prefix="vigil-cuda-bench-") as tmp:
        for device in args.devices:
            name = device_name(device)
            if name is None:
                rows.append(f"| {device} | skipped: not on this machine | | | | |")
                continue
            ws = Path(tmp) / device.replace(",", "_")
            paths = TrainPaths(
                data=args.data,
                split=args.split,
                run_dir=ws / "run",
                weights=ws / "best.pt",
                metrics=ws / "train.json",
                live=ws / "live",
                init=args.init,
            )
            start = time.perf_counter()
            metrics = train_detector(
                dataclasses.replace(params, device=device), seed, paths, resume=False
            )
            minutes = (time.perf_counter() - start) / 60
            rows.append(
                f"| {device} | {name} | {metrics['epochs_run'] / minutes:.2f} | "
                f"{metrics['seconds_per_epoch']:.1f} | {metrics['val']['map50']:.3f} | "
                f"{metrics['val']['map50_95']:.3f} |"
            )
            print(rows[-1], file=sys.stderr, flush=True)
    text = "\n".join(
        [
            f"teacher, {args.epochs} epochs of params.yaml's `train:` recipe on {args.data} "
            f"({os.cpu_count()} CPUs)",
            "",
            "| device | name | epochs / min | s / epoch | val mAP50 | val mAP50-95 |",
            "|---|---|---:|---:|---:|---:|",
            *rows,
        ]
    )
    emit(text, args.report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
