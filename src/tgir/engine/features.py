"""Batched embedding of gallery images and composed queries (no gradients)."""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from tgir.data.images import to_tensor_batch
from tgir.data.text import Vocabulary
from tgir.models.tasks import capabilities


@torch.no_grad()
def embed_images(model, images: np.ndarray, batch_size: int = 256, progress: bool = False,
                 desc: str = "embed gallery") -> np.ndarray:
    """``model.embed_target`` over uint8 images (N,H,W,3) -> float32 (N, D)."""
    model.eval()
    dev = next(model.parameters()).device
    out = []
    for i in tqdm(range(0, len(images), batch_size), desc=desc, disable=not progress,
                  leave=False, mininterval=1.0):
        x = to_tensor_batch(images[i:i + batch_size]).to(dev)
        out.append(model.embed_target(x).float().cpu())
    return torch.cat(out).numpy()


@torch.no_grad()
def embed_queries(model, vocab: Vocabulary, images: np.ndarray, texts: list[str],
                  batch_size: int = 256, progress: bool = False,
                  desc: str = "embed queries") -> np.ndarray:
    """``model.compose`` over (reference image, modification text) pairs -> float32 (Q, D)."""
    model.eval()
    dev = next(model.parameters()).device
    out = []
    for i in tqdm(range(0, len(texts), batch_size), desc=desc, disable=not progress,
                  leave=False, mininterval=1.0):
        x = to_tensor_batch(images[i:i + batch_size]).to(dev)
        ids, lengths = vocab.encode_batch(texts[i:i + batch_size])
        out.append(model.compose(x, torch.from_numpy(ids).to(dev),
                                 torch.from_numpy(lengths).to(dev)).float().cpu())
    return torch.cat(out).numpy()


@torch.no_grad()
def embed_attribute_sets(model, attrs: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """``model.embed_attributes`` over attribute-value id rows (Q, A) -> float32 (Q, D)."""
    model.eval()
    dev = next(model.parameters()).device
    out = [model.embed_attributes(torch.from_numpy(np.asarray(attrs[i:i + batch_size],
                                                              dtype=np.int64)).to(dev)
                                  ).float().cpu() for i in range(0, len(attrs), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


@torch.no_grad()
def score_all(model, queries: np.ndarray, gallery: np.ndarray, progress: bool = False
              ) -> np.ndarray:
    """Scores (Q, G): the model's own pair scorer (``model.match``, e.g. AIHM's matching
    head) when it has one, else the dot product of the embeddings."""
    if not capabilities(model).pair_scorer:
        return queries @ gallery.T
    dev = next(model.parameters()).device
    g = torch.from_numpy(gallery).to(dev)
    rows = []
    for i in tqdm(range(0, len(queries), 64), desc="match", disable=not progress, leave=False,
                  mininterval=1.0):
        rows.append(model.match(torch.from_numpy(queries[i:i + 64]).to(dev), g).float().cpu())
    return torch.cat(rows).numpy()
