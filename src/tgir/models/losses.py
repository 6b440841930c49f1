"""Losses for composed retrieval."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _same_label_mask(labels: torch.Tensor | None, n: int, device) -> torch.Tensor | None:
    """Off-diagonal pairs whose targets are the same scene: not negatives, so masked out."""
    if labels is None:
        return None
    same = labels[:, None] == labels[None, :]
    return same & ~torch.eye(n, dtype=torch.bool, device=device)


def batch_classification(query: torch.Tensor, target: torch.Tensor,
                         labels: torch.Tensor | None = None) -> torch.Tensor:
    """Batch-based classification (seed 004 eq. 5, TIRG): cross-entropy of
    softmax_j(q_i . t_j) against the one-hot of i. Embeddings already carry the learned scale."""
    logits = query @ target.t()
    mask = _same_label_mask(labels, len(query), query.device)
    if mask is not None:
        logits = logits.masked_fill(mask, float("-inf"))
    return F.cross_entropy(logits, torch.arange(len(query), device=query.device))


def soft_triplet(query: torch.Tensor, target: torch.Tensor,
                 labels: torch.Tensor | None = None) -> torch.Tensor:
    """TIRG's soft triplet: mean over in-batch negatives of log(1 + exp(d(q,t+) - d(q,t-))),
    d the squared Euclidean distance."""
    d = torch.cdist(query, target).pow(2)
    pos = d.diag()[:, None]
    valid = ~torch.eye(len(query), dtype=torch.bool, device=query.device)
    mask = _same_label_mask(labels, len(query), query.device)
    if mask is not None:
        valid &= ~mask
    return F.softplus(pos - d)[valid].mean()


LOSSES = {"batch_classification": batch_classification, "soft_triplet": soft_triplet}
