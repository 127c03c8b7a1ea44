"""Every cached DVC output is ignored by git, so models and artifacts travel through the DVC remote only."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from contract.pipeline import resolved_stages

REPO = Path(__file__).resolve().parents[2]


def cached_outs() -> list[str]:
    stages = resolved_stages()
    outs = []
    for stage in stages.values():
        for out in stage.get("outs", []):
            path, options = next(iter(out.items())) if isinstance(out, dict) else (out, {})
            if (options or {}).get("cache", True):
                outs.append(path)
    return outs


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="not a git checkout")
@pytest.mark.parametrize("out", cached_outs())
def test_cached_out_is_git_ignored(out: str) -> None:
    proc = subprocess.run(["git", "check-ignore", "-q", "--no-index", out], cwd=REPO)
    assert proc.returncode == 0, (
        f"{out} is a cached DVC output but git does not ignore it: add it to a .gitignore"
    )
