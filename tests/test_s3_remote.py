"""The team storage path: dvc-s3 against a real S3-compatible server (moto's) on 127.0.0.1.

Each test starts its own server and stops it by its own process id. Faults are real: the server is
killed (SIGKILL) while `dvc push` / `dvc pull` are transferring.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
BUCKET = "vigil-test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class S3Server:
    """moto_server on 127.0.0.1:port, started and stopped by its own pid."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("moto_server did not start")
        self.client().create_bucket(Bucket=BUCKET)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def object_count(self) -> int:
        try:
            pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
            return sum(page.get("KeyCount", 0) for page in pages)
        except Exception:
            return -1


@pytest.fixture
def server() -> Iterator[S3Server]:
    srv = S3Server(free_port())
    srv.start()
    yield srv
    srv.kill()


def run(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
    }
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        env.pop(key, None)  # credentials come from .dvc/config.local only
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args}: {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def make_repo(root: Path, server: S3Server, files: int) -> dict[str, str]:
    """A git + DVC repo tracking `files` distinct files, with the S3 remote; returns path → sha256."""
    root.mkdir(parents=True)
    run(["git", "init", "-q"], root)
    run(["dvc", "init", "-q"], root)
    data = root / "data"
    data.mkdir()
    for i in range(files):
        (data / f"f{i:04d}.bin").write_bytes(hashlib.sha256(str(i).encode()).digest() * 64)
    run(["dvc", "add", "-q", "data"], root)
    run(["dvc", "remote", "add", "-d", "team", f"s3://{BUCKET}/store"], root)
    run(["dvc", "remote", "modify", "team", "endpointurl", server.url], root)
    run(["dvc", "remote", "modify", "--local", "team", "access_key_id", "testing"], root)
    run(["dvc", "remote", "modify", "--local", "team", "secret_access_key", "testing"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "data"], root)
    return tree_hashes(data)


def tree_hashes(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_cache_intact(root: Path) -> int:
    """Every object in the DVC cache still hashes to its own name (nothing half-written or damaged)."""
    count = 0
    for path in (root / ".dvc/cache/files/md5").rglob("*"):
        if path.is_file() and not path.name.endswith(".dir") and ".tmp" not in path.name:
            assert hashlib.md5(path.read_bytes()).hexdigest() == path.parent.name + path.name, path
            count += 1
    return count


def test_push_delete_pull_round_trip(tmp_path: Path, server: S3Server) -> None:
    root = tmp_path / "repo"
    hashes = make_repo(root, server, files=20)
    assert (
        "credential" not in (root / ".dvc/config").read_text()
        and "testing" not in (root / ".dvc/config").read_text()
    )
    run(["dvc", "push"], root)
    assert server.object_count() >= 21
    subprocess.run(["rm", "-rf", str(root / ".dvc/cache"), str(root / "data")], check=True)
    run(["dvc", "pull"], root)
    assert tree_hashes(root / "data") == hashes
    status = run(["dvc", "status", "-c"], root)
    assert "in sync" in status.stdout


def _kill_when(server: S3Server, proc: subprocess.Popen[str], ready, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if ready():
            server.kill()
            return
        time.sleep(0.02)
    pytest.fail("the transfer ended before the fault could be injected")


def _popen(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    # One attempt per request: with botocore's default retries each remaining file waits ~12 s on the
    # dead server before failing (measured), which turns a 400-file transfer into many minutes.
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "AWS_MAX_ATTEMPTS": "1",
    }
    return subprocess.Popen(
        args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_server_killed_mid_push_then_push_again(tmp_path: Path, server: S3Server) -> None:
    root = tmp_path / "repo"
    make_repo(root, server, files=400)
    cached = assert_cache_intact(root)
    push = _popen(["dvc", "push", "-j", "1"], root)
    _kill_when(server, push, lambda: server.object_count() >= 20)
    out, err = push.communicate(timeout=300)
    assert push.returncode != 0
    assert (
        "could not connect to the endpoint url" in (out + err).lower()
        or "failed to push" in (out + err).lower()
    )
    assert assert_cache_intact(root) == cached  # nothing in the local cache damaged or lost
    server.start()  # moto keeps objects in memory: the restarted server starts empty, like a wiped bucket
    run(["dvc", "push"], root)
    assert "in sync" in run(["dvc", "status", "-c"], root).stdout
    assert server.object_count() == cached + 1  # every file plus the .dir listing


def test_server_killed_mid_pull_then_pull_again(tmp_path: Path, server: S3Server) -> None:
    source = tmp_path / "source"
    hashes = make_repo(source, server, files=400)
    run(["dvc", "push"], source)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(source), str(clone)], tmp_path)
    for key, value in (("access_key_id", "testing"), ("secret_access_key", "testing")):
        run(["dvc", "remote", "modify", "--local", "team", key, value], clone)
    pull = _popen(["dvc", "pull", "-j", "1"], clone)
    cache = clone / ".dvc/cache/files/md5"
    _kill_when(
        server,
        pull,
        lambda: cache.is_dir() and sum(1 for p in cache.rglob("*") if p.is_file()) >= 20,
    )
    out, err = pull.communicate(timeout=300)
    assert pull.returncode != 0
    assert (
        "could not connect to the endpoint url" in (out + err).lower()
        or "failed to pull" in (out + err).lower()
    )
    assert_cache_intact(
        clone
    )  # what did arrive is whole; nothing half-written sits under a real name
    server.start()
    run(["dvc", "push"], source)  # the restarted (in-memory) server is refilled from the source
    run(["dvc", "pull"], clone)
    assert tree_hashes(clone / "data") == hashes
    assert "in sync" in run(["dvc", "status", "-c"], clone).stdout
