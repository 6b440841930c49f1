"""MAAF: Modality-Agnostic Attention Fusion (Dodds et al., Dodds et al.).

- Tokens (§2): each selected backbone map is projected by a learned linear map (1x1 conv) to
  ``d_model`` and flattened, one token per spatial location; the LSTM gives one token per word.
- Concatenated self-attention (§2.1, eq. 1-2): Phi = [phi_x, phi_t] goes through Transformer
  encoder blocks whose W_Q, W_K, W_V are shared by both modalities; ``attention="identity"``
  replaces the softmax f by the identity (§3.1: much better on CSS).
- Embedding (§2.3): resolution-wise pooling (RP): average within each token type (each image
  resolution and, with IT, the text), average those vectors, l2-normalise, times a learned
  scale initialised to 4. Catalog images go through the same attention with no text (ITA).
- Loss (§2.4): batch-based classification, eq. 5 (in ``base``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from tgir import TgirError
from tgir.models.base import ComposedModel
from tgir.models.layers import Dropout


class MultiHeadAttention(nn.Module):
    """Attn(Q,K,V) = f(QK^T / sqrt(d_k)) V with f = softmax or identity (eq. 1); padded keys are
    masked (-inf before softmax, 0 for identity)."""

    def __init__(self, d_model: int, heads: int, attention: str):
        super().__init__()
        if d_model % heads:
            raise TgirError(f"d_model {d_model} is not divisible by {heads} heads")
        if attention not in ("softmax", "identity"):
            raise TgirError(f"attention must be softmax or identity, not {attention!r}")
        self.h, self.dk, self.attention = heads, d_model // heads, attention
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.last_weights: torch.Tensor | None = None  # f(QK^T), kept for visualisation

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor, keep: bool = False
                ) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.h, self.dk).permute(2, 0, 3, 1, 4)
        m = key_mask[:, None, None, :]
        if keep:  # the explicit weights, kept for visualisation
            scores = q @ k.transpose(-1, -2) / math.sqrt(self.dk)  # (B, h, n, n)
            if self.attention == "softmax":
                w = scores.masked_fill(~m, float("-inf")).softmax(-1)
            else:
                w = scores * m
            self.last_weights = w.detach()
            o = w @ v
        elif self.attention == "softmax":  # the same value by PyTorch's fused kernel
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=m)
        else:  # identity f: (QK^T * m) V = Q ((K * m)^T V), O(n d_k^2) instead of O(n^2 d_k)
            km = k * key_mask[:, None, :, None].to(k.dtype)
            o = q @ (km.transpose(-1, -2) @ v) / math.sqrt(self.dk)
        return self.out(o.transpose(1, 2).reshape(b, n, d))


class AttentionBlock(nn.Module):
    """Transformer encoder block: x + Attn(LN(x)), then x + FFN(LN(x)) (pre-norm)."""

    def __init__(self, d_model: int, heads: int, ffn: int, attention: str, dropout: float):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, heads, attention)
        self.ffn = nn.Sequential(nn.Linear(d_model, ffn), nn.ReLU(), Dropout(dropout),
                                 nn.Linear(ffn, d_model))
        self.drop = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, keep: bool = False) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x), mask, keep))
        return x + self.drop(self.ffn(self.ln2(x)))


class MAAF(ComposedModel):
    """Dodds et al.'s model. ``levels`` picks backbone maps (-1 = last, -2 = the finer one);
    the paper's CSS setting is ``levels=[-1]``, one block, identity attention."""

    def __init__(self, vocab_size: int, levels: tuple[int, ...] = (-2, -1), blocks: int = 2,
                 heads: int = 8, ffn: int = 256, attention: str = "softmax",
                 dropout: float = 0.1, resolution_pooling: bool = True,
                 image_through_attention: bool = True, include_text: bool = True, **cfg):
        super().__init__(vocab_size, **cfg)
        d = self.embed_dim
        chans = self.backbone.out_channels
        self.levels = [int(lv) for lv in levels]
        for lv in self.levels:
            if not -len(chans) <= lv < len(chans):
                raise TgirError(f"MAAF level {lv} not in the backbone's {len(chans)} maps")
        self.proj = nn.ModuleList(nn.Conv2d(chans[lv], d, 1) for lv in self.levels)
        self.blocks = nn.ModuleList(AttentionBlock(d, heads, ffn, attention, dropout)
                                    for _ in range(blocks))
        self.final_ln = nn.LayerNorm(d)
        self.rp, self.ita, self.it = resolution_pooling, image_through_attention, include_text

    def image_tokens(self, images: torch.Tensor) -> list[torch.Tensor]:
        maps = self.encode_image(images)
        return [p(maps[lv]).flatten(2).transpose(1, 2) for p, lv in zip(self.proj, self.levels,
                                                                           strict=True)]

    def transform(self, img_tokens: list[torch.Tensor], txt_tokens: torch.Tensor | None,
                  txt_mask: torch.Tensor | None, keep: bool = False
                  ) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """Concatenate the tokens, run the shared attention blocks; returns the output tokens
        split back into the image levels and the text (Psi = [psi_r, psi_m] of Zhang et al.)."""
        parts = list(img_tokens)
        b = parts[0].shape[0]
        masks = [torch.ones(b, t.shape[1], dtype=torch.bool, device=t.device) for t in parts]
        if txt_tokens is not None:
            parts.append(txt_tokens)
            masks.append(txt_mask)
        x, mask = torch.cat(parts, 1), torch.cat(masks, 1)
        for blk in self.blocks:
            x = blk(x, mask, keep)
        chunks = list(torch.split(self.final_ln(x), [t.shape[1] for t in parts], dim=1))
        if txt_tokens is None:
            return chunks, None
        return chunks[:-1], chunks[-1]

    def pool(self, img_out: list[torch.Tensor], txt_out: torch.Tensor | None,
             txt_mask: torch.Tensor | None) -> torch.Tensor:
        """Resolution-wise pooling (RP) with the text tokens included (IT), then the scale."""
        b = img_out[0].shape[0]
        if self.rp:
            pooled = [c.mean(1) for c in img_out]
        else:
            pooled = [torch.cat(img_out, 1).mean(1)]
        if txt_out is not None and self.it:
            w = txt_mask.float()[..., None]
            pooled.append((txt_out * w).sum(1) / w.sum(1).clamp(min=1.0))
            # an empty text contributes nothing: average only over present token types
            present = torch.stack([torch.ones(b, device=txt_out.device)] * (len(pooled) - 1)
                                  + [(txt_mask.sum(1) > 0).float()], 1)
            stacked = torch.stack(pooled, 1)
            return self.norm((stacked * present[..., None]).sum(1) / present.sum(1, True))
        return self.norm(torch.stack(pooled, 1).mean(1))

    def fuse(self, img_tokens: list[torch.Tensor], txt_tokens: torch.Tensor | None,
             txt_mask: torch.Tensor | None, keep: bool = False) -> torch.Tensor:
        """Concatenated self-attention, then pooling: the MAAF embedding."""
        img_out, txt_out = self.transform(img_tokens, txt_tokens, txt_mask, keep)
        return self.pool(img_out, txt_out, txt_mask)

    def compose(self, images, ids, lengths):
        t = self.encode_text(ids, lengths)
        return self.fuse(self.image_tokens(images), t.tokens, t.mask)

    def embed_target(self, images):
        tokens = self.image_tokens(images)
        if self.ita:
            return self.fuse(tokens, None, None)
        return self.norm(torch.stack([tk.mean(1) for tk in tokens], 1).mean(1))

    def attention_maps(self, images, ids, lengths) -> list[torch.Tensor]:
        """f(QK^T) of every block for one forward pass (Dodds et al. Fig. 3-4 visualisations)."""
        t = self.encode_text(ids, lengths)
        self.fuse(self.image_tokens(images), t.tokens, t.mask, keep=True)
        return [blk.attn.last_weights for blk in self.blocks]


__all__ = ["MAAF"]
