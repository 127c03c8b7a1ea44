"""The SKU gallery: a FAISS index of reference embeddings, each vector tagged with its SKU.

A crop is named by its nearest references, not by a classifier head, so a new SKU is added by
embedding its reference crops (`add_sku`) — no retraining (open set). The index is exact by
default (`Flat`, any faiss `index_factory` string works) and the metric is an argument: `cosine`
(inner product on L2-normalised vectors, the default the embedder is trained for), `ip` (raw inner
product) or `l2`. Similarities are "higher is nearer" for all three: for `l2` it is 1 − d²/2, which
equals the cosine on unit vectors.

On disk, a folder: `index.faiss` (faiss' own format; vector ids are SKU numbers) and `gallery.json`
(SKU names, dimension, metric, index type, and the sha256 of the embedder that made the vectors, so
a gallery is never queried with embeddings of another model).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vigil.atomic import atomic_dir, write_json_atomic
from vigil.errors import VigilError

INDEX_FILE = "index.faiss"
SIDECAR = "gallery.json"
METRICS = ("cosine", "ip", "l2")


@dataclass(frozen=True)
class Match:
    sku: str
    similarity: float


def _faiss() -> Any:
    import faiss

    return faiss


class Gallery:
    """Reference embeddings by SKU in one FAISS index; `query` gives the top-k distinct SKUs."""

    def __init__(
        self, dim: int, metric: str = "cosine", index_type: str = "Flat", embedder_sha256: str = ""
    ) -> None:
        if metric not in METRICS:
            raise VigilError(
                f"{metric!r} is not a metric", field="metric", hint=f"one of {', '.join(METRICS)}"
            )
        faiss = _faiss()
        kind = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
        try:
            base = faiss.index_factory(int(dim), index_type, kind)
        except RuntimeError as exc:
            raise VigilError(
                f"faiss cannot build {index_type!r}: {str(exc).splitlines()[-1]}",
                field="index_type",
                hint="e.g. Flat (exact) or HNSW32",
            ) from None
        self.index = faiss.IndexIDMap2(base)
        self.dim, self.metric, self.index_type = int(dim), metric, index_type
        self.embedder_sha256 = embedder_sha256
        self.skus: list[str] = []
        self.counts: list[int] = []

    def _vectors(self, embeddings: Any) -> np.ndarray:
        x = np.ascontiguousarray(np.asarray(embeddings, dtype=np.float32).reshape(-1, self.dim))
        if self.metric == "cosine":
            x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(x, dtype=np.float32)

    def add_sku(self, name: str, embeddings: Any) -> None:
        """Add reference embeddings of `name` (a new SKU, or more views of a known one); no retraining."""
        vectors = self._vectors(embeddings)
        if not len(vectors):
            raise VigilError(f"no reference embeddings for SKU {name!r}", field="sku")
        if name not in self.skus:
            if not self.index.is_trained:
                raise VigilError(
                    f"index {self.index_type!r} needs training; use a Flat or HNSW index",
                    field="index_type",
                )
            self.skus.append(name)
            self.counts.append(0)
        sku_id = self.skus.index(name)
        self.index.add_with_ids(vectors, np.full(len(vectors), sku_id, dtype=np.int64))
        self.counts[sku_id] += len(vectors)

    def _similarity(self, distances: np.ndarray) -> np.ndarray:
        return 1.0 - distances / 2.0 if self.metric == "l2" else distances

    def scores(self, embeddings: Any) -> np.ndarray:
        """(N, S) the best similarity of each query to each SKU's references (−inf for none reached)."""
        x = self._vectors(embeddings)
        out = np.full((len(x), len(self.skus)), -np.inf, dtype=np.float64)
        if not len(x) or not self.index.ntotal:
            return out
        distances, ids = self.index.search(x, int(self.index.ntotal))
        sims = self._similarity(distances).astype(np.float64)
        rows = np.repeat(np.arange(len(x)), ids.shape[1]).reshape(ids.shape)
        found = ids >= 0
        np.maximum.at(out, (rows[found], ids[found]), sims[found])
        return out

    def query(self, embeddings: Any, k: int) -> list[list[Match]]:
        """Per query, the `k` nearest distinct SKUs (by their nearest reference), most similar first."""
        x = self._vectors(embeddings)
        if not self.index.ntotal:
            raise VigilError("the gallery is empty", hint="add reference embeddings with add_sku")
        k = min(int(k), len(self.skus))
        reach = min(int(self.index.ntotal), k * max(self.counts))  # k SKUs are always within reach
        distances, ids = self.index.search(x, reach)
        sims = self._similarity(distances)
        results = []
        for row in range(len(x)):
            best: dict[int, float] = {}
            for sim, sku_id in zip(sims[row], ids[row], strict=True):
                if sku_id >= 0 and sku_id not in best:
                    best[int(sku_id)] = float(sim)
                if len(best) == k:
                    break
            results.append(
                [Match(self.skus[i], s) for i, s in sorted(best.items(), key=lambda kv: -kv[1])]
            )
        return results

    def sidecar(self) -> dict[str, Any]:
        return {
            "vigil": "sku-gallery",
            "skus": list(self.skus),
            "references": list(self.counts),
            "dim": self.dim,
            "metric": self.metric,
            "index_type": self.index_type,
            "embedder_sha256": self.embedder_sha256,
        }

    def save(self, folder: Path) -> None:
        """Write `folder` whole and atomically (the index and its JSON sidecar)."""
        with atomic_dir(Path(folder)) as tmp:
            _faiss().write_index(self.index, str(tmp / INDEX_FILE))
            write_json_atomic(tmp / SIDECAR, self.sidecar())

    @classmethod
    def load(cls, folder: Path, embedder_sha256: str | None = None) -> Gallery:
        """Read a saved gallery; with `embedder_sha256`, refuse one built by another embedder."""
        folder = Path(folder)
        try:
            meta = json.loads((folder / SIDECAR).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise VigilError(
                f"cannot read the gallery sidecar ({exc})",
                path=folder / SIDECAR,
                hint="run the embed stage",
            ) from None
        if not isinstance(meta, dict) or meta.get("vigil") != "sku-gallery":
            raise VigilError("not a gallery sidecar written by vigil", path=folder / SIDECAR)
        if embedder_sha256 is not None and meta.get("embedder_sha256") != embedder_sha256:
            raise VigilError(
                f"the gallery was built by embedder {meta.get('embedder_sha256')}, not {embedder_sha256}",
                path=folder / SIDECAR,
                hint="re-run the embed stage with this embedder",
            )
        gallery = cls(
            int(meta["dim"]),
            str(meta["metric"]),
            str(meta["index_type"]),
            str(meta["embedder_sha256"]),
        )
        index = _faiss().read_index(str(folder / INDEX_FILE))
        if index.d != gallery.dim or index.ntotal != sum(meta["references"]):
            raise VigilError(
                f"the index holds {index.ntotal} vectors of dimension {index.d}, the sidecar says "
                f"{sum(meta['references'])} of {gallery.dim}",
                path=folder / INDEX_FILE,
            )
        gallery.index, gallery.skus, gallery.counts = (
            index,
            list(meta["skus"]),
            list(meta["references"]),
        )
        return gallery


def build_gallery(
    embeddings: Any,
    skus: Sequence[str],
    dim: int,
    metric: str,
    index_type: str,
    embedder_sha256: str,
) -> Gallery:
    """A gallery of reference `embeddings` (N, dim), row i of SKU `skus[i]`, SKUs in sorted order."""
    x = np.asarray(embeddings, dtype=np.float32).reshape(-1, dim)
    names = np.asarray(list(skus))
    if len(names) != len(x):
        raise VigilError(f"{len(x)} embeddings but {len(names)} SKU names")
    gallery = Gallery(dim, metric, index_type, embedder_sha256)
    for name in sorted(set(names.tolist())):
        gallery.add_sku(name, x[names == name])
    return gallery
