"""HGAN's Gumbel top-k attention and matching objectives (Zheng et al., Zheng et al., MM 2020).

The building blocks of the hierarchical Gumbel attention network, each named after its
equation; ``models/hgan.py`` (in progress, issue 7) assembles them with the visual partitions
(eq. 1) and the MiniLM / bi-LSTM / noun-phrase text side.

- ``similarity_map`` (eq. 2): gamma[i, j] between the n image regions and the m words of
  every (image, text) pair of a batch. The paper's "MLP(V, T)" is read as an MLP on each side
  followed by a dot product, so the batch's B x B x n x m map costs einsums, not an MLP on
  every region-word pair.
- ``gumbel_topk`` (Algorithm 1, eq. 5): l2-normalise each row of gamma, add Gumbel noise
  (training only; evaluation is deterministic), softmax with temperature E, keep the top k as
  a k-hot mask. The forward value is exactly k-hot; gradients flow through the softmax
  relaxation (straight-through).
- ``attend`` (eq. 6-7): the selected items fused with softmax(alpha * gamma) restricted to the
  selection (a masked softmax: unselected items get no weight).
- ``soft_attend`` (eq. 3): the soft-attention variant (HGAN w/o Gumbel, Table 5).
- ``RegionScorer`` (eq. 8): S(V, T) = mean_i sigmoid(MLP(v_i + t_i^f)).
- ``hinge_loss`` (eq. 9, ``losses.hinge_triplet``), ``identification_loss`` (eq. 10),
  ``pair_kl_loss`` (eq. 11).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tgir.models.losses import hinge_triplet as hinge_loss  # eq. 9

__all__ = ["attend", "gumbel_topk", "hinge_loss", "identification_loss", "pair_kl_loss",
           "RegionScorer", "selection_weights", "similarity_map", "soft_attend"]


def similarity_map(v: torch.Tensor, t: torch.Tensor, t_mask: torch.Tensor | None = None
                   ) -> torch.Tensor:
    """gamma (Bv, Bt, n, m) from projected regions v (Bv, n, C) and words t (Bt, m, C);
    padded words (``t_mask`` False) get -inf."""
    g = torch.einsum("anc,bmc->abnm", v, t)
    if t_mask is not None:
        g = g.masked_fill(~t_mask[None, :, None, :], float("-inf"))
    return g


def gumbel_topk(gamma: torch.Tensor, k: int, temperature: float = 1.0,
                noise: bool = True, generator: torch.Generator | None = None,
                scale: torch.Tensor | float = 1.0) -> torch.Tensor:
    """Algorithm 1 over the last dimension of ``gamma``: a k-hot mask per row (forward value),
    straight-through gradients from softmax((beta l2norm(gamma) + G) / E). -inf entries
    (padding) are never selected; a row with fewer than k valid entries keeps all of them.
    ``scale`` beta = 1 is the algorithm as printed; HGAN learns it (an inverse temperature
    before the noise, so the noise does not drown the l2-normalised similarities)."""
    valid = torch.isfinite(gamma)
    g = torch.where(valid, gamma, torch.zeros_like(gamma))
    g = scale * F.normalize(g, dim=-1)  # line 8: gamma'_i <- l2norm(gamma_i), times beta
    if noise:  # lines 9-10: r_i <- -log(-log(u_i)) + gamma'_i
        u = torch.rand(g.shape, generator=generator, device=g.device).clamp(1e-10, 1 - 1e-10)
        g = g - torch.log(-torch.log(u))
    g = g.masked_fill(~valid, float("-inf"))
    soft = torch.softmax(g / temperature, dim=-1)  # line 11
    kk = min(k, gamma.shape[-1])
    # line 12: the top k of the softmax, taken on its logits (the same order; the softmax
    # underflows to exact 0 ties for a large beta, which would make the choice arbitrary)
    idx = torch.topk(g, kk, dim=-1).indices
    hard = torch.zeros_like(soft).scatter_(-1, idx, 1.0) * valid
    return hard + (soft - soft.detach())  # forward value exactly k-hot


def selection_weights(gamma: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Eq. 7's softmax(alpha * gamma) over the selected entries of each row only (a masked
    softmax); ``mask`` also carries the straight-through gradient of the selection."""
    logits = torch.where(mask.detach() > 0.5, gamma, torch.full_like(gamma, float("-inf")))
    return torch.nan_to_num(torch.softmax(logits, dim=-1)) * mask


def attend(gamma: torch.Tensor, mask: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """Eq. 6-7: for every query position, the k selected ``items`` fused by the softmax of
    their similarities. gamma, mask (Bv, Bt, n, m); items (Bt, m, C) -> (Bv, Bt, n, C)."""
    return torch.einsum("abnm,bmc->abnc", selection_weights(gamma, mask), items)


def soft_attend(gamma: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
    """Eq. 3: every item, weighted by the softmax of its similarity (no selection)."""
    w = torch.nan_to_num(torch.softmax(gamma, dim=-1))
    return torch.einsum("abnm,bmc->abnc", w, items)


class RegionScorer(nn.Module):
    """Eq. 8: S(V, T) = mean over the query positions of sigmoid(MLP(v_i + t_i^f))."""

    def __init__(self, dim: int, hidden: int = 256):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, q: torch.Tensor, fused: torch.Tensor, q_mask: torch.Tensor | None = None
                ) -> torch.Tensor:
        """q (Bq, n, C) per side-A item; fused (Bv, Bt, n, C) -> S (Bv, Bt)."""
        s = torch.sigmoid(self.mlp(q + fused)).squeeze(-1)  # (Bv, Bt, n)
        if q_mask is None:
            return s.mean(-1)
        w = q_mask.float()
        return (s * w).sum(-1) / w.sum(-1).clamp(min=1)


def identification_loss(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Eq. 10: softmax cross-entropy of the identity classifier (shared by both modalities)."""
    return F.cross_entropy(logits, ids)


def pair_kl_loss(v: torch.Tensor, t: torch.Tensor, ids: torch.Tensor, eps: float = 1e-8
                 ) -> torch.Tensor:
    """Eq. 11 in both directions: p_ij = softmax_j(z_ij) with z_ij = v_i . t_j / |t_j|, the true
    matching distribution q_ij = [y_i = y_j] / sum_k [y_i = y_k], loss sum_j p log(p / (q + eps))
    averaged over i (and the same with the roles of v and t swapped)."""
    same = (ids[:, None] == ids[None, :]).float()
    q = same / same.sum(1, keepdim=True)
    out = 0.0
    for a, b in ((v, t), (t, v)):
        z = a @ F.normalize(b, dim=-1).T
        p = torch.softmax(z, dim=1)
        logp = torch.log_softmax(z, dim=1)
        out = out + (p * (logp - torch.log(q + eps))).sum(1).mean()
    return out


@torch.no_grad()
def selection_overlap(gamma: torch.Tensor, k: int, scale: float | torch.Tensor = 1.0,
                      temperature: float = 1.0, trials: int = 8, seed: int = 0) -> float:
    """How much of a training-time (noisy) top-k selection equals the evaluation (noise-free)
    one: the mean fraction of shared items over ``trials`` noise draws (random: k / m)."""
    gen = torch.Generator(device=gamma.device).manual_seed(seed)
    clean = gumbel_topk(gamma, k, temperature, noise=False, scale=scale) > 0.5
    shared = []
    for _ in range(trials):
        noisy = gumbel_topk(gamma, k, temperature, noise=True, generator=gen, scale=scale) > 0.5
        shared.append(((noisy & clean).sum(-1).float() / clean.sum(-1).clamp(min=1)).mean())
    return float(torch.stack(shared).mean())
