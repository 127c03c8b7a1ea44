"""The bundled remote (`.dvc/storage`, committed so a fresh clone works offline) holds one release.

Exactly the objects that dvc.lock's cached outputs and data.dvc reference: nothing missing (a fresh
clone pulls them all) and nothing more (each past release added ~40 MB to every clone). Release
history lives in the team bucket; `make prune-remote` trims this one after a release is committed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from contract.module_imports import REPO
from contract.pipeline import resolved_stages

STORE = REPO / ".dvc" / "storage" / "files" / "md5"


def cached_out_paths() -> set[str]:
    paths = set()
    for stage in resolved_stages().values():
        for entry in [*stage.get("outs", []), *stage.get("metrics", []), *stage.get("plots", [])]:
            path, options = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
            if (options or {}).get("cache", True):
                paths.add(path)
    return paths


def referenced(store: Path) -> set[str]:
    """md5s of the cached outs of dvc.lock and of data.dvc, with the files of every directory out."""
    entries = [out for out in yaml.safe_load((REPO / "data.dvc").read_text())["outs"]]
    cached = cached_out_paths()
    for stage in yaml.safe_load((REPO / "dvc.lock").read_text())["stages"].values():
        entries += [out for out in stage.get("outs", []) if out["path"] in cached]
    found = set()
    for out in entries:
        found.add(out["md5"])
        if out["md5"].endswith(".dir"):
            listing = store / out["md5"][:2] / out["md5"][2:]
            if listing.is_file():
                found |= {child["md5"] for child in json.loads(listing.read_text())}
    return found


def stored(store: Path) -> set[str]:
    return {p.parent.name + p.name for p in store.glob("*/*")}


@pytest.mark.skipif(not STORE.is_dir(), reason="no bundled remote in this checkout")
def test_the_bundled_remote_holds_exactly_the_current_release() -> None:
    need, have = referenced(STORE), stored(STORE)
    assert not need - have, (
        f"{len(need - have)} objects of dvc.lock/data.dvc are missing: run `dvc push`"
    )
    assert not have - need, (
        f"{len(have - need)} objects belong to no current output: run `make prune-remote`"
    )


def test_the_check_sees_a_stale_object(tmp_path: Path) -> None:
    """The comparison itself fails on an extra object (a past release's file left behind)."""
    import shutil

    store = tmp_path / "md5"
    shutil.copytree(STORE, store) if STORE.is_dir() else store.mkdir()
    (store / "00").mkdir(exist_ok=True)
    (store / "00" / "deadbeef").write_text("a past release")
    assert "00deadbeef" in stored(store) - referenced(store)
