"""``create_model(name, **cfg)`` (open_clip style factory)."""

from __future__ import annotations

from torch import nn

from tgir import TgirError
from tgir.models.aihm import AIHM
from tgir.models.attr_classifier import AttributeClassifier
from tgir.models.baselines import Concat, ImageOnly, TextOnly
from tgir.models.hffca import HFFCA
from tgir.models.hgan import HGAN
from tgir.models.joint_embedding import JointEmbedding
from tgir.models.maaf import MAAF
from tgir.models.pretrained import PretrainedImageFeatures
from tgir.models.tirg import TIRG

_MODELS: dict[str, type[nn.Module]] = {
    "maaf": MAAF,
    "hffca": HFFCA,
    "tirg": TIRG,
    "concat": Concat,
    "image_only": ImageOnly,
    "text_only": TextOnly,
    "aihm": AIHM,  # attribute set -> image (Dong et al.)
    "attr_classifier": AttributeClassifier,
    "joint": JointEmbedding,  # image <-> catalog words, refinement search (Sadeh et al.)
    "hgan": HGAN,  # sentence -> image, hierarchical Gumbel attention (Zheng et al.)
    "pretrained": PretrainedImageFeatures,  # image similarity, nothing trained (index)
}


def names() -> list[str]:
    return sorted(_MODELS)


def create_model(name: str, **cfg) -> nn.Module:
    if name not in _MODELS:
        raise TgirError(f"unknown model {name!r}; known: {', '.join(names())}")
    try:
        return _MODELS[name](**cfg)
    except TypeError as e:
        raise TgirError(f"bad options for model {name!r}: {e}") from e
