"""The composed-model interface every composed model implements (TIRG's interface).

``encode_image(images)`` -> backbone output, ``encode_text(ids, lengths)`` -> TextFeatures,
``compose(images, ids, lengths)`` -> query embedding, ``embed_target(images)`` -> target
embedding, ``loss(batch)`` -> {"loss": ...}. One trainer and one evaluator serve them all.
Images are float tensors (B, 3, H, W) in [0, 1].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tgir import TgirError
from tgir.models.encoders import LSTMTextEncoder, TextFeatures, create_image_encoder
from tgir.models.feature_cache import CacheSpec, backbone_key, frozen_features
from tgir.models.layers import Dropout
from tgir.models.losses import LOSSES


class ScaledNorm(nn.Module):
    """l2-normalise and multiply by a learned scale initialised to 4 (TIRG's normalisation
    layer; Dodds et al. §2.3: "it is important to learn it")."""

    def __init__(self, init: float = 4.0, learn: bool = True):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(init)), requires_grad=learn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * F.normalize(x, dim=-1)


class ComposedModel(nn.Module):
    """Shared parts: an image backbone, an LSTM text encoder, the loss and the scale."""

    def __init__(self, vocab_size: int, image_encoder: str = "small_resnet",
                 image_encoder_cfg: dict | None = None, embed_dim: int = 256,
                 word_dim: int = 256, loss: str = "batch_classification",
                 freeze_backbone: bool = False):
        super().__init__()
        if loss not in LOSSES:
            raise TgirError(f"unknown loss {loss!r}; known: {', '.join(LOSSES)}")
        self.backbone = create_image_encoder(image_encoder, **(image_encoder_cfg or {}))
        # a frozen (pretrained) backbone stays in eval mode; the trainer then attaches a
        # DiskFeatureCache so every training image goes through it once (issue 10)
        self.freeze_backbone = freeze_backbone
        self.backbone.requires_grad_(not freeze_backbone)
        self.feature_cache = None
        self.text_encoder = LSTMTextEncoder(vocab_size, word_dim, embed_dim)
        self.norm = ScaledNorm()
        self.embed_dim = embed_dim
        self.loss_name = loss

    def backbone_parameters(self) -> list[nn.Parameter]:
        """Parameters trained at the backbone learning rate (Dodds et al. §2.4)."""
        return [] if self.freeze_backbone else list(self.backbone.parameters())

    def cache_spec(self, image_size: int) -> CacheSpec | None:
        """A frozen backbone's maps are cached (``models/feature_cache.py``)."""
        if not self.freeze_backbone:
            return None
        return CacheSpec(backbone_key(self.backbone, image_size, "maps"), self.backbone)

    def encode_image(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The backbone maps. Frozen: eval mode, no graph, and during training the maps come
        from the feature cache when one is attached and holds these images."""
        if not self.freeze_backbone:
            return self.backbone(images)
        self.backbone.eval()
        return frozen_features(self.backbone, images, self.feature_cache, self.training)

    def encode_text(self, ids: torch.Tensor, lengths: torch.Tensor) -> TextFeatures:
        return self.text_encoder(ids, lengths)

    def compose(self, images: torch.Tensor, ids: torch.Tensor, lengths: torch.Tensor
                ) -> torch.Tensor:
        raise NotImplementedError

    def embed_target(self, images: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def loss(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        q = self.compose(batch["source"], batch["ids"], batch["lengths"])
        t = self.embed_target(batch["target"])
        value = LOSSES[self.loss_name](q, t, batch.get("target_label"))
        return {"loss": value}


class GlobalFeatureModel(ComposedModel):
    """Composers over one global image vector and one sentence vector (TIRG and the
    baselines it compares against): avg-pooled last map -> linear -> embed_dim."""

    def __init__(self, vocab_size: int, **cfg):
        super().__init__(vocab_size, **cfg)
        self.image_fc = nn.Linear(self.backbone.out_channels[-1], self.embed_dim)
        self.text_fc = nn.Sequential(Dropout(0.1), nn.Linear(self.embed_dim, self.embed_dim))

    def image_vector(self, images: torch.Tensor) -> torch.Tensor:
        return self.image_fc(self.encode_image(images)[-1].mean(dim=(2, 3)))

    def text_vector(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.text_fc(self.encode_text(ids, lengths).sentence)

    def combine(self, img: torch.Tensor, txt: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def compose(self, images, ids, lengths):
        return self.norm(self.combine(self.image_vector(images), self.text_vector(ids, lengths)))

    def embed_target(self, images):
        return self.norm(self.image_vector(images))
