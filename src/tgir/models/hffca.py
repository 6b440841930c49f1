"""hffca: composed retrieval with MCF + CGP + RCC on a MAAF baseline (Zhang et al.).

The baseline (§3.2) is MAAF with ONE shared Transformer block over [phi_r, phi_m]; its output
Psi = [psi_r, psi_m] feeds three modules, each switchable (the 8 rows of Table 1):

- MCF, Multi-modal Complementary Fusion (eq. 3-10): interaction maps M_r1 = psi_r^T V_r psi_m,
  M_r2 = W_r M_r1, softmax (per image position, over the words), projected text hat psi_m,
  the modified gate
  O_r (.) G_r added to psi_r; and the symmetric image-into-text direction.
- CGP, Cross-modal Guided Pooling (eq. 11-16): intra- and inter-relation maps, tanh-bilinear
  X, softplus pooling weights Z, eq = gamma_r psi_r Z_r + gamma_m psi_m Z_m; the target side
  (eq. 17-20) pools psi_t with intra-relation only.
- RCC, Relative Caption-aware Consistency (eq. 21-28): an attention LSTM generates the
  modification text from psi_t and psi_r* (the reference through the block without text);
  L = alpha L_bat + beta L_rel (eq. 29, defaults 0.7 / 0.3).

With all three off the computation is MAAF's (one block, resolution-wise pooling; texts are
cut at ``max_words``, 32).

Readings of the paper where it is ambiguous (issue 20; measured in the README):

- eq. 5, "softmax is normalization over the image feature dimension": M_r is N x L and
  eq. 6 computes hat psi_m^T = M_r psi_m^T, the text projected to each image position. We
  normalise each image position's row over the *words* (the other modality), as in the
  co-attention work MCF cites ([26] bilinear attention, [37] hierarchical co-attention), so
  hat psi_m is a convex mix of word features, the "text feature in image space" the text
  describes. Normalising over the own positions instead (the literal column reading) makes
  each image token receive weights summing to L/N (~0.1) and each word N/L (~10): the fused
  words become ~10x the pooled image and the query ignores the reference.
- eq. 4 mixes the rows of M_r1 with W_r; padded own positions are zeroed before that.
- eq. 14 calls Z_r "a weight distribution over the whole image features": the softplus
  weights are divided by their sum per modality, and the gammas start at MAAF's image : text
  share (levels : 1). With ``cgp_norm="all"`` (the literal reading, the default) one
  distribution covers the tokens of both backbone levels, so near-uniform weights give the
  8x8 level 64/80 of the image weight (MAAF's resolution-wise pooling: 1/2; Dodds et al.
  note that pooling all tokens equally over-represents the finer map); ``"level"``
  normalises within each level, so uniform weights are exactly MAAF's pooling, but CGP can
  then not move weight between the levels. The ablation measures both.
- eq. 11-13 / 17-18: the relation maps psi^T K psi are divided by d (with K = I their
  entries grow as d) and A psi^T averages over the L or N positions it sums, so the tanh of
  eq. 13 / 18 starts unsaturated (pre-activation std ~0.3 at init, 0% of units at
  |tanh| > 0.99; summed and divided by d only: std ~270, 92%); the paper states no
  initialisation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tgir import TgirError
from tgir.models.losses import LOSSES
from tgir.models.maaf import MAAF


class MCFDirection(nn.Module):
    """One direction of MCF (eq. 3-9): fuse ``other`` (length Lo) into ``own`` (length Ln).

    ``max_own`` bounds the own-sequence length because W_r is an Ln x Ln matrix (eq. 4); for
    the text direction it is the longest text, and shorter texts use its top-left block."""

    def __init__(self, d: int, max_own: int):
        super().__init__()
        self.V = nn.Parameter(torch.randn(d, d) / d)  # V_r (eq. 3)
        self.W = nn.Parameter(torch.eye(max_own))  # W_r (eq. 4), identity at start
        self.fc1 = nn.Linear(2 * d, d)  # W_r1, b_r1 (eq. 7)
        self.fc2 = nn.Linear(d, d)  # W_r2, b_r2 (eq. 8)
        self.fc3 = nn.Linear(d, d)  # W_r3, b_r3 (eq. 8)
        self.last_map: torch.Tensor | None = None

    def forward(self, own: torch.Tensor, other: torch.Tensor, own_mask: torch.Tensor,
                other_mask: torch.Tensor) -> torch.Tensor:
        # own: (B, Ln, d), other: (B, Lo, d); masks True where a token is
        n = own.shape[1]
        own = own * own_mask[..., None]  # padded own rows take no part in W_r's mixing
        other = other * other_mask[..., None]
        m1 = own @ self.V @ other.transpose(1, 2)  # (B, Ln, Lo)  eq. 3
        m2 = self.W[:n, :n] @ m1  # (B, Ln, Lo)  eq. 4
        m2 = m2.masked_fill(~other_mask[:, None, :], float("-inf"))
        m = torch.softmax(m2, dim=2)  # eq. 5: each own position over the other's tokens
        m = torch.nan_to_num(m) * own_mask[..., None]
        self.last_map = m.detach()
        hat = m @ other  # (B, Ln, d)  eq. 6: the other modality projected to own positions
        o = F.relu(self.fc1(torch.cat([own, hat], -1))) + hat  # eq. 7
        g = torch.sigmoid(self.fc2(own) * self.fc3(hat))  # eq. 8
        return (o * g + own) * own_mask[..., None]  # eq. 9


class CGPWeights(nn.Module):
    """CGP pooling weights Z for one modality (eq. 11-14), or the target form (eq. 17-19)
    when ``cross=False``."""

    def __init__(self, d: int, cross: bool = True):
        super().__init__()
        self.d, self.cross = d, cross
        self.K_self = nn.Parameter(torch.eye(d))  # K_r (eq. 12) / K_t (eq. 17)
        self.fc_self = nn.Linear(d, d)  # W_2, b_2 (eq. 13) / W_4, b_4 (eq. 18)
        if cross:
            self.K_cross = nn.Parameter(torch.eye(d))  # K_rm (eq. 11)
            self.fc_cross = nn.Linear(d, d)  # W_1, b_1 (eq. 13)
        self.fc_z = nn.Linear(d, 1)  # W_3, b_3 (eq. 14) / W_5, b_5 (eq. 19)

    def forward(self, own: torch.Tensor, own_mask: torch.Tensor, other: torch.Tensor | None,
                other_mask: torch.Tensor | None) -> torch.Tensor:
        """Pooling weights (B, Ln), each row a distribution over the own tokens (eq. 14)."""
        scale = float(self.d)
        own = own * own_mask[..., None]
        n_own = own_mask.sum(1).clamp(min=1)[:, None, None].to(own.dtype)
        a_self = own @ self.K_self @ own.transpose(1, 2) / scale  # (B, Ln, Ln)  eq. 12
        x = torch.tanh(self.fc_self(a_self @ own / n_own))  # eq. 13, right factor
        if self.cross:
            other = other * other_mask[..., None]
            n_other = other_mask.sum(1).clamp(min=1)[:, None, None].to(own.dtype)
            a_cross = own @ self.K_cross @ other.transpose(1, 2) / scale  # (B, Ln, Lo)  eq. 11
            x = torch.tanh(self.fc_cross(a_cross @ other / n_other)) * x  # eq. 13
        z = F.softplus(self.fc_z(x)).squeeze(-1) * own_mask  # eq. 14: positive weights
        return z / z.sum(1, keepdim=True).clamp(min=1e-12)  # a distribution over the tokens


class RelativeCaptioner(nn.Module):
    """RCC (eq. 21-28): an attention LSTM that generates the modification text from the
    target tokens psi_t and the text-free reference tokens psi_r* (Show-Attend-Tell style)."""

    def __init__(self, vocab_size: int, d: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, d)  # E, a new embedding matrix
        self.start = nn.Parameter(torch.zeros(d))  # the embedding before the first word
        self.cell = nn.LSTMCell(3 * d, d)  # eq. 22-24: input [E w_{s-1}, z_t, z_r]
        self.h0 = nn.Parameter(torch.randn(d) * 0.1)
        self.c0 = nn.Parameter(torch.randn(d) * 0.1)
        self.att_t = nn.ModuleDict({"v": nn.Linear(d, d), "h": nn.Linear(d, d),
                                    "w": nn.Linear(d, 1)})  # f_att,t (eq. 25)
        self.att_r = nn.ModuleDict({"v": nn.Linear(d, d), "h": nn.Linear(d, d),
                                    "w": nn.Linear(d, 1)})  # f_att,r (eq. 26)
        self.W_h = nn.Linear(d, d, bias=False)
        self.W_z = nn.Linear(2 * d, d, bias=False)
        self.W_o = nn.Linear(d, vocab_size)

    @staticmethod
    def _attend(att: nn.ModuleDict, feats: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        e = att["w"](torch.tanh(att["v"](feats) + att["h"](h)[:, None, :])).squeeze(-1)
        return (torch.softmax(e, dim=1)[..., None] * feats).sum(1)

    def forward(self, psi_t: torch.Tensor, psi_r: torch.Tensor, ids: torch.Tensor
                ) -> torch.Tensor:
        """Logits (B, L, K) for the words of ``ids`` under teacher forcing."""
        b, length = ids.shape
        h = self.h0.expand(b, -1).contiguous()
        c = self.c0.expand(b, -1).contiguous()
        prev = self.start.expand(b, -1)
        out = []
        for s in range(length):
            z = torch.cat([self._attend(self.att_t, psi_t, h),
                           self._attend(self.att_r, psi_r, h)], -1)
            h, c = self.cell(torch.cat([prev, z], -1), (h, c))
            out.append(self.W_o(prev + self.W_h(h) + self.W_z(z)))  # eq. 27
            prev = self.embed(ids[:, s])
        return torch.stack(out, 1)

    def loss(self, psi_t, psi_r, ids, lengths) -> torch.Tensor:
        """L_rel (eq. 28): per-text mean word cross-entropy, averaged over the batch."""
        logits = self.forward(psi_t, psi_r, ids)
        mask = (torch.arange(ids.shape[1], device=ids.device)[None] < lengths[:, None]).float()
        ce = F.cross_entropy(logits.transpose(1, 2), ids, reduction="none") * mask
        keep = lengths > 0
        return (ce.sum(1)[keep] / lengths[keep].float()).mean()


class HFFCA(MAAF):
    """Zhang et al.'s model. ``mcf`` / ``cgp`` / ``rcc`` switch the modules (Table 1 ablation);
    ``alpha`` / ``beta`` weigh L_bat and L_rel (eq. 29)."""

    @staticmethod
    def data_options(split) -> dict:
        """MCF's maps are sized by the image token count: the training images' side."""
        return {"image_size": int(split.images.shape[1])}

    def __init__(self, vocab_size: int, mcf: bool = True, cgp: bool = True, rcc: bool = True,
                 alpha: float = 0.7, beta: float = 0.3, max_words: int = 32,
                 cgp_norm: str = "all",
                 levels: tuple[int, ...] = (-2, -1), blocks: int = 1, image_size: int = 64,
                 **cfg):
        super().__init__(vocab_size, levels=levels, blocks=blocks, **cfg)
        d = self.embed_dim
        self.use_mcf, self.use_cgp, self.use_rcc = mcf, cgp, rcc
        if cgp_norm not in ("all", "level"):
            raise TgirError(f"cgp_norm must be 'all' or 'level', got {cgp_norm!r}")
        self.cgp_norm = cgp_norm
        self.alpha, self.beta, self.max_words = alpha, beta, max_words
        if mcf:
            # W_r is N x N over all image tokens (eq. 4): N follows from the image size
            with torch.no_grad():
                was = self.backbone.training
                self.backbone.eval()
                probe = self.image_tokens(torch.zeros(1, 3, image_size, image_size))
                self.backbone.train(was)
            self.num_image_tokens = sum(t.shape[1] for t in probe)
            self.mcf_r = MCFDirection(d, self.num_image_tokens)
            self.mcf_m = MCFDirection(d, max_words)
        if cgp:
            self.cgp_r, self.cgp_m = CGPWeights(d), CGPWeights(d)
            self.cgp_t = CGPWeights(d, cross=False)
            # gamma_r, gamma_m (eq. 16), starting at MAAF's share: one part per image level
            share = torch.tensor([len(levels), 1.0]) / (len(levels) + 1)
            self.gamma = nn.Parameter(share)
        if rcc:
            self.captioner = RelativeCaptioner(vocab_size, d)

    def query_tokens(self, images, ids, lengths):
        """psi~_r (B,N,d), psi~_m (B,L,d), text mask: the block output, through MCF if on."""
        t = self.encode_text(ids[:, : self.max_words], lengths.clamp(max=self.max_words))
        img_out, txt_out = self.transform(self.image_tokens(images), t.tokens, t.mask)
        if not self.use_mcf:
            return img_out, txt_out, t.mask
        psi_r = torch.cat(img_out, 1)
        if psi_r.shape[1] != self.num_image_tokens:
            raise TgirError(f"hffca was built for {self.num_image_tokens} image tokens "
                            f"(model.image_size); these images give {psi_r.shape[1]}")
        ones = torch.ones(psi_r.shape[:2], dtype=torch.bool, device=psi_r.device)
        new_r = self.mcf_r(psi_r, txt_out, ones, t.mask)  # text into image (eq. 3-9)
        new_m = self.mcf_m(txt_out, psi_r, t.mask, ones)  # image into text (eq. 10)
        return list(torch.split(new_r, [x.shape[1] for x in img_out], 1)), new_m, t.mask

    def compose(self, images, ids, lengths):
        img_out, txt_out, mask = self.query_tokens(images, ids, lengths)
        if not self.use_cgp:
            return self.pool(img_out, txt_out, mask)
        psi_r = torch.cat(img_out, 1)
        ones = torch.ones(psi_r.shape[:2], dtype=torch.bool, device=psi_r.device)
        z_r = self._per_level(self.cgp_r(psi_r, ones, txt_out, mask), img_out)  # eq. 11-14
        z_m = self.cgp_m(txt_out, mask, psi_r, ones)  # eq. 15
        eq = (self.gamma[0] * (z_r[..., None] * psi_r).sum(1)
              + self.gamma[1] * (z_m[..., None] * txt_out).sum(1))  # eq. 16
        return self.norm(eq)

    def _per_level(self, z: torch.Tensor, levels: list[torch.Tensor]) -> torch.Tensor:
        """``cgp_norm="all"``: Z as eq. 14 gives it, one distribution over all N image tokens
        (the 8x8 map then carries 64 / 80 of the weight at the start). ``"level"``: the same
        weights renormalised within each backbone level and the levels averaged, so uniform
        weights are exactly MAAF's resolution-wise pooling (the variant's start)."""
        if self.cgp_norm == "all" or len(levels) == 1:
            return z
        parts = torch.split(z, [x.shape[1] for x in levels], 1)
        return torch.cat([p / p.sum(1, keepdim=True).clamp(min=1e-12) / len(parts)
                          for p in parts], 1)

    def target_tokens(self, images) -> list[torch.Tensor]:
        """psi_t: the image through the block with no text (also psi_r* for RCC)."""
        return self.transform(self.image_tokens(images), None, None)[0]

    def pool_target(self, psi: list[torch.Tensor]) -> torch.Tensor:
        """et: target-side CGP (eq. 17-20), or MAAF's pooling when CGP is off."""
        if not self.use_cgp:
            return self.pool(psi, None, None)
        psi_t = torch.cat(psi, 1)
        ones = torch.ones(psi_t.shape[:2], dtype=torch.bool, device=psi_t.device)
        z_t = self._per_level(self.cgp_t(psi_t, ones, None, None), psi)  # eq. 17-19
        return self.norm((z_t[..., None] * psi_t).sum(1))  # eq. 20

    def embed_target(self, images):
        return self.pool_target(self.target_tokens(images))

    def loss(self, batch):
        q = self.compose(batch["source"], batch["ids"], batch["lengths"])
        psi_t = self.target_tokens(batch["target"])
        t = self.pool_target(psi_t)
        l_bat = LOSSES[self.loss_name](q, t, batch.get("target_label"))
        if not self.use_rcc:
            return {"loss": l_bat, "l_bat": l_bat.detach()}
        psi_r_star = torch.cat(self.target_tokens(batch["source"]), 1)
        ids = batch["ids"][:, : self.max_words]
        l_rel = self.captioner.loss(torch.cat(psi_t, 1), psi_r_star, ids,
                                    batch["lengths"].clamp(max=self.max_words))
        return {"loss": self.alpha * l_bat + self.beta * l_rel, "l_bat": l_bat.detach(),
                "l_rel": l_rel.detach()}
