"""Real sources for the bundled sample dataset, fetched from Debian's registry and pinned by sha256.

Only package registries are reachable here, so the sample is composited from files inside two
Debian packages: the `vtest.avi` CCTV clip and sample photos of
`opencv-doc`, and the Fashion-MNIST product photos of `dataset-fashion-mnist`.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from vigil.errors import VigilError

OPENCV_DATA = "usr/share/doc/opencv-doc/examples/data"
FMNIST_DATA = "usr/share/datasets/fashion-mnist"


@dataclass(frozen=True)
class DebianPackage:
    name: str
    version: str
    licence: str
    files: dict[str, str]  # path inside the package → sha256

    @property
    def spec(self) -> str:
        return f"{self.name}={self.version}"


# The real photos used as backgrounds, pinned one by one.
OPENCV_PHOTOS: dict[str, str] = {
    "building.jpg": "742a1baad62ac82e91e718e77eedf7e85c2eddc4badfb8c87c6cbc86c45a8b07",
    "home.jpg": "23b8cf46a1965d0ec33459b875aed43187802834db49e0daa9fa2cc842e9d8d2",
    "leuvenA.jpg": "b2977cdbd9fb3f94dadd6f76cf586d145676deb8a22b5f0f42149d21c058c09f",
    "leuvenB.jpg": "5bb41a60038a2baa5d8ea0eaba55e6e3050d721b254cf79d8d8998d7e49d664a",
    "graf1.png": "1504b769303c7bde00fa578eeaad3c68e02aceabeb1242e556f1f8d19e4bdea5",
    "graf3.png": "492e0e96f21748d093e1a29f4dbfd46528bd75966937e85ce7c8abc0f361fc15",
    "licenseplate_motion.jpg": "ea6fa9cea75df91bec656d1d3b903111a9c0708c6a3b88f405a5156de38ff9d6",
    "rubberwhale1.png": "eb312435369dac9efcc92f7e098edbd9ed8d7e6dfede8b3b4d8e3702cd80b796",
    "rubberwhale2.png": "ee309a00d47b837b322ea5d9128775e0c46869b8014376286ba316a073d293ac",
    "aloeL.jpg": "cce5736808efe80d9f04b118dbb978c344d4345672b332718c3e039a3eeb8eee",
    "aloeR.jpg": "9b23100df31a846bc6e6a6545563b2b4120b948c9835c7d36cde00af77f4503e",
    "stuff.jpg": "21cd00afbdd0727f445dd91c0a09633e6345ed5b05a3d2355453a1f3c314c6c5",
    "board.jpg": "4c9a24ba67138ad5486d550f586cc5dd1161be112f1c1bea336d6c550cdf255f",
    "fruits.jpg": "9c031d80a1c52da5eca790db896baffec6a7e52bf786cdb7bbfca5c7f880e6a1",
    "box_in_scene.png": "8b0225ff76244a42bd1400c0904f8b7afea7d97b7d8115495e42e98ad347bd51",
    "basketball1.png": "ba06f6701f7260998b430c39b6557f775497e6ce7b1a74f0b7ea6af371bf54a6",
    "basketball2.png": "b3047772e0dc6c9d83c26f64894ca1a897f799f855c5574ac24b2ef934c2978e",
    "aero1.jpg": "d9a69191f6e3642ea361bc3c62e677b2f40fe6534b78da540f4155e0734b59ef",
    "aero3.jpg": "1c407146f8762b3b14a7953ff9bc4c01ed64c467d7277122e769bf7e816017a4",
    "messi5.jpg": "1d570e49654e84c7a943918537bd9e5e1ef82920152e147c834006e235be97c9",
    "squirrel_cls.jpg": "20bb6e8ae96918a36c9886b6d48e54eedeb3948591e1485c206bc1dc60c8dc8b",
    "butterfly.jpg": "34a99716b78ded10eae87b4880de739d3e68cc7dd1a96812bb28f469d5eeaea8",
    "left.jpg": "fb314330c3eb0a81651c682803e73b348898157267fbc37c4c2c07d1b3a8e321",
    "right.jpg": "20972954be263a99194d1373d9a5cd8d2dc92acf69b55470b6951f3b3475017f",
}

PACKAGES: tuple[DebianPackage, ...] = (
    DebianPackage(
        name="opencv-doc",
        version="4.6.0+dfsg-12",
        licence="Apache-2.0 AND BSD-3-Clause",
        files={f"{OPENCV_DATA}/vtest.avi": "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf",
               **{f"{OPENCV_DATA}/{name}": digest for name, digest in OPENCV_PHOTOS.items()}},
    ),
    DebianPackage(
        name="dataset-fashion-mnist",
        version="0.0~git20200523.55506a9-1",
        licence="MIT (Zalando SE)",
        files={
            f"{FMNIST_DATA}/train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
            f"{FMNIST_DATA}/train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
        },
    ),
)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise VigilError(f"sha256 mismatch: expected {expected}, got {actual}", path=path,
                         hint="the source changed upstream or is corrupt; delete it and fetch again")


def _download_deb(package: DebianPackage, cache: Path) -> Path:
    found = sorted(cache.glob(f"{package.name}_*.deb"))
    if found:
        return found[-1]
    if shutil.which("apt-get") is None:
        raise VigilError(f"apt-get is not available to fetch {package.spec}",
                         hint="build the sample on a Debian machine, or `dvc pull` the bundled data instead")
    proc = subprocess.run(["apt-get", "download", package.spec], cwd=cache, capture_output=True, text=True)
    if proc.returncode != 0:
        raise VigilError(f"`apt-get download {package.spec}` failed: {proc.stderr.strip()[-400:]}",
                         hint="run `apt-get update` first")
    found = sorted(cache.glob(f"{package.name}_*.deb"))
    if not found:
        raise VigilError(f"apt-get download left no {package.name} .deb in {cache}")
    return found[-1]


def _extract_members(deb: Path, members: list[str], out: Path) -> None:
    """Stream the .deb's data tarball through `dpkg-deb --fsys-tarfile` and keep only `members`."""
    wanted = {f"./{m}" for m in members} | set(members)
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    with tarfile.open(fileobj=proc.stdout, mode="r|*") as tar:
        for info in tar:
            if info.name in wanted and info.isfile():
                source = tar.extractfile(info)
                assert source is not None
                target = out / info.name.removeprefix("./")
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "wb") as handle:
                    shutil.copyfileobj(source, handle)
    if proc.wait() != 0:
        raise VigilError(f"dpkg-deb could not read {deb}", path=deb, hint="delete it and fetch again")


def fetch_sources(cache: Path) -> Path:
    """Fetch and verify every source file into `cache`; returns the folder the files sit under.

    Files already present and matching their sha256 are not fetched again.
    """
    cache.mkdir(parents=True, exist_ok=True)
    root = cache / "files"
    for package in PACKAGES:
        missing = [m for m in package.files if not (root / m).is_file()]
        if missing:
            _extract_members(_download_deb(package, cache), missing, root)
        for member, digest in package.files.items():
            if not (root / member).is_file():
                raise VigilError(f"{member} is not in {package.spec}", hint="check the package version")
            verify_sha256(root / member, digest)
    return root
