"""Does a composed query use both of its inputs? (issue 20)

For ``n`` queries of a composed split, the query embedding q = compose(image, text) is
compared with the embedding of the same query whose text is swapped for another query's
text, and with the one whose reference image is swapped for another query's image. A
composed model that ignores a modality gives a cosine near 1 under that swap; a healthy one
moves under both. The swap partner is the next query in a seeded permutation that has a
different text (resp. a different reference image), so a swap always changes the input.
"""

from __future__ import annotations

import numpy as np
import torch

from tgir.data.text import Vocabulary
from tgir.data.types import ComposedSplit
from tgir.engine.features import embed_queries


def _partner(keys: list, order: np.ndarray) -> np.ndarray:
    """For each position of ``order``, the next position (cyclically) with another key."""
    n = len(order)
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        j = (i + 1) % n
        while keys[order[j]] == keys[order[i]] and j != i:
            j = (j + 1) % n
        out[i] = order[j]
    return out


@torch.no_grad()
def swap_sensitivity(model: torch.nn.Module, vocab: Vocabulary, split: ComposedSplit,
                     n: int = 256, seed: int = 0) -> dict[str, float]:
    """Mean cosine of q with q under a swapped text and under a swapped reference image
    (``text_swap_cos``, ``image_swap_cos``; 1.0 = that input is ignored)."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(split.num_queries)[:n]
    src = split.query_source[order]
    texts = [split.query_text[i] for i in order]
    other_text = _partner(texts, np.arange(len(order)))
    other_image = _partner(list(src), np.arange(len(order)))
    imgs = split.images[src]
    q = embed_queries(model, vocab, imgs, texts)
    q_t = embed_queries(model, vocab, imgs, [texts[j] for j in other_text])
    q_i = embed_queries(model, vocab, imgs[other_image], texts)

    def cos(a: np.ndarray, b: np.ndarray) -> float:
        a = a / np.linalg.norm(a, axis=1, keepdims=True).clip(1e-12)
        b = b / np.linalg.norm(b, axis=1, keepdims=True).clip(1e-12)
        return float((a * b).sum(1).mean())

    return {"text_swap_cos": cos(q, q_t), "image_swap_cos": cos(q, q_i)}
