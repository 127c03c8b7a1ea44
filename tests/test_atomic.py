"""Atomic outputs: complete or absent, even when the writer dies half-way; stale temp files are swept."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vigil.atomic import atomic_dir, write_json_atomic, write_text_atomic


def test_failed_folder_write_leaves_the_old_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("half")
        raise RuntimeError("boom")
    assert (out / "a.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_files_get_ordinary_modes(tmp_path: Path) -> None:
    write_text_atomic(tmp_path / "f.txt", "x")
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_sigkilled_writer_leaves_no_partial_output_and_the_next_run_sweeps(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from vigil.atomic import atomic_dir
        with atomic_dir(Path({str(tmp_path / 'out')!r})) as tmp:
            (tmp / "part.txt").write_text("half")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script])
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "out").exists()
    assert any(p.name.endswith(".tmp") for p in tmp_path.iterdir())  # the killed run's garbage …
    write_json_atomic(tmp_path / "m.json", {"a": 1})
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "done.txt").write_text("ok")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json", "out"]  # … is swept by the next
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 1}
