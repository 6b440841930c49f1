"""The task interface: what a model answers and which training hooks it has, decided once.

Every model declares its task in a class attribute ``task`` (default ``composed``) and
implements that task's protocol below (the spirit of transformers' ``AutoModelFor<Task>``
and open_clip's uniform ``encode_image`` / ``encode_text``). ``capabilities(model)`` checks
the declaration and returns a frozen ``Capabilities``; the trainer, evaluator, index, searcher
and server read that instead of probing the model with ``hasattr`` each on its own.

Tasks and their protocols (all also have ``embed_target(images)`` and ``loss(batch)``):

- ``composed`` (TIRG's interface; MAAF, TIRG, hffca, the baselines): ``encode_image``,
  ``encode_text``, ``compose(images, ids, lengths)``;
- ``text`` (sentence -> image, HGAN): ``embed_sentences(texts)``, raw strings (the model
  tokenises them);
- ``attributes`` (attribute set -> image, AIHM and the classifier): ``embed_attributes``;
  optional ``match(q, g)``, a learned pair scorer over every stored vector;
- ``pairs`` (the joint image / catalog-text embedding of Sadeh et al.): ``embed_text_query``,
  ``refine_scores`` (QA / SAF / QA+SAF / filter), ``calibrate`` (per-word thresholds);
- ``image`` (nothing trained, image similarity): ``embed_reference``.

Optional training hooks, any task: ``cache_spec`` (a frozen backbone's features cached on
disk), ``set_training_sets`` (AIHM's near misses), ``init_from_data`` (data-driven
initialisation), ``schedule(step)`` (e.g. unfreezing), ``calibrate_levels`` (HGAN's level
weights on validation); before construction, ``data_options(split)`` (options the model
derives from its training data, e.g. hffca's image token count).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Protocol, runtime_checkable

import torch

from tgir import TgirError


@runtime_checkable
class ComposedRetrieval(Protocol):
    """Reference image + text -> target image (TIRG's interface)."""

    def encode_image(self, images: torch.Tensor): ...
    def encode_text(self, ids: torch.Tensor, lengths: torch.Tensor): ...
    def compose(self, images: torch.Tensor, ids: torch.Tensor, lengths: torch.Tensor
                ) -> torch.Tensor: ...
    def embed_target(self, images: torch.Tensor) -> torch.Tensor: ...
    def loss(self, batch: dict) -> dict: ...


@runtime_checkable
class TextRetrieval(Protocol):
    """Sentence -> image; the model tokenises raw text itself."""

    def embed_sentences(self, texts: list[str]) -> torch.Tensor: ...
    def embed_target(self, images: torch.Tensor) -> torch.Tensor: ...
    def loss(self, batch: dict) -> dict: ...


@runtime_checkable
class AttributeRetrieval(Protocol):
    """Attribute set -> image."""

    def embed_attributes(self, attrs) -> torch.Tensor: ...
    def embed_target(self, images: torch.Tensor) -> torch.Tensor: ...
    def loss(self, batch: dict) -> dict: ...


@runtime_checkable
class PairRetrieval(Protocol):
    """Image <-> catalog text in one space, with refinement search (Sadeh et al.)."""

    def embed_text_query(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor: ...
    def refine_scores(self, *args, **kwargs) -> torch.Tensor: ...
    def calibrate(self, probs: torch.Tensor, labels: torch.Tensor) -> None: ...
    def embed_target(self, images: torch.Tensor) -> torch.Tensor: ...
    def loss(self, batch: dict) -> dict: ...


@runtime_checkable
class ImageSimilarity(Protocol):
    """A reference image alone -> similar images."""

    def embed_reference(self, images: torch.Tensor) -> torch.Tensor: ...
    def embed_target(self, images: torch.Tensor) -> torch.Tensor: ...


PROTOCOLS: dict[str, type] = {"composed": ComposedRetrieval, "text": TextRetrieval,
                              "attributes": AttributeRetrieval, "pairs": PairRetrieval,
                              "image": ImageSimilarity}
# the query kinds each task answers (search/searcher.py's KIND_NAMES)
QUERY_KINDS: dict[str, tuple[str, ...]] = {"composed": ("composed",), "text": ("text",),
                                           "attributes": ("attributes",),
                                           "pairs": ("composed", "text"), "image": ("image",)}
HOOKS = ("cache_spec", "set_training_sets", "init_from_data", "schedule", "calibrate_levels")


@dataclass(frozen=True)
class Capabilities:
    """What one model class answers and which hooks the trainer calls."""

    task: str
    query_kinds: tuple[str, ...]
    pair_scorer: bool  # match(q, g): ranks by a learned head over every stored vector
    refine: bool  # refine_scores: Sadeh et al.'s QA / SAF / filter refinement
    normalized: bool  # stored vectors l2-normalised (cosine) or kept raw (inner product)
    hooks: frozenset[str]

    def has(self, hook: str) -> bool:
        if hook not in HOOKS:
            raise ValueError(f"unknown training hook {hook!r}; known: {', '.join(HOOKS)}")
        return hook in self.hooks


def _has(cls: type, name: str) -> bool:
    return callable(getattr(cls, name, None))


@cache
def _resolve(cls: type) -> Capabilities:
    task = getattr(cls, "task", "composed")
    if task not in PROTOCOLS:
        raise TgirError(f"model {cls.__name__} declares task {task!r}; known tasks: "
                        f"{', '.join(PROTOCOLS)}")
    proto = PROTOCOLS[task]
    missing = [m for m in _protocol_methods(proto) if not _has(cls, m)]
    if missing:
        raise TgirError(f"model {cls.__name__} declares task {task!r} but lacks "
                        f"{', '.join(sorted(missing))} ({proto.__name__})")
    return Capabilities(task=task, query_kinds=QUERY_KINDS[task],
                        pair_scorer=_has(cls, "match"), refine=task == "pairs",
                        normalized=bool(getattr(cls, "normalize_embeddings", True)),
                        hooks=frozenset(h for h in HOOKS if _has(cls, h)))


def _protocol_methods(proto: type) -> list[str]:
    return [k for k, v in vars(proto).items() if callable(v) and not k.startswith("_")]


def class_data_options(cls: type, split) -> dict:
    """Options a model class derives from its training split (its ``data_options(split)``
    static method, e.g. hffca's image size); empty when it has none."""
    return dict(cls.data_options(split)) if _has(cls, "data_options") else {}


def capabilities(model) -> Capabilities:
    """The model's task and hooks, checked against its task's protocol (once per class)."""
    return _resolve(type(model))
