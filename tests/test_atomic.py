"""Atomic outputs: complete or absent, even when the writer dies half-way; stale temp files are swept."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vigil.atomic import atomic_dir, output_lock, write_json_atomic, write_text_atomic
from vigil.errors import VigilError


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
        with atomic_dir(Path({str(tmp_path / "out")!r})) as tmp:
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


@pytest.mark.parametrize("writer", ["file", "folder"])
def test_only_vigils_own_abandoned_temps_are_swept(tmp_path: Path, writer: str) -> None:
    """A user's `.out.x.tmp` (file or folder) is never touched; a live writer's marked temp is kept."""
    (tmp_path / ".out.notes.tmp").write_text("mine")
    (tmp_path / ".out.drafts.tmp").mkdir()
    (tmp_path / ".out.drafts.tmp/d.txt").write_text("mine too")
    live, dead = tmp_path / ".out.live.tmp", tmp_path / ".out.dead.tmp"
    for box, pid in ((live, os.getpid()), (dead, _dead_pid())):
        box.mkdir()
        (box / ".vigil-temp").write_text(
            json.dumps({"vigil": "temp", "pid": pid, "host": socket.gethostname()})
        )
    if writer == "file":
        write_text_atomic(tmp_path / "out", "x")
    else:
        with atomic_dir(tmp_path / "out") as tmp:
            (tmp / "x").write_text("x")
    assert (tmp_path / ".out.notes.tmp").read_text() == "mine"
    assert (tmp_path / ".out.drafts.tmp/d.txt").read_text() == "mine too"
    assert live.is_dir() and not dead.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".out.drafts.tmp",
        ".out.live.tmp",
        ".out.notes.tmp",
        "out",
    ]


def test_a_writer_killed_before_its_marker_leaves_nothing_the_next_run_keeps(
    tmp_path: Path,
) -> None:
    """The window between mkdtemp and the marker write: an empty (or half-marked) folder named by
    vigil for a dead pid on this host is swept; the same name with a live pid, another host, or a
    user's file inside is left alone."""
    from vigil.atomic import _host_tag

    host, dead = _host_tag(), _dead_pid()
    empty = tmp_path / f".out.vigil-{host}-{dead}.a1b2.tmp"
    half = tmp_path / f".out.vigil-{host}-{dead}.c3d4.tmp"
    live = tmp_path / f".out.vigil-{host}-{os.getpid()}.e5f6.tmp"
    other_host = tmp_path / f".out.vigil-{'0' * 8 if host != '0' * 8 else '1' * 8}-{dead}.g7h8.tmp"
    users = tmp_path / f".out.vigil-{host}-{dead}.i9j0.tmp"
    for box in (empty, half, live, other_host, users):
        box.mkdir()
    (half / ".vigil-temp").write_text('{"vigil": "te')
    (users / "notes.txt").write_text("mine")
    write_text_atomic(tmp_path / "out", "x")
    assert not empty.exists() and not half.exists()
    assert live.is_dir() and other_host.is_dir() and (users / "notes.txt").read_text() == "mine"


def test_temps_are_named_for_their_host_and_pid(tmp_path: Path) -> None:
    from vigil.atomic import _host_tag

    with atomic_dir(tmp_path / "out") as tmp:
        name = tmp.parent.name
    assert name.startswith(f".out.vigil-{_host_tag()}-{os.getpid()}.") and name.endswith(".tmp")


def _dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(proc.stdout)


def test_a_run_killed_between_the_two_renames_gets_its_old_output_back(tmp_path: Path) -> None:
    box = tmp_path / ".out.k.tmp"
    (box / "old").mkdir(parents=True)
    (box / "old/data.txt").write_text("the previous output")
    (box / ".vigil-temp").write_text(
        json.dumps({"vigil": "temp", "pid": _dead_pid(), "host": socket.gethostname()})
    )
    write_text_atomic(tmp_path / "out.json", "{}")  # a sweep of another output leaves it alone
    assert box.exists()
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "out"):
        raise RuntimeError("the next run fails too")
    assert (tmp_path / "out/data.txt").read_text() == "the previous output"
    assert not box.exists()


def test_a_symlink_at_the_output_is_replaced_without_debris(tmp_path: Path) -> None:
    (tmp_path / "target").mkdir()
    (tmp_path / "target/keep.txt").write_text("x")
    (tmp_path / "out").symlink_to(tmp_path / "target")
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "new.txt").write_text("new")
    assert not (tmp_path / "out").is_symlink() and (tmp_path / "out/new.txt").is_file()
    assert (tmp_path / "target/keep.txt").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "target"]


def test_output_lock_refuses_a_second_holder_and_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "a/b/out"
    with output_lock(out):
        assert (tmp_path / "a/b/.out.vigil-lock").is_file()
        with pytest.raises(VigilError, match="another vigil process is writing"), output_lock(out):
            pass  # a second open file description conflicts, as a second process would
    assert sorted(p.name for p in (tmp_path / "a/b").iterdir()) == []
    with pytest.raises(RuntimeError), output_lock(tmp_path / "c/d/out"):
        raise RuntimeError("failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a"
    ]  # the folders made for it are gone again
    (tmp_path / "a/b/.out.vigil-lock").write_text("my notes")
    with pytest.raises(VigilError, match="not written by vigil"), output_lock(out):
        pass
    assert (tmp_path / "a/b/.out.vigil-lock").read_text() == "my notes"


def test_a_killed_writer_left_as_an_unreaped_zombie_is_swept(tmp_path: Path) -> None:
    """Under a PID 1 that does not reap orphans (many containers, CI's included), a SIGKILLed stage
    stays a zombie that still answers kill(pid, 0); its temp must be swept all the same."""
    import time

    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from vigil.atomic import atomic_dir
        with atomic_dir(Path({str(tmp_path / "out")!r})) as tmp:
            (tmp / "part.txt").write_text("half")
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    child = subprocess.Popen([sys.executable, "-c", script])  # never waited on: it stays a zombie
    stat = Path(f"/proc/{child.pid}/stat")
    for _ in range(600):
        if stat.read_text().rpartition(")")[2].split()[0] == "Z":
            break
        time.sleep(0.05)
    else:
        pytest.fail("the child never became a zombie")
    os.kill(child.pid, 0)  # a zombie still answers …
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "done.txt").write_text("ok")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # … but its temp is swept
    child.wait()
