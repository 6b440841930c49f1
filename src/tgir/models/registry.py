"""``create_model(name, **cfg)`` (open_clip style factory) and the check of a ``model:``
config against the model's constructor, whose typed signature is its config schema."""

from __future__ import annotations

import difflib
import inspect
import typing

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
from tgir.models.tasks import class_data_options
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


def model_class(name: str) -> type[nn.Module]:
    if name not in _MODELS:
        raise TgirError(f"unknown model {name!r}; known: {', '.join(names())}")
    return _MODELS[name]


# options every model's constructor receives from the trainer, not from the config
PROVIDED = ("vocab_size",)
_SCALARS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def check_options(name: str, opts: dict) -> None:
    """Refuse a ``model:`` option the model does not take (naming the nearest one), and a
    value of the wrong scalar type, before any data is read. The schema is the constructor's
    typed signature (one place, next to the model)."""
    params, hints = _options(model_class(name))
    for key, value in opts.items():
        if key not in params:
            near = difflib.get_close_matches(key, params, n=1)
            raise TgirError(f"model {name!r} has no option {key!r}"
                            + (f" (did you mean {near[0]!r}?)" if near else "")
                            + f"; its options: {', '.join(k for k in params if k not in PROVIDED)}")
        want = hints.get(key)
        if want in _SCALARS and value is not None and not _fits(value, want):
            raise TgirError(f"model.{key} must be {_SCALARS[want]}, not {value!r}")


def _options(cls: type) -> tuple[dict[str, inspect.Parameter], dict]:
    """The keyword options of ``cls`` and their type hints, following ``**cfg`` up the MRO
    (e.g. TIRG -> GlobalFeatureModel -> ComposedModel)."""
    params: dict[str, inspect.Parameter] = {}
    hints: dict = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        sig = inspect.signature(init)
        for k, p in sig.parameters.items():
            if k != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                params.setdefault(k, p)
        hints = {**typing.get_type_hints(init), **hints}
        if not any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
            break
    return params, hints


def _fits(value, want: type) -> bool:
    if want is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if want is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, want)


def data_options(name: str, split) -> dict:
    """Options a model derives from its training data (e.g. hffca's image size), from the
    model class's own ``data_options(split)`` when it has one."""
    return class_data_options(model_class(name), split)


def create_model(name: str, **cfg) -> nn.Module:
    model_class(name)
    try:
        return _MODELS[name](**cfg)
    except TypeError as e:
        raise TgirError(f"bad options for model {name!r}: {e}") from e
