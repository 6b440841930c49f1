"""Dataset types shared by every composed-retrieval dataset (floor 1: knows nothing of models)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np


def _check_images(name: str, images: np.ndarray, labels: np.ndarray | None = None) -> None:
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"{name}: images must be uint8 (N,H,W,3), got {images.dtype} "
                         f"{images.shape}")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"{name}: {len(labels)} labels for {len(images)} images")


@dataclass
class ComposedSplit:
    """One split of a composed (reference image + modification text -> target) benchmark.

    ``images`` is a uint8 array (N, H, W, 3) held in memory (the css2d and CSS images are
    small), ``labels`` the scene label of each image (identical scenes share a label, so a
    retrieved duplicate of the target counts as a hit, TIRG protocol), and the queries are
    three parallel sequences: source image index, modification text, target image index.
    """

    task: ClassVar[str] = "composed"  # the task it trains (models/tasks.py)

    name: str
    images: np.ndarray
    labels: np.ndarray
    query_source: np.ndarray
    query_text: list[str]
    query_target: np.ndarray
    image_ids: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.images)
        _check_images(self.name, self.images, self.labels)
        if not (len(self.query_source) == len(self.query_text) == len(self.query_target)):
            raise ValueError(f"{self.name}: query arrays differ in length")
        for arr, what in ((self.query_source, "source"), (self.query_target, "target")):
            if len(arr) and (arr.min() < 0 or arr.max() >= n):
                raise ValueError(f"{self.name}: a query {what} index is outside 0..{n - 1}")
        if not self.image_ids:
            self.image_ids = [f"{self.name}_{i:06d}" for i in range(n)]

    @property
    def num_queries(self) -> int:
        return len(self.query_text)

    def subset_queries(self, idx: np.ndarray, name: str | None = None) -> ComposedSplit:
        """The same images with only the queries at ``idx`` (used to carve a validation set);
        per-query metadata (``meta["query_category"]``) follows the queries."""
        meta = dict(self.meta)
        if "query_category" in meta:
            meta["query_category"] = np.asarray(meta["query_category"])[idx]
        return ComposedSplit(
            name=name or self.name,
            images=self.images,
            labels=self.labels,
            query_source=self.query_source[idx],
            query_text=[self.query_text[i] for i in idx],
            query_target=self.query_target[idx],
            image_ids=self.image_ids,
            meta=meta,
        )


@dataclass
class AttributeSplit:
    """One split of an attribute-query benchmark (Dong et al.: attribute set -> image).

    ``attributes`` is int (N, A): the value index of each of the A attributes of every image,
    ``schema`` the attribute names and their value lists (index = value id). A query is a whole
    attribute combination; the relevant images of a query are those whose attribute vector
    equals it (AIHM protocol), so the queries of a split are its distinct combinations.
    """

    task: ClassVar[str] = "attributes"  # the task it trains (models/tasks.py)

    name: str
    images: np.ndarray
    attributes: np.ndarray
    schema: dict[str, list[str]]
    image_ids: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.images)
        _check_images(self.name, self.images)
        a = np.asarray(self.attributes)
        if a.ndim != 2 or len(a) != n or a.shape[1] != len(self.schema):
            raise ValueError(f"{self.name}: attributes must be ({n}, {len(self.schema)}), got "
                             f"{a.shape}")
        for j, (attr, values) in enumerate(self.schema.items()):
            if len(a) and (a[:, j].min() < 0 or a[:, j].max() >= len(values)):
                raise ValueError(f"{self.name}: a value of {attr!r} is outside its "
                                 f"{len(values)} values")
        self.attributes = a.astype(np.int64)
        if not self.image_ids:
            self.image_ids = [f"{self.name}_{i:06d}" for i in range(n)]

    @property
    def num_queries(self) -> int:
        return len(self.queries())

    def queries(self) -> np.ndarray:
        """The distinct attribute combinations of the split (Q, A), in first-seen order."""
        _, first = np.unique(self.attributes, axis=0, return_index=True)
        return self.attributes[np.sort(first)]

    def relevance(self, queries: np.ndarray) -> np.ndarray:
        """bool (Q, N): image n is relevant to query q when its attributes equal q's."""
        return (np.asarray(queries)[:, None, :] == self.attributes[None, :, :]).all(-1)

    def subset(self, idx: np.ndarray, name: str | None = None) -> AttributeSplit:
        return AttributeSplit(name=name or self.name, images=self.images[idx],
                              attributes=self.attributes[idx], schema=self.schema,
                              image_ids=[self.image_ids[i] for i in idx], meta=self.meta)


@dataclass
class ItemTextSplit:
    """Catalog items with their textual metadata as a bag of vocabulary words (Sadeh et al.).

    ``words[i]`` are the vocabulary words (stems, §4.1 preprocessing) of item i's metadata,
    ``texts[i]`` the raw metadata, ``vocabulary`` the words the model knows, most frequent
    first, and ``display`` a readable surface form of each. Retrieval pairs are (image i,
    text i); items without any vocabulary word are left out by the loader.
    """

    task: ClassVar[str] = "pairs"  # the task it trains (models/tasks.py)

    name: str
    images: np.ndarray
    words: list[list[str]]
    texts: list[str]
    vocabulary: list[str]
    display: dict[str, str] = field(default_factory=dict)
    image_ids: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.images)
        _check_images(self.name, self.images)
        if not (len(self.words) == len(self.texts) == n):
            raise ValueError(f"{self.name}: {n} images, {len(self.words)} word lists, "
                             f"{len(self.texts)} texts")
        known = set(self.vocabulary)
        for i, ws in enumerate(self.words):
            if not ws or not set(ws) <= known:
                raise ValueError(f"{self.name}: item {i} has no words or words outside the "
                                 f"vocabulary")
        if not self.image_ids:
            self.image_ids = [f"{self.name}_{i:06d}" for i in range(n)]

    @property
    def num_queries(self) -> int:
        return len(self.images)

    def word_batch(self, stoi: dict[str, int], idx: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Padded word ids (B, L) and multi-hot labels (B, V) of items ``idx`` under the id
        map ``stoi`` (V = its size)."""
        rows = [[stoi[w] for w in self.words[i]] for i in idx]
        ids = np.zeros((len(rows), max(len(r) for r in rows)), dtype=np.int64)
        labels = np.zeros((len(rows), len(stoi)), dtype=np.float32)
        for j, r in enumerate(rows):
            ids[j, :len(r)] = r
            labels[j, r] = 1.0
        return ids, labels

    def subset(self, idx: np.ndarray, name: str | None = None) -> ItemTextSplit:
        return ItemTextSplit(name=name or self.name, images=self.images[idx],
                             words=[self.words[i] for i in idx],
                             texts=[self.texts[i] for i in idx], vocabulary=self.vocabulary,
                             display=self.display, image_ids=[self.image_ids[i] for i in idx],
                             meta=self.meta)


@dataclass
class TextImageSplit:
    """Sentence -> image retrieval (Zheng et al., CUHK-PEDES style): images with an identity
    label each, and captions that each describe one image. Relevance is by identity: every
    image (caption) of the caption's (image's) identity is a correct answer."""

    task: ClassVar[str] = "text"  # the task it trains (models/tasks.py)

    name: str
    images: np.ndarray
    labels: np.ndarray
    captions: list[str]
    caption_image: np.ndarray
    image_ids: list[str] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.images)
        _check_images(self.name, self.images, self.labels)
        if len(self.captions) != len(self.caption_image):
            raise ValueError(f"{self.name}: captions and caption_image differ in length")
        ci = np.asarray(self.caption_image, dtype=np.int64)
        if len(ci) and (ci.min() < 0 or ci.max() >= n):
            raise ValueError(f"{self.name}: a caption points outside images 0..{n - 1}")
        self.caption_image = ci
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if not self.image_ids:
            self.image_ids = [f"{self.name}_{i:06d}" for i in range(n)]

    @property
    def num_queries(self) -> int:
        return len(self.captions)

    @property
    def caption_labels(self) -> np.ndarray:
        return self.labels[self.caption_image]

    def subset_images(self, idx: np.ndarray, name: str | None = None) -> TextImageSplit:
        """The images ``idx`` and the captions that describe them."""
        idx = np.asarray(idx)
        remap = np.full(len(self.images), -1, dtype=np.int64)
        remap[idx] = np.arange(len(idx))
        keep = np.flatnonzero(remap[self.caption_image] >= 0)
        return TextImageSplit(name=name or self.name, images=self.images[idx],
                              labels=self.labels[idx],
                              captions=[self.captions[i] for i in keep],
                              caption_image=remap[self.caption_image[keep]],
                              image_ids=[self.image_ids[i] for i in idx], meta=self.meta)
