"""Batched embedding of gallery images and composed queries (no gradients)."""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from tgir.data.images import to_tensor_batch
from tgir.data.text import Vocabulary


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
