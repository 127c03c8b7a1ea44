"""train.cache: auto picks ram, then disk, then none from the decoded size; a fixed choice is kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import write_image
from repo_params import raw
from vigil.errors import VigilError
from vigil.models.cache_choice import choose_cache, estimate_bytes, resized_bytes
from vigil.models.params import TrainParams
from vigil.params import build

GB = 1 << 30


def test_the_long_side_is_scaled_to_imgsz() -> None:
    assert resized_bytes(640, 480, 320) == 320 * 240 * 3
    assert (
        resized_bytes(96, 72, 320) == 320 * 240 * 3
    )  # small images are scaled up, as ultralytics does
    assert resized_bytes(100, 100, 64) == 64 * 64 * 3


@pytest.fixture
def images(tmp_path: Path) -> tuple[Path, list[str]]:
    names = []
    for i in range(6):
        rel = f"images/{i}.png"
        write_image(tmp_path / rel, seed=i, size=(64, 48) if i % 2 else (48, 64))
        names.append(rel)
    return tmp_path, names


def test_the_estimate_reads_headers_and_extrapolates(images: tuple[Path, list[str]]) -> None:
    root, names = images
    assert estimate_bytes(root, names, 64) == 6 * 64 * 48 * 3
    assert estimate_bytes(root, names * 1000, 64) == 6000 * 64 * 48 * 3  # from a 256-header sample
    assert estimate_bytes(root, [], 64) == 0


def test_auto_prefers_ram_then_disk_then_none(
    images: tuple[Path, list[str]], tmp_path: Path
) -> None:
    root, names = images
    need = 6 * 64 * 48 * 3
    pick = {
        (ram, disk): choose_cache(
            "auto", root, names, 64, tmp_path / "run", available_ram=ram, free_disk=disk
        ).cache
        for ram, disk in ((GB, GB), (need, GB), (need, need), (2 * need, 0))
    }
    assert pick == {(GB, GB): "ram", (need, GB): "disk", (need, need): "none", (2 * need, 0): "ram"}
    choice = choose_cache(
        "auto", root, names, 64, tmp_path / "run", available_ram=need, free_disk=GB
    )
    assert choice.line().startswith("train: cache auto → disk:") and choice.images == 6


def test_a_fixed_cache_is_kept_whatever_the_machine(
    images: tuple[Path, list[str]], tmp_path: Path
) -> None:
    root, names = images
    choice = choose_cache("ram", root, names, 64, tmp_path, available_ram=1, free_disk=1)
    assert (choice.cache, choice.reason) == ("ram", "set in params")


def test_params_take_auto_and_refuse_other_words() -> None:
    assert build(TrainParams, raw("train", {"cache": "auto"}), "train").cache == "auto"
    with pytest.raises(VigilError, match="train.cache"):
        build(TrainParams, raw("train", {"cache": "gpu"}), "train")
