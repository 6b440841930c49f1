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
                ks: tuple[int, ...] = DEFAULT_KS, complete: bool = False) -> dict[str, float]:
    """R@K: share of queries whose target label is among the first K retrieved labels.
    A retrieved duplicate of the target (same label) counts as a hit (CSS protocol). A K longer
    than the ranked lists is left out, unless ``complete`` (the lists rank the whole gallery,
    so R@K for a larger K equals R@width: a small category gallery still gets its R@50)."""
    hit = ranked_labels == np.asarray(target_labels)[:, None]
    first = np.where(hit.any(1), hit.argmax(1), np.iinfo(np.int64).max)
    width = ranked_labels.shape[1]
    return {f"R@{k}": float(np.mean(first < k)) for k in ks if k <= width or complete}


def _ranked_relevance(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """``relevant`` reordered by descending score per row (ties broken by index)."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), axis=1, kind="stable")
    return np.take_along_axis(np.asarray(relevant, dtype=bool), order, 1)


def _ap(rel: np.ndarray) -> np.ndarray:
    hits = np.cumsum(rel, axis=1)
    ranks = np.arange(1, rel.shape[1] + 1)[None, :]
    n_rel = rel.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_rel > 0, (rel * hits / ranks).sum(1) / n_rel, np.nan)


def _inp(rel: np.ndarray) -> np.ndarray:
    n_rel = rel.sum(1)
    last = rel.shape[1] - np.argmax(rel[:, ::-1], axis=1)  # 1-based rank of the last hit
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_rel > 0, n_rel / last, np.nan)


def average_precision(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """AP of each row over the full ranking by ``scores`` (descending; ties broken by index).
    ``relevant`` is bool with the same shape; a row without relevant items gets NaN."""
    return _ap(_ranked_relevance(scores, relevant))


def inverse_negative_penalty(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """INP of each row (Ye et al., TPAMI 2021): relevant count / rank of the hardest (last)
    relevant item, so 1 when every relevant item is ahead of every irrelevant one; NaN for a row
    without relevant items. mINP is its mean."""
    return _inp(_ranked_relevance(scores, relevant))


def precision_at_k(scores: np.ndarray, relevant: np.ndarray, k: int) -> np.ndarray:
    """Share of the ``k`` best-scored items that are relevant, per row (the "AP@50" of Reed
    et al. for CUB / Flowers text -> image: the fraction of the top 50 in the query's class)."""
    s = np.asarray(scores, dtype=np.float64)
    k = min(k, s.shape[1])
    part = np.argpartition(-s, k - 1, axis=1)[:, :k]
    return np.take_along_axis(np.asarray(relevant, dtype=bool), part, 1).mean(1)


def cmc_and_map(scores: np.ndarray, relevant: np.ndarray, ks: tuple[int, ...] = (1, 5, 10),
                chunk: int = 512) -> dict[str, float]:
    """R@K (share of queries with a relevant item in the top K, i.e. CMC), mAP and mINP over the
    queries that have at least one relevant item (AIHM / person-search protocol). Rows are
    processed ``chunk`` at a time, so memory is O(chunk x gallery) beyond the inputs."""
    relevant = np.asarray(relevant, dtype=bool)
    valid = np.flatnonzero(relevant.any(1))
    n = np.asarray(scores).shape[1] if np.ndim(scores) == 2 else 0
    first, ap, inp = [], [], []
    for i in range(0, len(valid), chunk):
        rows = valid[i:i + chunk]
        rel = _ranked_relevance(np.asarray(scores)[rows], relevant[rows])  # one sort per row
        first.append(rel.argmax(1))
        ap.append(_ap(rel))
        inp.append(_inp(rel))
    if not first:
        return {**{f"R@{k}": 0.0 for k in ks if k <= n}, "mAP": 0.0, "mINP": 0.0}
    f = np.concatenate(first)
    out = {f"R@{k}": float(np.mean(f < k)) for k in ks if k <= n}
    out["mAP"] = float(np.mean(np.concatenate(ap)))
    out["mINP"] = float(np.mean(np.concatenate(inp)))
    return out
