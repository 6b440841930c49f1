"""The single-modality and concatenation baselines of TIRG / Dodds et al. (Table 6 "Image only",
"Text only"; TIRG's "Concat"). Same encoders and loss as TIRG, only the composer differs."""

from __future__ import annotations

import torch
from torch import nn

from tgir.models.base import GlobalFeatureModel
from tgir.models.layers import Dropout


class ImageOnly(GlobalFeatureModel):
    """Query = the reference image's feature; the text is ignored."""

    def combine(self, img: torch.Tensor, txt: torch.Tensor) -> torch.Tensor:
        return img

    def compose(self, images, ids, lengths):
        return self.norm(self.image_vector(images))


class TextOnly(GlobalFeatureModel):
    """Query = the modification text's feature; the reference image is ignored."""

    def combine(self, img: torch.Tensor, txt: torch.Tensor) -> torch.Tensor:
        return txt

    def compose(self, images, ids, lengths):
        return self.norm(self.text_vector(ids, lengths))


class Concat(GlobalFeatureModel):
    """Query = MLP([phi_x, phi_t]) (TIRG's concat baseline)."""

    def __init__(self, vocab_size: int, **cfg):
        super().__init__(vocab_size, **cfg)
        d = self.embed_dim
        self.mlp = nn.Sequential(nn.BatchNorm1d(2 * d), nn.ReLU(), nn.Linear(2 * d, 2 * d),
                                 nn.ReLU(), Dropout(0.1), nn.Linear(2 * d, d))

    def combine(self, img: torch.Tensor, txt: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([img, txt], dim=1))
