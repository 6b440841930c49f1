"""Image similarity without training: the shipped pretrained EfficientNet-Lite0 (issue 24).

``tgir index --pretrained DIR`` embeds a folder with this model so a new user can search it
in one command: a reference image alone finds similar images (the cosine of globally pooled
ImageNet features, the usual content-based image retrieval baseline). It answers no text: a
text query needs one of the trained models.
"""

from __future__ import annotations

import torch
from torch import nn

from tgir.models.encoders import create_image_encoder


class PretrainedImageFeatures(nn.Module):
    """Globally pooled last map of a pretrained backbone; nothing is trained."""

    task = "image"

    def __init__(self, vocab_size: int = 0, image_encoder: str = "efficientnet_lite0",
                 image_encoder_cfg: dict | None = None):
        super().__init__()
        self.backbone = create_image_encoder(image_encoder, **(image_encoder_cfg or {}))
        self.backbone.requires_grad_(False)

    def embed_target(self, images: torch.Tensor) -> torch.Tensor:
        self.backbone.eval()
        return self.backbone(images)[-1].mean(dim=(2, 3))

    def embed_reference(self, images: torch.Tensor) -> torch.Tensor:
        """A reference image alone: the same vector as the catalog's."""
        return self.embed_target(images)
