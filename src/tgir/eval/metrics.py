"""Retrieval metrics with a plain NumPy path (vectorised)."""

from __future__ import annotations

import numpy as np

DEFAULT_KS = (1, 5, 10, 50, 100)


def topk_excluding(scores: np.ndarray, k: int, exclude: np.ndarray | None = None
                   ) -> np.ndarray:
    """Indices of the ``k`` best gallery items per row, best first; ``exclude[i]`` (a gallery
    index, or -1 for none) is never returned for row i (TIRG: the source image is removed)."""
    s = np.array(scores, dtype=np.float32, copy=True)
    if exclude is not None:
        rows = np.flatnonzero(exclude >= 0)
        s[rows, exclude[rows]] = -np.inf
    k = min(k, s.shape[1])
    part = np.argpartition(-s, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(s, part, 1), axis=1, kind="stable")
    return np.take_along_axis(part, order, 1)


def recall_at_k(ranked_labels: np.ndarray, target_labels: np.ndarray,
                ks: tuple[int, ...] = DEFAULT_KS) -> dict[str, float]:
    """R@K: share of queries whose target label is among the first K retrieved labels.
    A retrieved duplicate of the target (same label) counts as a hit (CSS protocol)."""
    hit = ranked_labels == np.asarray(target_labels)[:, None]
    first = np.where(hit.any(1), hit.argmax(1), np.iinfo(np.int64).max)
    return {f"R@{k}": float(np.mean(first < k)) for k in ks if k <= ranked_labels.shape[1]}
