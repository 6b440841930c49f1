"""Dataset types shared by every composed-retrieval dataset (floor 1: knows nothing of models)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ComposedSplit:
    """One split of a composed (reference image + modification text -> target) benchmark.

    ``images`` is a uint8 array (N, H, W, 3) held in memory (the css2d and CSS images are
    small), ``labels`` the scene label of each image (identical scenes share a label, so a
    retrieved duplicate of the target counts as a hit, TIRG protocol), and the queries are
    three parallel sequences: source image index, modification text, target image index.
    """

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
        if self.images.ndim != 4 or self.images.shape[-1] != 3 or self.images.dtype != np.uint8:
            raise ValueError(f"{self.name}: images must be uint8 (N,H,W,3), got "
                             f"{self.images.dtype} {self.images.shape}")
        if len(self.labels) != n:
            raise ValueError(f"{self.name}: {len(self.labels)} labels for {n} images")
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
        """The same images with only the queries at ``idx`` (used to carve a validation set)."""
        return ComposedSplit(
            name=name or self.name,
            images=self.images,
            labels=self.labels,
            query_source=self.query_source[idx],
            query_text=[self.query_text[i] for i in idx],
            query_target=self.query_target[idx],
            image_ids=self.image_ids,
            meta=self.meta,
        )
