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


def average_precision(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """AP of each row over the full ranking by ``scores`` (descending; ties broken by index).
    ``relevant`` is bool with the same shape; a row without relevant items gets NaN."""
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, axis=1, kind="stable")
    rel = np.take_along_axis(np.asarray(relevant, dtype=bool), order, 1)
    hits = np.cumsum(rel, axis=1)
    ranks = np.arange(1, rel.shape[1] + 1)[None, :]
    n_rel = rel.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_rel > 0, (rel * hits / ranks).sum(1) / n_rel, np.nan)


def cmc_and_map(scores: np.ndarray, relevant: np.ndarray, ks: tuple[int, ...] = (1, 5, 10)
                ) -> dict[str, float]:
    """R@K (share of queries with a relevant item in the top K, i.e. CMC) and mAP over the
    queries that have at least one relevant item (AIHM / person-search protocol)."""
    relevant = np.asarray(relevant, dtype=bool)
    valid = relevant.any(1)
    scores, relevant = np.asarray(scores)[valid], relevant[valid]
    order = np.argsort(-np.asarray(scores, dtype=np.float64), axis=1, kind="stable")
    rel = np.take_along_axis(relevant, order, 1)
    first = rel.argmax(1)
    out = {f"R@{k}": float(np.mean(first < k)) for k in ks if k <= rel.shape[1]}
    out["mAP"] = float(np.mean(average_precision(scores, relevant))) if len(rel) else 0.0
    return out
