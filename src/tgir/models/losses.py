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
    """Batch-based classification (Dodds et al. eq. 5, TIRG): cross-entropy of
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


def hinge_triplet(s: torch.Tensor, margin: float = 0.2, same: torch.Tensor | None = None
                  ) -> torch.Tensor:
    """Hinge ranking loss over a batch similarity matrix S (B, B) whose diagonal holds the
    matching pairs (Kiros et al.; Zheng et al. eq. 9): every negative column per row plus every
    negative row per column, summed, averaged over the batch. Pairs marked ``same`` (e.g. one
    identity) are not negatives."""
    pos = s.diag()
    neg = ~torch.eye(len(s), dtype=torch.bool, device=s.device)
    if same is not None:
        neg &= ~same
    i2t = (margin - pos[:, None] + s).clamp(min=0) * neg
    t2i = (margin - pos[None, :] + s).clamp(min=0) * neg
    return (i2t.sum() + t2i.sum()) / len(s)


def gather_global(query: torch.Tensor, target: torch.Tensor,
                  labels: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Under torch.distributed with more than one process: every rank's share of the global
    batch, concatenated in rank order, with gradients (CLIP-style all_gather; its backward sums
    the gradients of each share over the ranks). Every rank then computes the same global loss,
    and DDP's gradient average is exactly the one-process gradient. A no-op in one process."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return query, target, labels
    import torch.distributed.nn.functional as dist_fn

    q = torch.cat(dist_fn.all_gather(query))
    t = torch.cat(dist_fn.all_gather(target))
    if labels is not None:
        parts = [torch.empty_like(labels) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, labels.contiguous())
        labels = torch.cat(parts)
    return q, t, labels


def _over_global_batch(fn):
    def loss(query: torch.Tensor, target: torch.Tensor,
             labels: torch.Tensor | None = None) -> torch.Tensor:
        return fn(*gather_global(query, target, labels))
    loss.__doc__ = f"{fn.__doc__} Over the global batch when distributed."
    return loss


LOSSES = {"batch_classification": _over_global_batch(batch_classification),
          "soft_triplet": _over_global_batch(soft_triplet)}
