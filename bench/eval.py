"""Evaluation speed: tgir's vectorised, chunked ranking vs a per-query Python loop.

The loop is the way google/tirg's test_retrieval ranks (one query at a time: similarities,
exclude the source, full sort, check the labels). Both run on the same random embeddings and
must give the same R@K; the script prints both times and the speed-up.

    python bench/eval.py [--queries 5000] [--gallery 20000] [--dim 256]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tgir.eval.evaluate import rank
from tgir.eval.metrics import recall_at_k


def loop_recall(q: np.ndarray, g: np.ndarray, src: np.ndarray, labels: np.ndarray,
                target_labels: np.ndarray, ks=(1, 5, 10, 50, 100)) -> dict[str, float]:
    hits = {k: 0 for k in ks}
    for i in range(len(q)):
        s = g @ q[i]
        s[src[i]] = -np.inf
        order = np.argsort(-s, kind="stable")[: max(ks)]
        for k in ks:
            hits[k] += int(target_labels[i] in labels[order[:k]])
    return {f"R@{k}": hits[k] / len(q) for k in ks}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--queries", type=int, default=5000)
    p.add_argument("--gallery", type=int, default=20000)
    p.add_argument("--dim", type=int, default=256)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    g = rng.standard_normal((a.gallery, a.dim)).astype(np.float32)
    labels = rng.integers(0, a.gallery // 2, a.gallery)
    src = rng.integers(0, a.gallery, a.queries)
    tgt = rng.integers(0, a.gallery, a.queries)
    q = (g[tgt] + 4.0 * rng.standard_normal((a.queries, a.dim))).astype(np.float32)
    t = time.perf_counter()
    fast = recall_at_k(labels[rank(q, g, src, 100)], labels[tgt])
    t_fast = time.perf_counter() - t
    t = time.perf_counter()
    slow = loop_recall(q, g, src, labels, labels[tgt])
    t_slow = time.perf_counter() - t
    same = all(abs(fast[k] - slow[k]) < 1e-9 for k in fast)
    print(f"{a.queries} queries x {a.gallery} gallery x {a.dim}-d")
    print(f"per-query loop : {t_slow:7.2f} s   {slow}")
    print(f"tgir vectorised: {t_fast:7.2f} s   {fast}")
    print(f"speed-up x{t_slow / t_fast:.1f}; identical R@K: {same}")


if __name__ == "__main__":
    main()
