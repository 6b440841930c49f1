"""The plain attribute-classifier baseline for attribute queries (Dong et al.'s comparison).

One softmax classifier per attribute on the pooled backbone feature; an attribute set is
scored by the product of its values' predicted probabilities. In log space that is a dot
product, ``embed_target`` = concatenated log-probabilities and ``embed_attributes`` = the
concatenated one-hot values, so a FAISS inner-product index serves it unchanged. It cannot
reason about combinations beyond independence, which is what AIHM's matching adds.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tgir import TgirError
from tgir.models.aihm import attribute_value_ids
from tgir.models.encoders import PooledBackbone, create_image_encoder


class AttributeClassifier(PooledBackbone, nn.Module):
    task = "attributes"
    normalize_embeddings = False  # index stores raw vectors (see search/index.py)

    def __init__(self, schema: dict[str, list[str]], vocab_size: int = 0,
                 image_encoder: str = "efficientnet_lite0",
                 image_encoder_cfg: dict | None = None, freeze_backbone: bool = False,
                 hidden: int = 1024):
        super().__init__()
        if not schema or any(len(v) < 2 for v in schema.values()):
            raise TgirError("the attribute classifier needs attributes with >= 2 values each")
        self.schema = {k: list(v) for k, v in schema.items()}
        self.attr_names = list(self.schema)
        self.backbone = create_image_encoder(image_encoder, **(image_encoder_cfg or {}))
        self.freeze_backbone = freeze_backbone  # CPU option: a fixed pretrained feature
        self.backbone.requires_grad_(not freeze_backbone)
        self.feature_cache = None  # attached by the trainer when the backbone is frozen
        feat = self.backbone.out_channels[-1]
        self.heads = nn.ModuleList(
            nn.Sequential(nn.Linear(feat, hidden), nn.ReLU(), nn.Linear(hidden, len(v)))
            for v in self.schema.values())

    def logits(self, images: torch.Tensor) -> list[torch.Tensor]:
        f = self.encode_image(images)
        return [h(f) for h in self.heads]

    def embed_target(self, images: torch.Tensor) -> torch.Tensor:
        """Concatenated per-attribute log-probabilities (B, sum of value counts)."""
        return torch.cat([F.log_softmax(lg, 1) for lg in self.logits(images)], 1)

    def attribute_ids(self, query) -> torch.Tensor:
        return torch.tensor(attribute_value_ids(self.schema, query), dtype=torch.long,
                            device=self.heads[0][0].weight.device)

    def embed_attributes(self, attrs) -> torch.Tensor:
        """Concatenated one-hot values (Q, sum of value counts): the dot product with
        ``embed_target`` is the log of the product of the values' probabilities."""
        if not torch.is_tensor(attrs):
            attrs = self.attribute_ids(attrs)
        return torch.cat([F.one_hot(attrs[:, i], len(v)).float()
                          for i, v in enumerate(self.schema.values())], 1)

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        attrs = batch["attributes"]
        lgs = self.logits(batch["images"])
        value = sum(F.cross_entropy(lg, attrs[:, i]) for i, lg in enumerate(lgs)) / len(lgs)
        return {"loss": value}
