"""TIRG: Text Image Residual Gating (Vo et al., CVPR 2019), the baseline of Dodds et al. Table 1.

phi_xt = w_g * f_gate(phi_x, phi_t) + w_r * f_res(phi_x, phi_t)
f_gate = sigmoid(W_g2 * ReLU(W_g1 * [phi_x, phi_t])) (.) phi_x      (gating: keep the image)
f_res  = W_r2 * ReLU(W_r1 * [phi_x, phi_t])                            (residual: the change)
with BatchNorm before each ReLU block and w_g, w_r learned, initialised to 1 and 10 as in the
authors' code.
"""

from __future__ import annotations

import torch
from torch import nn

from tgir.models.base import GlobalFeatureModel


class TIRG(GlobalFeatureModel):
    def __init__(self, vocab_size: int, **cfg):
        super().__init__(vocab_size, **cfg)
        d = self.embed_dim
        self.gate = nn.Sequential(nn.BatchNorm1d(2 * d), nn.ReLU(), nn.Linear(2 * d, d))
        self.res = nn.Sequential(nn.BatchNorm1d(2 * d), nn.ReLU(), nn.Linear(2 * d, 2 * d),
                                 nn.ReLU(), nn.Linear(2 * d, d))
        self.w = nn.Parameter(torch.tensor([1.0, 10.0]))  # w_g, w_r

    def combine(self, img: torch.Tensor, txt: torch.Tensor) -> torch.Tensor:
        x = torch.cat([img, txt], dim=1)
        return self.w[0] * torch.sigmoid(self.gate(x)) * img + self.w[1] * self.res(x)
